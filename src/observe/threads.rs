//! The threads dedicated Codex sessions hold. Codex reports no conversation when it
//! starts (it has no `SessionStart`), and a dedicated session has no task whose thread
//! the rollouts could be searched for; so its thread is the newest rollout of its folder,
//! under its account's home, written since its agent started. Codex's title request runs
//! in a thread of its own that leaves no rollout (checked on 0.171.0 in
//! `tests/it/real_codex.rs`), so the folder's newest rollout is the session's own. Read
//! every round for the live dedicated Codex sessions only: the person may have started a
//! new thread since.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::Session;
use crate::api::{AgentKind, Manifests, SessionOwner};
use crate::conversation::codex;

/// How far before its agent's start a rollout may have been written and still be its
/// own: the start time `/proc` gives is to the second (and `codex resume` appends to
/// a rollout written before).
const MARGIN: Duration = Duration::from_secs(2);

/// What the rollouts say of a dedicated Codex session's thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum CodexThread {
    /// Its thread: the id `codex resume` takes and the rollout.
    Held {
        /// The thread id.
        thread: String,
        /// Its rollout.
        rollout: PathBuf,
    },
    /// No rollout of its folder since its agent started: no turn yet, nothing to carry
    /// on (a move starts it afresh).
    NoTurnYet,
    /// Another live Codex session of ours runs in the same folder under the same home:
    /// whose rollout is whose cannot be told.
    Ambiguous {
        /// The other sessions.
        with: Vec<String>,
    },
}

/// The thread of each live dedicated Codex session with an owner mark, by session.
pub(super) fn codex_threads(
    m: &Manifests,
    sessions: &BTreeMap<String, Session>,
) -> BTreeMap<String, CodexThread> {
    let codex = |s: &&Session| {
        s.owner.is_some()
            && !s.pane.dead
            && m.kind_under(&s.name, s.account.as_deref()) == AgentKind::Codex
    };
    let home_of = |s: &Session| Some(m.account(s.account.as_deref()?)?.spec.home.clone());
    sessions
        .values()
        .filter(codex)
        .filter(|s| matches!(m.session_owner(&s.name), Some(SessionOwner::Dedicated(_))))
        .filter_map(|s| {
            let home = home_of(s)?;
            let with: Vec<String> = sessions
                .values()
                .filter(codex)
                .filter(|o| o.name != s.name && o.pane.path == s.pane.path)
                .filter(|o| home_of(o).as_ref() == Some(&home))
                .map(|o| o.name.clone())
                .collect();
            if !with.is_empty() {
                return Some((s.name.clone(), CodexThread::Ambiguous { with }));
            }
            let since = crate::procfs::started_at(s.pane.pid)?.checked_sub(MARGIN)?;
            let thread = match codex::recent(&home, &s.pane.path, since).into_iter().next() {
                Some(r) => CodexThread::Held {
                    thread: r.thread,
                    rollout: r.path,
                },
                None => CodexThread::NoTurnYet,
            };
            Some((s.name.clone(), thread))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{add, manifests, observed, session};

    /// A Codex account `x` at `home`, a dedicated Codex session `desk` in `/srv/desk`.
    fn codex_desk(home: &std::path::Path) -> Manifests {
        manifests(&format!(
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: x}}\n\
             spec: {{home: {}, agent: codex}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: DedicatedSession\nmetadata: {{name: desk}}\n\
             spec: {{workdir: /srv/desk, agent: codex}}\n",
            home.display()
        ))
    }

    fn rollout(home: &std::path::Path, stamp: &str, thread: &str, cwd: &str) -> PathBuf {
        let day = home.join("sessions/2026/12/06");
        std::fs::create_dir_all(&day).unwrap();
        let path = day.join(format!("rollout-{stamp}-{thread}.jsonl"));
        let meta =
            serde_json::json!({"type": "session_meta", "payload": {"id": thread, "cwd": cwd}});
        std::fs::write(&path, format!("{meta}\n")).unwrap();
        path
    }

    fn desk(name: &str, folder: &str) -> Session {
        // This test's own process stands for the agent: it started before the rollouts.
        let mut s = session(name, "failover", "x", std::process::id());
        s.pane.path = folder.into();
        s
    }

    #[test]
    fn a_dedicated_codex_session_should_hold_the_newest_rollout_of_its_folder() {
        let home = tempfile::tempdir().unwrap();
        let m = codex_desk(home.path());
        let mut o = observed();
        add(&mut o, desk("desk", "/srv/desk"));
        assert_eq!(
            codex_threads(&m, &o.sessions)["desk"],
            CodexThread::NoTurnYet
        );
        let t1 = "01a2491a-3bf7-7d30-ace9-5b4397d89eb8";
        let t2 = "01a2491a-3bf7-7d30-ace9-5b4397d89eb9";
        rollout(home.path(), "2026-12-06T02-06-25", t1, "/srv/desk");
        let newest = rollout(home.path(), "2026-12-06T02-07-00", t2, "/srv/desk");
        rollout(
            home.path(),
            "2026-12-06T02-08-00",
            "01a2491a-3bf7-7d30-ace9-5b4397d89eba",
            "/srv/elsewhere",
        );
        assert_eq!(
            codex_threads(&m, &o.sessions)["desk"],
            CodexThread::Held {
                thread: t2.into(),
                rollout: newest
            }
        );
        // A dead one is not looked at.
        o.sessions.get_mut("desk").unwrap().pane.dead = true;
        assert!(codex_threads(&m, &o.sessions).is_empty());
    }

    #[test]
    fn two_codex_sessions_in_one_folder_under_one_home_should_be_ambiguous() {
        let home = tempfile::tempdir().unwrap();
        let mut m = codex_desk(home.path());
        let mut twin = m.dedicated[0].clone();
        twin.name = "desk-2".into();
        m.dedicated.push(twin);
        let mut o = observed();
        add(&mut o, desk("desk", "/srv/desk"));
        add(&mut o, desk("desk-2", "/srv/desk"));
        let threads = codex_threads(&m, &o.sessions);
        assert_eq!(
            threads["desk"],
            CodexThread::Ambiguous {
                with: vec!["desk-2".into()]
            }
        );
        // Apart, each holds its own folder's.
        o.sessions.get_mut("desk-2").unwrap().pane.path = "/srv/desk-2".into();
        assert_eq!(
            codex_threads(&m, &o.sessions)["desk"],
            CodexThread::NoTurnYet
        );
    }
}
