//! Endings the journal missed. A task's record and its move into `done/` or `failed/`
//! come before its journal event: a controller killed in between leaves the task there
//! without one. At start, before it writes anything else, the controller compares the
//! tasks that ended within the journal's last MiB with the events there, and writes the
//! missing ones from the records, marked `replayed`, so that every task in `done/` or
//! `failed/` has exactly one. Run again after a crash halfway, it writes only what is
//! still missing.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::api::Manifests;
use crate::journal::{self, Acted, Journal};
use crate::plan::{Action, Outcome, TaskAction, TaskKey, TaskRef};
use crate::tasks::{Folders, Record};

/// How much of the journal's end is compared: far more than the lines a controller
/// writes between a task's move and its event, and cheap to read at start.
const TAIL: u64 = 1024 * 1024;
/// How much older than the first line compared a record's file may look and still be
/// read: file times and the clock are not exact.
const SLACK: Duration = Duration::from_secs(2);

/// Writes the events of tasks that ended within the journal's tail without one; how
/// many. Only records that new are read, so a start costs a `stat` per finished task.
pub(super) fn replay(dir: &Path, manifests: &Manifests, journal: &mut Journal) -> usize {
    let tail = journal::tail(dir, TAIL);
    let Some(first) = tail.first().map(|l| l.time) else {
        return 0;
    };
    // The events there, by task and kind.
    let mut events = journal::endings(&tail);
    let since = SystemTime::from(first)
        .checked_sub(SLACK)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut ended: Vec<(bool, PathBuf, Record)> = Vec::new();
    for inbox in &manifests.inboxes {
        let folders = Folders::of(&inbox.spec.path);
        for (folder, done) in [(&folders.done, true), (&folders.failed, false)] {
            for record in records_since(folder, since) {
                if record.finished >= first {
                    ended.push((done, inbox.spec.path.clone(), record));
                }
            }
        }
    }
    // A task's oldest endings take its events; the newest are the ones without.
    ended.sort_by_key(|(_, _, record)| record.finished);
    let mut missed = Vec::new();
    for (done, path, record) in ended {
        let key = (TaskKey::new(&record.inbox, &record.task), done);
        match events.get_mut(&key) {
            Some(n) if *n > 0 => *n -= 1,
            _ => missed.push((done, path, record)),
        }
    }
    let count = missed.len();
    for (done, path, record) in missed {
        if let Err(e) = journal.record(acted(done, path, record)) {
            tracing::warn!(error = %e, "cannot write a missed task event");
        }
    }
    count
}

/// The records (`<task>.json`) in `folder` written since `since` whose task is there
/// too (a record written just before a crash, its task still in `active/`, is not an
/// ending yet: the task ends again, with its event).
fn records_since(folder: &Path, since: SystemTime) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .filter(|e| e.path().with_extension("").exists())
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect()
}

