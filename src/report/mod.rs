//! The agent's own reports: what Claude Code says through its hooks (`SessionStart`,
//! `UserPromptSubmit`, `Stop`, `StopFailure`) and its status line, and what Codex says
//! through its `notify` program (`agent-turn-complete`), written by `failover hook` as
//! one small JSON file per report into the state folder's `reports/`, and read back by
//! the controller as typed [`Report`]s.
//!
//! A report file is `reports/<session>.<nanoseconds>.<pid>.json`, written whole (a temp
//! file, then a rename), never changed, and deleted by the controller once what it says
//! is in the facts. The payload Claude Code sent is kept verbatim beside who sent it
//! (the tmux session, the account, the hook's parent pids).

pub(crate) mod hook;

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The variable naming the tmux session an agent runs in (set by failover).
pub(crate) const ENV_SESSION: &str = "FAILOVER_SESSION";
/// The variable naming the folder reports go to (set by failover).
pub(crate) const ENV_REPORTS: &str = "FAILOVER_REPORTS";
/// The variable naming the account an agent was started under (set by failover).
pub(crate) const ENV_ACCOUNT: &str = "FAILOVER_ACCOUNT";
/// The event name a status line report carries (Claude Code's status line input names
/// none).
pub(crate) const STATUS_LINE: &str = "StatusLine";
/// The event of Codex's `notify` after each turn (its payload's `type`).
pub(crate) const TURN_COMPLETE: &str = "agent-turn-complete";

/// One report as it lies on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The hook event (`Stop`, …) or [`STATUS_LINE`].
    pub event: String,
    /// The tmux session of the agent (`FAILOVER_SESSION`).
    pub session: String,
    /// The account the agent was started under (`FAILOVER_ACCOUNT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The hook's parent pids, nearest first: the agent is one of them (Claude Code
    /// runs a hook through `sh -c`).
    #[serde(default)]
    pub pids: Vec<u32>,
    /// When the hook ran.
    pub at: Timestamp,
    /// What Claude Code sent on the hook's standard input, verbatim.
    pub payload: Value,
}

pub(crate) use crate::state::usage::{Usage, Window};

/// Reads the status line input's `rate_limits` as a [`Usage`], if it has them.
pub(crate) fn usage_of_status(payload: &Value) -> Option<Usage> {
    let limits = payload.get("rate_limits")?;
    let window = |key: &str| {
        let w = limits.get(key)?;
        Some(Window {
            used: w.get("used_percentage")?.as_f64()?,
            resets_at: Timestamp::from_second(w.get("resets_at")?.as_i64()?).ok()?,
        })
    };
    let usage = Usage {
        five_hour: window("five_hour"),
        seven_day: window("seven_day"),
    };
    (usage.five_hour.is_some() || usage.seven_day.is_some()).then_some(usage)
}

/// What one report says, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The agent started (`SessionStart`): the conversation it holds.
    Started {
        /// The conversation id.
        conversation: String,
        /// Its transcript.
        transcript: PathBuf,
        /// Started with `--resume`.
        resumed: bool,
    },
    /// A prompt was submitted (`UserPromptSubmit`), before any request.
    Submitted {
        /// Its id; the turn's `Stop` names it again.
        prompt_id: String,
        /// [`text_hash`] of the prompt.
        prompt_hash: u64,
    },
    /// A turn ended normally (`Stop`).
    Stopped {
        /// The prompt whose turn ended.
        prompt_id: String,
        /// The agent's last message.
        reply: String,
    },
    /// A turn ended on an API error (`StopFailure`).
    Failed {
        /// The prompt whose turn ended.
        prompt_id: String,
        /// Claude Code's error kind: `rate_limit`, `server_error`, …
        error: String,
        /// The message it showed.
        message: String,
    },
    /// A Codex turn ended normally (`notify`'s `agent-turn-complete`; a failed turn
    /// sends none). Codex sends one for its own thread-title request too, for another
    /// thread: only the thread and prompt of a task's turn end it.
    TurnComplete {
        /// The thread it ran in.
        thread: String,
        /// The turn's id.
        turn: String,
        /// [`text_hash`] of the turn's last input message, when it names one.
        prompt_hash: Option<u64>,
        /// The agent's last message.
        reply: String,
    },
    /// The status line was drawn; the account's use when the input carried it.
    Status {
        /// The use, for a subscription login after a response.
        usage: Option<Usage>,
    },
    /// Something else: an event failover does not use.
    Other(String),
    /// A file that is not a report (unreadable, not JSON, cut short): why. It is kept
    /// aside, not folded (see [`crate::state::damage`]).
    Damaged(String),
}

