//! Counting a chaos run from evidence: the inbox folders, the agents' transcripts, the
//! journal against the folders, and the process table. Never the controller's word.

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

/// What the transcripts say of one task.
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
}

/// Reads every transcript under `projects` (`<slug>/<uuid>.jsonl`) and follows each
/// task of `texts` (by index) through them.
pub fn turns(projects: &Path, texts: &[String]) -> Vec<Turns> {
    let index: BTreeMap<String, usize> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (t.trim().to_owned(), i))
        .collect();
    let mut out = vec![Turns::default(); texts.len()];
    for path in transcripts(projects) {
        let Ok(messages) = crate::conversation::messages(&path) else {
            continue;
        };
        // The task whose turn this conversation is in, and whether that turn completed.
        let mut current: Option<(usize, bool)> = None;
        let mut held: Option<usize> = None;
        for m in messages {
            if m.role == "user" {
                let text = crate::report::unwrap_pasted(&m.text);
                if let Some(&i) = index.get(text.trim()) {
                    out[i].sent += 1;
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
            }
        }
    }
    out
}

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
        let t = turns(dir.path(), &texts);
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