/// The line a controller writes for such an ending, from its record: the
/// `completeTask` or failing `requeueTask` that ended it, marked replayed. `path` is
/// the task's inbox folder.
fn acted(done: bool, path: PathBuf, r: Record) -> Acted {
    let task = TaskRef {
        file: crate::tasks::active_name(&r.session, r.attempt, &r.task),
        inbox: r.inbox,
        path,
        name: r.task,
        session: r.session,
        account: r.account,
        attempt: r.attempt,
        started: r.started,
        earlier: r.tries,
        hand_offs: r.hand_offs,
    };
    let action = if done {
        TaskAction::CompleteTask {
            task,
            pane: String::new(),
            pid: 0,
            how: r.outcome,
            reply: r.reply,
            exit: None,
        }
    } else {
        TaskAction::RequeueTask {
            task,
            reason: r.outcome,
            failed: true,
            delivered: true,
        }
    };
    let mut acted = Acted::new(&Action::Task(action), &Ok(Outcome::Done), None);
    acted.replayed = true;
    acted
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use serde_json::json;

    fn manifests(inbox: &Path) -> Manifests {
        let text = format!(
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: /h}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec: {{prefix: w-, min: 1, max: 1, workdir: /w}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: q}}\nspec: {{path: {}, pool: auto, workdir: /w}}\n",
            inbox.display()
        );
        crate::api::load_str("m.yaml", &text).expect("valid manifests")
    }

    fn ended(folder: &Path, name: &str, finished: Timestamp, with_task: bool) {
        std::fs::create_dir_all(folder).unwrap();
        let record = json!({"task": name, "inbox": "q", "session": "w-1", "account": "main",
            "attempt": 1, "started": null, "finished": finished.to_string(), "outcome": "Stop report"});
        std::fs::write(folder.join(format!("{name}.json")), record.to_string()).unwrap();
        if with_task {
            std::fs::write(folder.join(name), "text").unwrap();
        }
    }

    #[test]
    fn a_task_ended_after_the_last_event_should_get_its_event_once() {
        let root = tempfile::tempdir().unwrap();
        let (state, inbox) = (root.path().join("state"), root.path().join("q/inbox"));
        let m = manifests(&inbox);
        let folders = Folders::of(&inbox);
        let last = Timestamp::now() - jiff::SignedDuration::from_secs(10);
        let second = jiff::SignedDuration::from_secs(1);
        ended(&folders.done, "old.md", last - second, true);
        std::fs::create_dir_all(&state).unwrap();
        let line = json!({"time": last.to_string(), "event": "started", "pid": 1,
            "generation": "g", "adopted": 0});
        let task = json!({"inbox": "q", "name": "journaled.md", "session": "w-1",
            "account": "main", "attempt": 1, "started": null});
        let event = json!({"time": (last + second * 2).to_string(), "event": "taskDone",
            "action": {"action": "completeTask", "task": task, "how": "Stop report"},
            "ok": true, "error": null});
        let rejected = json!({"time": (last + second * 2).to_string(), "event": "taskFailed",
            "action": {"action": "rejectTask", "inbox": "q", "path": inbox, "name": "empty.md",
            "reason": "the task is empty"}, "ok": true, "error": null});
        // The last line cut short by the crash.
        let text = format!("{line}\n{event}\n{rejected}\n{{\"time\": \"20");
        std::fs::write(state.join(crate::state::paths::JOURNAL_FILE), text).unwrap();
        let mut j = Journal::open(&state).unwrap();
        let later = last + second;
        // Ended with its event: nothing to write.
        ended(&folders.done, "journaled.md", later, true);
        ended(&folders.failed, "empty.md", later, true);
        // Ended after the last event: the crash came between the move and the event.
        ended(&folders.done, "new.md", later, true);
        ended(&folders.failed, "bad.md", later, true);
        // Its record written, the task not moved yet: it ends again, with its event.
        ended(&folders.done, "half.md", later, false);
        assert_eq!(replay(&state, &m, &mut j), 2);
        let lines = journal::read(&state).unwrap();
        let names: Vec<_> = lines[3..]
            .iter()
            .map(|l| match &l.entry {
                crate::journal::Entry::Acted(a) => (a.event, a.task().unwrap().name, a.replayed),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [
                (crate::journal::Kind::TaskDone, "new.md".to_owned(), true),
                (crate::journal::Kind::TaskFailed, "bad.md".to_owned(), true),
            ]
        );
        // The next start finds nothing missing.
        assert_eq!(replay(&state, &m, &mut j), 0);
    }

    #[test]
    fn an_empty_journal_should_replay_nothing() {
        let root = tempfile::tempdir().unwrap();
        let inbox = root.path().join("q/inbox");
        ended(&Folders::of(&inbox).done, "a.md", Timestamp::now(), true);
        let state = root.path().join("state");
        let mut j = Journal::open(&state).unwrap();
        assert_eq!(replay(&state, &manifests(&inbox), &mut j), 0);
    }
}
