//! The controller's loop: one [`Controller`] per process, taking keys off the work
//! queue — read the manifests again, reconcile the world (one [`Round`]), prune old
//! records — fed by file watches, tmux notifications, a poll and a resync.

use crate::state::paths::{APPLIED_FILE, HANDOFF_DIR, RUNNING_FILE};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{debug, error, info, warn};

use super::error::Error;
use super::handoff::ManifestSet;
use super::queue::{Key, WorkQueue};
use super::round::{Desired, Round, Store};
use super::status::Reporter;
use super::watch::Watches;
use crate::act;
use crate::api::{LoadError, Settings};
use crate::journal::Life;
use crate::plan::Scope;
use crate::tmux::{Event, Tmux};

/// The running controller.
pub(super) struct Controller {
    /// The `-f` manifests.
    pub files: Vec<PathBuf>,
    /// The generation of the `-f` files last read.
    pub files_generation: String,
    /// The manifests in force.
    pub desired: Desired,
    /// Their generation.
    pub generation: String,
    /// The settings it started with.
    pub settings: Settings,
    /// The tmux connection.
    pub tmux: Tmux,
    /// The facts.
    pub store: Store,
    /// The journal, logs, notifications and status.
    pub reporter: Reporter,
    /// The work queue.
    pub queue: Arc<WorkQueue<Key>>,
    /// Set by SIGTERM or SIGINT.
    pub stopping: Arc<AtomicBool>,
    /// The local time zone, read once at start.
    pub tz: jiff::tz::TimeZone,
    /// The last failure, until a round succeeds.
    pub last_error: Option<String>,
    /// Why the manifests on disk are not the ones running (until a good edit).
    pub manifest_error: Option<String>,
    /// Rounds so far.
    pub reconciles: u64,
    /// Its fleet membership, with one.
    pub fleet: Option<crate::fleet::Handle>,
    /// What the fleet's ledger told since the last round, for the next one's planner.
    pub told: crate::observe::Fleet,
    /// The last quota reading of each account, for the fleet's ledger.
    pub readings: std::collections::BTreeMap<String, String>,
    /// The board of its rounds, for `failover top`.
    pub board: crate::board::Publisher,
    /// The clocks as the last round read them: a jump of the wall clock is told.
    pub clock: super::clock::WallClock,
}

impl Controller {
    /// Takes keys off the queue until a stop signal; the facts are saved at the end.
    pub(super) async fn run(mut self, stop: Arc<tokio::sync::Notify>) -> Result<(), Error> {
        let queue = self.queue.clone();
        // The operator's requests land here: watched from the start.
        let requests = self
            .settings
            .state_dir
            .join(crate::state::paths::REQUESTS_DIR);
        if let Err(e) = crate::state::create_private_dir(&requests) {
            warn!(error = %e, "cannot create {}", requests.display());
        }
        let mut watches = Watches::new(queue.clone())?;
        watches.sync(&self.watch_list());
        debug!(folders = ?watches.watched(), "watching");
        let tasks = self.spawn_triggers();
        queue.add(Key::World);
        while !self.stopping.load(Ordering::Acquire) {
            let key = tokio::select! {
                biased;
                _ = stop.notified() => break,
                news = fleet_news(&mut self.fleet) => {
                    self.on_fleet(news);
                    continue;
                }
                key = queue.next() => key,
            };
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            let ok = match key {
                Key::Manifests => self.reload(),
                Key::World => self.reconcile().await,
                Key::Janitor => self.janitor(),
            };
            queue.done(&key, ok);
            watches.sync(&self.watch_list());
            // Let the signal and trigger tasks run even when work never stops coming: on
            // this one thread they would otherwise wait for the queue to run dry.
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.abort();
        }
        self.store.flush()?;
        info!("controller stopped; sessions keep running");
        self.reporter.journal.record(Life::Stopped {
            pid: Some(std::process::id()),
        })?;
        Ok(())
    }

