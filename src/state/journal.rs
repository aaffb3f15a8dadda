//! The append-only event journal: one JSON object per line in `journal.jsonl`, saying
//! what the controller did and decided, and why.

use crate::state::paths::JOURNAL_FILE;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Error, create_private_dir};

/// What a journal entry records: its `event` field.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A controller started (pid, manifest generation, sessions adopted).
    Started,
    /// A controller stopped.
    Stopped,
    /// tmux could not be reached at start; tried again.
    TmuxUnreachable,
    /// The shared state was broken: the controller did not start.
    RefusedToStart,
    /// New manifests were adopted.
    Manifests,
    /// Manifests were refused; the last good ones keep running.
    InvalidManifests,
    /// Something failed (observe, a reload).
    Error,
    /// The account sessions run under changed.
    ActiveAccount,
    /// An action other than a task's claim or ending.
    Action,
    /// A task was claimed for a session.
    TaskClaimed,
    /// A task ended done.
    TaskDone,
    /// A task ended failed.
    TaskFailed,
    /// A task went back to its inbox.
    TaskRequeued,
    /// A task's screen stopped changing.
    TaskStalled,
    /// An agent died while working on a task.
    SessionFailed,
    /// An agent without a task exited.
    SessionExited,
    /// A conversation could not be resumed: the session starts afresh.
    ResumeFailed,
    /// The planner refused something.
    Refused,
    /// The janitor deleted old records.
    Pruned,
    /// A quota limit was seen or reported.
    QuotaDetected,
    /// Sessions moved to another account.
    Swap,
    /// Every account is exhausted: sessions wait.
    AllExhausted,
    /// No account under `quota.moveAt` to move to.
    AllOverThreshold,
    /// New tasks wait: the active account is over `quota.moveAt`.
    IntakeHeld,
    /// An exhausted account's limit reset.
    Recovered,
    /// Work resumes after every account was exhausted.
    Resumed,
    /// An account's use crossed a level.
    UsageCrossed,
    /// The fleet's ledger told an account's exhaustion or use.
    FleetLedger,
    /// etcd could not be reached: the node runs on its own.
    FleetDegraded,
    /// etcd answers again.
    FleetRestored,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 30] = [
        Kind::Started,
        Kind::Stopped,
        Kind::TmuxUnreachable,
        Kind::RefusedToStart,
        Kind::Manifests,
        Kind::InvalidManifests,
        Kind::Error,
        Kind::ActiveAccount,
        Kind::Action,
        Kind::TaskClaimed,
        Kind::TaskDone,
        Kind::TaskFailed,
        Kind::TaskRequeued,
        Kind::TaskStalled,
        Kind::SessionFailed,
        Kind::SessionExited,
        Kind::ResumeFailed,
        Kind::Refused,
        Kind::Pruned,
        Kind::QuotaDetected,
        Kind::Swap,
        Kind::AllExhausted,
        Kind::AllOverThreshold,
        Kind::IntakeHeld,
        Kind::Recovered,
        Kind::Resumed,
        Kind::UsageCrossed,
        Kind::FleetLedger,
        Kind::FleetDegraded,
        Kind::FleetRestored,
    ];

    /// The name in the journal (`taskDone`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Started => "started",
            Kind::Stopped => "stopped",
            Kind::TmuxUnreachable => "tmuxUnreachable",
            Kind::RefusedToStart => "refusedToStart",
            Kind::Manifests => "manifests",
            Kind::InvalidManifests => "invalidManifests",
            Kind::Error => "error",
            Kind::ActiveAccount => "activeAccount",
            Kind::Action => "action",
            Kind::TaskClaimed => "taskClaimed",
            Kind::TaskDone => "taskDone",
            Kind::TaskFailed => "taskFailed",
            Kind::TaskRequeued => "taskRequeued",
            Kind::TaskStalled => "taskStalled",
            Kind::SessionFailed => "sessionFailed",
            Kind::SessionExited => "sessionExited",
            Kind::ResumeFailed => "resumeFailed",
            Kind::Refused => "refused",
            Kind::Pruned => "pruned",
            Kind::QuotaDetected => "quotaDetected",
            Kind::Swap => "swap",
            Kind::AllExhausted => "allExhausted",
            Kind::AllOverThreshold => "allOverThreshold",
            Kind::IntakeHeld => "intakeHeld",
            Kind::Recovered => "recovered",
            Kind::Resumed => "resumed",
            Kind::UsageCrossed => "usageCrossed",
            Kind::FleetLedger => "fleetLedger",
            Kind::FleetDegraded => "fleetDegraded",
            Kind::FleetRestored => "fleetRestored",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating, mode 0600) the journal in `dir` for appending.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(JOURNAL_FILE);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let mut file = file;
        // A line cut short by a crash is ended, so that the next one stays whole.
        if !ends_with_newline(&path) {
            file.write_all(b"\n").map_err(io)?;
        }
        Ok(Self { file, path })
    }

    /// Appends `{"time": …, "event": event, …fields}` as one line.
    pub fn record(&mut self, event: Kind, fields: Value) -> Result<(), Error> {
        let mut entry = Map::new();
        entry.insert(
            "time".into(),
            Value::String(jiff::Timestamp::now().to_string()),
        );
        entry.insert("event".into(), Value::String(event.as_str().to_owned()));
        if let Value::Object(fields) = fields {
            entry.extend(fields);
        }
        let mut line = Value::Object(entry).to_string();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// The entries in the last `bytes` of the journal in `dir`, oldest first: a line cut
/// by the start of that window, and lines that are not JSON, are skipped. Empty when
/// the journal is missing or unreadable.
pub fn tail(dir: &Path, bytes: u64) -> Vec<Value> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(dir.join(JOURNAL_FILE)) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(bytes);
    let mut text = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    if from > 0 {
        lines.next();
    }
    lines.filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The inbox and name of the task a journal entry is about: `action.task` for most task
/// actions, the action itself for `rejectTask`.
pub fn task_of(entry: &Value) -> Option<(String, String)> {
    let action = &entry["action"];
    let task = if action["task"].is_object() {
        &action["task"]
    } else {
        action
    };
    Some((
        task["inbox"].as_str()?.to_owned(),
        task["name"].as_str()?.to_owned(),
    ))
}

/// The successful `taskDone` and `taskFailed` entries among `entries`, counted by
/// task `(inbox, name)` and ending (`true` for done).
pub fn endings(entries: &[Value]) -> std::collections::BTreeMap<(String, String, bool), usize> {
    let mut counts = std::collections::BTreeMap::new();
    for e in entries {
        let done = match Kind::deserialize(&e["event"]) {
            Ok(Kind::TaskDone) => true,
            Ok(Kind::TaskFailed) => false,
            _ => continue,
        };
        if e["ok"] == true
            && let Some((inbox, name)) = task_of(e)
        {
            *counts.entry((inbox, name, done)).or_insert(0) += 1;
        }
    }
    counts
}

/// Whether the file at `path` is empty or ends with a newline.
fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return true;
    };
    let mut last = [0u8; 1];
    match file.seek(SeekFrom::End(-1)) {
        Ok(_) => file.read_exact(&mut last).is_err() || last[0] == b'\n',
        Err(_) => true,
    }
}

/// Every entry of the journal in `dir`, oldest first; lines that are not JSON are
/// skipped.
pub fn read(dir: &Path) -> Result<Vec<Value>, Error> {
    let path = dir.join(JOURNAL_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn journal_should_append_one_json_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.record(
            Kind::Action,
            json!({"action": "createSession", "session": "a"}),
        )
        .unwrap();
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        j.record(Kind::Stopped, json!({})).unwrap();
        let entries = read(dir.path()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["event"], "action");
        assert_eq!(entries[0]["session"], "a");
        assert!(entries[1]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn kinds_should_serialize_as_their_journal_name() {
        for kind in [
            Kind::TaskDone,
            Kind::TmuxUnreachable,
            Kind::AllOverThreshold,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
    }
}
