//! The account homes: each exists and holds a login that has not expired, no two hold
//! the same login (by the account id the home records, never a token), and failover's
//! entries in each `settings.json` (hooks, status line) run an executable that exists
//! and is this version.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::Timestamp;
use serde_json::Value;

use super::{Check, Fixes};
use crate::agent_settings::{self, EVENTS, Observed as Settings};
use crate::api::Manifests;
use crate::login::{self, Login};

/// What one account's home holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Home {
    /// The account.
    pub account: String,
    /// Its home.
    pub home: PathBuf,
    /// Whether the home is a folder.
    pub exists: bool,
    /// The login it holds, or why it cannot be read.
    pub login: Result<Login, String>,
}

/// Reads every account's home and login.
pub(super) fn gather_homes(m: &Manifests) -> Vec<Home> {
    m.accounts
        .iter()
        .map(|a| {
            let home = a.spec.home.clone();
            Home {
                account: a.name.clone(),
                exists: home.is_dir(),
                login: login::read(&home).map_err(|e| e.to_string()),
                home,
            }
        })
        .collect()
}

/// The command that logs a home in.
fn login_fix(home: &std::path::Path) -> String {
    let home = shell_words::quote(&home.to_string_lossy()).into_owned();
    format!("log in: CLAUDE_CONFIG_DIR={home} claude, then /login")
}

/// One line per home, then one for the logins taken together (a line per login two
/// accounts share).
pub(super) fn judge_homes(homes: &[Home], now: Timestamp) -> Vec<Check> {
    let mut checks: Vec<Check> = homes.iter().map(|h| judge_home(h, now)).collect();
    let mut by_login: BTreeMap<(String, Option<String>), Vec<&Home>> = BTreeMap::new();
    for h in homes {
        if let Ok(Some(id)) = h.login.as_ref().map(Login::identity) {
            by_login.entry(id).or_default().push(h);
        }
    }
    let mut shared = false;
    for group in by_login.values().filter(|g| g.len() > 1) {
        shared = true;
        let names: Vec<String> = group
            .iter()
            .map(|h| format!("account/{}", h.account))
            .collect();
        let label = group[0]
            .login
            .as_ref()
            .ok()
            .and_then(Login::label)
            .unwrap_or("?")
            .to_owned();
        let last = group[group.len() - 1];
        checks.push(Check::fail(
            "login",
            names.join(", "),
            format!("the same login ({label}): one quota, so a swap between them gains nothing"),
            format!(
                "{} to another account, or remove Account {} from the manifests",
                login_fix(&last.home),
                last.account
            ),
        ));
    }
    if !shared && !by_login.is_empty() {
        checks.push(Check::ok(
            "login",
            "accounts",
            match homes.len() - by_login.len() {
                0 => format!("{} accounts, each its own login", homes.len()),
                unknown => format!(
                    "{} accounts: {} told apart by their logins, {unknown} that cannot be told (above)",
                    homes.len(),
                    by_login.len()
                ),
            },
        ));
    }
    checks
}

fn judge_home(h: &Home, now: Timestamp) -> Check {
    let object = format!("account/{}", h.account);
    let home = h.home.display();
    if !h.exists {
        return Check::fail(
            "home",
            object,
            format!("{home} does not exist"),
            login_fix(&h.home),
        );
    }
    let login = match &h.login {
        Ok(l) => l,
        Err(why) => {
            return Check::fail(
                "home",
                object,
                why.clone(),
                format!("repair or remove that file, then {}", login_fix(&h.home)),
            );
        }
    };
    if !login.is_present() {
        return Check::fail(
            "home",
            object,
            format!("{home} holds no login"),
            login_fix(&h.home),
        );
    }
    if login.expired(now) {
        let at = login.expires_at.map(|t| t.to_string()).unwrap_or_default();
        return Check::fail(
            "home",
            object,
            format!(
                "{home}: the login of {} expired at {at}",
                login.label().unwrap_or("this home")
            ),
            login_fix(&h.home),
        );
    }
    let plan = login
        .subscription
        .as_ref()
        .map_or(String::new(), |s| format!(" ({s})"));
    match login.label() {
        Some(label) if login.account_id.is_some() => {
            Check::ok("home", object, format!("{home}: {label}{plan}"))
        }
        _ => Check::warn(
            "home",
            object,
            format!(
                "{home}: a login{plan}, but no oauthAccount in {}: which account it is cannot be told",
                login::CONFIG_FILE
            ),
            format!(
                "start Claude Code in it once (CLAUDE_CONFIG_DIR={} claude) so that it records its account",
                shell_words::quote(&h.home.to_string_lossy())
            ),
        ),
    }
}

/// failover's entries in one account's `settings.json`, as found.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Hooks {
    /// The account.
    pub account: String,
    /// Its `settings.json`.
    pub path: PathBuf,
    /// Whether a profile in use reads reports (else failover writes no entries).
    pub wanted: bool,
    /// The file as read.
    pub settings: Settings,
    /// Each program our entries run, with whether it is executable and its `--version`.
    pub programs: BTreeMap<PathBuf, Result<String, String>>,
}

