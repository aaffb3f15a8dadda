//! Counting a chaos run from evidence: the inbox folders, the agents' conversations
//! (Claude Code's transcripts, Codex's rollouts), the journal against the folders, and
//! the process table. Never the controller's word.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::task_files;
use crate::tasks::Folders;

/// Where each task is: by name, the folder (`inbox`, `active`, `done`, `failed`).
/// A claimed task's name in `active/` is mapped back to the name it was dropped as.
pub fn places(inboxes: &[PathBuf]) -> BTreeMap<String, &'static str> {
    let mut at = BTreeMap::new();
    for inbox in inboxes {
        let f = Folders::of(inbox);
        for (dir, place) in [
            (&f.inbox, "inbox"),
            (&f.active, "active"),
            (&f.done, "done"),
            (&f.failed, "failed"),
        ] {
            for name in task_files(dir) {
                let name = match place {
                    "active" => crate::tasks::parse_active(&name)
                        .map_or(name.clone(), |(_, _, task)| task.to_owned()),
                    _ => name,
                };
                at.insert(name, place);
            }
        }
    }
    at
}

/// What the conversations say of one task.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Turns {
    /// Its text was sent this many times (user messages carrying it).
    pub sent: usize,
    /// This many of those turns ran to a complete reply, directly or carried on with
    /// `continue` in the same conversation.
    pub completed: usize,
    /// A `continue` carried one of its turns on.
    pub resumed: bool,
    /// Its text went into a conversation that already held another task's turn
    /// (finished or abandoned): not the fresh context every task gets.
    pub shared: bool,
    /// Of the times it was sent, how many came after the hand-off note (another
    /// family's agent got it after a usage limit cut its turn).
    pub handed_off: usize,
    /// Of its completed turns, how many ran in a Codex rollout.
    pub under_codex: usize,
}

/// One conversation's messages, and whether it is a Codex rollout.
pub struct Conversation {
    /// Its messages, in order.
    pub messages: Vec<crate::conversation::Message>,
    /// A Codex rollout (else a Claude Code transcript).
    pub codex: bool,
}

/// Every Claude Code transcript under `projects` (`<slug>/<uuid>.jsonl`).
pub fn claude(projects: &Path) -> Vec<Conversation> {
    transcripts(projects)
        .iter()
        .filter_map(|p| crate::conversation::messages(p).ok())
        .map(|messages| Conversation {
            messages,
            codex: false,
        })
        .collect()
}

/// Every Codex rollout under `sessions` (`YYYY/MM/DD/rollout-*.jsonl`).
pub fn codex(sessions: &Path) -> Vec<Conversation> {
    let mut files = Vec::new();
    jsonl_under(sessions, &mut files);
    files.sort();
    files
        .iter()
        .filter_map(|p| crate::conversation::codex::read(p).ok())
        .map(|r| Conversation {
            messages: r.messages,
            codex: true,
        })
        .collect()
}

/// The Claude Code transcripts under `projects`: `<slug>/<uuid>.jsonl`.
fn transcripts(projects: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(slugs) = std::fs::read_dir(projects) else {
        return files;
    };
    for slug in slugs.filter_map(Result::ok) {
        let Ok(entries) = std::fs::read_dir(slug.path()) else {
            continue;
        };
        files.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl")),
        );
    }
    files.sort();
    files
}

/// Adds every `.jsonl` file under `dir`, at any depth, to `files`.
fn jsonl_under(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.is_dir() {
            jsonl_under(&path, files);
        } else if path.extension().is_some_and(|x| x == "jsonl") {
            files.push(path);
        }
    }
}

/// Follows each task of `texts` (by index) through `conversations`.
pub fn turns(conversations: &[Conversation], texts: &[String]) -> Vec<Turns> {
    let index: BTreeMap<String, usize> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (t.trim().to_owned(), i))
        .collect();
    let mut out = vec![Turns::default(); texts.len()];
    for c in conversations {
        // The task whose turn this conversation is in, and whether that turn completed.
        let mut current: Option<(usize, bool)> = None;
        let mut held: Option<usize> = None;
        for m in &c.messages {
            if m.role == "user" {
                let text = crate::report::unwrap_pasted(&m.text);
                let (text, note) = match text.strip_prefix(crate::api::HAND_OFF_NOTE) {
                    Some(rest) => (rest.trim(), true),
                    None => (text.trim(), false),
                };
                if let Some(&i) = index.get(text) {
                    out[i].sent += 1;
                    out[i].handed_off += usize::from(note);
                    out[i].shared |= held.is_some_and(|h| h != i);
                    held = Some(i);
                    current = Some((i, false));
                } else if m.text.starts_with("continue (now under account") {
                    if let Some((i, _)) = current {
                        out[i].resumed = true;
                    }
                } else {
                    current = None;
                }
            } else if m.role == "assistant"
                && m.stop_reason.as_deref() == Some("end_turn")
                && m.error.is_none()
                && let Some((i, done)) = current.as_mut()
                && !*done
            {
                *done = true;
                out[*i].completed += 1;
                out[*i].under_codex += usize::from(c.codex);
            }
        }
    }
    out
}

/// A process: pid, parent and command line.
#[derive(Debug, Clone)]
pub struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its parent's.
    pub ppid: u32,
    /// Its arguments.
    pub args: Vec<String>,
}

/// Every process whose command line holds `needle` in one argument.
pub fn processes(needle: &str) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.iter().any(|a| a.contains(needle)).then_some(())?;
            crate::procfs::alive(pid).then_some(())?;
            let ppid = crate::procfs::parent(pid)?;
            Some(Process { pid, ppid, args })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(dir: &Path, name: &str, lines: &[serde_json::Value]) {
        let slug = dir.join("-w");
        std::fs::create_dir_all(&slug).unwrap();
        let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
        std::fs::write(slug.join(format!("{name}.jsonl")), text.join("\n")).unwrap();
    }

    fn user(text: &str) -> serde_json::Value {
        serde_json::json!({"type": "user", "message": {"role": "user", "content": text}})
    }

    fn reply() -> serde_json::Value {
        serde_json::json!({"type": "assistant", "message": {"role": "assistant",
            "stop_reason": "end_turn", "content": [{"type": "text", "text": "ok"}]}})
    }

    #[test]
    fn turns_should_tell_run_twice_from_resent_and_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let texts: Vec<String> = ["once", "twice", "resent", "resumed"]
            .map(String::from)
            .into();
        transcript(
            dir.path(),
            "1",
            &[user("once"), reply(), user("twice"), reply()],
        );
        // A fresh agent ran it again: twice.
        transcript(dir.path(), "2", &[user("twice"), reply()]);
        // Its agent died mid-turn, it was sent again elsewhere and ran once.
        transcript(dir.path(), "3", &[user("resent")]);
        transcript(dir.path(), "4", &[user("resent"), reply()]);
        // Its agent died mid-turn and its conversation was carried on.
        transcript(
            dir.path(),
            "5",
            &[
                user("resumed"),
                user("continue (now under account a, 10:00:00 UTC)"),
                reply(),
            ],
        );
        let t = turns(&claude(dir.path()), &texts);
        let got: Vec<(usize, usize, bool)> =
            t.iter().map(|t| (t.sent, t.completed, t.resumed)).collect();
        assert_eq!(
            got,
            [(1, 1, false), (2, 2, false), (2, 1, false), (1, 1, true)]
        );
        // "twice" went into the conversation that had held "once".
        let shared: Vec<bool> = t.iter().map(|t| t.shared).collect();
        assert_eq!(shared, [false, true, false, false]);
    }
}
