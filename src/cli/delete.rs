//! `failover delete -f`: takes down what the manifests own (see [`crate::teardown`]),
//! after telling a running controller to stop, so that it does not put it back.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::render::Printer;
use crate::act::Context;
use crate::api::Settings;
use crate::controller::lock::Lock;
use crate::controller::round::{self, Desired};
use crate::journal::{Entry, Journal, Origin};
use crate::plan::{Action, FsAction, Plan, SessionAction};
use crate::teardown::{self, Found};

/// How long a running controller gets to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `failover delete`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    manifests: super::Manifests,
    /// Only show what would be taken down.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `delete`: exit 0 when everything was taken down (or nothing was there), 1 for
/// invalid manifests, 2 when something could not be.
pub(super) fn run(args: Args) -> ExitCode {
    let manifests = match super::load_or_report(&args.manifests.files) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let desired = match Desired::adopt(manifests) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let settings = match Settings::from_env(&desired.manifests.controller.spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match delete(&desired, &settings, args.dry_run) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn delete(desired: &Desired, settings: &Settings, dry_run: bool) -> Result<ExitCode, String> {
    let dir = &settings.state_dir;
    let _lock = if dry_run {
        if let Some(pid) = Lock::holder(dir) {
            println!("A controller runs (pid {pid}): delete tells it to stop first.");
        }
        None
    } else {
        stop_controller(dir)?;
        Some(Lock::acquire(dir).map_err(|e| e.to_string())?)
    };
    let runtime = super::runtime()?;
    let (observed, _) = runtime
        .block_on(super::look(desired, settings))
        .map_err(|e| e.to_string())?;
    let m = &desired.manifests;
    let owner = &settings.spec.owner;
    let plan = Plan {
        actions: teardown::plan(m, &observed, owner, &found(m, dir)),
        ..Plan::default()
    };
    if plan.actions.is_empty() {
        println!("Nothing to delete.");
        return Ok(ExitCode::SUCCESS);
    }
    let color = super::color_stdout();
    if dry_run {
        print!("{}", super::render::render_text(&plan, color));
        return Ok(ExitCode::SUCCESS);
    }
    let mut printer = Printer {
        journal: Some(Journal::open(dir).map_err(|e| e.to_string())?),
        color,
        origin: Origin::Delete,
    };
    let done = runtime.block_on(carry_out(&plan.actions, settings, &mut printer))?;
    let failed = done.iter().filter(|(_, r)| r.is_err()).count();
    // The facts about the sessions taken down go with them; not those still running.
    if let Ok(mut facts) = crate::state::Facts::load(dir) {
        for (action, result) in &done {
            if let (Action::Session(SessionAction::DeleteSession { name, .. }), Ok(_)) =
                (action, result)
            {
                facts.sessions.remove(name);
            }
        }
        if let Err(e) = facts.save(dir) {
            eprintln!("warning: {e}");
        }
    }
    println!(
        "Delete done: {} taken down{}.",
        done.len() - failed,
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    );
    Ok(if failed > 0 || done.len() < plan.actions.len() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Tells the controller running on `dir`, if one is, to stop (SIGTERM), and waits
/// until it released its lock.
fn stop_controller(dir: &Path) -> Result<(), String> {
    let Some(pid) = Lock::holder(dir) else {
        return Ok(());
    };
    // The lock names the pid; it is signalled only when it is failover's own (a pid
    // not written yet reads 0, and `kill 0` would signal this very process group).
    let failover = crate::procfs::argv(pid)
        .and_then(|argv| argv.into_iter().next())
        .and_then(|argv0| {
            std::path::Path::new(&argv0)
                .file_name()
                .map(|n| n.to_string_lossy().starts_with("failover"))
        })
        .unwrap_or(false);
    if pid <= 1 || !failover {
        return Err(format!(
            "the state folder {} is locked by pid {pid}, which is not a failover controller here; \
             stop it yourself, then run delete again",
            dir.display()
        ));
    }
    println!("Stopping the controller (pid {pid}) so that it does not put back what is deleted…");
    let sent = std::process::Command::new("kill")
        .args(["-s", "TERM", &pid.to_string()])
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if !sent.success() && Lock::holder(dir).is_some() {
        return Err(format!("controller (pid {pid}): cannot be told to stop"));
    }
    let start = Instant::now();
    while Lock::holder(dir).is_some() {
        if start.elapsed() > STOP_TIMEOUT {
            return Err(format!(
                "controller (pid {pid}): still running after {}s; nothing deleted",
                STOP_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("Controller stopped.");
    Ok(())
}

/// What the journal says failover created, and the settings kept before its writes.
fn found(m: &crate::api::Manifests, dir: &Path) -> Found {
    // The links the journal says failover created and did not remove since, in order.
    let mut created: Vec<(PathBuf, PathBuf)> = Vec::new();
    for line in crate::journal::read(dir).unwrap_or_default() {
        let Entry::Acted(acted) = line.entry else {
            continue;
        };
        match acted.action {
            Action::Fs(FsAction::CreateLink { link, target }) if acted.error.is_none() => {
                created.retain(|(l, _)| *l != link);
                created.push((link, target));
            }
            Action::Fs(FsAction::RemoveLink { link, .. }) if acted.error.is_none() => {
                created.retain(|(l, _)| *l != link);
            }
            _ => {}
        }
    }
    let links = created
        .into_iter()
        .map(|(link, target)| {
            let now = std::fs::read_link(&link).ok();
            (link, target, now)
        })
        .collect();
    let originals = m
        .accounts
        .iter()
        .filter_map(|a| {
            let kind = a.spec.agent;
            Some(
                a.spec
                    .home
                    .join(kind.settings_file().or(kind.config_file())?),
            )
        })
        .filter_map(|path| {
            crate::state::originals::find(dir, &path)
                .ok()
                .flatten()
                .map(|o| (path, o))
        })
        .collect();
    Found { links, originals }
}

/// Carries out `actions` through the round's executor, printing and journaling each
/// as `delete`'s; what ran, with its results. Nothing runs when tmux cannot be
/// reached.
async fn carry_out(
    actions: &[Action],
    settings: &Settings,
    printer: &mut Printer,
) -> Result<Vec<(Action, Result<crate::plan::Outcome, String>)>, String> {
    let dir = &settings.state_dir;
    let owner = &settings.spec.owner;
    let server = crate::controller::tmux_server(settings, false);
    let mode = crate::tmux::Mode::Observe {
        owner: owner.clone(),
    };
    // No server is no session to kill; a server that cannot be reached is not
    // known to have none: nothing is done, no task goes back while its agent may run.
    let tmux = crate::tmux::Tmux::connect(server, mode)
        .await
        .map_err(|e| format!("tmux: {e}; nothing deleted"))?;
    let ctx = Context {
        tmux: tmux.as_ref(),
        owner,
        state_dir: Some(dir),
    };
    let done = round::carry_out(actions, ctx, printer, |_| {}).await;
    if let Some(tmux) = &tmux {
        end_control_session(tmux, owner).await;
    }
    Ok(done)
}

/// Ends the control session once no session with our mark is left on the server: it
/// is ours too, and a server with only a person's sessions is what delete leaves.
async fn end_control_session(tmux: &crate::tmux::Tmux, owner: &str) {
    let Ok(panes) = tmux.panes().await else {
        return;
    };
    let control = tmux.control_session();
    if panes
        .iter()
        .any(|p| p.session != control && p.owner.as_deref() == Some(owner))
    {
        return;
    }
    if panes.iter().any(|p| p.session == control) {
        // Our own client is attached to it: it ends with it.
        let _ = tmux
            .run(crate::tmux::Cmd::new("kill-session").args(["-t", &format!("={control}")]))
            .await;
    }
}
