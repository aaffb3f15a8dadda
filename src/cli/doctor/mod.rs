//! `failover doctor`: checks the machine against the manifests and says how to fix what
//! is wrong, one line per check (`✓`, `!` warning, `✗` broken).
//!
//! Each area gathers what it observes (files read, versions, the lock's holder, answers
//! from the network) into plain facts, and judges them with a pure function into
//! [`Check`]s: the judging is unit-tested without tmux or a network, the gathering is a
//! thin layer of I/O. The areas, in the order they print: the tools (`machine`), the
//! account homes, their logins and hooks (`homes`), the shared-state links and the state
//! folder (`state`), damaged state files and what was kept aside (`damage`), the
//! controller and its systemd unit (`controller`), the fleet, the
//! metrics and the notification targets (`remote`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::api::{ControllerConfigSpec, Manifests, Settings};
use crate::controller::handoff::ManifestSet;
use crate::controller::lock::Lock;
use crate::state::paths::RUNNING_FILE;

mod controller;
mod damage;
mod homes;
mod machine;
mod remote;
mod state;

/// Arguments of `failover doctor`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Manifests to check the machine against; without it, the ones the controller last
    /// ran with.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    output: Format,
}

/// How the checks are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// One aligned line per check.
    Text,
    /// One JSON object with the list of checks, for scripts.
    Json,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Status {
    /// As it should be.
    Ok,
    /// Works, but deserves a look.
    Warn,
    /// Broken: the exit code is 1.
    Fail,
}

impl Status {
    fn symbol(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Status::Ok => "\x1b[32m",
            Status::Warn => "\x1b[33m",
            Status::Fail => "\x1b[31m",
        }
    }
}

/// One check's verdict: what it concerns, what was found, and for `!` and `✗` the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Check {
    /// The check's name (`tmux`, `login`, `hooks`, …).
    pub check: &'static str,
    /// The object it concerns (`account/a`, `controller`, a path, …).
    pub object: String,
    /// How it came out.
    pub status: Status,
    /// What was found, in words.
    pub found: String,
    /// What to do, in words or as a command; `None` when nothing is to be done.
    pub fix: Option<String>,
}

impl Check {
    /// A check that passed.
    pub(super) fn ok(
        check: &'static str,
        object: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Self {
            check,
            object: object.into(),
            status: Status::Ok,
            found: found.into(),
            fix: None,
        }
    }

    /// A warning, with its fix.
    pub(super) fn warn(
        check: &'static str,
        object: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Self::ok(check, object, found)
        }
    }

    /// A failure, with its fix.
    pub(super) fn fail(
        check: &'static str,
        object: impl Into<String>,
        found: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Self::ok(check, object, found)
        }
    }
}

/// The commands the fixes name, with the manifests as the operator gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fixes {
    /// `-f A -f B`, quoted for a shell.
    files: String,
    /// The controller runs as the systemd user unit.
    pub systemd: bool,
}

impl Fixes {
    /// The fixes for the manifest files `files`.
    pub(super) fn new(files: &[String], systemd: bool) -> Self {
        let files = files
            .iter()
            .map(|f| format!("-f {}", shell_words::quote(f)))
            .collect::<Vec<_>>()
            .join(" ");
        Self { files, systemd }
    }

    /// `failover apply -f …`.
    pub(super) fn apply(&self) -> String {
        format!("failover apply {}", self.files)
    }

    /// `failover controller -f …`.
    pub(super) fn run_controller(&self) -> String {
        format!("failover controller {}", self.files)
    }

    /// How to start the controller: the unit when it is installed, else the command.
    pub(super) fn start_controller(&self) -> String {
        if self.systemd {
            "systemctl --user start failover".to_owned()
        } else {
            self.run_controller()
        }
    }

    /// How to restart the controller `pid`.
    pub(super) fn restart_controller(&self, pid: u32) -> String {
        if self.systemd {
            "systemctl --user restart failover".to_owned()
        } else {
            format!("kill {pid}; {}", self.run_controller())
        }
    }
}

/// The manifests doctor checks against, and the files the fixes name.
struct Subject {
    manifests: Manifests,
    /// The `-f` set, when given (the controller's own set otherwise).
    set: Option<ManifestSet>,
    files: Vec<String>,
}

