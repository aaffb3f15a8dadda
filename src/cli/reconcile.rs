//! `failover diff` and `failover apply`.

use crate::state::paths::APPLIED_FILE;
use std::path::PathBuf;
use std::process::ExitCode;

use super::render::Printer;
use crate::act::Context;
use crate::api::Settings;
use crate::controller::handoff::{ManifestSet, Status};
use crate::controller::lock::Lock;
use crate::controller::round::{self, Desired, Round, Store};
use crate::journal::{Journal, Origin};
use crate::plan::{self, Plan, Scope};
use crate::tmux::Tmux;

/// How many observe-plan-act rounds `apply` runs at most.
const ROUNDS: usize = 5;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Output {
    /// Human-readable text.
    Text,
    /// JSON for scripts.
    Json,
}

/// Arguments of `failover diff`.
#[derive(Debug, clap::Args)]
pub(super) struct DiffArgs {
    #[command(flatten)]
    manifests: super::Manifests,
    /// Also show a unified diff of the observed and desired state as YAML.
    #[arg(long)]
    diff: bool,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
}

/// Arguments of `failover apply`.
#[derive(Debug, clap::Args)]
pub(super) struct ApplyArgs {
    #[command(flatten)]
    manifests: super::Manifests,
    /// Only show what would change (the same as `failover diff`).
    #[arg(long)]
    dry_run: bool,
    /// Output format of --dry-run.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Output,
    /// With a running controller: wait until it reports the new manifests converged.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    timeout: crate::api::Duration,
}

struct Loaded {
    set: ManifestSet,
    manifests: crate::api::Manifests,
    settings: Settings,
    runtime: tokio::runtime::Runtime,
}

/// Reads and validates the manifests, and the settings they and the environment give.
fn load(files: &[PathBuf]) -> Result<Loaded, ExitCode> {
    let set = ManifestSet::read(files).map_err(super::report_load_error)?;
    let manifests = set.load().map_err(super::report_load_error)?;
    let settings = Settings::from_env(&manifests.controller.spec).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let runtime = super::runtime().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    Ok(Loaded {
        set,
        manifests,
        settings,
        runtime,
    })
}

/// Adopts validated manifests (their screen patterns compiled).
fn adopt(manifests: crate::api::Manifests) -> Result<Desired, ExitCode> {
    Desired::adopt(manifests).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })
}