/// A report, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Its file.
    pub path: PathBuf,
    /// The tmux session of the agent.
    pub session: String,
    /// The account the agent was started under.
    pub account: Option<String>,
    /// The hook's parent pids.
    pub pids: Vec<u32>,
    /// When the hook ran.
    pub at: Timestamp,
    /// What it says.
    pub event: Event,
}

/// The hash prompts and task texts are compared by: of the text without its white
/// space and without the `<pasted_content id="…">` tags Claude Code wraps a paste of
/// more than three lines in. Claude Code submits a paste changed in just those ways
/// (seen on 2.1.329: the end trimmed, tabs as four spaces, `\r` as a newline, long
/// pastes wrapped), so the same task reads the same on both sides.
pub(crate) fn text_hash(text: &str) -> u64 {
    crate::state::hash::stable_hash(
        unwrap_pasted(text)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .bytes(),
    )
}

/// `text` without Claude Code's `<pasted_content id="…">` … `</pasted_content id="…">`
/// tags (what is between them stays).
pub fn unwrap_pasted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest
        .find("<pasted_content id=\"")
        .or_else(|| rest.find("</pasted_content id=\""))
    {
        out.push_str(&rest[..at]);
        match rest[at..].find("\">") {
            Some(end) => rest = &rest[at + end + 2..],
            None => {
                rest = &rest[at..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

impl Event {
    /// Reads a record's payload.
    pub fn of(record: &Record) -> Event {
        let p = &record.payload;
        let parsed = match record.event.as_str() {
            STATUS_LINE => Some(Event::Status {
                usage: usage_of_status(p),
            }),
            "SessionStart" => started(p),
            "UserPromptSubmit" => submitted(p),
            "Stop" => stopped(p),
            "StopFailure" => failed(p),
            TURN_COMPLETE => turn_complete(p),
            other => return Event::Other(other.to_owned()),
        };
        parsed.unwrap_or_else(|| Event::Other(format!("{} without its fields", record.event)))
    }
}

/// The string at `key` of a payload.
fn text(p: &Value, key: &str) -> Option<String> {
    p.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn started(p: &Value) -> Option<Event> {
    Some(Event::Started {
        conversation: text(p, "session_id")?,
        transcript: PathBuf::from(text(p, "transcript_path")?),
        resumed: text(p, "source").as_deref() == Some("resume"),
    })
}

fn submitted(p: &Value) -> Option<Event> {
    Some(Event::Submitted {
        prompt_id: text(p, "prompt_id")?,
        prompt_hash: text_hash(p.get("prompt")?.as_str()?),
    })
}

fn stopped(p: &Value) -> Option<Event> {
    Some(Event::Stopped {
        prompt_id: text(p, "prompt_id")?,
        reply: text(p, "last_assistant_message").unwrap_or_default(),
    })
}

fn failed(p: &Value) -> Option<Event> {
    Some(Event::Failed {
        prompt_id: text(p, "prompt_id")?,
        error: text(p, "error").unwrap_or_else(|| "unknown".into()),
        message: text(p, "last_assistant_message").unwrap_or_default(),
    })
}

fn turn_complete(p: &Value) -> Option<Event> {
    let prompt = p
        .get("input-messages")
        .and_then(Value::as_array)
        .and_then(|all| all.last())
        .and_then(Value::as_str);
    Some(Event::TurnComplete {
        thread: text(p, "thread-id")?,
        turn: text(p, "turn-id")?,
        prompt_hash: prompt.map(text_hash),
        reply: text(p, "last-assistant-message").unwrap_or_default(),
    })
}

/// The file name of a report of `session` written at `at` by process `pid`: names sort
/// by session, then time.
pub(crate) fn file_name(session: &str, at: Timestamp, pid: u32) -> String {
    format!("{session}.{:020}.{pid}.json", at.as_nanosecond().max(0))
}

/// Whether `name` may name a session's reports: not empty, no `/`, `.` or control
/// characters (tmux-safe names never have them), not too long.
pub(crate) fn valid_session(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.contains(['/', '.'])
        && !name.chars().any(char::is_control)
}

/// Writes `record` into `dir` as a new file, whole (temp file, then rename). `dir` is
/// created if its parent exists; nothing else is.
pub(crate) fn write(dir: &Path, record: &Record) -> std::io::Result<PathBuf> {
    if let Err(e) = std::fs::create_dir(dir)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(e);
    }
    let pid = std::process::id();
    let name = file_name(&record.session, record.at, pid);
    let tmp = dir.join(format!(".{name}.tmp"));
    let bytes = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    let path = dir.join(name);
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

/// Every report in `dir`, by session, oldest first; a file that cannot be read is a
/// report of [`Event::Damaged`] saying why, so that it is kept aside. Temp files (a
/// leading `.`) are skipped.
pub(crate) fn read_all(dir: &Path) -> std::collections::BTreeMap<String, Vec<Report>> {
    let mut out: std::collections::BTreeMap<String, Vec<Report>> = Default::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !is_temp(n) && !n.starts_with('.') && n.ends_with(".json"))
        .collect();
    names.sort();
    for name in names {
        let Some((session, _)) = name.split_once('.') else {
            continue;
        };
        let path = dir.join(&name);
        let report = match read_one(&path) {
            Ok(record) => Report {
                event: Event::of(&record),
                session: session.to_owned(),
                account: record.account,
                pids: record.pids,
                at: record.at,
                path,
            },
            Err(reason) => Report {
                path,
                session: session.to_owned(),
                account: None,
                pids: Vec::new(),
                at: Timestamp::UNIX_EPOCH,
                event: Event::Damaged(reason),
            },
        };
        out.entry(session.to_owned()).or_default().push(report);
    }
    out
}

/// Whether `name` is the temp file of a report being written (`.<name>.tmp`).
pub(crate) fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

fn read_one(path: &Path) -> Result<Record, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("unreadable: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| crate::state::damage::problem_of(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(event: &str, payload: Value) -> Record {
        Record {
            event: event.into(),
            session: "w-0".into(),
            account: Some("a".into()),
            pids: vec![10, 9],
            at: "2026-11-30T10:00:00Z".parse().unwrap(),
            payload,
        }
    }

    #[test]
    fn events_should_read_what_claude_code_sends() {
        let start = record(
            "SessionStart",
            json!({"session_id": "c1", "transcript_path": "/h/projects/-w/c1.jsonl", "source": "resume"}),
        );
        assert_eq!(
            Event::of(&start),
            Event::Started {
                conversation: "c1".into(),
                transcript: "/h/projects/-w/c1.jsonl".into(),
                resumed: true
            }
        );
        let submit = record(
            "UserPromptSubmit",
            json!({"prompt_id": "p1", "prompt": "fix it\n"}),
        );
        assert_eq!(
            Event::of(&submit),
            Event::Submitted {
                prompt_id: "p1".into(),
                prompt_hash: text_hash("fix it")
            }
        );
        let stop = record(
            "Stop",
            json!({"prompt_id": "p1", "last_assistant_message": "Done."}),
        );
        assert_eq!(
            Event::of(&stop),
            Event::Stopped {
                prompt_id: "p1".into(),
                reply: "Done.".into()
            }
        );
        let failed = record(
            "StopFailure",
            json!({"prompt_id": "p1", "error": "rate_limit", "last_assistant_message": "You've hit your 5-hour limit · resets 12pm (UTC)"}),
        );
        assert!(matches!(Event::of(&failed), Event::Failed { error, .. } if error == "rate_limit"));
        let status = record(
            STATUS_LINE,
            json!({"rate_limits": {"five_hour": {"used_percentage": 42, "resets_at": 1796040044},
                                    "seven_day": {"used_percentage": 17.5, "resets_at": 1796295644}}}),
        );
        let Event::Status { usage: Some(u) } = Event::of(&status) else {
            panic!("{:?}", Event::of(&status));
        };
        assert_eq!(u.five_hour.unwrap().used, 42.0);
        assert_eq!(u.seven_day.unwrap().used, 17.5);
        assert_eq!(
            Event::of(&record(STATUS_LINE, json!({"model": {}}))),
            Event::Status { usage: None }
        );
        assert!(matches!(
            Event::of(&record("Stop", json!({}))),
            Event::Other(_)
        ));
        assert_eq!(
            Event::of(&record("Notification", json!({}))),
            Event::Other("Notification".into())
        );
    }

    #[test]
    fn events_should_read_what_codex_notify_sends() {
        // As 0.171.0 sent them after a first prompt: the turn, then its title request.
        let turn = record(
            TURN_COMPLETE,
            json!({"type":"agent-turn-complete","thread-id":"01a2491a-3bf7-7d30-ace9-5b4397d89eb8","turn-id":"01a2491a-7bc0-7fb1-b809-692a8aadb563","cwd":"/w","client":"codex-tui","input-messages":["fix the bug"],"last-assistant-message":"Done."}),
        );
        assert_eq!(
            Event::of(&turn),
            Event::TurnComplete {
                thread: "01a2491a-3bf7-7d30-ace9-5b4397d89eb8".into(),
                turn: "01a2491a-7bc0-7fb1-b809-692a8aadb563".into(),
                prompt_hash: Some(text_hash("fix the bug")),
                reply: "Done.".into()
            }
        );
        let title = record(
            TURN_COMPLETE,
            json!({"type":"agent-turn-complete","thread-id":"01a2491a-7c00-7580-bb27-92afae4f4b73","turn-id":"t2","input-messages":["Generate a concise, single-line task title …\n\nUser prompt:\nfix the bug"],"last-assistant-message":"Fix the bug"}),
        );
        let Event::TurnComplete { prompt_hash, .. } = Event::of(&title) else {
            panic!("{:?}", Event::of(&title));
        };
        assert_ne!(prompt_hash, Some(text_hash("fix the bug")));
        assert!(matches!(
            Event::of(&record(TURN_COMPLETE, json!({"thread-id": "t"}))),
            Event::Other(_)
        ));
    }

    #[test]
    fn a_task_should_hash_as_claude_code_submits_it() {
        // What 2.1.329 submitted for each paste, seen against the mock API.
        for (sent, submitted) in [
            ("A1\nA2\n", "A1\nA2"),
            ("F1 tab\there\nF2", "F1 tab    here\nF2"),
            ("G1\r\nG2", "G1\n\nG2"),
            (
                "C1\nC2\nC3\nC4\nC5",
                "\n\n<pasted_content id=\"d3c2\">\nC1\nC2\nC3\nC4\nC5\n</pasted_content id=\"d3c2\">\n",
            ),
            ("  H1 $(x) `y`\nH2  ", "  H1 $(x) `y`\nH2"),
        ] {
            assert_eq!(text_hash(sent), text_hash(submitted), "{sent:?}");
        }
        assert_ne!(text_hash("task 1"), text_hash("task 2"));
        assert_eq!(
            unwrap_pasted("a <pasted_content id=\"x\">b</pasted_content id=\"x\"> c"),
            "a b c"
        );
        assert_eq!(
            unwrap_pasted("no <pasted_content id=\"x"),
            "no <pasted_content id=\"x"
        );
    }

    #[test]
    fn usage_should_count_only_windows_that_have_not_reset() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let u = Usage {
            five_hour: Some(Window {
                used: 96.0,
                resets_at: at("2026-11-30T12:00:00Z"),
            }),
            seven_day: Some(Window {
                used: 40.0,
                resets_at: at("2026-12-03T00:00:00Z"),
            }),
        };
        assert_eq!(u.used_at(at("2026-11-30T11:00:00Z")), Some(96.0));
        assert_eq!(u.used_at(at("2026-11-30T12:00:00Z")), Some(40.0));
        assert_eq!(u.used_at(at("2026-12-04T00:00:00Z")), None);
    }

    #[test]
    fn reports_should_round_trip_through_their_folder_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join(crate::state::paths::REPORTS_DIR);
        let mut first = record("UserPromptSubmit", json!({"prompt_id": "p", "prompt": "x"}));
        let mut second = record("Stop", json!({"prompt_id": "p"}));
        second.at = "2026-11-30T10:00:01Z".parse().unwrap();
        first.session = "w-1".into();
        second.session = "w-1".into();
        write(&reports, &second).unwrap();
        write(&reports, &first).unwrap();
        std::fs::write(reports.join("w-1.00000000000000000001.7.json"), "{bad").unwrap();
        std::fs::write(reports.join(".w-1.x.tmp"), "partial").unwrap();
        let all = read_all(&reports);
        let w1 = &all["w-1"];
        assert_eq!(w1.len(), 3, "{w1:?}");
        assert!(matches!(&w1[0].event, Event::Damaged(r) if r.starts_with("not JSON")));
        assert!(matches!(w1[1].event, Event::Submitted { .. }));
        assert!(matches!(w1[2].event, Event::Stopped { .. }));
        assert_eq!(w1[2].pids, [10, 9]);
        assert_eq!(w1[2].account.as_deref(), Some("a"));
        assert!(read_all(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn write_should_not_create_a_missing_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("gone/reports");
        assert!(write(&reports, &record("Stop", json!({}))).is_err());
        assert!(!dir.path().join("gone").exists());
    }

    #[test]
    fn session_names_should_be_safe_as_file_names() {
        assert!(valid_session("ccl-auto-11"));
        for bad in ["", "../x", "a/b", "a.b", ".", "a\nb"] {
            assert!(!valid_session(bad), "{bad:?}");
        }
    }
}
