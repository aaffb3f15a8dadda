//! What the controller tells of each round: the journal and log lines of the plan's
//! decisions (events, refusals, the active account) and of every action, the
//! operator's notifications, and `status.json` for `apply --wait` and `get`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;
use tracing::{error, info, warn};

use super::handoff::Status;
use super::round::Watcher;
use crate::api::{AgentKind, ControllerConfigSpec, Duration};
use crate::journal::{Acted, Entry, Journal, Kind};
use crate::plan::{Action, Event, Outcome, Plan, Refusal, TaskAction};

/// The longest time `status.json` goes unwritten while rounds run: `failover doctor`
/// takes an older one for a controller that stopped going round.
pub(crate) const HEARTBEAT: jiff::SignedDuration = jiff::SignedDuration::from_secs(30);

/// The controller's watcher of its rounds, and the keeper of its journal and status.
#[derive(Debug)]
pub(super) struct Reporter {
    /// The journal.
    pub journal: Journal,
    notifications: crate::api::NotificationsSpec,
    idle_timeout: Duration,
    stopping: Arc<AtomicBool>,
    /// Each family's active account after the last round.
    active_accounts: BTreeMap<AgentKind, String>,
    last_refused: Vec<Refusal>,
    /// The last event of each kind, not to journal one that repeats twice.
    last_events: HashMap<Kind, Event>,
    last_status: Option<Status>,
    /// The metrics, counted from what is journaled.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The fleet membership as `status.json` tells it, with one.
    pub fleet: Option<String>,
    /// Whether the state folder can be written, and the journal lines held until it can.
    writable: super::writable::Writable,
}