    /// Folders to watch and what their events mean.
    fn watch_list(&self) -> Vec<(PathBuf, Key)> {
        let mut list = Vec::new();
        for file in &self.files {
            if file.as_os_str() == "-" {
                continue;
            }
            let folder = if file.is_dir() {
                file.clone()
            } else {
                file.parent().map_or_else(
                    || PathBuf::from("."),
                    |p| {
                        if p.as_os_str().is_empty() {
                            PathBuf::from(".")
                        } else {
                            p.to_path_buf()
                        }
                    },
                )
            };
            list.push((folder, Key::Manifests));
        }
        let dir = &self.settings.state_dir;
        list.push((dir.join(HANDOFF_DIR), Key::Manifests));
        list.push((dir.join(crate::state::paths::REPORTS_DIR), Key::World));
        list.push((dir.join(crate::state::paths::REQUESTS_DIR), Key::World));
        for inbox in &self.desired.manifests.inboxes {
            list.push((inbox.spec.path.clone(), Key::World));
        }
        for account in &self.desired.manifests.accounts {
            list.push((account.spec.home.clone(), Key::World));
        }
        list
    }

    /// Starts the poll and resync tickers and the tmux notification listener.
    fn spawn_triggers(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let poll = self
            .settings
            .spec
            .poll_interval
            .0
            .max(Duration::from_millis(50));
        let resync = self
            .settings
            .spec
            .resync_period
            .0
            .max(Duration::from_secs(1));
        let q = self.queue.clone();
        let poller = tokio::spawn(async move {
            let mut tick = tokio::time::interval(poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                q.add(Key::World);
            }
        });
        let q = self.queue.clone();
        let resyncer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(resync);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                q.add(Key::Manifests);
                q.add(Key::World);
                q.add(Key::Janitor);
            }
        });
        let q = self.queue.clone();
        let mut events = self.tmux.events();
        let listener = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::SessionsChanged | Event::WindowClosed | Event::Exit(_))
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => q.add(Key::World),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        vec![poller, resyncer, listener]
    }

    /// Reads the manifests again: a hand-off from `apply` first, then the `-f` files
    /// when they changed. An invalid set is reported and the last good one stays.
    fn reload(&mut self) -> bool {
        let dir = self.settings.state_dir.clone();
        match ManifestSet::stored(&dir, APPLIED_FILE) {
            Ok(Some(set)) => {
                let _ = std::fs::remove_file(dir.join(APPLIED_FILE));
                self.adopt(set, "apply");
            }
            Ok(None) => {}
            Err(e) => {
                let _ = std::fs::remove_file(dir.join(APPLIED_FILE));
                self.fail(format!("hand-off from apply is unreadable: {e}"));
            }
        }
        match ManifestSet::read(&self.files) {
            Ok(set) if set.generation != self.files_generation => {
                self.files_generation = set.generation.clone();
                self.adopt(set, "files");
            }
            Ok(_) => {}
            Err(e) => self.fail(format!("manifests: {e}; keeping the last good ones")),
        }
        true
    }

    fn adopt(&mut self, set: ManifestSet, origin: &str) {
        if set.generation == self.generation {
            return;
        }
        let adopted = set.load().map(Desired::adopt);
        match adopted {
            Ok(Err(e)) => self.fail(format!("manifests from {origin}: {e}")),
            Ok(Ok(desired)) => {
                if desired.manifests.controller.spec != self.settings.spec {
                    warn!("ControllerConfig changed: it takes effect when the controller restarts");
                }
                info!(origin, generation = %set.generation, "new manifests");
                self.reporter.record(Life::Manifests {
                    origin: origin.to_owned(),
                    generation: set.generation.clone(),
                });
                if let Err(e) = set.store(&self.settings.state_dir, RUNNING_FILE) {
                    warn!(error = %e, "cannot record the running manifests");
                }
                self.desired = desired;
                self.generation = set.generation;
                self.manifest_error = None;
                self.queue.add(Key::World);
            }
            Err(LoadError::Invalid(problems)) => {
                let text = problems.to_string();
                error!(
                    "manifests from {origin} are invalid; the last good ones keep running:\n{}",
                    text.trim_end()
                );
                self.reporter.record(Life::InvalidManifests {
                    origin: origin.to_owned(),
                    problems: text.lines().map(str::to_owned).collect(),
                });
                self.manifest_error = Some(format!(
                    "invalid manifests from {origin}: {}",
                    text.trim_end()
                ));
                self.write_status(None);
            }
            Err(e) => self.fail(format!("manifests from {origin}: {e}")),
        }
    }

    fn fail(&mut self, message: String) {
        error!("{message}");
        self.reporter.record(Life::Error {
            message: message.clone(),
        });
        self.last_error = Some(message);
        self.write_status(None);
    }

    /// One round: observe, plan (tasks included), act, record, save. False when
    /// something failed (the key backs off).
    async fn reconcile(&mut self) -> bool {
        self.reconciles += 1;
        let began = super::round::Began::now();
        let start = began.mono;
        if let Some(by) = self.clock.jumped(began.mono, began.wall) {
            // Whole seconds: the jump is told, not measured to the nanosecond.
            let by = jiff::SignedDuration::from_secs((by.as_secs_f64().round()) as i64);
            warn!(
                by = %format!("{by:#}"),
                "the wall clock jumped: the facts' instants move with it, timers keep their \
                 spans; account resets are times of day"
            );
            self.store.amend(|facts| facts.shift(by));
            self.reporter.record(crate::journal::Life::ClockJumped {
                seconds: by.as_secs(),
            });
        }
        let round = Round {
            act: act::Context {
                tmux: Some(&self.tmux),
                owner: &self.settings.spec.owner,
                state_dir: Some(&self.settings.state_dir),
            },
            desired: &self.desired,
            scope: Scope::Tasks,
            tz: &self.tz,
            zones: jiff::tz::db(),
            began,
        };
        let told = self.told.clone();
        let report = match round
            .run_with(&mut self.store, &mut self.reporter, told)
            .await
        {
            Ok(report) => report,
            Err(e) => {
                // What the fleet told waits for the next round.
                self.fail(format!("observe: {e}"));
                self.reporter.after_round(self.store.failing());
                return false;
            }
        };
        self.told = crate::observe::Fleet::default();
        self.reporter.metrics.reconciled(
            start.elapsed(),
            &self.desired.manifests,
            &report.observed,
            &report.plan,
            &self.settings.spec.owner,
        );
        self.reporter.metrics.queued(self.queue.len());
        debug!(
            reconcile = self.reconciles,
            actions = report.plan.actions.len(),
            refused = report.plan.refused.len(),
            "reconcile"
        );
        if let Some(after) = report.plan.requeue_after {
            self.queue.add_after(Key::World, after);
        }
        self.last_error = None;
        self.report_fleet(&report);
        self.board.publish(
            &self.desired.manifests,
            &self.settings.spec.owner,
            &report.observed,
            &report.plan,
            jiff::Timestamp::now(),
        );
        self.write_status(Some(&report.plan));
        if self.store.failing().is_some() {
            self.store.amend(super::writable::unheard);
        }
        self.reporter.after_round(self.store.failing());
        let failed = report.done.iter().any(|(_, r)| r.is_err());
        if !report.done.is_empty() && !failed {
            self.queue.add(Key::World);
        }
        !failed
    }

    /// Takes what the fleet says: what the ledger knows of the accounts goes to the next
    /// round, reconciled at once, whose planner takes it into the facts as if this node's
    /// agents had said it; etcd lost or back is journaled and shown in the status.
    fn on_fleet(&mut self, news: Option<crate::fleet::News>) {
        use crate::fleet::News;
        let node = self
            .fleet
            .as_ref()
            .map(|f| f.node.clone())
            .unwrap_or_default();
        match news {
            None => {
                // The member task ended: run on alone.
                self.fleet = None;
                self.reporter.fleet = Some(format!("node {node}, degraded: the fleet task ended"));
            }
            Some(News::Degraded(why)) => {
                self.reporter
                    .record(Life::FleetDegraded { error: why.clone() });
                self.reporter.fleet = Some(format!("node {node}, degraded: {why}"));
            }
            Some(News::Restored) => {
                self.reporter.record(Life::FleetRestored);
                self.reporter.fleet = Some(format!("node {node}"));
            }
            Some(News::Ledger(mut accounts)) => {
                // Accounts these manifests do not name are other nodes' business: news
                // of them alone is no reason for a round.
                accounts.retain(|a, _| self.desired.manifests.account(a).is_some());
                if !accounts.is_empty() {
                    self.told.tell(accounts);
                    self.queue.add(Key::World);
                }
            }
        }
        self.write_status(None);
    }

    /// Tells the fleet what this round knows of the accounts, and the node's status.
    fn report_fleet(&mut self, report: &super::round::Report) {
        if self.fleet.is_none() {
            return;
        }
        for event in &report.plan.events {
            if let crate::plan::Event::QuotaDetected {
                account,
                session,
                line,
                ..
            } = event
            {
                self.readings
                    .insert(account.clone(), format!("{session}: {line}"));
            }
        }
        let Some(fleet) = &self.fleet else { return };
        let facts = &report.plan.facts;
        let now = jiff::Timestamp::now();
        let accounts = self
            .desired
            .manifests
            .accounts
            .iter()
            .map(|a| {
                let local = crate::fleet::ledger::Local {
                    exhausted_until: facts
                        .exhausted_until
                        .get(&a.name)
                        .copied()
                        .filter(|t| *t > now),
                    usage: facts.usage.get(&a.name).cloned(),
                    reading: self.readings.get(&a.name).cloned(),
                };
                (a.name.clone(), local)
            })
            .collect();
        let status = crate::fleet::RoundStatus::of(
            &self.desired.manifests,
            &report.observed,
            &report.plan,
            &self.settings.spec.owner,
        );
        fleet.report.send_if_modified(|old| {
            let new = crate::fleet::Report {
                accounts,
                status: Some(status),
            };
            // The status's own clock aside, nothing new: nothing to publish.
            if *old == new {
                return false;
            }
            *old = new;
            true
        });
    }

    /// Writes `status.json` with the last error, if any.
    fn write_status(&mut self, plan: Option<&crate::plan::Plan>) {
        let error = self
            .manifest_error
            .clone()
            .or_else(|| self.last_error.clone());
        self.reporter.write_status(
            &self.settings.state_dir,
            &self.generation,
            error,
            plan,
            jiff::Timestamp::now(),
        );
    }

    /// Deletes finished and failed tasks older than the retention; never the inbox.
    fn janitor(&mut self) -> bool {
        let retention = self.settings.spec.janitor.retention.0;
        let Some(cutoff) = std::time::SystemTime::now().checked_sub(retention) else {
            return true;
        };
        for inbox in &self.desired.manifests.inboxes {
            let folders = crate::tasks::Folders::of(&inbox.spec.path);
            let pruned = crate::tasks::prune(&folders.done, cutoff, |_| true)
                + crate::tasks::prune(&folders.failed, cutoff, |_| true);
            if pruned > 0 {
                info!(inbox = %inbox.name, pruned, "janitor");
                self.reporter.record(Life::Pruned {
                    inbox: inbox.name.clone(),
                    files: pruned,
                });
            }
        }
        // A hook killed between its write and its rename leaves a temp file behind.
        let reports = self
            .settings
            .state_dir
            .join(crate::state::paths::REPORTS_DIR);
        if let Some(minute_ago) = std::time::SystemTime::now().checked_sub(Duration::from_secs(60))
        {
            crate::tasks::prune(&reports, minute_ago, crate::report::is_temp);
        }
        true
    }
}

/// What the fleet says next, or never without a fleet; `None` when its task ended.
async fn fleet_news(fleet: &mut Option<crate::fleet::Handle>) -> Option<crate::fleet::News> {
    match fleet {
        Some(f) => f.news.recv().await,
        None => std::future::pending().await,
    }
}
