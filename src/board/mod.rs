//! The board: what a look at the pool shows an operator, made from one observation
//! and its plan — the rows `get sessions`, `get accounts` and `get inboxes` print
//! ([`rows`]) and what `failover top` draws beside them (each session's activity, since
//! when it works on its task, its conversation and pane; each account's sessions and
//! reset; each inbox's oldest task). The controller publishes its last round's board in
//! the state folder (`board.json`, written by a [`Publisher`] only when it changed), so
//! that `top` draws it instead of observing and planning again.

pub(crate) mod rows;

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tracing::error;

use crate::api::Manifests;
use crate::observe::Observed;
use crate::plan::Plan;
use crate::screen::Class;
use crate::state::paths::BOARD_FILE;

pub(crate) use rows::{AccountRow, InboxRow, SessionRow, WindowCell};

/// What a session is doing, as its glyph says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Activity {
    /// Its agent is on a turn.
    Working,
    /// At its prompt.
    Idle,
    /// A dialog waits for a person.
    Waiting,
    /// Its account's quota is used up (on screen, or by the ledger).
    QuotaBlocked,
    /// Its agent exited.
    Exited,
    /// A session without our mark.
    NotOurs,
    /// Wanted, not there yet.
    Missing,
    /// Running, its screen not read (yet).
    Running,
}

impl Activity {
    /// A one-cell glyph: the state can be told without colours.
    pub(crate) fn glyph(self) -> &'static str {
        match self {
            Activity::Working => "●",
            Activity::Idle => "○",
            Activity::Waiting => "◆",
            Activity::QuotaBlocked => "⊘",
            Activity::Exited => "✗",
            Activity::NotOurs => "·",
            Activity::Missing => "◌",
            Activity::Running => "◍",
        }
    }

    /// The word for it.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Activity::Working => "working",
            Activity::Idle => "idle",
            Activity::Waiting => "waiting for a person",
            Activity::QuotaBlocked => "quota-blocked",
            Activity::Exited => "exited",
            Activity::NotOurs => "not ours",
            Activity::Missing => "missing",
            Activity::Running => "running",
        }
    }

    /// A screen's class as a session's activity.
    fn of(class: Class) -> Self {
        match class {
            Class::Busy => Activity::Working,
            Class::Idle | Class::RateLimited | Class::ServerError => Activity::Idle,
            Class::Waiting => Activity::Waiting,
            Class::QuotaExhausted => Activity::QuotaBlocked,
            Class::Unknown => Activity::Running,
        }
    }
}

/// One session: its `get sessions` row and what the dashboard adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionView {
    /// The row `get sessions` prints.
    pub row: SessionRow,
    /// What it is doing.
    pub activity: Activity,
    /// Since when it works on its task.
    pub since: Option<Timestamp>,
    /// The conversation its agent holds, as its report named it.
    pub conversation: String,
    /// Its agent's pane (`%N`), to capture on selection.
    pub pane: Option<String>,
}

/// One account: its `get accounts` row and what the dashboard adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AccountView {
    /// The row `get accounts` prints.
    pub row: AccountRow,
    /// When it is available again, while exhausted.
    pub until: Option<Timestamp>,
    /// The sessions on it, by name.
    pub sessions: Vec<String>,
}

/// One inbox: its `get inboxes` row and the age of its oldest waiting task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InboxView {
    /// The row `get inboxes` prints.
    pub row: InboxRow,
    /// When the oldest waiting task was dropped.
    pub oldest: Option<Timestamp>,
}

/// What one look shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Board {
    /// The sessions, by name.
    pub sessions: Vec<SessionView>,
    /// The accounts, by priority.
    pub accounts: Vec<AccountView>,
    /// The inboxes.
    pub inboxes: Vec<InboxView>,
    /// Each family's last swap, a line each.
    pub last_swaps: Vec<String>,
    /// With every account of a family exhausted: when the first resets and its queues
    /// resume.
    pub resumes: Option<Timestamp>,
}