impl Reporter {
    /// A reporter writing to `journal`, with the controller's settings; no action
    /// starts once `stopping` is set.
    pub(super) fn new(
        journal: Journal,
        spec: &ControllerConfigSpec,
        active_accounts: BTreeMap<AgentKind, String>,
        stopping: Arc<AtomicBool>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            journal,
            notifications: spec.notifications.clone(),
            idle_timeout: spec.completion.idle_timeout,
            stopping,
            active_accounts,
            last_refused: Vec::new(),
            last_events: HashMap::new(),
            last_status: None,
            metrics,
            fleet: None,
            writable: super::writable::Writable::default(),
        }
    }

    /// Journals an entry; a line the journal does not take is held in memory, in
    /// order, until it does (see [`super::writable`]), never fatal.
    pub(super) fn record(&mut self, entry: impl Into<Entry>) {
        let line = crate::journal::Line {
            time: jiff::Timestamp::now(),
            entry: entry.into(),
        };
        if self.writable.held() > 0 {
            self.metrics.journaled(&line.entry, true);
            self.writable.hold(line);
            return;
        }
        let written = self.journal.write(&line);
        self.metrics.journaled(&line.entry, written.is_err());
        if let Err(e) = written {
            self.writable.hold(line);
            self.unwritable(&e.to_string());
        }
    }

    /// A write to the state folder failed: said once a minute while it lasts.
    fn unwritable(&mut self, error: &str) {
        let (now, at) = (std::time::Instant::now(), jiff::Timestamp::now());
        if self.writable.failed(error, now, at) {
            let dir = self.journal.path().parent().unwrap_or(Path::new("."));
            error!(
                "state folder {} cannot be written ({error}): sessions keep running, no new \
                 task is claimed, {} journal lines held in memory until it can be (said again \
                 in a minute if it lasts)",
                dir.display(),
                self.writable.held()
            );
        }
    }

    /// After a round: the journal lines held are written, and whether the state folder
    /// could be written this round (`save_error`: why the facts could not be saved)
    /// said; an outage that ended is journaled.
    pub(super) fn after_round(&mut self, save_error: Option<&str>) {
        let mut held = self.writable.take_held();
        while let Some(line) = held.front() {
            if let Err(e) = self.journal.write(line) {
                self.writable.unwritten(held);
                self.unwritable(&e.to_string());
                return;
            }
            held.pop_front();
        }
        if let Some(e) = save_error {
            self.unwritable(e);
            return;
        }
        // A round may write nothing (the facts unchanged): the folder is asked itself.
        if self.writable.is_down() {
            let dir = self.journal.path().parent().unwrap_or(Path::new("."));
            if let Err(e) = crate::state::probe_writable(dir) {
                self.unwritable(&e.to_string());
                return;
            }
        }
        if let Some(outage) = self.writable.recovered() {
            let dir = self.journal.path().parent().unwrap_or(Path::new("."));
            info!(
                since = %outage.since,
                "state folder {} can be written again: facts saved, journal caught up",
                dir.display()
            );
            self.record(crate::journal::Life::StateUnwritable {
                since: outage.since,
                error: outage.error,
                dropped: outage.dropped,
            });
        }
    }

    /// Journals the plan's decisions; one that repeats the last of its kind is not
    /// written again.
    fn record_events(&mut self, plan: &Plan) {
        for event in &plan.events {
            let entry = Entry::Event(event.clone());
            let Some(kind) = entry.kind() else { continue };
            if event.repeats() && self.last_events.get(&kind) == Some(event) {
                continue;
            }
            log_event(event, &event.detail());
            self.record(entry);
            if event.notifies() {
                let note = serde_json::to_value(event).unwrap_or_default();
                crate::notifications::send(&self.notifications, note);
            }
            self.last_events.insert(kind, event.clone());
        }
    }

    /// Journals refusals not refused the round before.
    fn record_refusals(&mut self, plan: &Plan) {
        if plan.refused == self.last_refused {
            return;
        }
        let new: Vec<Refusal> = plan
            .refused
            .iter()
            .filter(|r| !self.last_refused.contains(r))
            .cloned()
            .collect();
        for r in new {
            warn!(object = %r.object.spoken(), "refused: {}", r.reason);
            self.record(r);
        }
        self.last_refused = plan.refused.clone();
    }

    /// Writes `status.json` for the manifests of `generation` at `now`: the plan's
    /// pending and refused lines (the last ones when `plan` is `None`), converged only
    /// without an `error`. Not written again when nothing but its time changed, unless
    /// the last write is [`HEARTBEAT`] old: its time tells `failover doctor` that rounds
    /// still run.
    pub(super) fn write_status(
        &mut self,
        dir: &Path,
        generation: &str,
        error: Option<String>,
        plan: Option<&Plan>,
        now: jiff::Timestamp,
    ) {
        let (pending, refused, converged) = match (plan, &self.last_status) {
            (Some(p), _) => (
                p.actions
                    .iter()
                    .map(|a| format!("{} {a}", a.sign()))
                    .collect(),
                p.refused
                    .iter()
                    .map(|r| format!("{}: {}", r.object.spoken(), r.reason))
                    .collect(),
                p.is_empty(),
            ),
            (None, Some(s)) => (s.pending.clone(), s.refused.clone(), s.converged),
            (None, None) => (Vec::new(), Vec::new(), false),
        };
        let status = Status {
            pid: std::process::id(),
            generation: generation.to_owned(),
            converged: converged && error.is_none(),
            pending,
            refused,
            error,
            updated: now,
            fleet: self.fleet.clone(),
        };
        let same = self.last_status.as_ref().is_some_and(|old| {
            Status {
                updated: old.updated,
                ..status.clone()
            } == *old
                // A clock set back makes the last one look new: written again too.
                && now.duration_since(old.updated).abs() < HEARTBEAT
        });
        if same {
            return;
        }
        if let Err(e) = status.write(dir) {
            self.unwritable(&format!("cannot write status: {e}"));
        }
        self.last_status = Some(status);
    }
}

/// One log line for a plan event, at the level it deserves.
fn log_event(event: &Event, detail: &serde_json::Value) {
    match event {
        Event::Swap { .. } => warn!(%detail, "account swap"),
        Event::AllExhausted { .. } => warn!(%detail, "every account is exhausted; sessions wait"),
        Event::Resumed { .. } => warn!(%detail, "an account is usable again; work resumes"),
        Event::IntakeHeld { .. } => warn!(%detail, "new tasks wait"),
        Event::AllOverThreshold { .. } => warn!(
            %detail,
            "no account under quota.moveAt to move to; no session moves and no new task starts"
        ),
        Event::ResumeFailed { .. } => {
            warn!(%detail, "a conversation could not be resumed; the session starts afresh")
        }
        Event::SessionFailed { .. } | Event::SessionExited { .. } => {
            warn!(%detail, "agent exited");
        }
        Event::HandedOff { .. } => warn!(%detail, "a task cut by a limit goes to another family"),
        Event::SessionWaits { .. } => warn!(%detail, "a dedicated session waits for its family"),
        Event::FamilyChanged { .. } => info!(%detail, "{}", event.name()),
        Event::QuotaDetected { .. }
        | Event::Recovered { .. }
        | Event::UsageCrossed { .. }
        | Event::FleetLedger { .. } => {
            info!(%detail, "{}", event.name());
        }
    }
}

