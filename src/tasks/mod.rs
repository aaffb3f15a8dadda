//! The inbox claim protocol and a task's life on disk.
//!
//! An inbox `<project>/.agent-queue/inbox` has siblings `active/`, `done/` and
//! `failed/`. A task is claimed by an atomic rename into `active/` under the name
//! `<session>.<try>.<task>` (session names hold no `.`), before any text is sent, so it
//! is never in two sessions and never lost: after a crash every claimed task is still
//! in `active/`, naming the session that has it. Finished tasks move to `done/`, failed
//! ones to `failed/`, each with a small JSON record beside it.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The largest task text sent to an agent.
pub(crate) const MAX_TASK: u64 = 1 << 20;

/// The folders of one inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Folders {
    /// Where tasks wait.
    pub inbox: PathBuf,
    /// Claimed tasks.
    pub active: PathBuf,
    /// Finished tasks and their records.
    pub done: PathBuf,
    /// Failed tasks and their records.
    pub failed: PathBuf,
}

impl Folders {
    /// The folders of the inbox at `inbox`.
    pub(crate) fn of(inbox: &Path) -> Self {
        let base = inbox.parent().unwrap_or(inbox);
        Self {
            inbox: inbox.to_path_buf(),
            active: base.join("active"),
            done: base.join("done"),
            failed: base.join("failed"),
        }
    }
}

/// A claimed task's file name in `active/`.
pub(crate) fn active_name(session: &str, attempt: u32, task: &str) -> String {
    format!("{session}.{attempt}.{task}")
}

/// Reads a claimed task's file name: (session, try, task).
pub(crate) fn parse_active(name: &str) -> Option<(&str, u32, &str)> {
    let (session, rest) = name.split_once('.')?;
    let (attempt, task) = rest.split_once('.')?;
    if session.is_empty() || task.is_empty() {
        return None;
    }
    Some((session, attempt.parse().ok()?, task))
}

/// A task file that must not be sent, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    /// Empty or only white space.
    #[error("the task is empty")]
    Empty,
    /// Not UTF-8 text.
    #[error("the task is not UTF-8 text")]
    NotUtf8,
    /// Larger than [`MAX_TASK`].
    #[error("the task is {0} bytes, more than the 1 MiB limit")]
    TooLarge(u64),
    /// A link, not a file.
    #[error("the task is a symbolic link; links are not followed")]
    Link,
    /// Not a regular file, or unreadable.
    #[error("the task cannot be read: {0}")]
    Unreadable(String),
}

/// Reads a task's text, refusing what must not reach an agent. A link is never followed.
pub(crate) fn read_task(path: &Path) -> Result<String, Rejected> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Rejected::Unreadable(e.to_string()))?;
    if meta.file_type().is_symlink() {
        return Err(Rejected::Link);
    }
    if !meta.is_file() {
        return Err(Rejected::Unreadable("not a regular file".into()));
    }
    if meta.len() > MAX_TASK {
        return Err(Rejected::TooLarge(meta.len()));
    }
    let bytes = std::fs::read(path).map_err(|e| Rejected::Unreadable(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| Rejected::NotUtf8)?;
    if text.trim().is_empty() {
        return Err(Rejected::Empty);
    }
    Ok(text)
}

/// A name in `dir` like `name` that is not taken: `name`, else `stem.2.ext`, …
pub(crate) fn free_name(dir: &Path, name: &str) -> String {
    if !dir.join(name).exists() {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (2..)
        .map(|i| format!("{stem}.{i}{ext}"))
        .find(|n| !dir.join(n).exists())
        .unwrap_or_else(|| format!("{name}.{}", uuid::Uuid::new_v4()))
}

/// Renames `from` into `dir` (created if needed) under a free name like `name`; the
/// path it got.
pub(crate) fn move_into(from: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let to = dir.join(free_name(dir, name));
    std::fs::rename(from, &to)?;
    Ok(to)
}

/// What `done/` and `failed/` keep beside a task.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record {
    /// The task's file name as it was dropped.
    pub task: String,
    /// The inbox.
    pub inbox: String,
    /// The session that ran it last.
    pub session: String,
    /// The account that session ran under.
    pub account: String,
    /// Which try this was (1 for the first).
    pub attempt: u32,
    /// When the text was sent.
    pub started: Option<jiff::Timestamp>,
    /// When it ended.
    pub finished: jiff::Timestamp,
    /// How the end was seen (`Stop report`, `transcript`, `idle screen after the turn
    /// ran`) or why it failed.
    pub outcome: String,
    /// The agent's last reply, when its report or transcript gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    /// Why each earlier try ended, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tries: Vec<String>,
    /// Its hand-offs from one family's agent to another's, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hand_offs: Vec<String>,
}