/// `failover diff`: exit 0 no changes, 1 changes, 2 error or refused items.
pub(super) fn diff(args: DiffArgs) -> ExitCode {
    let (l, desired) = match load(&args.manifests.files) {
        Ok(mut l) => {
            let manifests = std::mem::take(&mut l.manifests);
            match adopt(manifests) {
                Ok(desired) => (l, desired),
                Err(code) => return code,
            }
        }
        Err(code) => return code,
    };
    let owner = l.settings.spec.owner.clone();
    let result = l.runtime.block_on(super::look(&desired, &l.settings));
    let (observed, plan) = match result {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match args.output {
        Output::Json => print!("{}", super::render::render_json(&plan)),
        Output::Text => {
            if args.diff {
                print!(
                    "{}",
                    super::render::render_diff(&desired.manifests, &observed, &plan, &owner)
                );
            }
            print!(
                "{}",
                super::render::render_text(&plan, super::color_stdout())
            );
        }
    }
    exit_for(&plan)
}

fn exit_for(plan: &Plan) -> ExitCode {
    if !plan.refused.is_empty() {
        ExitCode::from(2)
    } else if !plan.actions.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `failover apply`: exit 0 converged, 2 error or refused items.
pub(super) fn apply(args: ApplyArgs) -> ExitCode {
    if args.dry_run {
        return diff(DiffArgs {
            manifests: args.manifests,
            diff: false,
            output: args.output,
        });
    }
    let mut l = match load(&args.manifests.files) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Some(pid) = Lock::holder(&l.settings.state_dir) {
        return hand_off(&l, pid, args.wait.then_some(args.timeout.0));
    }
    let owner = l.settings.spec.owner.clone();
    let color = super::color_stdout();
    // What apply did goes to the journal too, as the controller's actions do.
    let journal = match Journal::open(&l.settings.state_dir) {
        Ok(j) => Some(j),
        Err(e) => {
            eprintln!("warning: {e}; this apply is not journaled");
            None
        }
    };
    let mut printer = Printer {
        journal,
        color,
        origin: Origin::Apply,
    };
    let manifests = std::mem::take(&mut l.manifests);
    let result = l.runtime.block_on(async {
        // The screen patterns compile, and the local time zone is looked up in the
        // system's database, while tmux starts: the patterns were validated with the
        // manifests, so adopting them does not fail but for a bug.
        let server = crate::controller::tmux_server(&l.settings, true);
        let adopting = tokio::task::spawn_blocking(move || {
            adopt(manifests).map(|desired| (desired, jiff::tz::TimeZone::system()))
        });
        let (tmux, desired) = tokio::join!(Tmux::manage(server, &owner), adopting);
        let (desired, tz) = match desired {
            Ok(Ok(adopted)) => adopted,
            Ok(Err(code)) => return Err(Failure::Code(code)),
            Err(e) => {
                return Err(Failure::Error(
                    format!("adopting the manifests: {e}").into(),
                ));
            }
        };
        let tmux = tmux.map_err(|e| Failure::Error(e.into()))?;
        let round = Round {
            act: Context {
                tmux: tmux.as_ref(),
                owner: &owner,
                state_dir: Some(&l.settings.state_dir),
            },
            desired: &desired,
            scope: Scope::Sessions,
            tz: &tz,
            zones: jiff::tz::db(),
            began: crate::controller::round::Began::now(),
        };
        let (mut store, damage) =
            Store::load(&l.settings.state_dir).map_err(|e| Failure::Error(e.into()))?;
        if let Some(damage) = damage {
            eprintln!("warning: {damage}");
        }
        round::converge(&round, &mut store, ROUNDS, &mut printer)
            .await
            .map_err(|e| Failure::Error(e.into()))
    });
    let converged = match result {
        Ok(c) => c,
        Err(Failure::Code(code)) => return code,
        Err(Failure::Error(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    summarize(&converged, color)
}

/// Why `apply` stopped before converging.
enum Failure {
    /// Already told; exit with this code.
    Code(ExitCode),
    /// To tell, then exit 2.
    Error(Box<dyn std::error::Error>),
}

/// Prints what `apply` did and what remains; exit 0 converged, 2 failures or refusals.
fn summarize(converged: &round::Converged, color: bool) -> ExitCode {
    let failed = converged.done.iter().filter(|(_, r)| r.is_err()).count();
    let remaining = &converged.remaining;
    if converged.done.is_empty() && remaining.is_empty() {
        println!("No changes.");
        return ExitCode::SUCCESS;
    }
    if !remaining.refused.is_empty() || !remaining.actions.is_empty() {
        println!();
        print!("{}", super::render::render_text(remaining, color));
    }
    let (mut add, mut change, mut delete) = (0, 0, 0);
    for (action, result) in &converged.done {
        if result.is_ok() {
            match action.change() {
                plan::Change::Add => add += 1,
                plan::Change::Change => change += 1,
                plan::Change::Delete => delete += 1,
            }
        }
    }
    let failed_text = if failed > 0 {
        format!(", {failed} failed")
    } else {
        String::new()
    };
    println!("Apply done: {add} added, {change} changed, {delete} deleted{failed_text}.");
    if failed > 0 || !remaining.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Hands the manifests to the running controller `pid`; with `wait`, waits until it
/// reports them converged.
fn hand_off(l: &Loaded, pid: u32, wait: Option<std::time::Duration>) -> ExitCode {
    let dir = &l.settings.state_dir;
    if let Err(e) = l.set.store(dir, APPLIED_FILE) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    println!(
        "A controller (pid {pid}) runs on {}: manifests handed to it (generation {}).",
        dir.display(),
        l.set.generation
    );
    let Some(timeout) = wait else {
        return ExitCode::SUCCESS;
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        match Status::read(dir) {
            Ok(Some(status)) if status.generation == l.set.generation && status.converged => {
                println!("Converged.");
                return ExitCode::SUCCESS;
            }
            Ok(status) => last = status,
            Err(e) => eprintln!("warning: {e}"),
        }
        if std::time::Instant::now() >= deadline {
            eprintln!(
                "error: not converged within {}",
                crate::api::Duration(timeout)
            );
            if let Some(s) = last.filter(|s| s.generation == l.set.generation) {
                for line in s.pending.iter().chain(&s.refused).chain(&s.error) {
                    eprintln!("  {line}");
                }
            } else {
                eprintln!("  the controller has not taken the new manifests yet");
            }
            return ExitCode::from(2);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
