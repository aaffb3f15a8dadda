//! Claude Code's conversation files under a config home: `sessions/<pid>.json` names
//! the conversation a running agent holds, `projects/<slug>/<uuid>.jsonl` records it.
//! Read by failover (which conversation to resume, whether a task was submitted) and
//! written by the stand-in agent, through the same paths and parsing. Codex's rollouts,
//! read into the same [`Message`]s: [`codex`].

pub(crate) mod codex;

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

/// The folder below a config home that holds the conversations' transcripts.
pub(crate) const PROJECTS: &str = "projects";

/// `home/sessions/<pid>.json`, the session file of the agent with `pid`.
pub(crate) fn session_file(home: &Path, pid: u32) -> PathBuf {
    home.join("sessions").join(format!("{pid}.json"))
}

/// The transcript of conversation `id` run in `workdir` under `home`.
pub(crate) fn transcript(home: &Path, workdir: &Path, id: &str) -> PathBuf {
    home.join(PROJECTS)
        .join(slug(workdir))
        .join(format!("{id}.jsonl"))
}

/// Where another config home `home` finds `transcript` (`<project>/<id>.jsonl` below
/// some home's `projects/`): the same file when the two homes share that folder.
pub(crate) fn transcript_under(home: &Path, transcript: &Path) -> Option<PathBuf> {
    let project = transcript.parent()?.file_name()?;
    Some(
        home.join(PROJECTS)
            .join(project)
            .join(transcript.file_name()?),
    )
}

/// The conversation the agent with `pid` runs under `home`, from its session file,
/// validated as a UUID.
pub(crate) fn of_agent(home: &Path, pid: u32) -> Option<String> {
    let bytes = std::fs::read(session_file(home, pid)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let id = v.get("sessionId")?.as_str()?;
    uuid::Uuid::parse_str(id).ok().map(|u| u.to_string())
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// The text (a string content, or the first text block).
    pub text: String,
    /// A user message's prompt id (`promptId`), the one its hooks name.
    pub prompt_id: Option<String>,
    /// An assistant message's `stop_reason`: `end_turn` when the reply is complete.
    pub stop_reason: Option<String>,
    /// An assistant message that reports an API error: its kind (`rate_limit`, …).
    pub error: Option<String>,
}

/// Every message of the transcript at `path`; lines that are not messages are skipped:
/// a message is a line of type `user` or `assistant` (Claude Code 2.1.329 also writes
/// the requests it sent, `api-request-blob` lines holding a user's message, which are
/// not the conversation's).
pub fn messages(path: &Path) -> std::io::Result<Vec<Message>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v.get("type")
                .and_then(|t| t.as_str())
                .is_none_or(|t| t == "user" || t == "assistant")
        })
        .filter_map(|v| {
            let role = v.pointer("/message/role")?.as_str()?.to_owned();
            let content = v.pointer("/message/content")?;
            let text = match content.as_str() {
                Some(s) => s.to_owned(),
                None => content.pointer("/0/text")?.as_str()?.to_owned(),
            };
            let field = |p: &str| v.pointer(p).and_then(|x| x.as_str()).map(str::to_owned);
            Some(Message {
                role,
                text,
                prompt_id: field("/promptId"),
                stop_reason: field("/message/stop_reason"),
                error: field("/error"),
            })
        })
        .collect())
}

/// How a turn stands in a transcript: the last user message that is the prompt sought,
/// and what came after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// The prompt id of that message, when the transcript names it.
    pub prompt_id: Option<String>,
    /// How the turn ended, once it did.
    pub end: Option<TurnEnd>,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEnd {
    /// A complete reply (`stop_reason: end_turn`), with its text.
    Reply(String),
    /// An API error: its kind and the message shown.
    Error(String, String),
}

