//! The controller: running (its lock's holder) from a binary that is still there, with
//! the same manifests as these, its last round recent (`status.json`, written at least
//! every heartbeat), its agents' reports arriving while they work; and the systemd user
//! unit, when one is installed: enabled, with linger on.

use std::path::{Path, PathBuf};

use jiff::{SignedDuration, Timestamp};

use super::{Check, Fixes};
use crate::api::{Manifests, Settings};
use crate::controller::HEARTBEAT;
use crate::controller::handoff::{ManifestSet, Status};
use crate::controller::lock::Lock;
use crate::state::paths::{REPORTS_DIR, RUNNING_FILE};
use crate::state::{Facts as StateFacts, Stage};

/// A status older than this means the controller stopped going round.
const STALE: SignedDuration = SignedDuration::from_secs(3 * HEARTBEAT.as_secs());

/// Agents busy this long without a report of theirs deserve a look.
const QUIET: SignedDuration = SignedDuration::from_secs(5 * 60);

/// What was found of the controller.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Facts {
    /// The lock holder's pid: the controller running, if one is.
    pub holder: Option<u32>,
    /// The binary it runs, when that was removed since it started (Linux names it
    /// `… (deleted)`, and no file is at its path any more).
    pub exe_removed: Option<PathBuf>,
    /// Its `status.json`.
    pub status: Option<Status>,
    /// The manifests it runs with (`manifests.json`), by file name and text.
    pub running: Option<Vec<(String, String)>>,
    /// The manifests given with `-f`, by file name and text (none without `-f`).
    pub these: Option<Vec<(String, String)>>,
    /// Whether a profile in use reads reports.
    pub reports_wanted: bool,
    /// When the sessions working now started working (from the facts).
    pub busy_since: Vec<Timestamp>,
    /// The last sign of a report: a report file's arrival, a status line, a turn's end.
    pub last_report: Option<Timestamp>,
    /// Now.
    pub now: Timestamp,
}

/// The set's files by base name and text: the same manifests read through another path
/// compare equal.
fn texts(set: &ManifestSet) -> Vec<(String, String)> {
    set.files
        .iter()
        .map(|(name, text)| {
            let base = Path::new(name)
                .file_name()
                .map_or(name.clone(), |b| b.to_string_lossy().into_owned());
            (base, text.clone())
        })
        .collect()
}

/// Reads the lock, the status, the running manifests and the facts.
pub(super) fn gather(
    settings: &Settings,
    these: Option<&ManifestSet>,
    m: &Manifests,
    now: Timestamp,
) -> Facts {
    let dir = &settings.state_dir;
    let holder = Lock::holder(dir);
    let facts = StateFacts::load(dir).unwrap_or_default();
    let busy_since = facts
        .sessions
        .values()
        .filter_map(|s| match &s.task {
            Some(t) if t.stage == Stage::Running => Some(t.started.unwrap_or(t.since)),
            _ => None,
        })
        .collect();
    let reports_mtime = std::fs::metadata(dir.join(REPORTS_DIR))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok());
    let last_report = facts
        .sessions
        .values()
        .flat_map(|s| [s.status_at, s.last_turn.as_ref().map(|t| t.at)])
        .chain(facts.usage.values().map(|u| Some(u.at)))
        .chain([reports_mtime])
        .flatten()
        .max();
    Facts {
        holder,
        exe_removed: holder.and_then(crate::procfs::exe).filter(|exe| {
            exe.to_str()
                .and_then(|e| e.strip_suffix(" (deleted)"))
                .is_some_and(|path| !Path::new(path).is_file())
        }),
        status: Status::read(dir).ok().flatten(),
        running: ManifestSet::stored(dir, RUNNING_FILE)
            .ok()
            .flatten()
            .map(|s| texts(&s)),
        these: these.map(texts),
        reports_wanted: crate::plan::reports_wanted(m),
        busy_since,
        last_report,
        now,
    }
}

/// How long ago `t` was, to the second.
fn ago(now: Timestamp, t: Timestamp) -> String {
    let secs = u64::try_from(now.duration_since(t).as_secs()).unwrap_or(0);
    format!(
        "{} ago",
        crate::api::Duration(std::time::Duration::from_secs(secs))
    )
}

/// The controller's lines: running, its manifests, its last round, its agents' reports.
pub(super) fn judge(f: &Facts, fixes: &Fixes) -> Vec<Check> {
    let Some(pid) = f.holder else {
        return vec![Check::fail(
            "controller",
            "controller",
            "not running: nothing keeps the sessions up or hands out tasks",
            fixes.start_controller(),
        )];
    };
    let mut checks = Vec::new();
    if let Some(exe) = &f.exe_removed {
        let exe = exe.display();
        checks.push(Check::fail(
            "controller",
            "controller",
            format!("running (pid {pid}) from {exe}: it cannot write the agents' hooks"),
            fixes.restart_controller(pid),
        ));
    } else {
        checks.push(Check::ok(
            "controller",
            "controller",
            format!("running (pid {pid})"),
        ));
    }
    match (&f.these, &f.running) {
        (None, _) => {}
        (Some(these), Some(running)) if these == running => {
            checks.push(Check::ok("manifests", "controller", "runs these manifests"));
        }
        (Some(_), Some(_)) => checks.push(Check::warn(
            "manifests",
            "controller",
            "runs other manifests than these",
            format!("{} hands these to it", fixes.apply()),
        )),
        (Some(_), None) => checks.push(Check::warn(
            "manifests",
            "controller",
            "has not recorded the manifests it runs yet",
            "run doctor again in a few seconds",
        )),
    }
    checks.push(judge_round(f, pid, fixes));
    if let Some(c) = judge_reports(f, fixes) {
        checks.push(c);
    }
    checks
}

