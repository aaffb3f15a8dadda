//! `failover restart session NAME` and `failover return task NAME` (and `top`'s `x` and
//! `r`, through [`ask`]): the operator's requests. The running controller owns its
//! sessions and their claims, so with one running the request is written for it
//! (`requests/`), and its answer read in the journal; without one, this process carries
//! it out through the same plan (`plan::requests`) and the round's `carry_out`, holding
//! the controller's lock meanwhile.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::follow::JournalTail;
use crate::api::Settings;
use crate::controller::lock::Lock;
use crate::controller::round::{self, Desired, Watcher};
use crate::journal::{Acted, Entry, Journal, Origin};
use crate::object::ObjectRef;
use crate::plan::{Action, Outcome};
use crate::request::{Request, Verb};

/// How long the verb waits for the running controller to take its request.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// What `restart` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Restartable {
    /// A session of ours: its agent, resuming its conversation.
    Session,
}

/// What `return` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Returnable {
    /// A running task (NAME, or INBOX/NAME when several inboxes have one of that name).
    Task,
}

/// Arguments of `failover restart`.
#[derive(Debug, clap::Args)]
pub(super) struct RestartArgs {
    /// What to restart.
    #[arg(value_enum)]
    what: Restartable,
    /// The session.
    name: String,
    #[command(flatten)]
    common: Common,
}

/// Arguments of `failover return`.
#[derive(Debug, clap::Args)]
pub(super) struct ReturnArgs {
    /// What to return.
    #[arg(value_enum)]
    what: Returnable,
    /// The task, as dropped in its inbox (`fix-login.md`), or `INBOX/NAME`.
    name: String,
    #[command(flatten)]
    common: Common,
}

