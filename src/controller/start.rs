//! The controller's start: the manifests adopted, the state folder locked, endings a
//! crash left unjournaled replayed, tmux reached (retried with backoff while it cannot
//! be), the shared state checked; then the loop runs until SIGTERM or SIGINT.

use crate::state::paths::{APPLIED_FILE, CLIENTS_DIR, HANDOFF_DIR, RUNNING_FILE};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{error, info, warn};

use crate::api::{Manifests, Settings};
use crate::journal::{Journal, Life};
use crate::observe::{self, Observed};
use crate::plan;
use crate::state::{self, Facts};
use crate::tmux::{self, Server, Tmux};

use super::error::Error;
use super::handoff::ManifestSet;
use super::lock::Lock;
use super::queue::{self, Key, WorkQueue};
use super::replay;
use super::round::{Desired, Store};
use super::runner::Controller;
use super::status::Reporter;

/// The names of the files the journal in `dir` says were kept aside.
fn told_damage(dir: &std::path::Path) -> std::collections::BTreeSet<std::ffi::OsString> {
    crate::journal::read(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|line| match line.entry {
            crate::journal::Entry::Controller(Life::StateDamaged(d)) => {
                d.kept.file_name().map(ToOwned::to_owned)
            }
            _ => None,
        })
        .collect()
}

/// Runs the controller on the manifests `files` until SIGTERM or SIGINT.
pub(crate) async fn run(files: Vec<PathBuf>) -> Result<(), Error> {
    let set = ManifestSet::read(&files)?;
    let desired = Desired::adopt(set.load()?)?;
    let manifests = &desired.manifests;
    let settings = Settings::from_env(&manifests.controller.spec)?;
    let dir = settings.state_dir.clone();
    let _lock = Lock::acquire(&dir)?;
    // The watched folders exist from the start, so that the state folder itself, where
    // the controller writes after every reconcile, is never watched in their stead.
    for watched in [HANDOFF_DIR, crate::state::paths::REPORTS_DIR] {
        let path = dir.join(watched);
        state::create_private_dir(&path).map_err(|source| state::Error::Io { path, source })?;
    }
    // Files kept aside by a controller stopped before it said so are found before
    // this start keeps anything aside: they are said with this start's own.
    let untold = crate::state::damage::untold(&dir, &told_damage(&dir));
    // Damaged state is kept aside before anything reads it: the journal's lines that
    // are not journal lines first (the replay below reads the journal), then the facts.
    let journal_damage = crate::journal::repair(&dir, jiff::Timestamp::now())?;
    let mut journal = Journal::open(&dir)?;
    let (mut store, facts_damage) = Store::load(&dir)?;
    // Said before the replay, which reads the whole journal: the shorter the span
    // between keeping a file aside and saying so, the rarer a kill within it.
    for damage in journal_damage.iter().chain(&facts_damage).chain(&untold) {
        error!("{damage}");
        journal.record(Life::StateDamaged(damage.clone()))?;
    }
    let replayed = replay::replay(&dir, manifests, &mut journal);
    if replayed > 0 {
        warn!(
            replayed,
            "journaled tasks that ended just before the last controller was killed"
        );
    }
    let queue = Arc::new(WorkQueue::new());
    let stopping = Arc::new(AtomicBool::new(false));
    let stop = spawn_signals(stopping.clone(), queue.clone());
    let Some((tmux, observed)) =
        connect(&settings, manifests, store.facts(), &mut journal, &stop).await?
    else {
        info!("stopped before tmux could be reached");
        journal.record(Life::Stopped {
            pid: Some(std::process::id()),
        })?;
        return Ok(());
    };
    if facts_damage.is_some() {
        let owner = settings.spec.owner.as_str();
        store.amend(|facts| {
            super::rebuild::active_accounts(manifests, observed.sessions.values(), owner, facts);
            super::rebuild::used_agents(manifests, observed.sessions.values(), owner, facts);
        });
    }
    let broken = plan::check_shared(manifests, &observed);
    if !broken.is_empty() {
        let _ = journal.record(Life::RefusedToStart {
            problems: broken.clone(),
        });
        return Err(Error::SharedState(broken));
    }
    if std::fs::remove_file(dir.join(APPLIED_FILE)).is_ok() {
        warn!("dropped a hand-off left from before this controller started");
    }
    set.store(&dir, RUNNING_FILE)?;
    let owner = settings.spec.owner.as_str();
    let adopted = observed
        .sessions
        .values()
        .filter(|s| s.is_ours(owner))
        .count();
    info!(pid = std::process::id(), generation = %set.generation, adopted, "controller started");
    journal.record(Life::Started {
        pid: std::process::id(),
        generation: set.generation.clone(),
        adopted,
        files: files.clone(),
    })?;
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
    let serving = match settings.spec.metrics.address() {
        Some(address) => {
            let listener = crate::metrics::listen(address).await?;
            if let Ok(bound) = listener.local_addr() {
                info!("serving metrics on http://{bound}/metrics");
            }
            Some(tokio::spawn(crate::metrics::serve(
                listener,
                metrics.clone(),
            )))
        }
        None => None,
    };
    let mut reporter = Reporter::new(
        journal,
        &settings.spec,
        super::status::active_accounts(store.facts()),
        stopping.clone(),
        metrics,
    );
    let fleet = crate::fleet::join(&settings.spec.fleet)?;
    if let Some(f) = &fleet {
        reporter.fleet = Some(format!("node {}", f.node));
    }
    let controller = Controller {
        files,
        files_generation: set.generation.clone(),
        desired,
        generation: set.generation,
        board: crate::board::Publisher::new(&settings.state_dir),
        clock: super::clock::WallClock::default(),
        settings,
        tmux,
        store,
        reporter,
        queue,
        stopping,
        tz: jiff::tz::TimeZone::system(),
        last_error: None,
        manifest_error: None,
        reconciles: 0,
        fleet,
        told: crate::observe::Fleet::default(),
        readings: std::collections::BTreeMap::new(),
    };
    let stopped = controller.run(stop).await;
    if let Some(serving) = serving {
        serving.abort();
    }
    stopped
}

/// The tmux server `settings` name; with `record`, this process's control clients are
/// recorded in the state folder, so that a successor can end them if it is killed.
pub(crate) fn tmux_server(settings: &Settings, record: bool) -> Server {
    let server = Server::new(settings.socket.clone()).with_config(settings.tmux_config.clone());
    if record {
        server.with_record(settings.state_dir.join(CLIENTS_DIR))
    } else {
        server
    }
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
    let target = tmux_server(settings, true);
    let (server, cli) = (target.describe(), target.command_line());
    let control = tmux::control_session(&settings.spec.owner);
    let dir = &settings.state_dir;
    let mut attempt: u32 = 0;
    loop {
        let problem = match Tmux::manage(target.clone(), &settings.spec.owner).await {
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
        let _ = journal.record(Life::TmuxUnreachable {
            server: server.clone(),
            attempt,
            error: problem,
            retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        });
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