/// The turn of the last user message whose text `sought` accepts, if there is one.
pub(crate) fn turn(messages: &[Message], sought: impl Fn(&str) -> bool) -> Option<Turn> {
    let at = messages
        .iter()
        .rposition(|m| m.role == "user" && sought(&m.text))?;
    let id = &messages[at].prompt_id;
    let end = messages[at + 1..].iter().find_map(|m| {
        if m.role == "user" && m.prompt_id != *id {
            // The next prompt: this turn was cut.
            return Some(None);
        }
        if m.role != "assistant" {
            return None;
        }
        match (&m.error, m.stop_reason.as_deref()) {
            (Some(kind), _) => Some(Some(TurnEnd::Error(kind.clone(), m.text.clone()))),
            (None, Some("end_turn")) => Some(Some(TurnEnd::Reply(m.text.clone()))),
            _ => None,
        }
    });
    Some(Turn {
        prompt_id: messages[at].prompt_id.clone(),
        end: end.flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_under_should_name_the_same_file_below_another_home() {
        let here = transcript(Path::new("/h/a"), Path::new("/srv/p"), "c1");
        assert_eq!(
            transcript_under(Path::new("/h/b"), &here),
            Some(transcript(Path::new("/h/b"), Path::new("/srv/p"), "c1"))
        );
        assert_eq!(transcript_under(Path::new("/h/b"), Path::new("/")), None);
    }

    #[test]
    fn a_real_transcripts_request_lines_should_not_read_as_the_persons_messages() {
        // Lines as Claude Code 2.1.329 wrote them against the mock (long fields cut): the
        // request it sent sits between the prompt and the reply, holding a user message.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let lines = [
            r#"{"type":"mode","mode":"normal","sessionId":"s"}"#,
            r#"{"parentUuid":null,"promptId":"p1","type":"user","message":{"role":"user","content":"Task 0: fix it"},"uuid":"u1"}"#,
            r#"{"parentUuid":"u1","attachment":{"type":"date","date":"2026-12-06"},"type":"attachment","uuid":"a1"}"#,
            r#"{"type":"api-request-blob","sessionId":"s","hash":"35","message":{"role":"user","content":[{"type":"text","text":"<system-reminder>
Attribution</system-reminder>"}]}}"#,
            r#"{"type":"api-request","sessionId":"s","id":"r1","params":{"model":"claude-opus-5-5"}}"#,
            r#"{"parentUuid":"a1","message":{"id":"msg_mock","type":"message","role":"assistant","content":[{"type":"text","text":"Done: Task 0: fix it"}],"stop_reason":"end_turn"},"type":"assistant","uuid":"m1"}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let all = messages(&path).unwrap();
        let roles: Vec<&str> = all.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["user", "assistant"]);
        let t = turn(&all, |t| t == "Task 0: fix it").unwrap();
        assert_eq!(t.end, Some(TurnEnd::Reply("Done: Task 0: fix it".into())));
    }

    #[test]
    fn turn_should_end_on_a_complete_reply_or_an_error_only() {
        let user = |text: &str, id: &str| Message {
            role: "user".into(),
            text: text.into(),
            prompt_id: Some(id.into()),
            ..Message::default()
        };
        let assistant = |text: &str, stop: Option<&str>, error: Option<&str>| Message {
            role: "assistant".into(),
            text: text.into(),
            stop_reason: stop.map(str::to_owned),
            error: error.map(str::to_owned),
            ..Message::default()
        };
        let is = |text: &'static str| move |t: &str| t.trim() == text;
        let mut m = vec![user("fix it\n", "p1")];
        assert_eq!(
            turn(&m, is("fix it")),
            Some(Turn {
                prompt_id: Some("p1".into()),
                end: None
            })
        );
        m.push(assistant("let me look", Some("tool_use"), None));
        assert_eq!(
            turn(&m, is("fix it")).unwrap().end,
            None,
            "a tool call is not the end"
        );
        m.push(assistant("Done.", Some("end_turn"), None));
        assert_eq!(
            turn(&m, is("fix it")).unwrap().end,
            Some(TurnEnd::Reply("Done.".into()))
        );
        let failed = vec![
            user("go", "p2"),
            assistant(
                "You've hit your limit",
                Some("stop_sequence"),
                Some("rate_limit"),
            ),
        ];
        assert_eq!(
            turn(&failed, is("go")).unwrap().end,
            Some(TurnEnd::Error(
                "rate_limit".into(),
                "You've hit your limit".into()
            ))
        );
        let cut = vec![
            user("go", "p2"),
            user("other", "p3"),
            assistant("x", Some("end_turn"), None),
        ];
        assert_eq!(turn(&cut, is("go")).unwrap().end, None);
        assert_eq!(turn(&m, is("never sent")), None);
    }

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
