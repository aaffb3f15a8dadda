//! The machine's tools: tmux (3.2 or newer) and the agent CLIs the profiles run, found on
//! PATH, with their versions and whether the tests cover them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Check;
use crate::api::Manifests;
use crate::claude_versions::{NEWEST, VERSION};

/// How long a `--version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// What was found of the tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    /// `tmux -V`'s answer, or why there is none.
    pub tmux: Result<String, String>,
    /// Each agent profile the sessions run.
    pub agents: Vec<Agent>,
}

/// An agent profile's CLI as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Agent {
    /// The profile's name.
    pub profile: String,
    /// Its command, as the manifest says.
    pub command: Vec<String>,
    /// Where its program is, when it is there.
    pub path: Option<PathBuf>,
    /// `<program> --version`'s first line, or why there is none.
    pub version: Result<String, String>,
}

/// Looks for tmux and the programs of the profiles pools and dedicated sessions run.
pub(super) fn gather(m: &Manifests) -> Facts {
    let tmux = match find("tmux") {
        None => Err("no `tmux` on PATH".to_owned()),
        Some(path) => version(&path, "-V"),
    };
    let mut used: Vec<&str> = m
        .pools
        .iter()
        .flat_map(|p| p.spec.profiles().iter().map(String::as_str))
        .chain(m.dedicated.iter().map(|d| d.spec.agent.as_str()))
        .collect();
    used.sort_unstable();
    used.dedup();
    let agents = used
        .into_iter()
        .filter_map(|name| m.agent(name))
        .map(|profile| {
            let command = profile.spec.command.clone();
            let path = command.first().and_then(|p| find(p));
            let version = match &path {
                Some(p) => version(p, "--version"),
                None => Err("not found".to_owned()),
            };
            Agent {
                profile: profile.name.clone(),
                command,
                path,
                version,
            }
        })
        .collect();
    Facts { tmux, agents }
}

/// Judges the tools: tmux first, then one line per profile.
pub(super) fn judge(facts: &Facts) -> Vec<Check> {
    let mut checks = vec![judge_tmux(&facts.tmux)];
    checks.extend(facts.agents.iter().map(judge_agent));
    checks
}

fn judge_tmux(tmux: &Result<String, String>) -> Check {
    match tmux {
        Ok(v) if crate::tmux::version_ok(v) => {
            Check::ok("tmux", "tmux", format!("{v} (3.2 or newer needed)"))
        }
        Ok(v) => Check::fail(
            "tmux",
            "tmux",
            format!("{v} is too old: failover needs 3.2 or newer"),
            "install tmux 3.2 or newer (apt install tmux, brew install tmux)",
        ),
        Err(why) => Check::fail(
            "tmux",
            "tmux",
            why.clone(),
            "install tmux 3.2 or newer (apt install tmux, brew install tmux)",
        ),
    }
}

fn judge_agent(a: &Agent) -> Check {
    let object = format!("agent/{}", a.profile);
    let program = a.command.first().map_or("", String::as_str);
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let install = if name == "claude" {
        format!("npm install -g @anthropic-ai/claude-code@{NEWEST}")
    } else {
        format!("install {program}")
    };
    let Some(path) = &a.path else {
        return Check::fail(
            "agent",
            object,
            format!("`{program}` is not on PATH (nor an executable file)"),
            format!(
                "{install}, or give its full path in AgentProfile {} spec.command",
                a.profile
            ),
        );
    };
    if name == "failover" && a.command.get(1).is_some_and(|w| w == "sim-agent") {
        return Check::ok(
            "agent",
            object,
            format!(
                "{}: the stand-in (failover sim-agent), which the tests run",
                path.display()
            ),
        );
    }
    let version = match &a.version {
        Ok(v) => v,
        Err(why) => {
            return Check::warn(
                "agent",
                object,
                format!("{}: `--version` failed: {why}", path.display()),
                format!(
                    "run `{} --version` to see why; reinstall it if it is broken",
                    path.display()
                ),
            );
        }
    };
    if name != "claude" {
        return Check::warn(
            "agent",
            object,
            format!(
                "{}: {version}; failover's tests cover Claude Code only",
                path.display()
            ),
            "watch its first sessions (failover get sessions): the profile's screen patterns must match its screens",
        );
    }
    let number = version.split_whitespace().next().unwrap_or_default();
    if covered(number) {
        Check::ok(
            "agent",
            object,
            format!(
                "{}: Claude Code {number}, a version the tests cover",
                path.display()
            ),
        )
    } else {
        Check::warn(
            "agent",
            object,
            format!(
                "{}: Claude Code {number}; the tests cover {VERSION} to {NEWEST}",
                path.display()
            ),
            format!("{install} (or keep it, at the risk of screens the patterns do not know)"),
        )
    }
}

/// Whether Claude Code `version` is between the pinned and the newest tested version.
fn covered(version: &str) -> bool {
    let parse = |v: &str| -> Option<Vec<u64>> { v.split('.').map(|p| p.parse().ok()).collect() };
    match (parse(version), parse(VERSION), parse(NEWEST)) {
        (Some(v), Some(low), Some(high)) => low <= v && v <= high,
        _ => false,
    }
}

/// Where `program` is: itself when it names a path, else the first executable file of
/// that name on PATH.
pub(super) fn find(program: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let path = PathBuf::from(program);
        return is_executable(&path).then_some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

/// Whether `path` is a file someone may execute.
pub(super) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first line `program flag` prints, within [`VERSION_TIMEOUT`].
pub(super) fn version(program: &Path, flag: &str) -> Result<String, String> {
    let mut child = Command::new(program)
        .arg(flag)
        .env("DISABLE_AUTOUPDATER", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", VERSION_TIMEOUT.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    let line = out.lines().next().unwrap_or_default().trim().to_owned();
    match (status.success(), line.is_empty()) {
        (true, false) => Ok(line),
        (true, true) => Err("it printed nothing".to_owned()),
        (false, _) => Err(format!("it exited with {status}")),
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