/// Runs `doctor`: 0 when nothing is broken, 1 otherwise, 2 when it cannot run.
pub(super) fn run(args: Args) -> ExitCode {
    let subject = match subject(&args.files) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let settings = match Settings::from_env(&subject.manifests.controller.spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let checks = gather_and_judge(&subject, &settings, &runtime);
    let text = match args.output {
        Format::Text => render(&checks, super::color_stdout()),
        Format::Json => render_json(&checks),
    };
    print!("{text}");
    if checks.iter().any(|c| c.status == Status::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Every area's checks, in the order they print.
fn gather_and_judge(
    subject: &Subject,
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
) -> Vec<Check> {
    let m = &subject.manifests;
    let now = jiff::Timestamp::now();
    let unit = controller::gather_unit();
    let fixes = Fixes::new(&subject.files, unit.installed.is_some());
    let ctl = controller::gather(settings, subject.set.as_ref(), m, now);
    let mut checks = machine::judge(&machine::gather(m));
    checks.extend(homes::judge_homes(&homes::gather_homes(m), now));
    let exe_gone = ctl.holder.filter(|_| ctl.exe_removed.is_some());
    checks.extend(homes::judge_hooks(
        &homes::gather_hooks(m),
        &fixes,
        exe_gone,
    ));
    checks.extend(state::judge_links(&state::gather_links(m), &fixes));
    checks.push(state::judge_state_dir(&state::gather_state_dir(
        &settings.state_dir,
    )));
    checks.extend(damage::judge(
        &damage::gather(&settings.state_dir),
        ctl.holder,
        &fixes,
    ));
    checks.extend(controller::judge(&ctl, &fixes));
    checks.extend(controller::judge_unit(&unit, &fixes));
    let spec = &m.controller.spec;
    let remote = runtime.block_on(remote::gather(spec));
    checks.extend(remote::judge(&remote, ctl.holder.is_some(), &fixes));
    checks
}

/// The manifests of `-f`, else the controller's; prints why not and gives exit code 2.
fn subject(files: &[PathBuf]) -> Result<Subject, ExitCode> {
    // The controller's working folder, which its relative file names start from.
    let mut base = None;
    let (set, given) = if files.is_empty() {
        let settings = Settings::from_env(&ControllerConfigSpec::default()).map_err(|e| {
            eprintln!("error: {e}");
            ExitCode::from(2)
        })?;
        base = Lock::holder(&settings.state_dir).and_then(crate::procfs::cwd);
        match ManifestSet::stored(&settings.state_dir, RUNNING_FILE) {
            Ok(Some(set)) => (set, false),
            Ok(None) => {
                eprintln!(
                    "error: no manifests: give -f, or run a controller (none has run on {})",
                    settings.state_dir.display()
                );
                return Err(ExitCode::from(2));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ExitCode::from(2));
            }
        }
    } else {
        match ManifestSet::read(files) {
            Ok(set) => (set, true),
            Err(e) => return Err(cannot_run(super::report_load_error(e))),
        }
    };
    let manifests = set
        .load()
        .map_err(|e| cannot_run(super::report_load_error(e)))?;
    let names = if given {
        files.iter().map(|f| f.display().to_string()).collect()
    } else {
        set.files
            .iter()
            .map(|(name, _)| match &base {
                Some(base) if name != "-" && Path::new(name).is_relative() => {
                    base.join(name).display().to_string()
                }
                _ => name.clone(),
            })
            .collect()
    };
    Ok(Subject {
        manifests,
        set: given.then_some(set),
        files: names,
    })
}

/// Doctor cannot check against manifests it cannot read: whatever `validate` would
/// exit with, doctor exits 2.
fn cannot_run(_: ExitCode) -> ExitCode {
    ExitCode::from(2)
}

/// The checks as aligned lines, then a count; `color` paints the symbols.
fn render(checks: &[Check], color: bool) -> String {
    let check_width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let object_width = checks
        .iter()
        .map(|c| c.object.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let symbol = if color {
            format!("{}{}\x1b[0m", c.status.color(), c.status.symbol())
        } else {
            c.status.symbol().to_owned()
        };
        let fix = c
            .fix
            .as_ref()
            .map_or(String::new(), |f| format!(" — fix: {f}"));
        out.push_str(&format!(
            "{symbol} {:<check_width$}  {:<object_width$}  {}{fix}\n",
            c.check, c.object, c.found
        ));
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} checks: {} ✓, {} !, {} ✗\n",
        checks.len(),
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

/// The checks as one JSON object: `{"checks": [{check, object, status, found, fix}]}`.
fn render_json(checks: &[Check]) -> String {
    let value = serde_json::json!({ "checks": checks });
    // Strings and enums only: their JSON cannot fail.
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_should_align_the_columns_and_put_the_fix_on_the_line() {
        let checks = [
            Check::ok("tmux", "tmux", "tmux 3.4"),
            Check::fail(
                "controller",
                "controller",
                "not running",
                "failover controller -f m/",
            ),
        ];
        let text = render(&checks, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "✓ tmux        tmux        tmux 3.4");
        assert_eq!(
            lines[1],
            "✗ controller  controller  not running — fix: failover controller -f m/"
        );
        assert_eq!(lines[2], "2 checks: 1 ✓, 0 !, 1 ✗");
    }

    #[test]
    fn json_should_list_each_check_with_its_five_fields() {
        let checks = [Check::warn("agent", "agent/x", "found", "do this")];
        let v: serde_json::Value = serde_json::from_str(&render_json(&checks)).expect("json");
        assert_eq!(
            v["checks"][0],
            serde_json::json!({"check": "agent", "object": "agent/x", "status": "warn", "found": "found", "fix": "do this"})
        );
    }

    #[test]
    fn fixes_should_quote_the_files_and_prefer_the_unit() {
        let f = Fixes::new(&["my pool.yaml".to_owned()], false);
        assert_eq!(f.apply(), "failover apply -f 'my pool.yaml'");
        assert_eq!(
            f.restart_controller(7),
            "kill 7; failover controller -f 'my pool.yaml'"
        );
        let unit = Fixes::new(&["m/".to_owned()], true);
        assert_eq!(unit.start_controller(), "systemctl --user start failover");
    }
}
