//! Claude Code's conversation files under a config home: `sessions/<pid>.json` names
//! the conversation a running agent holds, `projects/<slug>/<uuid>.jsonl` records it.
//! Read by failover (which conversation to resume, whether a task was submitted) and
//! written by the stand-in agent, through the same paths and parsing.

use std::path::{Path, PathBuf};

/// The folder name Claude Code gives a working directory under `projects/`: every
/// character that is not an ASCII letter or digit becomes `-`.
pub fn slug(workdir: &Path) -> String {
    workdir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// `home/sessions/<pid>.json`, the session file of the agent with `pid`.
pub fn session_file(home: &Path, pid: u32) -> PathBuf {
    home.join("sessions").join(format!("{pid}.json"))
}

/// The transcript of conversation `id` run in `workdir` under `home`.
pub fn transcript(home: &Path, workdir: &Path, id: &str) -> PathBuf {
    home.join("projects")
        .join(slug(workdir))
        .join(format!("{id}.jsonl"))
}

/// The conversation the agent with `pid` runs under `home`, from its session file,
/// validated as a UUID.
pub fn of_agent(home: &Path, pid: u32) -> Option<String> {
    let bytes = std::fs::read(session_file(home, pid)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let id = v.get("sessionId")?.as_str()?;
    uuid::Uuid::parse_str(id).ok().map(|u| u.to_string())
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// The text (a string content, or the first text block).
    pub text: String,
}

/// Every message of the transcript at `path`; lines that are not messages are skipped.
pub fn messages(path: &Path) -> std::io::Result<Vec<Message>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let role = v.pointer("/message/role")?.as_str()?.to_owned();
            let content = v.pointer("/message/content")?;
            let text = match content.as_str() {
                Some(s) => s.to_owned(),
                None => content.pointer("/0/text")?.as_str()?.to_owned(),
            };
            Some(Message { role, text })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn of_agent_should_name_a_valid_conversation_only() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("sessions")).unwrap();
        let id = "0b9f5d8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
        std::fs::write(
            session_file(home.path(), 7),
            format!(r#"{{"sessionId":"{id}"}}"#),
        )
        .unwrap();
        std::fs::write(session_file(home.path(), 8), r#"{"sessionId":"../../etc"}"#).unwrap();
        assert_eq!(of_agent(home.path(), 7).as_deref(), Some(id));
        assert_eq!(of_agent(home.path(), 8), None);
        assert_eq!(of_agent(home.path(), 9), None);
    }
}