/// Moves `from` into `dir` under a free name like `name`, its record `<name>.json`
/// written first (whole, by rename), so that whoever sees the task there finds its
/// record too. The path the task got.
pub(crate) fn move_with_record(
    from: &Path,
    dir: &Path,
    name: &str,
    record: &Record,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name = free_name(dir, name);
    let bytes = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{name}.json.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(format!("{name}.json")))?;
    let to = dir.join(&name);
    std::fs::rename(from, &to)?;
    Ok(to)
}

/// Deletes the files of `dir` whose name `which` accepts, last modified before
/// `cutoff`; how many went.
pub(crate) fn prune(
    dir: &Path,
    cutoff: std::time::SystemTime,
    which: impl Fn(&str) -> bool,
) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| which(&e.file_name().to_string_lossy()))
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < cutoff)
        })
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_names_should_round_trip_odd_task_names() {
        for task in ["task.md", "-rf weird name ü.md", "a.b.c.md", "plain"] {
            let name = active_name("ccl-auto-11", 2, task);
            assert_eq!(
                parse_active(&name),
                Some(("ccl-auto-11", 2, task)),
                "{name}"
            );
        }
        assert_eq!(parse_active("nodots"), None);
        assert_eq!(parse_active("s.x.task.md"), None);
    }

    #[test]
    fn folders_should_be_siblings_of_the_inbox() {
        let f = Folders::of(Path::new("/p/.agent-queue/inbox"));
        assert_eq!(f.active, Path::new("/p/.agent-queue/active"));
        assert_eq!(f.done, Path::new("/p/.agent-queue/done"));
        assert_eq!(f.failed, Path::new("/p/.agent-queue/failed"));
    }

    #[test]
    fn read_task_should_refuse_what_must_not_reach_an_agent() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("ok.md"), "do $(this)\n").unwrap();
        std::fs::write(p("empty.md"), " \n\t").unwrap();
        std::fs::write(p("bin.md"), [0xff, 0xfe, 0x00]).unwrap();
        std::fs::write(p("big.md"), vec![b'x'; (MAX_TASK + 1) as usize]).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p("link.md")).unwrap();
        assert_eq!(read_task(&p("ok.md")).unwrap(), "do $(this)\n");
        assert_eq!(read_task(&p("empty.md")), Err(Rejected::Empty));
        assert_eq!(read_task(&p("bin.md")), Err(Rejected::NotUtf8));
        assert_eq!(
            read_task(&p("big.md")),
            Err(Rejected::TooLarge(MAX_TASK + 1))
        );
        assert_eq!(read_task(&p("link.md")), Err(Rejected::Link));
    }

    #[test]
    fn prune_should_delete_only_files_older_than_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.md");
        std::fs::write(&old, "x").unwrap();
        std::fs::write(dir.path().join("new.md"), "x").unwrap();
        let week_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 86_400);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(week_ago)
            .unwrap();
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(7 * 86_400);
        assert_eq!(
            prune(dir.path(), cutoff, |n| n != "old.md"),
            0,
            "only the names asked"
        );
        assert_eq!(prune(dir.path(), cutoff, |_| true), 1);
        assert!(!old.exists());
        assert!(dir.path().join("new.md").exists());
        assert_eq!(prune(&dir.path().join("missing"), cutoff, |_| true), 0);
    }

    #[test]
    fn move_into_should_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        for _ in 0..3 {
            let f = dir.path().join("t.md");
            std::fs::write(&f, "x").unwrap();
            move_into(&f, &done, "t.md").unwrap();
        }
        let mut names: Vec<String> = std::fs::read_dir(&done)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["t.2.md", "t.3.md", "t.md"]);
    }
}
