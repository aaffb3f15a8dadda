//! The long-running controller: it takes the state folder's lock, checks the shared
//! state, then reconciles whenever anything may have changed (file events, tmux
//! notifications, a screen poll every `pollInterval`, a full resync every
//! `resyncPeriod`) until SIGTERM or SIGINT. Every trigger only means "look again".

pub mod handoff;
pub mod lock;
pub mod queue;
mod replay;
mod watch;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tracing::{debug, error, info, warn};

use crate::act::{self, Context};
use crate::api::{LoadError, Manifests, Settings, settings::SettingsError};
use crate::observe::{self, Observed};
use crate::plan::{self, Action, Outcome, Plan, Refusal, SessionAction, TaskAction};
use crate::state::journal::{Journal, Kind};
use crate::state::{self, Facts};
use crate::tmux::{self, Event, Server, Tmux};

use handoff::{APPLIED_FILE, HANDOFF_DIR, ManifestSet, RUNNING_FILE, Status};
use lock::{Lock, LockError};
use queue::WorkQueue;
use watch::Watches;

/// What a reconcile is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// Read the manifests again (files edited, or handed over by `apply`).
    Manifests,
    /// Observe, plan and act.
    World,
    /// Prune `done/` and `failed/` past their retention.
    Janitor,
}

