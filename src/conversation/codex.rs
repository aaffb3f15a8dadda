//! Codex's conversation files: one rollout per thread,
//! `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<timestamp>-<thread-id>.jsonl`, opened by a
//! `session_meta` line (the thread id, its `cwd`), then per turn a `task_started`, the
//! person's message (`item_completed` of a `UserMessage`), `token_count` events with the
//! account's rate-limit windows, and a `task_complete` that ends the turn, with an
//! `error` when it failed (`codex_error_info: usage_limit_exceeded` at a usage limit).
//!
//! Read into the same [`Message`]s as Claude Code's transcripts (a prompt's id is its
//! turn id, a `task_complete` the assistant's end of turn), so that [`super::turn`]
//! finds a task's turn in either.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use jiff::Timestamp;
use serde_json::Value;

use super::Message;
use crate::state::usage::{Usage, Window};

/// The folder below a Codex home that holds the rollouts.
pub(crate) const SESSIONS: &str = "sessions";

/// The error kind a turn that met the account's usage limit ends with
/// (`task_complete.error.codex_error_info`).
pub(crate) const USAGE_LIMIT: &str = "usage_limit_exceeded";

/// How many of the newest day folders are looked through for a thread's rollout.
const DAYS: usize = 3;

/// One rollout: its thread and file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rollout {
    /// The thread id (a UUID), what `codex resume` takes.
    pub thread: String,
    /// The file.
    pub path: PathBuf,
}

/// The rollouts under `home` of threads run in `workdir` and written to since
/// `since`, newest first (by the time in their names), from the newest [`DAYS`] day
/// folders.
pub(crate) fn recent(home: &Path, workdir: &Path, since: SystemTime) -> Vec<Rollout> {
    let mut days = Vec::new();
    for year in children(&home.join(SESSIONS)) {
        for month in children(&year) {
            days.extend(children(&month));
        }
    }
    days.sort();
    let mut files: Vec<PathBuf> = days
        .iter()
        .rev()
        .take(DAYS)
        .flat_map(|d| children(d))
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("rollout-") && n.ends_with(".jsonl"))
        })
        .filter(|f| {
            std::fs::metadata(f)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .collect();
    files.sort_by(|a, b| b.file_name().cmp(&a.file_name()));
    files
        .into_iter()
        .filter_map(|path| {
            let (thread, cwd) = meta(&path)?;
            (cwd == workdir).then_some(Rollout { thread, path })
        })
        .collect()
}

/// The entries of folder `dir`, or none.
fn children(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|it| it.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// The thread id (validated as a UUID) and folder a rollout's first line names.
pub(crate) fn meta(path: &Path) -> Option<(String, PathBuf)> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).ok()?;
    let mut first = String::new();
    std::io::BufReader::new(file).read_line(&mut first).ok()?;
    let v: Value = serde_json::from_str(&first).ok()?;
    if v.get("type")?.as_str()? != "session_meta" {
        return None;
    }
    let p = v.get("payload")?;
    let id = p.get("id").or_else(|| p.get("session_id"))?.as_str()?;
    let id = uuid::Uuid::parse_str(id).ok()?.to_string();
    Some((id, PathBuf::from(p.get("cwd")?.as_str()?)))
}

/// What a rollout holds: its messages, and the account's use its last `token_count`
/// with windows reported, with that line's time.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Read {
    /// The person's messages and the ends of turns, in order.
    pub messages: Vec<Message>,
    /// The last use reported, and when.
    pub usage: Option<(Timestamp, Usage)>,
}

/// Reads the rollout at `path`; lines it does not use are skipped.
pub(crate) fn read(path: &Path) -> std::io::Result<Read> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Read::default();
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        if v.get("type").and_then(Value::as_str) != Some("event_msg") {
            continue;
        }
        let Some(p) = v.get("payload") else { continue };
        match p.get("type").and_then(Value::as_str) {
            Some("item_completed") => out.messages.extend(user_message(p)),
            Some("task_complete") => out.messages.extend(turn_end(p)),
            Some("token_count") => {
                let at = v.get("timestamp").and_then(Value::as_str);
                let at = at.and_then(|t| t.parse::<Timestamp>().ok());
                if let (Some(at), Some(usage)) = (at, p.get("rate_limits").and_then(usage_of)) {
                    out.usage = Some((at, usage));
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The person's message of an `item_completed` event.
fn user_message(p: &Value) -> Option<Message> {
    let item = p.get("item")?;
    if item.get("type")?.as_str()? != "UserMessage" {
        return None;
    }
    let text: Vec<&str> = item
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("text")?.as_str())
        .collect();
    Some(Message {
        role: "user".into(),
        text: text.join("\n"),
        prompt_id: Some(p.get("turn_id")?.as_str()?.to_owned()),
        ..Message::default()
    })
}

/// A `task_complete`: the end of its turn, an error's kind (`codex_error_info`) and
/// message when it failed.
fn turn_end(p: &Value) -> Option<Message> {
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let error = p.get("error").filter(|e| !e.is_null());
    let (text, stop_reason, kind) = match error {
        Some(e) => (
            field(e, "message").unwrap_or_default(),
            None,
            Some(field(e, "codex_error_info").unwrap_or_else(|| "error".into())),
        ),
        None => (
            field(p, "last_agent_message").unwrap_or_default(),
            Some("end_turn".to_owned()),
            None,
        ),
    };
    Some(Message {
        role: "assistant".into(),
        text,
        prompt_id: Some(field(p, "turn_id")?),
        stop_reason,
        error: kind,
    })
}

/// A `token_count`'s `rate_limits` as a [`Usage`]: each window classified by its
/// length (300 minutes: 5 hours, 10080: 7 days), never by its slot; `None` when it
/// holds neither (a refused request reports them null).
pub(crate) fn usage_of(limits: &Value) -> Option<Usage> {
    let mut usage = Usage::default();
    for slot in ["primary", "secondary"] {
        let Some(w) = limits.get(slot).filter(|w| !w.is_null()) else {
            continue;
        };
        let (Some(used), Some(minutes), Some(resets)) = (
            w.get("used_percent").and_then(Value::as_f64),
            w.get("window_minutes").and_then(Value::as_i64),
            w.get("resets_at").and_then(Value::as_i64),
        ) else {
            continue;
        };
        let Ok(resets_at) = Timestamp::from_second(resets) else {
            continue;
        };
        let window = Some(Window { used, resets_at });
        match minutes {
            300 => usage.five_hour = window,
            10080 => usage.seven_day = window,
            _ => {}
        }
    }
    (usage.five_hour.is_some() || usage.seven_day.is_some()).then_some(usage)
}

#[cfg(test)]
#[path = "codex_tests.rs"]
mod tests;