/// Reads each home's settings and asks every program our entries run for its version.
pub(super) fn gather_hooks(m: &Manifests) -> Vec<Hooks> {
    let wanted = crate::plan::reports_wanted(m);
    let mut versions: BTreeMap<PathBuf, Result<String, String>> = BTreeMap::new();
    m.accounts
        .iter()
        .filter(|a| a.spec.home.is_dir())
        .filter_map(|a| Some((a, a.spec.agent.settings_file()?)))
        .map(|(a, file)| {
            let path = a.spec.home.join(file);
            let settings = Settings::read(&path);
            let programs = entries(&settings)
                .into_values()
                .chain(status_line(&settings).into_iter().flatten())
                .map(|program| {
                    let version = versions
                        .entry(program.clone())
                        .or_insert_with(|| {
                            if super::machine::is_executable(&program) {
                                super::machine::version(&program, "--version")
                            } else if program.exists() {
                                Err("is not executable".to_owned())
                            } else {
                                Err("does not exist".to_owned())
                            }
                        })
                        .clone();
                    (program, version)
                })
                .collect();
            Hooks {
                account: a.name.clone(),
                path,
                wanted,
                settings,
                programs,
            }
        })
        .collect()
}

/// The program each hook event of ours runs.
fn entries(settings: &Settings) -> BTreeMap<&'static str, PathBuf> {
    let Settings::Json(v) = settings else {
        return BTreeMap::new();
    };
    let mut found = BTreeMap::new();
    for event in EVENTS {
        let commands = v["hooks"][event]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|group| group["hooks"].as_array())
            .flatten()
            .filter_map(|entry| entry["command"].as_str());
        for command in commands {
            if let Some(program) = program(command)
                && agent_settings::is_ours(command, false)
            {
                found.insert(event, program);
            }
        }
    }
    found
}

/// The program of our status line: `None` without one, `Some(None)` when it is the
/// operator's own.
fn status_line(settings: &Settings) -> Option<Option<PathBuf>> {
    let Settings::Json(v) = settings else {
        return None;
    };
    let command = v.get("statusLine")?.get("command").and_then(Value::as_str);
    Some(
        command
            .filter(|c| agent_settings::is_ours(c, true))
            .and_then(program),
    )
}

/// The program a command runs: its first word.
fn program(command: &str) -> Option<PathBuf> {
    shell_words::split(command)
        .ok()?
        .into_iter()
        .next()
        .map(PathBuf::from)
}

/// One line per account home whose agents are to report. `controller_exe_gone` is the
/// pid of a running controller whose binary was removed: it cannot write the entries
/// again, so the fix is its restart from this binary.
pub(super) fn judge_hooks(
    hooks: &[Hooks],
    fixes: &Fixes,
    controller_exe_gone: Option<u32>,
) -> Vec<Check> {
    let this = format!("failover {}", env!("CARGO_PKG_VERSION"));
    let fix =
        controller_exe_gone.map_or_else(|| fixes.apply(), |pid| fixes.restart_controller(pid));
    hooks
        .iter()
        .filter(|h| h.wanted)
        .map(|h| judge_one(h, &this, &fix))
        .collect()
}

fn judge_one(h: &Hooks, this: &str, fix: &str) -> Check {
    let object = format!("account/{}", h.account);
    let path = h.path.display();
    if let Settings::Invalid(why) | Settings::Unreadable(why) = &h.settings {
        return Check::fail(
            "hooks",
            object,
            format!("{path}: {why}"),
            format!("repair {path} (failover never writes a file it cannot read), then {fix}"),
        );
    }
    let found = entries(&h.settings);
    let mut missing: Vec<&str> = EVENTS
        .iter()
        .copied()
        .filter(|e| !found.contains_key(e))
        .collect();
    let status = status_line(&h.settings);
    if status.is_none() {
        missing.push("the status line");
    }
    let lacks = match (&h.settings, missing.len()) {
        (_, 0) => None,
        (Settings::Missing, _) => Some(format!("{path} does not exist")),
        (_, n) if n == EVENTS.len() + 1 => Some(format!(
            "{path} holds none of failover's hooks, nor its status line"
        )),
        _ => Some(format!("{path} lacks failover's {}", missing.join(", "))),
    };
    if let Some(found) = lacks {
        return Check::fail("hooks", object, found, fix.to_owned());
    }
    for (program, version) in &h.programs {
        let shown = program.display();
        match version {
            Err(why) => {
                return Check::fail(
                    "hooks",
                    object,
                    format!("{path}: its hooks run {shown}, which {why}"),
                    fix.to_owned(),
                );
            }
            Ok(v) if v != this => {
                return Check::fail(
                    "hooks",
                    object,
                    format!("{path}: its hooks run {shown}, {v}; this is {this}"),
                    fix.to_owned(),
                );
            }
            Ok(_) => {}
        }
    }
    let programs: Vec<String> = h.programs.keys().map(|p| p.display().to_string()).collect();
    let ran = format!("hooks and status line run {} ({this})", programs.join(", "));
    if status == Some(None) {
        return Check::warn(
            "hooks",
            object,
            format!("{ran}, but the status line is your own: this account's use is not read"),
            format!("to let failover read it, remove \"statusLine\" from {path}, then {fix}"),
        );
    }
    Check::ok("hooks", object, ran)
}

#[cfg(test)]
#[path = "homes_tests.rs"]
mod tests;
