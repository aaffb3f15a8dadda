//! `failover get`: what the controller sees and wants, as a table, YAML or JSON.

use crate::state::paths::RUNNING_FILE;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

pub(super) use super::table::{Format, What};
use super::table::{Row, Table};
pub(super) use crate::board::rows::{accounts, countdown, inboxes, last_swaps, sessions};
pub(super) use crate::board::{AccountRow, InboxRow, SessionRow};

use crate::api::{ControllerConfigSpec, Manifests, Settings};
use crate::controller::handoff::{ManifestSet, Status};
use crate::controller::lock::Lock;
use crate::controller::round::Desired;

/// Arguments of `failover get`.
#[derive(Debug, clap::Args)]
pub(super) struct GetArgs {
    /// What to show.
    #[arg(value_enum, default_value = "sessions")]
    what: What,
    /// Manifests to read; without it, the ones the controller last ran with.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    output: Format,
    /// Keep watching: redraw (on a terminal) or print a line per change (in a pipe)
    /// whenever the controller writes to its state folder. Ctrl-C to stop.
    #[arg(short = 'w', long)]
    watch: bool,
    /// Sessions, accounts and inboxes of every node of the fleet, read from etcd.
    #[arg(long)]
    fleet: bool,
    /// Events only: those younger than this (`30m`, `1h`, `2d`).
    #[arg(long, value_name = "DURATION")]
    since: Option<crate::api::Duration>,
    /// Events only: those about this object (`session/w-7`, `account/a`, `task/t.md`,
    /// `inbox/i`, `controller`).
    #[arg(long = "for", value_name = "KIND/NAME")]
    object: Option<crate::object::ObjectRef>,
}

