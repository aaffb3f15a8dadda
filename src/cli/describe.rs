//! `failover describe`: everything about one session, account, inbox or task on one
//! screen, kubectl-describe style, closing with its events from the journal.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::api::{Manifests, Settings};
use crate::controller::round::Desired;
use crate::journal::story::Told;
use crate::object::ObjectRef;
use crate::observe::Observed;
use crate::plan::Plan;

/// What to describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Kind {
    /// A tmux session: role, account, agent, conversation, task, screen, reports.
    Session,
    /// An account: state, use, sessions on it.
    Account,
    /// An inbox: its tasks waiting, running and ended.
    Inbox,
    /// A task, by its file name: where it is, who runs it, how it ended.
    Task,
}

/// Arguments of `failover describe`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// What kind of object.
    #[arg(value_enum)]
    kind: Kind,
    /// Its name (a task's file name as dropped).
    name: String,
    /// Manifests to read; without it, the ones the controller last ran with.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    files: Vec<PathBuf>,
    /// How many of its latest events to show.
    #[arg(long, default_value_t = 15)]
    events: usize,
}

/// Runs `describe`: exit 0, 1 when there is no such object, 2 when nothing can be read.
pub(super) fn run(args: Args) -> ExitCode {
    match describe(&args) {
        Ok(Some(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("error: {} {:?} not found", kind_name(args.kind), args.name);
            ExitCode::from(1)
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The kind as `describe` takes it (`session`).
pub(super) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Session => "session",
        Kind::Account => "account",
        Kind::Inbox => "inbox",
        Kind::Task => "task",
    }
}

/// What one description needs.
struct World<'a> {
    m: &'a Manifests,
    classifiers: &'a crate::screen::Classifiers,
    observed: &'a Observed,
    plan: &'a Plan,
    owner: &'a str,
    tz: jiff::tz::TimeZone,
}

fn describe(args: &Args) -> Result<Option<String>, String> {
    let desired = Desired::adopt(super::get::manifests(&args.files)?).map_err(|e| e.to_string())?;
    let settings =
        Settings::from_env(&desired.manifests.controller.spec).map_err(|e| e.to_string())?;
    let runtime = super::runtime()?;
    let (observed, plan) = runtime
        .block_on(super::look(&desired, &settings))
        .map_err(|e| e.to_string())?;
    let look = Look {
        desired: &desired,
        settings: &settings,
        observed: &observed,
        plan: &plan,
    };
    Ok(text(&look, args.kind, &args.name, args.events))
}

/// A look already taken, with what it was taken for: what [`text`] describes from.
pub(super) struct Look<'a> {
    /// The manifests, adopted.
    pub desired: &'a Desired,
    /// Their settings (owner, state folder).
    pub settings: &'a Settings,
    /// What was observed.
    pub observed: &'a Observed,
    /// What the round would do.
    pub plan: &'a Plan,
}

/// The description of the object `kind`/`name` with its latest `n` events; `None` when
/// there is no such object. `describe` prints it; `top` shows it in a pane.
pub(super) fn text(look: &Look<'_>, kind: Kind, name: &str, n: usize) -> Option<String> {
    let m = &look.desired.manifests;
    let w = World {
        m,
        classifiers: &look.desired.classifiers,
        observed: look.observed,
        plan: look.plan,
        owner: &look.settings.spec.owner,
        tz: jiff::tz::TimeZone::system(),
    };
    let body = match kind {
        Kind::Session => session(&w, name),
        Kind::Account => account(&w, name),
        Kind::Inbox => inbox(&w, name),
        Kind::Task => task(&w, name),
    };
    let mut out = body?;
    let object = match kind {
        Kind::Session => ObjectRef::Session(name.to_owned()),
        Kind::Account => ObjectRef::Account(name.to_owned()),
        Kind::Inbox => ObjectRef::Inbox(name.to_owned()),
        Kind::Task => crate::plan::TaskKey::parse(name).map_or_else(
            || ObjectRef::Task {
                inbox: None,
                name: name.to_owned(),
            },
            |k| ObjectRef::task(k.inbox, k.name),
        ),
    };
    let told = super::events::about(&look.settings.state_dir, &object);
    events(&mut out, &object, &told, n, &w.tz);
    Some(out)
}

/// `Label:` padded to one column.
fn field(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{:<17}{value}", format!("{label}:"));
}

fn at(t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    super::events::local(&t.to_string(), tz)
}