/// Each family's active account in `facts`, exhausted or not.
pub(super) fn active_accounts(facts: &crate::state::Facts) -> BTreeMap<AgentKind, String> {
    facts
        .families
        .iter()
        .filter_map(|(kind, l)| Some((kind, l.active_account.clone()?)))
        .collect()
}

impl Watcher for Reporter {
    fn damaged(&mut self, damage: &Result<crate::state::damage::Damage, crate::state::Error>) {
        match damage {
            Ok(d) => {
                error!("{d}");
                self.record(crate::journal::Life::StateDamaged(d.clone()));
            }
            Err(e) => self.unwritable(&e.to_string()),
        }
    }

    fn planned(&mut self, plan: &Plan) {
        self.record_refusals(plan);
        self.record_events(plan);
        // Each family's in turn; the account names its family.
        for (kind, account) in &plan.accounts {
            if self.active_accounts.get(kind) != Some(account) {
                info!(account = account.as_str(), "active account");
                self.record(crate::journal::Life::ActiveAccount {
                    account: Some(account.clone()),
                });
            }
        }
        self.active_accounts = active_accounts(&plan.facts);
    }

    fn proceed(&mut self, _action: &Action) -> bool {
        !self.stopping.load(Ordering::Acquire)
    }

    fn acted(&mut self, action: &Action, result: &Result<Outcome, String>) {
        let line = format!("{} {action}", action.sign());
        match result {
            Ok(Outcome::Done) if matches!(action, Action::Task(TaskAction::StallTask { .. })) => {
                if let Action::Task(TaskAction::StallTask { task }) = action {
                    crate::notifications::send(
                        &self.notifications,
                        json!({"event": "taskStalled", "inbox": task.inbox, "task": task.name, "session": task.session}),
                    );
                }
                warn!(
                    "{line}: no screen change for {}; left in active/",
                    self.idle_timeout
                );
            }
            Ok(Outcome::Done | Outcome::Sent(_)) => info!("{line}"),
            Ok(Outcome::Resumed(id)) => info!("{line}: conversation {id} resumed"),
            Ok(Outcome::Rejected(why)) => warn!("{line}: rejected: {why}"),
            Ok(Outcome::Fresh(why)) => warn!("{line}: started afresh: {why}"),
            Err(e) => error!("{line}: {e}"),
        }
        self.record(Acted::new(action, result, None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reporter(dir: &Path) -> Reporter {
        Reporter::new(
            Journal::open(dir).expect("journal"),
            &ControllerConfigSpec::default(),
            BTreeMap::new(),
            Arc::new(AtomicBool::new(false)),
            Arc::new(crate::metrics::Metrics::default()),
        )
    }

    #[test]
    fn status_should_be_written_again_unchanged_once_a_heartbeat_old() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut r = reporter(dir.path());
        let t0 = jiff::Timestamp::from_second(1_800_000_000).expect("time");
        let updated = || {
            Status::read(dir.path())
                .expect("readable")
                .map(|s| s.updated)
        };
        r.write_status(dir.path(), "g", None, None, t0);
        assert_eq!(updated(), Some(t0));
        let soon = t0 + jiff::SignedDuration::from_secs(5);
        r.write_status(dir.path(), "g", None, None, soon);
        assert_eq!(updated(), Some(t0), "nothing changed: not written");
        let later = t0 + HEARTBEAT;
        r.write_status(dir.path(), "g", None, None, later);
        assert_eq!(updated(), Some(later), "a heartbeat old: written again");
        let changed = later + jiff::SignedDuration::from_secs(1);
        r.write_status(dir.path(), "h", None, None, changed);
        assert_eq!(updated(), Some(changed), "a change: written at once");
    }
}