/// Runs `get`: exit 0, or 2 when nothing can be read.
pub(super) fn run(args: GetArgs) -> ExitCode {
    if (args.since.is_some() || args.object.is_some()) && args.what != What::Events {
        eprintln!("error: --since and --for apply to `get events` only");
        return ExitCode::from(2);
    }
    if args.what == What::Events {
        let dir = match state_dir(&args.files) {
            Ok(dir) => dir,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        };
        let query = super::events::Query {
            since: args.since.map(|d| d.0),
            object: args.object.as_ref(),
            format: args.output,
            watch: args.watch,
        };
        return super::events::run(&dir, &query);
    }
    if args.watch && args.what != What::Nodes && !args.fleet {
        return watch(&args);
    }
    let collected = if args.what == What::Nodes || args.fleet {
        manifests(&args.files)
            .and_then(|m| super::fleet::collect(&m.controller.spec.fleet, args.what))
    } else {
        collect(&args)
    };
    match collected {
        Ok((rows, footer)) => {
            print!("{}", rows.render(args.output, &footer));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The state folder: the manifests' when given, else `FAILOVER_STATE_DIR` or the
/// default.
fn state_dir(files: &[PathBuf]) -> Result<PathBuf, String> {
    let spec = if files.is_empty() {
        ControllerConfigSpec::default()
    } else {
        manifests(files)?.controller.spec
    };
    Settings::from_env(&spec)
        .map(|s| s.state_dir)
        .map_err(|e| e.to_string())
}

/// The shortest time between two looks of `get -w`.
const REDRAW: std::time::Duration = std::time::Duration::from_millis(300);

/// `get -w`: the table again each time the state folder changes; in a pipe, the
/// table once and then one line per row that changed (`gone` for a row that left).
fn watch(args: &GetArgs) -> ExitCode {
    use std::io::{IsTerminal, Write};
    // The manifests are read and adopted once; each change costs one look.
    let viewer = match Viewer::new(&args.files) {
        Ok(v) => v,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let dir = viewer.settings.state_dir.clone();
    let follow = match super::follow::Follow::new(&dir) {
        Ok(f) => f,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let terminal = std::io::stdout().is_terminal();
    let mut journal = super::follow::JournalTail::new(&dir);
    journal.read();
    let mut shown: Option<Rows> = None;
    loop {
        let (rows, footer) = match viewer.rows(args.what) {
            Ok(r) => r,
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        };
        let recreated = recreated(&journal.read());
        let text = match (&shown, terminal) {
            (_, true) => format!(
                "\x1b[2J\x1b[H{}(watching {}; Ctrl-C to stop)\n",
                rows.render(args.output, &footer),
                dir.display()
            ),
            (None, false) => rows.render(args.output, &[]),
            (Some(before), false) => changes(before, &rows, &recreated, args.output),
        };
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return ExitCode::SUCCESS;
        }
        shown = Some(rows);
        let drawn = std::time::Instant::now();
        if !follow.wait() {
            return ExitCode::SUCCESS;
        }
        // The controller writes its facts each round that learnt something: a look at
        // most every REDRAW, not one per write.
        if let Some(rest) = REDRAW.checked_sub(drawn.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// The sessions the journal says were created: those that were there before had gone.
fn recreated(lines: &[crate::journal::Line]) -> Vec<String> {
    use crate::journal::Entry;
    use crate::plan::{Action, SessionAction};
    lines
        .iter()
        .filter_map(|l| match &l.entry {
            Entry::Acted(a) if a.ok() => match &a.action {
                Action::Session(SessionAction::CreateSession { session, .. }) => {
                    Some(session.name.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// One line per row that changed since `before`, in `format`: a row that left (or
/// that the journal says was created again) is told `gone` first.
fn changes(before: &Rows, after: &Rows, recreated: &[String], format: Format) -> String {
    let name = |r: &Value| r["name"].as_str().map(str::to_owned);
    let mut lines = Vec::new();
    for old in &before.rows {
        let n = name(old);
        let now = after.rows.iter().find(|r| name(r) == n);
        if now.is_none() || (n.as_ref().is_some_and(|n| recreated.contains(n)) && now != Some(old))
        {
            let mut gone = old.clone();
            gone["state"] = Value::String("gone".to_owned());
            lines.push(gone);
        }
    }
    for row in &after.rows {
        if !before.rows.contains(row) {
            lines.push(row.clone());
        }
    }
    match format {
        Format::Table => {
            // The rows alone, without the header the first table printed.
            lines
                .into_iter()
                .map(|r| {
                    after
                        .with_rows(vec![r])
                        .lines()
                        .into_iter()
                        .nth(1)
                        .unwrap_or_default()
                        + "\n"
                })
                .collect()
        }
        Format::Json => lines
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default() + "\n")
            .collect(),
        Format::Yaml => lines
            .iter()
            .map(|r| format!("---\n{}", serde_saphyr::to_string(r).unwrap_or_default()))
            .collect(),
    }
}

pub(super) fn manifests(files: &[PathBuf]) -> Result<Manifests, String> {
    if !files.is_empty() {
        let set = ManifestSet::read(files).map_err(|e| e.to_string())?;
        return set.load().map_err(|e| e.to_string());
    }
    let settings =
        Settings::from_env(&ControllerConfigSpec::default()).map_err(|e| e.to_string())?;
    let set = ManifestSet::stored(&settings.state_dir, RUNNING_FILE)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "no manifests: give -f, or run a controller (none has run on {})",
                settings.state_dir.display()
            )
        })?;
    set.load().map_err(|e| e.to_string())
}

type Rows = Table;

fn collect(args: &GetArgs) -> Result<(Rows, Vec<String>), String> {
    Viewer::new(&args.files)?.rows(args.what)
}

/// What a look at sessions, accounts or inboxes needs, read once: the manifests
/// adopted, their settings and a runtime.
struct Viewer {
    desired: Desired,
    settings: Settings,
    runtime: tokio::runtime::Runtime,
}

impl Viewer {
    fn new(files: &[PathBuf]) -> Result<Self, String> {
        let desired = Desired::adopt(manifests(files)?).map_err(|e| e.to_string())?;
        let settings =
            Settings::from_env(&desired.manifests.controller.spec).map_err(|e| e.to_string())?;
        Ok(Self {
            desired,
            settings,
            runtime: super::runtime()?,
        })
    }

    /// One look: the rows of `what` and the footer lines.
    fn rows(&self, what: What) -> Result<(Rows, Vec<String>), String> {
        let m = &self.desired.manifests;
        let owner = &self.settings.spec.owner;
        let (observed, plan) = self
            .runtime
            .block_on(super::look(&self.desired, &self.settings))
            .map_err(|e| e.to_string())?;
        let mut footer = vec![controller_line(&self.settings.state_dir)];
        let now = jiff::Timestamp::now();
        let rows = match what {
            What::Sessions => Table::of(&sessions(m, &observed, &plan, owner, now)),
            What::Accounts => {
                footer.extend(last_swaps(m, &observed));
                Table::of(&accounts(m, &observed, &plan, now))
            }
            What::Inboxes => Table::of(&inboxes(m, &observed, &plan, now)),
            What::Events | What::Nodes => Table::default(),
        };
        Ok((rows, footer))
    }
}

/// The controller's line under every table: running or not, converged or what is left.
pub(super) fn controller_line(dir: &Path) -> String {
    match (Lock::holder(dir), Status::read(dir).ok().flatten()) {
        (Some(pid), Some(s)) if s.pid == pid => {
            let state = if s.converged {
                "converged".to_owned()
            } else {
                format!("{} pending, {} refused", s.pending.len(), s.refused.len())
            };
            let fleet = s.fleet.map_or(String::new(), |f| format!("; fleet: {f}"));
            format!(
                "controller: running (pid {pid}), {state} at {}{fleet}",
                s.updated
            )
        }
        (Some(pid), _) => format!("controller: running (pid {pid})"),
        (None, _) => "controller: not running".to_owned(),
    }
}

impl Row for SessionRow {
    fn columns() -> Vec<&'static str> {
        vec!["name", "role", "kind", "account", "state", "pid", "task"]
    }
}

impl Row for AccountRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "name", "agent", "priority", "state", "resets", "resetsIn", "fiveHour", "sevenDay",
            "sessions", "home",
        ]
    }
}

impl Row for InboxRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "name", "pool", "waiting", "active", "done", "failed", "path", "queue",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_should_list_its_columns_in_the_order_it_serializes_them() {
        super::super::table::assert_columns(&SessionRow {
            name: "w-1".into(),
            role: "pool auto".into(),
            kind: "claude-code".into(),
            account: "a".into(),
            state: "running".into(),
            pid: Some(4),
            task: String::new(),
        });
        super::super::table::assert_columns(&AccountRow {
            name: "a".into(),
            agent: "claude-code".into(),
            priority: 0,
            state: "active".into(),
            resets: String::new(),
            resets_in: String::new(),
            five_hour: None,
            seven_day: None,
            sessions: 1,
            home: "/h/a".into(),
        });
        super::super::table::assert_columns(&InboxRow {
            name: "q".into(),
            pool: "auto".into(),
            waiting: 0,
            active: 0,
            done: 0,
            failed: 0,
            path: "/q".into(),
            queue: "open".into(),
        });
    }
}