fn session(w: &World<'_>, name: &str) -> Option<String> {
    let observed = w.observed.sessions.get(name);
    let owner = w.m.session_owner(name);
    if observed.is_none() && owner.is_none() {
        return None;
    }
    let mut out = String::new();
    field(&mut out, "Name", name);
    let role = owner.map_or("none (not in the manifests)".to_owned(), |o| {
        crate::plan::Role::from(o).to_string()
    });
    field(&mut out, "Role", role);
    let Some(s) = observed else {
        field(
            &mut out,
            "State",
            "missing (apply or the controller creates it)",
        );
        return Some(out);
    };
    let ours = s.is_ours(w.owner);
    field(
        &mut out,
        "Owner",
        if ours {
            format!("{} (ours)", w.owner)
        } else {
            "not ours: failover never touches it".to_owned()
        },
    );
    field(&mut out, "Account", s.account.as_deref().unwrap_or("-"));
    if let Some(agent) =
        w.m.session_owner(name)
            .map(|_| w.m.agent_under(name, s.account.as_deref()))
        && let Some(profile) = w.m.agents.iter().find(|a| a.name == agent)
    {
        field(
            &mut out,
            "Agent",
            format!("{agent}: {}", profile.spec.command.join(" ")),
        );
    }
    field(&mut out, "Folder", s.pane.path.display());
    let state = format!(
        "{}{}",
        if s.pane.dead {
            crate::observe::SessionState::Exited
        } else {
            crate::observe::SessionState::Running
        },
        s.pane
            .dead_status
            .filter(|_| s.pane.dead)
            .map_or(String::new(), |c| format!(" (status {c})"))
    );
    field(
        &mut out,
        "Pane",
        format!("{}, pid {}, {state}", s.pane.id, s.pane.pid),
    );
    let facts = w.observed.facts.sessions.get(name);
    match facts.and_then(|f| f.agent.as_ref()) {
        Some(agent) => {
            field(&mut out, "Conversation", &agent.conversation);
            field(&mut out, "Transcript", agent.transcript.display());
        }
        None => field(&mut out, "Conversation", "- (no report from its agent yet)"),
    }
    match facts.and_then(|f| f.task.as_ref()) {
        Some(t) => {
            field(
                &mut out,
                "Task",
                format!("{} (inbox {}, try {})", t.task, t.inbox, t.attempt),
            );
            field(
                &mut out,
                "  Stage",
                format!("{:?} since {}", t.stage, at(t.since, &w.tz)).to_lowercase(),
            );
            if let Some(started) = t.started {
                field(&mut out, "  Submitted", at(started, &w.tz));
            }
        }
        None => field(&mut out, "Task", "-"),
    }
    if let Some(screen) = w.observed.screens.get(name)
        && let Some(c) = w.classifiers.of_session(w.m, name, s.account.as_deref())
    {
        let now = crate::screen::Local {
            now: jiff::Zoned::now(),
            zones: jiff::tz::db().clone(),
        };
        let v = c.read(screen, &now);
        let line = v
            .line
            .as_deref()
            .map_or(String::new(), |l| format!(": \"{}\"", l.trim()));
        let name = |v: &dyn erased::Name| v.name();
        let (state, class) = (name(&v.state), name(&v.class));
        let reading = if state == class {
            state
        } else {
            format!("{state}, reads {class}")
        };
        field(&mut out, "Screen", format!("{reading}{line}"));
    }
    if let Some(turn) = facts.and_then(|f| f.last_turn.as_ref()) {
        let error = turn
            .error
            .as_ref()
            .map_or(String::new(), |e| format!(", ended on {e}"));
        field(
            &mut out,
            "Last turn",
            format!(
                "{} (Stop report{error}): \"{}\"",
                at(turn.at, &w.tz),
                first_line(&turn.message)
            ),
        );
    }
    if let Some(account) = &s.account {
        usage(&mut out, w, account);
    }
    if let Some(r) = w.observed.facts.restarts.get(name) {
        field(
            &mut out,
            "Restarts",
            format!("{} (last {})", r.count, at(r.last, &w.tz)),
        );
    } else {
        field(&mut out, "Restarts", 0);
    }
    Some(out)
}

/// The serde name of a screen reading (`quota-exhausted`).
mod erased {
    /// A reading named as it serializes.
    pub(super) trait Name {
        fn name(&self) -> String;
    }

    impl<T: serde::Serialize> Name for T {
        fn name(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }
    }
}

fn first_line(text: &str) -> String {
    crate::journal::story::first_line(text, 100)
}

/// The account's use, as its agents' status lines last said.
fn usage(out: &mut String, w: &World<'_>, account: &str) {
    let Some(reading) = w.plan.facts.usage.get(account) else {
        field(out, "Usage", "- (no status line report yet)");
        return;
    };
    let window = |name: &str, win: Option<crate::report::Window>| {
        win.map(|x| format!("{name} {:.0}% (resets {})", x.used, at(x.resets_at, &w.tz)))
    };
    let windows: Vec<String> = [
        window("5h", reading.usage.five_hour),
        window("7d", reading.usage.seven_day),
    ]
    .into_iter()
    .flatten()
    .collect();
    field(
        out,
        "Usage",
        format!(
            "account {account}: {} (status line of {} at {})",
            if windows.is_empty() {
                "-".to_owned()
            } else {
                windows.join(", ")
            },
            reading.session,
            at(reading.at, &w.tz)
        ),
    );
}