impl Board {
    /// The board of the observation `o` and its plan at `now`, for the controller of
    /// `owner`.
    pub(crate) fn of(
        m: &Manifests,
        owner: &str,
        o: &Observed,
        plan: &Plan,
        now: Timestamp,
    ) -> Self {
        let sessions = rows::sessions(m, o, plan, owner, now)
            .into_iter()
            .map(|row| {
                let facts = o.facts.sessions.get(&row.name);
                let activity = match row.state.as_str() {
                    "missing" => Activity::Missing,
                    "exited" => Activity::Exited,
                    "not ours" => Activity::NotOurs,
                    s if s.ends_with("account exhausted") || s.contains(", waits for a ") => {
                        Activity::QuotaBlocked
                    }
                    _ => plan
                        .screens
                        .get(&row.name)
                        .map_or(Activity::Running, |c| Activity::of(*c)),
                };
                SessionView {
                    activity,
                    since: facts
                        .and_then(|f| f.task.as_ref())
                        .map(|t| t.started.unwrap_or(t.since)),
                    conversation: facts
                        .and_then(|f| f.agent.as_ref())
                        .map(|a| a.conversation.clone())
                        .unwrap_or_default(),
                    pane: o.sessions.get(&row.name).map(|s| s.pane.id.clone()),
                    row,
                }
            })
            .collect();
        let accounts = rows::accounts(m, o, plan, now)
            .into_iter()
            .map(|row| AccountView {
                until: o
                    .facts
                    .exhausted_until
                    .get(&row.name)
                    .filter(|t| **t > now)
                    .copied(),
                sessions: o
                    .sessions
                    .values()
                    .filter(|s| s.account.as_deref() == Some(row.name.as_str()))
                    .map(|s| s.name.clone())
                    .collect(),
                row,
            })
            .collect();
        let inboxes = rows::inboxes(m, o, plan, now)
            .into_iter()
            .map(|row| {
                let folder = m
                    .inboxes
                    .iter()
                    .find(|i| i.name == row.name)
                    .map(|i| i.spec.path.clone());
                let oldest = o
                    .inboxes
                    .get(&row.name)
                    .and_then(|s| s.waiting.first())
                    .zip(folder)
                    .and_then(|(w, dir)| std::fs::symlink_metadata(dir.join(&w.name)).ok())
                    .and_then(|meta| meta.modified().ok())
                    .and_then(|t| Timestamp::try_from(t).ok());
                InboxView { row, oldest }
            })
            .collect();
        Self {
            sessions,
            accounts,
            inboxes,
            last_swaps: rows::last_swaps(m, o),
            // The first reset of a family whose every account is used up.
            resumes: m
                .families()
                .into_iter()
                .filter(|kind| plan.account(*kind).is_none())
                .filter_map(|kind| crate::plan::all_exhausted(m, kind, &o.facts, now))
                .min(),
        }
    }
}

/// `board.json`: the board of a controller's last round, and that controller's pid
/// (a board whose controller no longer runs is not drawn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Published {
    /// The controller's pid.
    pub pid: u32,
    /// Its last round's board.
    pub board: Board,
}

/// The published board in the state folder `dir`, if there is one.
pub(crate) fn read(dir: &Path) -> Result<Option<Published>, crate::state::Error> {
    crate::state::read_json(&dir.join(BOARD_FILE))
}

/// The controller's publisher of its board: `board.json` written (atomically) after a
/// round only when the board changed.
#[derive(Debug)]
pub struct Publisher {
    path: PathBuf,
    last: Option<Board>,
    failing: bool,
}

impl Publisher {
    /// A publisher into the state folder `dir`; its first round's board is written
    /// whatever the file holds (another controller's, or none).
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(BOARD_FILE),
            last: None,
            failing: false,
        }
    }

    /// Publishes the board of a round (what it observed, what it planned, at `now`,
    /// by the controller of `owner`) if it changed; whether it was written. A failed
    /// write is logged once, and tried again next round.
    pub fn publish(
        &mut self,
        m: &Manifests,
        owner: &str,
        observed: &Observed,
        plan: &Plan,
        now: Timestamp,
    ) -> bool {
        let board = Board::of(m, owner, observed, plan, now);
        if self.last.as_ref() == Some(&board) {
            return false;
        }
        let published = Published {
            pid: std::process::id(),
            board,
        };
        // Compact: read by every dashboard on each change.
        let written = serde_json::to_vec(&published)
            .map_err(std::io::Error::from)
            .and_then(|bytes| replace(&self.path, &bytes));
        match written {
            Ok(()) => {
                self.last = Some(published.board);
                self.failing = false;
                true
            }
            Err(e) => {
                if !self.failing {
                    error!(error = %e, path = %self.path.display(), "cannot publish the board");
                }
                self.failing = true;
                false
            }
        }
    }
}

/// Replaces the file at `path` with `bytes` in one rename (readers see the old or the
/// new board, never a part), a private file. Not synced to disk: a board is redrawn
/// by the next round, and syncing would cost a busy controller a disk flush per change.
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

#[cfg(test)]
#[path = "board_tests.rs"]
mod tests;
