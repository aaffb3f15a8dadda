//! The stand-in agent's files under its config home, laid out as Claude Code lays
//! them out: `projects/<slug>/<uuid>.jsonl` (the conversation) and
//! `sessions/<pid>.json` (its session id and idle/busy status).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

pub(crate) use crate::conversation::Message;

/// A conversation's transcript file.
#[derive(Debug)]
pub(crate) struct Transcript {
    path: PathBuf,
    session_id: String,
    cwd: String,
}

impl Transcript {
    /// The transcript of conversation `session_id` run in `workdir` under `home`.
    pub(crate) fn new(home: &Path, workdir: &Path, session_id: &str) -> Self {
        Self {
            path: crate::conversation::transcript(home, workdir, session_id),
            session_id: session_id.to_owned(),
            cwd: workdir.to_string_lossy().into_owned(),
        }
    }

    /// Whether the conversation exists on disk.
    pub(crate) fn exists(&self) -> bool {
        self.path.is_file()
    }

    /// Every message recorded so far.
    pub(crate) fn messages(&self) -> std::io::Result<Vec<Message>> {
        crate::conversation::messages(&self.path)
    }

    /// Appends a user message, with the prompt id its hooks name.
    pub(crate) fn append_user(&self, text: &str, prompt_id: Option<&str>) -> std::io::Result<()> {
        let mut line = self.line("user", json!({"role": "user", "content": text}));
        if let Some(id) = prompt_id {
            line["promptId"] = json!(id);
        }
        self.write(&line)
    }

    /// Appends the agent's reply: complete (`stop_reason: end_turn`), or an API error
    /// of kind `error` (as Claude Code records one: `error`, `isApiErrorMessage`).
    pub(crate) fn append_reply(&self, text: &str, error: Option<&str>) -> std::io::Result<()> {
        // Claude Code 2.1.329 records the request it sent before the reply: a line of
        // another type whose `message` is a user's (the system reminders it added).
        self.write(&json!({
            "type": "api-request-blob",
            "sessionId": self.session_id,
            "hash": "0867946f",
            "message": {"role": "user", "content": [{"type": "text",
                "text": "<system-reminder>\nToday's date is 2026-12-06.\n</system-reminder>"}]},
        }))?;
        let stop = if error.is_some() {
            "stop_sequence"
        } else {
            "end_turn"
        };
        let message = json!({"role": "assistant", "stop_reason": stop,
                             "content": [{"type": "text", "text": text}]});
        let mut line = self.line("assistant", message);
        if let Some(kind) = error {
            line["error"] = json!(kind);
            line["isApiErrorMessage"] = json!(true);
        }
        self.write(&line)
    }

    fn line(&self, kind: &str, message: serde_json::Value) -> serde_json::Value {
        json!({
            "type": kind,
            "sessionId": self.session_id,
            "cwd": self.cwd,
            "uuid": uuid::Uuid::new_v4().to_string(),
            "timestamp": jiff::Timestamp::now().to_string(),
            "message": message,
        })
    }

    /// The transcript's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, line: &serde_json::Value) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(file, "{line}")
    }
}

/// `sessions/<pid>.json`: the running agent's session id and status.
#[derive(Debug)]
pub(crate) struct SessionFile {
    path: PathBuf,
}

impl SessionFile {
    /// The session file of this process under `home`.
    pub(crate) fn new(home: &Path) -> Self {
        Self {
            path: crate::conversation::session_file(home, std::process::id()),
        }
    }

    /// Writes the current session id and status (`idle` or `busy`).
    pub(crate) fn write(&self, session_id: &str, cwd: &Path, status: &str) {
        let body = json!({
            "pid": std::process::id(),
            "sessionId": session_id,
            "cwd": cwd.to_string_lossy(),
            "status": status,
        });
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.path.with_extension("json.tmp");
        if std::fs::write(&tmp, body.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }

    /// Removes the file (on exit).
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_should_round_trip_messages_under_the_slug_folder() {
        let home = tempfile::tempdir().unwrap();
        let t = Transcript::new(home.path(), Path::new("/srv/a b"), "1234");
        assert!(!t.exists());
        t.append_user("line 1\n$(x) `y` \"z\"", Some("p1")).unwrap();
        t.append_reply("done", None).unwrap();
        assert!(
            home.path().join("projects/-srv-a-b/1234.jsonl").is_file(),
            "every character but letters and digits becomes -"
        );
        let m = t.messages().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].text, "line 1\n$(x) `y` \"z\"");
        assert_eq!(m[0].prompt_id.as_deref(), Some("p1"));
        assert_eq!(m[1].role, "assistant");
        assert_eq!(m[1].stop_reason.as_deref(), Some("end_turn"));
    }
}
