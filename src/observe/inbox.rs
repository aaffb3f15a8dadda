//! The task part of a snapshot: each inbox's waiting and claimed tasks, completion
//! signals, and the evidence that decides claimed tasks a crash left unaccounted for.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::Session;
use super::fs::glob_match;
use crate::api::Manifests;
use crate::state::Facts;
use crate::tasks::{self, Folders};

/// One inbox's tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InboxState {
    /// Tasks waiting, oldest first.
    pub waiting: Vec<Waiting>,
    /// Tasks claimed by a session, in `active/`.
    pub active: Vec<ActiveTask>,
}

/// A task file waiting in an inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// Its file name.
    pub name: String,
    /// It is a symbolic link (never followed; it goes to `failed/`).
    pub link: bool,
}

/// A claimed task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveTask {
    /// Its file name in `active/`.
    pub file: String,
    /// The session that claimed it.
    pub session: String,
    /// Which try.
    pub attempt: u32,
    /// Its file name as dropped.
    pub task: String,
}

/// Every inbox's waiting tasks (regular files and links matching its glob, oldest
/// first by modification time, then name) and claimed tasks.
pub fn observe_inboxes(m: &Manifests) -> BTreeMap<String, InboxState> {
    m.inboxes
        .iter()
        .map(|inbox| {
            let folders = Folders::of(&inbox.spec.path);
            let mut waiting: Vec<(std::time::SystemTime, Waiting)> =
                std::fs::read_dir(&folders.inbox)
                    .into_iter()
                    .flatten()
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let meta = e.metadata().ok()?;
                        let name = e.file_name().into_string().ok()?;
                        let link = meta.file_type().is_symlink();
                        ((meta.is_file() || link) && glob_match(&inbox.spec.glob, &name)).then(
                            || {
                                let at = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                                (at, Waiting { name, link })
                            },
                        )
                    })
                    .collect();
            waiting.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
            let mut active: Vec<ActiveTask> = std::fs::read_dir(&folders.active)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let file = e.file_name().into_string().ok()?;
                    let (session, attempt, task) = tasks::parse_active(&file)?;
                    Some(ActiveTask {
                        session: session.to_owned(),
                        attempt,
                        task: task.to_owned(),
                        file,
                    })
                })
                .collect();
            active.sort_by(|a, b| a.file.cmp(&b.file));
            let state = InboxState {
                waiting: waiting.into_iter().map(|(_, w)| w).collect(),
                active,
            };
            (inbox.name.clone(), state)
        })
        .collect()
}

/// Completion signals in `dir`: file name = session, with its modification time.
pub fn read_signals(dir: &Path) -> BTreeMap<String, jiff::Timestamp> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((name, jiff::Timestamp::try_from(modified).ok()?))
        })
        .collect()
}

/// For each claimed task the facts do not record, whether its text reached its
/// session's conversation.
pub(super) fn evidence(
    m: &Manifests,
    sessions: &BTreeMap<String, Session>,
    inboxes: &BTreeMap<String, InboxState>,
    facts: &Facts,
) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for inbox in &m.inboxes {
        let Some(state) = inboxes.get(&inbox.name) else {
            continue;
        };
        let folders = Folders::of(&inbox.spec.path);
        for task in &state.active {
            let known = facts
                .sessions
                .get(&task.session)
                .and_then(|f| f.task.as_ref())
                .is_some_and(|t| t.file == task.file && t.inbox == inbox.name);
            if known {
                continue;
            }
            let found = sessions.get(&task.session).is_some_and(|s| {
                let home = s
                    .account
                    .as_deref()
                    .and_then(|a| m.accounts.iter().find(|x| x.name == a))
                    .map(|a| a.spec.home.clone());
                let text = tasks::read_task(&folders.active.join(&task.file));
                match (home, text) {
                    (Some(home), Ok(text)) => {
                        tasks::submitted(&home, s.pane.pid, &s.pane.path, &text)
                    }
                    _ => false,
                }
            });
            out.insert(task.file.clone(), found);
        }
    }
    out
}
