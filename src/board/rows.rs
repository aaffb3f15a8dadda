//! The rows `failover get` prints of sessions, accounts and inboxes, made from one
//! observation and its plan: the same rows the board carries.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::api::{AgentKind, Manifests};
use crate::observe::{Observed, SessionState};
use crate::plan::{self, Action, Plan, Role};
use crate::tasks::Folders;

/// A row of `get sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SessionRow {
    /// The session's name.
    pub name: String,
    /// `pool P`, `dedicated` or `orphan`.
    pub role: String,
    /// The family it runs (`claude-code`, `codex`): its account's.
    pub kind: String,
    /// The account it runs under, by its mark.
    pub account: String,
    /// `running`, `exited`, `not ours`, `missing`, `running, account exhausted`,
    /// `running, waits for a claude-code account until HH:MM` (a dedicated session).
    pub state: String,
    /// Its pane's pid.
    pub pid: Option<u32>,
    /// The task it works on.
    pub task: String,
}

/// The rows of `get sessions` at `now`: ours and the manifests' (a missing one too), by
/// name.
pub(crate) fn sessions(
    m: &Manifests,
    o: &Observed,
    plan: &Plan,
    owner: &str,
    now: jiff::Timestamp,
) -> Vec<SessionRow> {
    let mut rows = Vec::new();
    for (name, s) in &o.sessions {
        let wanted = m.wants_session(name);
        if !s.is_ours(owner) && !wanted {
            continue;
        }
        let exhausted = s
            .account
            .as_ref()
            .is_some_and(|a| plan::exhausted(&o.facts, a, now));
        let state = s.state(owner);
        let kind = m.kind_under(name, s.account.as_deref());
        // A dedicated session whose family has no usable account waits for one.
        let waits = matches!(
            m.session_owner(name),
            Some(crate::api::SessionOwner::Dedicated(_))
        ) && plan.account(kind).is_none();
        rows.push(SessionRow {
            name: name.clone(),
            role: m
                .session_owner(name)
                .map_or("orphan".to_owned(), |o| Role::from(o).to_string()),
            kind: kind.to_string(),
            account: s.account.clone().unwrap_or_default(),
            state: if waits && state == SessionState::Running {
                let until = plan::all_exhausted(m, kind, &o.facts, now)
                    .map_or(String::new(), |t| format!(" until {}", clock(t)));
                format!("running, waits for a {kind} account{until}")
            } else if exhausted && state == SessionState::Running {
                "running, account exhausted".to_owned()
            } else {
                state.to_string()
            },
            pid: Some(s.pane.pid),
            task: o
                .facts
                .sessions
                .get(name)
                .and_then(|f| f.task.as_ref())
                .map(|t| t.task.clone())
                .unwrap_or_default(),
        });
    }
    for action in &plan.actions {
        if let Action::Session(plan::SessionAction::CreateSession { session, .. }) = action {
            rows.push(SessionRow {
                name: session.name.clone(),
                role: session.role.to_string(),
                kind: m
                    .account(&session.account)
                    .map(|a| a.spec.agent.to_string())
                    .unwrap_or_default(),
                account: session.account.clone(),
                state: "missing".to_owned(),
                pid: None,
                task: String::new(),
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// `t` as the local clock shows it (`HH:MM`).
fn clock(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M")
        .to_string()
}

/// A use window of an account, as a cell: its use and when it resets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WindowCell {
    /// Its use, in percent.
    pub used: f64,
    /// When it resets.
    pub resets_at: jiff::Timestamp,
}

impl From<crate::report::Window> for WindowCell {
    fn from(w: crate::report::Window) -> Self {
        Self {
            used: w.used,
            resets_at: w.resets_at,
        }
    }
}

/// A row of `get accounts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AccountRow {
    /// The account's name.
    pub name: String,
    /// The agent family its home is for (`claude-code`, `codex`).
    pub agent: String,
    /// Its priority.
    pub priority: i32,
    /// `active`, `available`, `exhausted`, `over moveAt`, …
    pub state: String,
    /// When it is available again, while exhausted.
    pub resets: String,
    /// How long until then.
    pub resets_in: String,
    /// Its 5-hour window, as its agents last reported it.
    pub five_hour: Option<WindowCell>,
    /// Its 7-day window.
    pub seven_day: Option<WindowCell>,
    /// How many sessions run under it.
    pub sessions: usize,
    /// Its home.
    pub home: String,
}

/// Each family's last swap, a line each (`last swap: none` for a family without one);
/// with one family, the line does not name it.
pub(crate) fn last_swaps(m: &Manifests, o: &Observed) -> Vec<String> {
    let families = m.families();
    families
        .iter()
        .map(|kind| {
            let family = if families.len() > 1 {
                format!(" ({kind})")
            } else {
                String::new()
            };
            match &o.facts.family(*kind).last_swap {
                Some(swap) => format!(
                    "last swap{family}: {} {} -> {} ({})",
                    swap.at, swap.from, swap.to, swap.reason
                ),
                None => format!("last swap{family}: none"),
            }
        })
        .collect()
}

/// The rows of `get accounts` at `now`: the ledger's own answer in `plan`: cooldown,
/// fail-back, what the screens and the agents' reports say included. Grouped by family
/// (in the families' order), each family's accounts by priority: `active` marks each
/// family's active account.
pub(crate) fn accounts(
    m: &Manifests,
    o: &Observed,
    plan: &Plan,
    now: jiff::Timestamp,
) -> Vec<AccountRow> {
    let usage = &plan.facts.usage;
    m.families()
        .into_iter()
        .flat_map(|kind| m.family_by_priority(kind))
        .map(|a| {
            let until = o.facts.exhausted_until.get(&a.name).filter(|t| **t > now);
            let over = plan::over_threshold(m, &plan.facts, &a.name, now);
            let active = plan.account(a.spec.agent) == Some(a.name.as_str());
            let state = match (active, until.is_some(), over) {
                (true, _, true) => "active, over moveAt (new tasks wait)",
                (true, _, false) => "active",
                (false, true, _) => "exhausted",
                (false, false, true) => "over moveAt",
                (false, false, false) => "available",
            };
            let sessions = o
                .sessions
                .values()
                .filter(|s| s.account.as_deref() == Some(a.name.as_str()))
                .count();
            let window = |w: Option<crate::report::Window>| {
                w.filter(|w| w.resets_at > now).map(WindowCell::from)
            };
            let reading = usage.get(&a.name);
            AccountRow {
                name: a.name.clone(),
                agent: a.spec.agent.to_string(),
                priority: a.spec.priority,
                state: state.to_owned(),
                resets: until.map(ToString::to_string).unwrap_or_default(),
                resets_in: until.map(|t| countdown(now, *t)).unwrap_or_default(),
                five_hour: window(reading.and_then(|r| r.usage.five_hour)),
                seven_day: window(reading.and_then(|r| r.usage.seven_day)),
                sessions,
                home: a.spec.home.display().to_string(),
            }
        })
        .collect()
}

/// The tasks in `dir`: its files that match the inbox's `glob`, without the tasks'
/// `<name>.json` records (one left behind by the janitor included) and hidden temp
/// files.
fn count(dir: &Path, glob: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let names: std::collections::BTreeSet<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names
        .iter()
        .filter(|n| crate::observe::glob_match(glob, n))
        .filter(|n| {
            n.strip_suffix(".json")
                .is_none_or(|task| !names.contains(task))
        })
        .count()
}

/// How long until `t`: to the minute (`7h56m`), to the second under a minute (`25s`).
pub(crate) fn countdown(now: jiff::Timestamp, t: jiff::Timestamp) -> String {
    let secs = u64::try_from(t.duration_since(now).as_secs()).unwrap_or(0);
    let secs = if secs < 60 { secs } else { secs / 60 * 60 };
    crate::api::Duration(std::time::Duration::from_secs(secs)).to_string()
}

/// Whether the queues of family `kind` flow at `now`: `open`, or why tasks wait and
/// until when (every account of the family exhausted: until the first reset; its active
/// account over `quota.moveAt`).
fn queue_state(
    m: &Manifests,
    o: &Observed,
    plan: &Plan,
    kind: AgentKind,
    now: jiff::Timestamp,
) -> String {
    match plan.account(kind) {
        None => match plan::all_exhausted(m, kind, &o.facts, now) {
            Some(t) => format!("waiting for a reset: until {t} (in {})", countdown(now, t)),
            None => "waiting: no account can take sessions (see get accounts)".to_owned(),
        },
        Some(a) if plan::over_threshold(m, &plan.facts, a, now) => {
            format!("held: account {a} is over quota.moveAt")
        }
        Some(_) => "open".to_owned(),
    }
}

/// A row of `get inboxes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InboxRow {
    /// The inbox's name.
    pub name: String,
    /// The pool that takes its tasks.
    pub pool: String,
    /// Tasks waiting.
    pub waiting: usize,
    /// Tasks claimed.
    pub active: usize,
    /// Tasks done.
    pub done: usize,
    /// Tasks failed.
    pub failed: usize,
    /// Its folder.
    pub path: String,
    /// Whether its queue flows (`open`), or why not.
    pub queue: String,
}

/// The rows of `get inboxes` at `now`.
pub(crate) fn inboxes(
    m: &Manifests,
    o: &Observed,
    plan: &Plan,
    now: jiff::Timestamp,
) -> Vec<InboxRow> {
    m.inboxes
        .iter()
        .map(|i| {
            let queue = queue_state(m, o, plan, plan::pool_kind(m, plan, &i.spec.pool), now);
            let folders = Folders::of(&i.spec.path);
            InboxRow {
                name: i.name.clone(),
                pool: i.spec.pool.clone(),
                waiting: o.inboxes.get(&i.name).map_or(0, |s| s.waiting.len()),
                active: count(&folders.active, &i.spec.glob),
                done: count(&folders.done, &i.spec.glob),
                failed: count(&folders.failed, &i.spec.glob),
                path: i.spec.path.display().to_string(),
                queue,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_counts_should_not_count_task_records_or_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "a.md",
            "a.md.json",
            "b.json",
            ".c.md.json.tmp",
            "orphan.md.json",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        assert_eq!(count(dir.path(), "*.md"), 1, "a.md");
        assert_eq!(
            count(dir.path(), "*"),
            3,
            "a.md, the task b.json, orphan.md.json"
        );
        assert_eq!(count(&dir.path().join("missing"), "*"), 0);
    }
}
