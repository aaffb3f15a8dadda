//! `failover get`: what the controller sees and wants, as a table, YAML or JSON.

use crate::state::paths::RUNNING_FILE;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

pub(super) use super::table::{Format, What};
use super::table::{Row, Table, WindowCell};

use crate::api::{AgentKind, ControllerConfigSpec, Manifests, Settings};
use crate::controller::handoff::{ManifestSet, Status};
use crate::controller::lock::Lock;
use crate::controller::round::Desired;
use crate::observe::{Observed, SessionState};
use crate::plan::{self, Action, Plan, Role};
use crate::tasks::Folders;

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
        let rows = match what {
            What::Sessions => Table::of(&sessions(m, &observed, &plan, owner)),
            What::Accounts => {
                footer.extend(last_swaps(m, &observed));
                Table::of(&accounts(m, &observed, &plan))
            }
            What::Inboxes => Table::of(&inboxes(m, &observed, &plan)),
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

/// A row of `get sessions`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct SessionRow {
    pub name: String,
    /// `pool P`, `dedicated` or `orphan`.
    pub role: String,
    /// The family it runs (`claude-code`, `codex`): its account's.
    pub kind: String,
    pub account: String,
    pub state: String,
    pub pid: Option<u32>,
    pub task: String,
}

impl Row for SessionRow {
    fn columns() -> Vec<&'static str> {
        vec!["name", "role", "kind", "account", "state", "pid", "task"]
    }
}

/// The rows of `get sessions`: ours and the manifests' (a missing one too), by name.
pub(super) fn sessions(m: &Manifests, o: &Observed, plan: &Plan, owner: &str) -> Vec<SessionRow> {
    let mut rows = Vec::new();
    let now = jiff::Timestamp::now();
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

/// A row of `get accounts`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AccountRow {
    pub name: String,
    pub priority: i32,
    pub state: &'static str,
    pub resets: String,
    pub resets_in: String,
    pub five_hour: Option<WindowCell>,
    pub seven_day: Option<WindowCell>,
    pub sessions: usize,
    pub home: String,
}

impl Row for AccountRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "name", "priority", "state", "resets", "resetsIn", "fiveHour", "sevenDay", "sessions",
            "home",
        ]
    }
}

/// Each family's last swap, a line each (`last swap: none` for a family without one);
/// with one family, the line does not name it.
pub(super) fn last_swaps(m: &Manifests, o: &Observed) -> Vec<String> {
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

/// The ledger's own answer in `plan`: cooldown, fail-back, what the screens and the
/// agents' reports say included.
pub(super) fn accounts(m: &Manifests, o: &Observed, plan: &Plan) -> Vec<AccountRow> {
    let now = jiff::Timestamp::now();
    let usage = &plan.facts.usage;
    m.accounts_by_priority()
        .into_iter()
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
                priority: a.spec.priority,
                state,
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
pub(super) fn countdown(now: jiff::Timestamp, t: jiff::Timestamp) -> String {
    let secs = u64::try_from(t.duration_since(now).as_secs()).unwrap_or(0);
    let secs = if secs < 60 { secs } else { secs / 60 * 60 };
    crate::api::Duration(std::time::Duration::from_secs(secs)).to_string()
}

/// Whether the queues of family `kind` flow: `open`, or why tasks wait and until when
/// (every account of the family exhausted: until the first reset; its active account
/// over `quota.moveAt`).
fn queue_state(m: &Manifests, o: &Observed, plan: &Plan, kind: AgentKind) -> String {
    let now = jiff::Timestamp::now();
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
#[derive(Debug, Clone, Serialize)]
pub(super) struct InboxRow {
    pub name: String,
    pub pool: String,
    pub waiting: usize,
    pub active: usize,
    pub done: usize,
    pub failed: usize,
    pub path: String,
    pub queue: String,
}

impl Row for InboxRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "name", "pool", "waiting", "active", "done", "failed", "path", "queue",
        ]
    }
}

pub(super) fn inboxes(m: &Manifests, o: &Observed, plan: &Plan) -> Vec<InboxRow> {
    m.inboxes
        .iter()
        .map(|i| {
            let queue = queue_state(m, o, plan, plan::pool_kind(m, plan, &i.spec.pool));
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
            priority: 0,
            state: "active",
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