/// What both verbs take besides the object.
#[derive(Debug, clap::Args)]
struct Common {
    /// Manifests to read; without it, the ones the controller last ran with.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    files: Vec<PathBuf>,
    /// Only show what would be done.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `restart`.
pub(super) fn restart(args: RestartArgs) -> ExitCode {
    let Restartable::Session = args.what;
    let object = ObjectRef::Session(args.name);
    run(Verb::Restart, object, &args.common)
}

/// Runs `return`.
pub(super) fn give_back(args: ReturnArgs) -> ExitCode {
    let Returnable::Task = args.what;
    let object = match args.name.split_once('/') {
        Some((inbox, name)) => ObjectRef::task(inbox, name),
        None => ObjectRef::Task {
            inbox: None,
            name: args.name,
        },
    };
    run(Verb::Return, object, &args.common)
}

/// Exit 0 when done (or shown, with `--dry-run`), 1 for invalid manifests or a refusal,
/// 2 when it could not be carried out.
fn run(verb: Verb, object: ObjectRef, common: &Common) -> ExitCode {
    let found = super::get::manifests(&common.files).and_then(|m| {
        let desired = Desired::adopt(m).map_err(|e| e.to_string())?;
        let settings =
            Settings::from_env(&desired.manifests.controller.spec).map_err(|e| e.to_string())?;
        Ok((desired, settings))
    });
    let (desired, settings) = match found {
        Ok(found) => found,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(1);
        }
    };
    let request = Request {
        verb,
        object,
        at: jiff::Timestamp::now(),
    };
    match ask(&desired, &settings, &request, common.dry_run, true) {
        Ok(answer) => {
            for line in &answer.lines {
                println!("{line}");
            }
            ExitCode::from(answer.code)
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// What became of a request: lines to show, and the exit code (0 done, 1 refused, 2
/// failed or unanswered).
#[derive(Debug)]
pub(super) struct Answer {
    /// What to tell the operator.
    pub lines: Vec<String>,
    /// 0, 1 or 2.
    pub code: u8,
}

/// Asks for `request`: of the running controller (waiting for its answer with `wait`),
/// else carried out here; with `dry_run`, only what would be done.
pub(super) fn ask(
    desired: &Desired,
    settings: &Settings,
    request: &Request,
    dry_run: bool,
    wait: bool,
) -> Result<Answer, String> {
    let dir = &settings.state_dir;
    let controller = Lock::holder(dir);
    if dry_run {
        return dry(desired, settings, request, controller);
    }
    if let Some(pid) = controller {
        return of_controller(dir, request, pid, wait);
    }
    let _lock = Lock::acquire(dir).map_err(|e| e.to_string())?;
    here(desired, settings, request)
}

/// The request's plan, shown.
fn dry(
    desired: &Desired,
    settings: &Settings,
    request: &Request,
    controller: Option<u32>,
) -> Result<Answer, String> {
    let runtime = super::runtime()?;
    let (mut observed, _) = runtime
        .block_on(super::look(desired, settings))
        .map_err(|e| e.to_string())?;
    observe_request(&mut observed, request);
    let (plan, done) =
        crate::plan::plan_request(&desired.manifests, &observed, &settings.spec.owner, request);
    let mut lines: Vec<String> = super::render::render_text(&plan, super::color_stdout())
        .lines()
        .map(str::to_owned)
        .collect();
    if !done {
        lines.push(not_now(request));
    }
    if let Some(pid) = controller {
        lines.push(format!(
            "A controller runs (pid {pid}): it is the one asked, and answers at its next round."
        ));
    }
    Ok(Answer {
        lines,
        code: if plan.refused.is_empty() { 0 } else { 1 },
    })
}

/// Writes the request for the controller `pid`; with `wait`, its answer from the
/// journal once it took the request.
fn of_controller(
    dir: &std::path::Path,
    request: &Request,
    pid: u32,
    wait: bool,
) -> Result<Answer, String> {
    let mut journal = JournalTail::at_end(dir);
    let path = crate::request::write(dir, request).map_err(|e| e.to_string())?;
    let asked = format!(
        "asked the controller (pid {pid}) to {} {}",
        request.verb.word(),
        request.object.spoken()
    );
    if !wait {
        return Ok(Answer {
            lines: vec![asked],
            code: 0,
        });
    }
    let start = Instant::now();
    while path.exists() {
        if start.elapsed() > ANSWER_TIMEOUT || Lock::holder(dir) != Some(pid) {
            return Ok(Answer {
                lines: vec![
                    asked,
                    format!(
                        "no answer within {}s: the request stays in {} for the controller's next round",
                        ANSWER_TIMEOUT.as_secs(),
                        path.display()
                    ),
                ],
                code: 2,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut lines = vec![asked];
    let mut code = 0;
    for line in journal.read() {
        match line.entry {
            Entry::Acted(a) if concerns(&a.action, request) => {
                if !a.ok() {
                    code = 2;
                }
                lines.push(told(&a));
            }
            Entry::Refused(r) if r.object == request.object => {
                code = code.max(1);
                lines.push(format!("refused: {}: {}", r.object.spoken(), r.reason));
            }
            _ => {}
        }
    }
    if lines.len() == 1 {
        lines.push(match request.verb {
            Verb::Restart => format!(
                "taken: {}'s agent had exited, and restarts as after any crash",
                request.object.spoken()
            ),
            Verb::Return => format!(
                "taken: {} was already on its way back",
                request.object.spoken()
            ),
        });
    }
    Ok(Answer { lines, code })
}

/// Whether `action` is one a request like `request` makes.
fn concerns(action: &Action, request: &Request) -> bool {
    let requested = action.to_string().contains(crate::plan::REQUESTED);
    let object = match (&request.object, action) {
        (ObjectRef::Session(name), Action::Session(a)) => a.name() == name,
        (ObjectRef::Task { inbox, name }, Action::Task(t)) => {
            let key = t.key();
            key.name == *name && inbox.as_ref().is_none_or(|i| key.inbox == *i)
        }
        // A returned task's turn is stopped through its session.
        (ObjectRef::Task { name, .. }, Action::Session(a)) => a.to_string().contains(name.as_str()),
        _ => false,
    };
    requested && object
}

/// An action journaled, in a line.
fn told(a: &Acted) -> String {
    let line = format!("{} {}", a.action.sign(), a.action);
    match (&a.error, &a.fresh) {
        (Some(e), _) => format!("{line}: failed: {e}"),
        (None, Some(why)) => format!("{line}: done, started afresh: {why}"),
        (None, None) => format!("{line}: done"),
    }
}

/// Why a request must wait.
fn not_now(request: &Request) -> String {
    format!(
        "not now: {} is between two steps (a task's text on its way, or its agent exited); \
         try again in a moment",
        request.object.spoken()
    )
}

/// Carries the request out in this process (no controller runs), journaled as the
/// operator's, the facts recorded.
fn here(desired: &Desired, settings: &Settings, request: &Request) -> Result<Answer, String> {
    let dir = &settings.state_dir;
    let runtime = super::runtime()?;
    let tmux = runtime
        .block_on(super::observer(settings))
        .map_err(|e| format!("tmux: {e}"))?;
    let (mut observed, _) = runtime
        .block_on(super::look_on(tmux.as_ref(), desired, settings))
        .map_err(|e| e.to_string())?;
    observe_request(&mut observed, request);
    let owner = &settings.spec.owner;
    let (plan, done) = crate::plan::plan_request(&desired.manifests, &observed, owner, request);
    let mut lines: Vec<String> = plan
        .refused
        .iter()
        .map(|r| format!("refused: {}: {}", r.object.spoken(), r.reason))
        .collect();
    if !plan.refused.is_empty() {
        return Ok(Answer { lines, code: 1 });
    }
    if !done {
        lines.push(not_now(request));
        return Ok(Answer { lines, code: 2 });
    }
    let mut watcher = Collect {
        journal: Journal::open(dir).ok(),
        lines,
    };
    let ctx = crate::act::Context {
        tmux: tmux.as_ref(),
        owner,
        state_dir: Some(dir),
    };
    let done = runtime.block_on(round::carry_out(&plan.actions, ctx, &mut watcher, |_| {}));
    let mut facts = plan.facts.clone();
    for (action, result) in &done {
        crate::plan::record(&mut facts, action, result, jiff::Timestamp::now());
    }
    if let Err(e) = facts.save(dir) {
        watcher.lines.push(format!("warning: {e}"));
    }
    let failed = done.iter().any(|(_, r)| r.is_err());
    Ok(Answer {
        lines: watcher.lines,
        code: if failed { 2 } else { 0 },
    })
}

/// What the controller's observation adds for a request it finds: the transcript of the
/// conversation a session to restart holds.
fn observe_request(observed: &mut crate::observe::Observed, request: &Request) {
    if let (Verb::Restart, ObjectRef::Session(name)) = (request.verb, &request.object) {
        let restarting = std::collections::BTreeSet::from([name.as_str()]);
        let found = crate::observe::transcripts(&observed.facts, &restarting);
        observed.transcripts.extend(found);
    }
}

/// Journals each action as the operator's and keeps a line for it.
struct Collect {
    journal: Option<Journal>,
    lines: Vec<String>,
}

impl Watcher for Collect {
    fn acted(&mut self, action: &Action, result: &Result<Outcome, String>) {
        let acted = Acted::new(action, result, Some(Origin::Operator));
        if let Some(j) = self.journal.as_mut() {
            let _ = j.record(acted.clone());
        }
        let mut line = told(&acted);
        if let Ok(Outcome::Resumed(id)) = result {
            line.push_str(&format!(" (conversation {id} resumed)"));
        }
        self.lines.push(line);
    }
}