fn judge_round(f: &Facts, pid: u32, fixes: &Fixes) -> Check {
    let Some(status) = f.status.as_ref().filter(|s| s.pid == pid) else {
        return Check::warn(
            "round",
            "controller",
            "no round finished yet",
            "run doctor again in a few seconds; if it stays, see its log",
        );
    };
    let age = f.now.duration_since(status.updated);
    if age > STALE {
        return Check::fail(
            "round",
            "controller",
            format!(
                "no round for {} (status.json at {}): it seems stuck",
                ago(f.now, status.updated).trim_end_matches(" ago"),
                status.updated
            ),
            fixes.restart_controller(pid),
        );
    }
    if let Some(error) = &status.error {
        return Check::warn(
            "round",
            "controller",
            format!("last round {}: {error}", ago(f.now, status.updated)),
            "failover get events --for controller tells more",
        );
    }
    let state = if status.converged {
        "converged".to_owned()
    } else {
        format!(
            "{} pending, {} refused",
            status.pending.len(),
            status.refused.len()
        )
    };
    let found = format!("last round {}, {state}", ago(f.now, status.updated));
    match status.refused.first() {
        Some(first) => Check::warn(
            "round",
            "controller",
            format!("{found}: {first}"),
            format!("{} shows why", fixes.apply().replacen("apply", "diff", 1)),
        ),
        None => Check::ok("round", "controller", found),
    }
}

fn judge_reports(f: &Facts, fixes: &Fixes) -> Option<Check> {
    if !f.reports_wanted {
        return None;
    }
    let busy = f.busy_since.len();
    let since = f.busy_since.iter().min()?;
    let last = f.last_report.filter(|t| f.now.duration_since(*t) <= QUIET);
    if last.is_some() || f.now.duration_since(*since) <= QUIET {
        let last = f
            .last_report
            .map_or("none yet".to_owned(), |t| ago(f.now, t));
        return Some(Check::ok(
            "reports",
            "controller",
            format!("{busy} agents working, last report {last}"),
        ));
    }
    Some(Check::warn(
        "reports",
        "controller",
        format!(
            "{busy} agents working, but no report from them for over {}: their hooks do not run",
            crate::api::Duration(QUIET.unsigned_abs())
        ),
        format!(
            "see the hooks lines above; {} writes them again",
            fixes.apply()
        ),
    ))
}

/// The systemd user unit as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unit {
    /// The unit file, when installed.
    pub installed: Option<PathBuf>,
    /// `systemctl --user is-enabled failover`'s answer, or why there is none.
    pub enabled: Result<String, String>,
    /// Whether the user lingers (their units run without a login), when it can be told.
    pub linger: Option<bool>,
}

/// Looks for `~/.config/systemd/user/failover.service` (`XDG_CONFIG_HOME` first) and,
/// when it is there, asks systemd about it.
pub(super) fn gather_unit() -> Unit {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let installed = config
        .map(|c| c.join("systemd/user/failover.service"))
        .filter(|p| p.is_file());
    if installed.is_none() {
        return Unit {
            installed,
            enabled: Err("not asked".to_owned()),
            linger: None,
        };
    }
    let enabled = std::process::Command::new("systemctl")
        .args(["--user", "is-enabled", "failover"])
        .output()
        .map_err(|e| format!("systemctl: {e}"))
        .and_then(|o| {
            let state = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if state.is_empty() {
                let why = String::from_utf8_lossy(&o.stderr);
                Err(format!(
                    "systemctl --user cannot tell: {}",
                    why.lines().next().unwrap_or("no answer")
                ))
            } else {
                Ok(state)
            }
        });
    let user = std::env::var("USER").unwrap_or_default();
    let linger = if Path::new("/var/lib/systemd/linger").join(&user).exists() {
        Some(true)
    } else {
        std::process::Command::new("loginctl")
            .args(["show-user", &user, "--property=Linger"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "Linger=yes")
    };
    Unit {
        installed,
        enabled,
        linger,
    }
}

/// The unit's lines: none installed is fine; installed, it must be enabled and linger on.
pub(super) fn judge_unit(u: &Unit, fixes: &Fixes) -> Vec<Check> {
    let Some(path) = &u.installed else {
        return vec![Check::ok(
            "systemd",
            "failover.service",
            "no user unit installed (optional: contrib/failover.service)",
        )];
    };
    let mut checks = vec![match &u.enabled {
        Ok(state) if state == "enabled" => Check::ok(
            "systemd",
            "failover.service",
            format!("{} is enabled", path.display()),
        ),
        Ok(state) => Check::fail(
            "systemd",
            "failover.service",
            format!("{} is installed but {state}", path.display()),
            "systemctl --user daemon-reload && systemctl --user enable --now failover",
        ),
        Err(why) => Check::fail(
            "systemd",
            "failover.service",
            format!("{} is installed, but {why}", path.display()),
            format!(
                "log in to a session with a user manager, or run the controller yourself: {}",
                fixes.run_controller()
            ),
        ),
    }];
    checks.push(match u.linger {
        Some(true) => Check::ok(
            "linger",
            "failover.service",
            "linger is on: it runs without a login",
        ),
        Some(false) => Check::fail(
            "linger",
            "failover.service",
            "linger is off: the unit stops when you log out",
            "loginctl enable-linger $USER",
        ),
        None => Check::warn(
            "linger",
            "failover.service",
            "cannot tell whether linger is on",
            "loginctl show-user $USER --property=Linger; loginctl enable-linger $USER turns it on",
        ),
    });
    checks
}

#[cfg(test)]
#[path = "controller_tests.rs"]
mod tests;