fn account(w: &World<'_>, name: &str) -> Option<String> {
    let a = w.m.account(name)?;
    let rows = super::get::accounts(w.m, w.observed, w.plan, jiff::Timestamp::now());
    let row = rows.iter().find(|r| r.name == name)?;
    let mut out = String::new();
    field(&mut out, "Name", name);
    field(&mut out, "Priority", a.spec.priority);
    field(&mut out, "Home", a.spec.home.display());
    field(&mut out, "State", &row.state);
    if let Some(until) = w.observed.facts.exhausted_until.get(name) {
        field(&mut out, "Exhausted until", at(*until, &w.tz));
    }
    usage(&mut out, w, name);
    let sessions: Vec<&str> = w
        .observed
        .sessions
        .values()
        .filter(|s| s.account.as_deref() == Some(name))
        .map(|s| s.name.as_str())
        .collect();
    field(
        &mut out,
        "Sessions",
        if sessions.is_empty() {
            "-".to_owned()
        } else {
            sessions.join(", ")
        },
    );
    if let Some(swap) = &w.observed.facts.family(a.spec.agent).last_swap
        && (swap.from == name || swap.to == name)
    {
        field(
            &mut out,
            "Last swap",
            format!(
                "{} -> {} at {} ({})",
                swap.from,
                swap.to,
                at(swap.at, &w.tz),
                swap.reason
            ),
        );
    }
    Some(out)
}

fn inbox(w: &World<'_>, name: &str) -> Option<String> {
    let i = w.m.inboxes.iter().find(|i| i.name == name)?;
    let rows = super::get::inboxes(w.m, w.observed, w.plan, jiff::Timestamp::now());
    let row = rows.iter().find(|r| r.name == name)?;
    let mut out = String::new();
    field(&mut out, "Name", name);
    field(&mut out, "Path", i.spec.path.display());
    field(&mut out, "Pool", &i.spec.pool);
    field(&mut out, "Glob", &i.spec.glob);
    for (label, count) in [
        ("Waiting", row.waiting),
        ("Active", row.active),
        ("Done", row.done),
        ("Failed", row.failed),
    ] {
        field(&mut out, label, count);
    }
    field(&mut out, "Queue", &row.queue);
    if let Some(state) = w.observed.inboxes.get(name) {
        for t in state.waiting.iter().take(10) {
            field(&mut out, "  waits", &t.name);
        }
        for t in &state.active {
            field(
                &mut out,
                "  runs",
                format!("{} in session {} (try {})", t.task, t.session, t.attempt),
            );
        }
    }
    Some(out)
}

fn task(w: &World<'_>, name: &str) -> Option<String> {
    let mut out = String::new();
    let mut found = false;
    for i in &w.m.inboxes {
        let folders = crate::tasks::Folders::of(&i.spec.path);
        let running = w
            .observed
            .inboxes
            .get(&i.name)
            .and_then(|s| s.active.iter().find(|t| t.task == name));
        let place = if let Some(t) = running {
            Some(format!(
                "running in session {} (try {}), active/{}",
                t.session, t.attempt, t.file
            ))
        } else if i.spec.path.join(name).exists() {
            Some("waiting in the inbox".to_owned())
        } else if folders.done.join(name).exists() {
            Some("done".to_owned())
        } else if folders.failed.join(name).exists() {
            Some("failed".to_owned())
        } else {
            None
        };
        let Some(place) = place else { continue };
        found = true;
        field(&mut out, "Name", name);
        field(
            &mut out,
            "Inbox",
            format!("{} ({})", i.name, i.spec.path.display()),
        );
        field(&mut out, "State", place);
        for folder in [&folders.done, &folders.failed] {
            record(&mut out, &folder.join(format!("{name}.json")), &w.tz);
        }
    }
    found.then_some(out)
}

/// The task's record (`<name>.json` beside it in `done/` or `failed/`): how it ended.
fn record(out: &mut String, path: &Path, tz: &jiff::tz::TimeZone) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        field(out, "Record", format!("{} (not JSON)", path.display()));
        return;
    };
    field(out, "Record", path.display());
    for key in [
        "outcome", "session", "account", "attempt", "started", "finished", "reason",
    ] {
        if let Some(value) = v.get(key).filter(|v| !v.is_null()) {
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            let text = if key == "started" || key == "finished" {
                super::events::local(&text, tz)
            } else {
                text
            };
            field(out, &format!("  {key}"), text);
        }
    }
    if let Some(reply) = v.get("reply").and_then(|r| r.as_str()) {
        field(out, "  reply", format!("\"{}\"", first_line(reply)));
    }
    // Where it went: each hand-off to another family.
    for h in v["handOffs"].as_array().into_iter().flatten() {
        field(out, "  handed off", h.as_str().unwrap_or_default());
    }
}

/// The object's latest `n` events, newest last.
fn events(out: &mut String, object: &ObjectRef, told: &[Told], n: usize, tz: &jiff::tz::TimeZone) {
    out.push_str("Events:\n");
    if told.is_empty() {
        out.push_str("  <none>\n");
        return;
    }
    let skip = told.len().saturating_sub(n);
    if skip > 0 {
        let _ = writeln!(
            out,
            "  ({skip} earlier: failover get events --for {object})"
        );
    }
    for t in &told[skip..] {
        let _ = writeln!(
            out,
            "  {}  {:<14}  {}",
            super::events::local(&t.time, tz),
            t.event,
            t.message
        );
    }
}
