//! Codex's app-server daemons: without `--no-daemon`, the first `codex` of a home
//! starts `codex app-server` and its pid-update loop, each in a session of its own,
//! writes their pids into `$CODEX_HOME/app-server-daemon/{daemon,daemon-updater}.pid`
//! (`{"pid":…,"processIdentity":{"startTicks":…}}`), and leaves them running after the
//! TUI exits. Failover ends them once the last of its sessions under that home ended.
//!
//! A daemon is ours to end only when everything says so: the pid file names it, it
//! runs with the start ticks the file recorded (a reused pid does not), its
//! environment names this home in `CODEX_HOME`, and it was started by one of
//! failover's agents (`FAILOVER_SESSION` in that environment: an operator's own
//! `codex` in the same home starts daemons without it).

use std::path::Path;

/// The folder of a Codex home that holds the daemons' pid files.
pub(crate) const DAEMON_DIR: &str = "app-server-daemon";
/// The pid files in it.
const PID_FILES: [&str; 2] = ["daemon.pid", "daemon-updater.pid"];

/// A daemon running from a home: its pid and start ticks (`/proc/<pid>/stat`).
pub(crate) type Daemon = (u32, u64);

/// Why a daemon could not be ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// `kill` could not be run, or failed.
    #[error("cannot end daemon {pid} of Codex home {home}: {why}")]
    Kill {
        /// The daemon.
        pid: u32,
        /// Its home.
        home: String,
        /// Why.
        why: String,
    },
}

/// The daemons of Codex home `home` that failover's agents started and that still run.
pub(crate) fn running(home: &Path) -> Vec<Daemon> {
    PID_FILES
        .iter()
        .filter_map(|file| recorded(&home.join(DAEMON_DIR).join(file)))
        .filter(|daemon| ours(home, *daemon))
        .collect()
}

/// The pid and start ticks a pid file records.
fn recorded(path: &Path) -> Option<Daemon> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let pid = u32::try_from(v.get("pid")?.as_u64()?).ok()?;
    let ticks = v.pointer("/processIdentity/startTicks")?.as_u64()?;
    Some((pid, ticks))
}

/// Whether `daemon` runs now, started at its ticks, from `home`, by one of ours.
fn ours(home: &Path, (pid, ticks): Daemon) -> bool {
    if pid <= 1 || !crate::procfs::alive(pid) || crate::procfs::start_time(pid) != Some(ticks) {
        return false;
    }
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let mut home_here = false;
    let mut started_by_us = false;
    for var in environ.split(|b| *b == 0) {
        let var = String::from_utf8_lossy(var);
        if let Some(value) = var.strip_prefix("CODEX_HOME=") {
            home_here = Path::new(value) == home;
        }
        if var.starts_with(&format!("{}=", crate::report::ENV_SESSION)) {
            started_by_us = true;
        }
    }
    home_here && started_by_us
}

/// Ends `daemons` of `home` (SIGTERM), each checked again first: one that is gone or
/// no longer the same process is left alone.
pub(crate) fn end(home: &Path, daemons: &[Daemon]) -> Result<(), Error> {
    for daemon in daemons.iter().copied().filter(|d| ours(home, *d)) {
        let (pid, _) = daemon;
        let fail = |why: String| Error::Kill {
            pid,
            home: home.display().to_string(),
            why,
        };
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| fail(e.to_string()))?;
        if !status.success() && crate::procfs::alive(pid) {
            return Err(fail(format!("kill exited with {status}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in daemon: `sleep` with the environment a daemon of `home` has, and its
    /// pid file written as Codex writes it.
    fn daemon(home: &Path, session: bool, file: &str) -> std::process::Child {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30").env("CODEX_HOME", home);
        if session {
            cmd.env(crate::report::ENV_SESSION, "cx-0");
        } else {
            cmd.env_remove(crate::report::ENV_SESSION);
        }
        let child = cmd.spawn().unwrap();
        // Until `sleep` runs, /proc shows the forked test's environment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while crate::procfs::argv(child.id())
            .and_then(|a| a.first().cloned())
            .as_deref()
            != Some("sleep")
        {
            assert!(std::time::Instant::now() < deadline, "sleep never ran");
            std::thread::yield_now();
        }
        let ticks = crate::procfs::start_time(child.id()).unwrap();
        let dir = home.join(DAEMON_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        let json = format!(
            r#"{{"pid":{},"processStartTime":"Sun Dec  6 02:06:25 2026","processIdentity":{{"bootId":"b","startTicks":{ticks}}}}}"#,
            child.id()
        );
        std::fs::write(dir.join(file), json).unwrap();
        child
    }

    /// Waits (with a deadline) for `child` to end; whether it did.
    fn ended(child: &mut std::process::Child) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    #[test]
    fn the_daemons_our_agents_started_from_a_home_should_be_found_and_ended() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("hx");
        let mut a = daemon(&home, true, "daemon.pid");
        let mut b = daemon(&home, true, "daemon-updater.pid");
        let found = running(&home);
        assert_eq!(
            found.iter().map(|d| d.0).collect::<Vec<_>>(),
            [a.id(), b.id()]
        );
        end(&home, &found).unwrap();
        assert!(ended(&mut a) && ended(&mut b));
        assert!(running(&home).is_empty(), "gone: nothing left to end");
    }

    #[test]
    fn a_daemon_of_another_home_or_not_started_by_us_should_never_be_ended() {
        let dir = tempfile::tempdir().unwrap();
        let (home, other) = (dir.path().join("hx"), dir.path().join("hy"));
        // The operator's own `codex` in the same home: no FAILOVER_SESSION.
        let mut theirs = daemon(&home, false, "daemon.pid");
        // A pid file naming a process of another home.
        let mut elsewhere = daemon(&other, true, "daemon-updater.pid");
        std::fs::copy(
            other.join(DAEMON_DIR).join("daemon-updater.pid"),
            home.join(DAEMON_DIR).join("daemon-updater.pid"),
        )
        .unwrap();
        assert!(running(&home).is_empty());
        // Asked to end them anyway (a stale plan): checked again, left alone.
        let stale = [(theirs.id(), 0), (elsewhere.id(), 0)];
        end(&home, &stale).unwrap();
        assert!(theirs.try_wait().unwrap().is_none());
        assert!(elsewhere.try_wait().unwrap().is_none());
        theirs.kill().unwrap();
        elsewhere.kill().unwrap();
        let _ = (theirs.wait(), elsewhere.wait());
    }
}