/// Why the controller could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifests are invalid or unreadable.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The settings could not be resolved.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Another controller runs.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// tmux is missing or too old (an unreachable server is retried).
    #[error(transparent)]
    Tmux(#[from] tmux::Error),
    /// The state folder is unusable.
    #[error(transparent)]
    State(#[from] state::Error),
    /// The shared-state invariant is broken.
    #[error("the shared state is broken; fix these and start again:\n{}", list(.0))]
    SharedState(Vec<Refusal>),
    /// File watching could not start.
    #[error("cannot watch files: {0}")]
    Watch(#[from] notify::Error),
}

fn list(refusals: &[Refusal]) -> String {
    let lines: Vec<String> = refusals
        .iter()
        .map(|r| format!("  ! {}: {}", r.object, r.reason))
        .collect();
    lines.join("\n")
}

/// Restarts of one session, for crash-loop backoff.
#[derive(Debug, Clone, Copy)]
struct Restarts {
    count: u32,
    last: Instant,
}

/// Restarts allowed at once before backing off.
const FREE_RESTARTS: u32 = 3;
/// A session that stayed up this long starts counting afresh.
const RESTART_MEMORY: Duration = Duration::from_secs(600);
/// The longest wait between restarts of a crash-looping session.
const RESTART_MAX: Duration = Duration::from_secs(300);

struct Controller {
    files: Vec<PathBuf>,
    files_generation: String,
    manifests: Manifests,
    generation: String,
    settings: Settings,
    tmux: Tmux,
    facts: Facts,
    journal: Journal,
    queue: Arc<WorkQueue<Key>>,
    stopping: Arc<AtomicBool>,
    restarts: HashMap<String, Restarts>,
    last_refused: Vec<Refusal>,
    last_status: Option<Status>,
    last_error: Option<String>,
    /// Why the manifests on disk are not the ones running (until a good edit).
    manifest_error: Option<String>,
    /// The last ledger event of each kind, not to journal it twice.
    last_events: HashMap<Kind, serde_json::Value>,
    reconciles: u64,
    /// The facts in memory are not all on disk: the last save failed.
    unsaved: bool,
}

/// Runs the controller on the manifests `files` until SIGTERM or SIGINT.
pub async fn run(files: Vec<PathBuf>) -> Result<(), Error> {
    let set = ManifestSet::read(&files)?;
    let manifests = set.load()?;
    let settings = Settings::from_env(&manifests.controller.spec)?;
    let dir = settings.state_dir.clone();
    let _lock = Lock::acquire(&dir)?;
    // The watched folders exist from the start, so that the state folder itself, where
    // the controller writes after every reconcile, is never watched in their stead.
    for watched in [HANDOFF_DIR, crate::report::REPORTS_DIR] {
        let path = dir.join(watched);
        state::create_private_dir(&path).map_err(|source| state::Error::Io { path, source })?;
    }
    let mut journal = Journal::open(&dir)?;
    let replayed = replay::replay(&dir, &manifests, &mut journal);
    if replayed > 0 {
        warn!(
            replayed,
            "journaled tasks that ended just before the last controller was killed"
        );
    }
    let facts = Facts::load(&dir)?;
    let queue = Arc::new(WorkQueue::new());
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = spawn_signals(stopping.clone(), queue.clone());
    let Some((tmux, observed)) =
        connect(&settings, &manifests, &facts, &mut journal, &stop).await?
    else {
        info!("stopped before tmux could be reached");
        journal.record(Kind::Stopped, json!({"pid": std::process::id()}))?;
        return Ok(());
    };
    let broken = plan::check_shared(&manifests, &observed);
    if !broken.is_empty() {
        let _ = journal.record(Kind::RefusedToStart, json!({"problems": broken}));
        return Err(Error::SharedState(broken));
    }
    if std::fs::remove_file(dir.join(APPLIED_FILE)).is_ok() {
        warn!("dropped a hand-off left from before this controller started");
    }
    set.store(&dir, RUNNING_FILE)?;
    let adopted = observed
        .sessions
        .values()
        .filter(|s| s.is_ours(&settings.spec.owner))
        .count();
    info!(pid = std::process::id(), generation = %set.generation, adopted, "controller started");
    journal.record(Kind::Started,
        json!({"pid": std::process::id(), "generation": set.generation, "adopted": adopted, "files": files}),
    )?;
    let mut c = Controller {
        files,
        files_generation: set.generation.clone(),
        manifests,
        generation: set.generation,
        settings,
        tmux,
        facts,
        journal,
        queue: queue.clone(),
        stopping: stopping.clone(),
        restarts: HashMap::new(),
        last_refused: Vec::new(),
        last_status: None,
        last_error: None,
        manifest_error: None,
        last_events: HashMap::new(),
        reconciles: 0,
        unsaved: false,
    };
    let mut watches = Watches::new(queue.clone())?;
    watches.sync(&c.watch_list());
    debug!(folders = ?watches.watched(), "watching");
    let tasks = c.spawn_triggers();
    queue.add(Key::World);
    while !stopping.load(Ordering::Acquire) {
        let key = tokio::select! {
            biased;
            _ = stop.notified() => break,
            key = queue.next() => key,
        };
        if stopping.load(Ordering::Acquire) {
            break;
        }
        let ok = match key {
            Key::Manifests => c.reload(),
            Key::World => c.reconcile().await,
            Key::Janitor => c.janitor(),
        };
        queue.done(&key, ok);
        watches.sync(&c.watch_list());
        // Let the signal and trigger tasks run even when work never stops coming: on
        // this one thread they would otherwise wait for the queue to run dry.
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.abort();
    }
    c.facts.save(&c.settings.state_dir)?;
    info!("controller stopped; sessions keep running");
    c.journal
        .record(Kind::Stopped, json!({"pid": std::process::id()}))?;
    Ok(())
}

/// The longest wait between two tries to reach tmux at start.
const CONNECT_MAX: Duration = Duration::from_secs(10);

/// Connects to tmux and takes a first look. While the server cannot be reached (one
/// half alive after a crash, a socket being recreated) it tries again with backoff,
/// saying what it tried and what the operator can do; `None` when a stop signal came
/// first. A missing or too old tmux stops it at once.
async fn connect(
    settings: &Settings,
    manifests: &Manifests,
    facts: &Facts,
    journal: &mut Journal,
    stop: &tokio::sync::Notify,
) -> Result<Option<(Tmux, Observed)>, Error> {
    let target = Server::from_settings(settings);
    let (server, cli) = (target.describe(), target.command_line());
    let control = tmux::control_session(&settings.spec.owner);
    let dir = &settings.state_dir;
    let mut attempt: u32 = 0;
    loop {
        let problem = match Tmux::manage(settings).await {
            Ok(Some(tmux)) => {
                match observe::observe(Some(&tmux), manifests, facts.clone(), Some(dir)).await {
                    Ok(observed) => {
                        if attempt > 0 {
                            info!(server, attempts = attempt + 1, "tmux reached");
                        }
                        return Ok(Some((tmux, observed)));
                    }
                    Err(e) => e.to_string(),
                }
            }
            Ok(None) => tmux::Error::NoServer {
                server: server.clone(),
            }
            .to_string(),
            Err(e @ (tmux::Error::NotInstalled | tmux::Error::TooOld { .. })) => {
                return Err(e.into());
            }
            Err(e) => e.to_string(),
        };
        attempt += 1;
        let wait = queue::backoff(attempt).min(CONNECT_MAX);
        error!(
            "cannot reach tmux (try {attempt}): {problem}; \
             trying again in {wait:?}. If this lasts: `{cli} list-clients` and \
             `pgrep -af {control}` show who holds it; `{cli} kill-server` \
             ends a server that takes no client (with its sessions; the controller rebuilds \
             them and resumes their tasks)"
        );
        let _ = journal.record(Kind::TmuxUnreachable,
            json!({"server": server, "attempt": attempt, "error": problem, "retryInMs": wait.as_millis()}),
        );
        tokio::select! {
            _ = stop.notified() => return Ok(None),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sets `stopping` on SIGTERM or SIGINT and wakes the loop.
fn spawn_signals(
    stopping: Arc<AtomicBool>,
    queue: Arc<WorkQueue<Key>>,
) -> Arc<tokio::sync::Notify> {
    use tokio::signal::unix::{SignalKind, signal};
    let notify = Arc::new(tokio::sync::Notify::new());
    let n = notify.clone();
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            error!("cannot listen for SIGTERM/SIGINT");
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(
            signal = name,
            "stopping: no new work, finishing the action in flight"
        );
        stopping.store(true, Ordering::Release);
        n.notify_one();
        queue.add(Key::World);
    });
    notify
}

impl Controller {
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
        list.push((dir.join(crate::report::REPORTS_DIR), Key::World));
        for inbox in &self.manifests.inboxes {
            list.push((inbox.spec.path.clone(), Key::World));
        }
        for account in &self.manifests.accounts {
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
        match set.load() {
            Ok(m) => {
                if m.controller.spec != self.settings.spec {
                    warn!("ControllerConfig changed: it takes effect when the controller restarts");
                }
                info!(origin, generation = %set.generation, "new manifests");
                let _ = self.journal.record(
                    Kind::Manifests,
                    json!({"origin": origin, "generation": set.generation}),
                );
                if let Err(e) = set.store(&self.settings.state_dir, RUNNING_FILE) {
                    warn!(error = %e, "cannot record the running manifests");
                }
                self.manifests = m;
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
                let _ = self.journal.record(
                    Kind::InvalidManifests,
                    json!({"origin": origin, "problems": text.lines().collect::<Vec<_>>()}),
                );
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
        let _ = self
            .journal
            .record(Kind::Error, json!({"message": message}));
        self.last_error = Some(message);
        self.write_status(None);
    }

    /// One observe-plan-act round. False when something failed (the key backs off).
    async fn reconcile(&mut self) -> bool {
        self.reconciles += 1;
        let dir = self.settings.state_dir.clone();
        let facts = self.facts.clone();
        let observed =
            match observe::observe(Some(&self.tmux), &self.manifests, facts, Some(&dir)).await {
                Ok(o) => o,
                Err(e) => {
                    self.fail(format!("observe: {e}"));
                    return false;
                }
            };
        let now = jiff::Timestamp::now();
        let plan =
            plan::plan_with_tasks(&self.manifests, &observed, &self.settings.spec.owner, now);
        debug!(
            reconcile = self.reconciles,
            actions = plan.actions.len(),
            refused = plan.refused.len(),
            "reconcile"
        );
        self.record_refusals(&plan);
        self.record_events(&plan);
        let mut facts = plan.facts.clone();
        if plan.account.is_some() && plan.account != self.facts.active_account {
            info!(
                account = plan.account.as_deref().unwrap_or_default(),
                "active account"
            );
            let _ = self
                .journal
                .record(Kind::ActiveAccount, json!({"account": plan.account}));
        }
        let (mut acted, mut failed) = (false, false);
        for action in &plan.actions {
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            if let Some(wait) = self.crash_wait(action, &observed) {
                debug!(action = %action, ?wait, "crash-loop backoff");
                self.wake_after(wait);
                continue;
            }
            self.note_died(action, &observed);
            let ctx = Context {
                tmux: Some(&self.tmux),
                owner: &self.settings.spec.owner,
                state_dir: Some(&dir),
            };
            let result = act::execute(action, ctx).await.map_err(|e| e.to_string());
            let line = format!("{} {action}", action.sign());
            match &result {
                Ok(Outcome::Done)
                    if matches!(action, Action::Task(TaskAction::StallTask { .. })) =>
                {
                    if let Action::Task(TaskAction::StallTask { task }) = action {
                        crate::notify::send(
                            &self.settings.spec.notifications,
                            json!({"event": "taskStalled", "inbox": task.inbox, "task": task.name, "session": task.session}),
                        );
                    }
                    warn!(
                        "{line}: no screen change for {}; left in active/",
                        self.settings.spec.completion.idle_timeout
                    );
                }
                Ok(Outcome::Done | Outcome::Sent(_)) => info!("{line}"),
                Ok(Outcome::Resumed(id)) => info!("{line}: conversation {id} resumed"),
                Ok(Outcome::Rejected(why)) => warn!("{line}: rejected: {why}"),
                Err(e) => error!("{line}: {e}"),
            }
            let _ = self.journal.record(
                action.event(&result),
                json!({"action": action, "ok": result.is_ok(), "error": result.as_ref().err()}),
            );
            plan::record(&mut facts, action, &result, jiff::Timestamp::now());
            if matches!(action, Action::Session(SessionAction::MoveSession { .. })) {
                // A crash before the end of the batch must not forget that this
                // session's screen now redraws an old limit.
                self.save_facts(&facts);
            }
            acted = true;
            failed |= result.is_err();
        }
        if self.save_facts(&facts) {
            // What the reports said is in the facts now: they can go.
            for path in &plan.consumed {
                let _ = std::fs::remove_file(path);
            }
        }
        if let Some(after) = plan.requeue_after {
            self.wake_after(after);
        }
        self.last_error = None;
        self.write_status(Some(&plan));
        if acted && !failed {
            self.queue.add(Key::World);
        }
        !failed
    }

    /// Deletes finished and failed tasks older than the retention; never the inbox.
    fn janitor(&mut self) -> bool {
        let retention = self.settings.spec.janitor.retention.0;
        let Some(cutoff) = std::time::SystemTime::now().checked_sub(retention) else {
            return true;
        };
        for inbox in &self.manifests.inboxes {
            let folders = crate::tasks::Folders::of(&inbox.spec.path);
            let pruned = crate::tasks::prune(&folders.done, cutoff, |_| true)
                + crate::tasks::prune(&folders.failed, cutoff, |_| true);
            if pruned > 0 {
                info!(inbox = %inbox.name, pruned, "janitor");
                let _ = self
                    .journal
                    .record(Kind::Pruned, json!({"inbox": inbox.name, "files": pruned}));
            }
        }
        // A hook killed between its write and its rename leaves a temp file behind.
        let reports = self.settings.state_dir.join(crate::report::REPORTS_DIR);
        if let Some(minute_ago) = std::time::SystemTime::now().checked_sub(Duration::from_secs(60))
        {
            crate::tasks::prune(&reports, minute_ago, crate::report::is_temp);
        }
        true
    }

    /// Saves `facts` when they changed or an earlier save failed; whether the facts on
    /// disk are now these (only then may the reports they fold be deleted).
    fn save_facts(&mut self, facts: &Facts) -> bool {
        if *facts == self.facts && !self.unsaved {
            return true;
        }
        self.facts = facts.clone();
        match self.facts.save(&self.settings.state_dir) {
            Ok(()) => {
                self.unsaved = false;
                true
            }
            Err(e) => {
                error!(error = %e, "cannot save facts; the agents' reports are kept");
                self.unsaved = true;
                false
            }
        }
    }

    /// Looks again after `after`, whatever else happens.
    fn wake_after(&self, after: Duration) {
        let q = self.queue.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            q.add(Key::World);
        });
    }

    /// How long to wait before starting a crash-looping session again; records the
    /// start otherwise.
    fn crash_wait(&mut self, action: &Action, observed: &Observed) -> Option<Duration> {
        let (Action::Session(SessionAction::CreateSession { session, .. })
        | Action::Session(SessionAction::RestartSession { session, .. })) = action
        else {
            return None;
        };
        let name = &session.name;
        if self.recycled(name, observed) {
            // Ended by its exit command after a task: a recycle, not a crash.
            return None;
        }
        let now = Instant::now();
        let entry = self.restarts.entry(name.clone()).or_insert(Restarts {
            count: 0,
            last: now,
        });
        if now.duration_since(entry.last) > RESTART_MEMORY {
            entry.count = 0;
        }
        if entry.count >= FREE_RESTARTS {
            let wait = queue::backoff(entry.count - FREE_RESTARTS + 1)
                .saturating_mul(5)
                .min(RESTART_MAX);
            let since = now.duration_since(entry.last);
            if since < wait {
                return Some(wait - since);
            }
        }
        entry.count += 1;
        entry.last = now;
        None
    }

    /// Journals a session whose agent died; one that worked on a task is failed. An
    /// agent that ended after its task (the exit command) is a context recycle.
    fn note_died(&mut self, action: &Action, observed: &Observed) {
        let Action::Session(SessionAction::RestartSession {
            session, reason, ..
        }) = action
        else {
            return;
        };
        let facts = self.facts.sessions.get(&session.name);
        let task = facts.and_then(|f| f.task.as_ref()).map(|t| t.task.clone());
        let pid = observed.sessions.get(&session.name).map(|s| s.pane.pid);
        if self.recycled(&session.name, observed) {
            debug!(session = %session.name, "agent ended after its task; fresh context");
            return;
        }
        let event = if task.is_some() {
            Kind::SessionFailed
        } else {
            Kind::SessionExited
        };
        warn!(session = %session.name, reason, task, "agent exited");
        let _ = self.journal.record(
            event,
            json!({"session": session.name, "reason": reason, "pid": pid, "task": task}),
        );
    }

    /// Whether session `name`'s agent ended after finishing a task (context recycle).
    fn recycled(&self, name: &str, observed: &Observed) -> bool {
        let facts = self.facts.sessions.get(name);
        let pid = observed.sessions.get(name).map(|s| s.pane.pid);
        facts.is_some_and(|f| f.task.is_none() && pid.is_some() && f.used_pid == pid)
    }

    /// Journals the ledger's decisions; one that repeats the last of its kind is not
    /// written again.
    fn record_events(&mut self, plan: &Plan) {
        for event in &plan.events {
            let (kind, detail) = (event.kind(), event.detail());
            if event.repeats() && self.last_events.get(&kind) == Some(&detail) {
                continue;
            }
            match event {
                plan::Event::Swap { .. } => warn!(%detail, "account swap"),
                plan::Event::AllExhausted { .. } => {
                    warn!(%detail, "every account is exhausted; sessions wait");
                }
                plan::Event::IntakeHeld { .. } => warn!(%detail, "new tasks wait"),
                plan::Event::AllOverThreshold { .. } => warn!(
                    %detail,
                    "no account under quota.moveAt to move to; no session moves and no new task starts"
                ),
                plan::Event::QuotaDetected { .. }
                | plan::Event::Recovered { .. }
                | plan::Event::UsageCrossed { .. } => info!(%detail, "{kind}"),
            }
            let _ = self.journal.record(kind, detail.clone());
            if event.notifies() {
                let mut note = detail.clone();
                note["event"] = serde_json::Value::String(kind.to_string());
                crate::notify::send(&self.settings.spec.notifications, note);
            }
            self.last_events.insert(kind, detail);
        }
    }

    fn record_refusals(&mut self, plan: &Plan) {
        if plan.refused == self.last_refused {
            return;
        }
        for r in plan
            .refused
            .iter()
            .filter(|r| !self.last_refused.contains(r))
        {
            warn!(object = %r.object, "refused: {}", r.reason);
            let _ = self.journal.record(
                Kind::Refused,
                json!({"object": r.object, "reason": r.reason}),
            );
        }
        self.last_refused = plan.refused.clone();
    }

    fn write_status(&mut self, plan: Option<&Plan>) {
        let (pending, refused, converged) = match (plan, &self.last_status) {
            (Some(p), _) => (
                p.actions
                    .iter()
                    .map(|a| format!("{} {a}", a.sign()))
                    .collect(),
                p.refused
                    .iter()
                    .map(|r| format!("{}: {}", r.object, r.reason))
                    .collect(),
                p.is_empty(),
            ),
            (None, Some(s)) => (s.pending.clone(), s.refused.clone(), s.converged),
            (None, None) => (Vec::new(), Vec::new(), false),
        };
        let status = Status {
            pid: std::process::id(),
            generation: self.generation.clone(),
            converged: converged && self.last_error.is_none() && self.manifest_error.is_none(),
            pending,
            refused,
            error: self
                .manifest_error
                .clone()
                .or_else(|| self.last_error.clone()),
            updated: jiff::Timestamp::now(),
        };
        let same = self.last_status.as_ref().is_some_and(|old| {
            Status {
                updated: old.updated,
                ..status.clone()
            } == *old
        });
        if same {
            return;
        }
        if let Err(e) = status.write(&self.settings.state_dir) {
            error!(error = %e, "cannot write status");
        }
        self.last_status = Some(status);
    }
}
