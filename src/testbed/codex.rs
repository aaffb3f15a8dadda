//! The real Codex CLI in tests: finding the pinned version, seeding homes so that it
//! starts offline with no dialog against [`super::mock_responses`], and ending the
//! app-server daemons a home leaves behind.
//!
//! The suite runs against the pinned [`VERSION`], or the one `FAILOVER_CODEX_VERSION`
//! names ([`NEWEST`] in CI's second run). `.ci/run` installs each with npm into
//! [`default_prefix`]; `FAILOVER_CODEX` names another binary. When neither is there,
//! the suite says so on the terminal and skips, unless `FAILOVER_REAL_CODEX=required`,
//! where a missing CLI fails the test.
//!
//! Codex copies itself (424 MB) into `$CODEX_HOME/packages/` unless that is a link to
//! another home's: every home seeded here links it to [`shared_packages`], one folder
//! beside the install, filled once. The first `codex` of a home starts a pair of
//! daemons that outlive it; a [`Home`] ends them when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use crate::codex_versions::{NEWEST, VERSION};

/// The model the seeded provider asks the mock for.
pub const MODEL: &str = "mock-model";

/// The version this run tests: `FAILOVER_CODEX_VERSION`, else [`VERSION`].
pub fn version() -> String {
    std::env::var("FAILOVER_CODEX_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| VERSION.to_owned())
}

/// Where `.ci/run` installs the CLI: `$HOME/.cache/failover/codex-<version>`.
pub fn default_prefix() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(format!(".cache/failover/codex-{}", version()))
}

/// The one `packages/` folder every test home links to, beside the install.
pub fn shared_packages() -> PathBuf {
    default_prefix().join("shared-packages")
}

/// The binary of the CLI under test, or why it cannot be used.
pub fn locate() -> Result<PathBuf, String> {
    let want = version();
    let path = match std::env::var_os("FAILOVER_CODEX") {
        Some(path) => PathBuf::from(path),
        None => default_prefix().join("node_modules/.bin/codex"),
    };
    let out = Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let printed = String::from_utf8_lossy(&out.stdout);
    if printed.trim() != format!("codex-cli {want}") {
        return Err(format!(
            "{} is version {:?}, the suite needs {want}",
            path.display(),
            printed.trim()
        ));
    }
    Ok(path)
}

/// The CLI for `test`, or `None` after telling the terminal that `test` is skipped and
/// why. Panics instead when `FAILOVER_REAL_CODEX=required`.
pub fn locate_or_skip(test: &str) -> Option<PathBuf> {
    match locate() {
        Ok(path) => Some(path),
        Err(reason) if std::env::var("FAILOVER_REAL_CODEX").as_deref() == Ok("required") => {
            panic!("{test}: the real Codex CLI is required: {reason}")
        }
        Err(reason) => {
            // Straight to the terminal: the test harness would swallow `eprintln!` of
            // a test that passes.
            let v = version();
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: the real Codex CLI {v} is not installed ({reason}); \
                 `npm install --prefix {} @openai/codex@{v}` installs it",
                default_prefix().display()
            );
            None
        }
    }
}

/// A Codex home of a test: seeded by [`Home::seed`], its daemons ended when dropped.
#[derive(Debug)]
pub struct Home {
    path: PathBuf,
}

/// What a home is seeded with.
#[derive(Debug, Clone, Default)]
pub struct Seed<'a> {
    /// The mock's base URL ([`super::mock_responses::MockResponses::url`]).
    pub api_url: &'a str,
    /// The account's API key, what reaches the mock as `Authorization: Bearer`.
    pub token: &'a str,
    /// The folders Codex trusts.
    pub workdirs: &'a [&'a Path],
    /// The `notify` argv, when there is one (Codex appends the JSON report).
    pub notify: &'a [&'a str],
}

impl Home {
    /// Makes `path` a home the CLI starts in with no dialog and offline: the mock as
    /// its provider (no retries), the update check and the rate-limit nudge off, the
    /// credentials in `auth.json` (an API-key login whose key is `seed.token`), the
    /// work folders trusted, and `packages/` linked to [`shared_packages`].
    pub fn seed(path: &Path, seed: &Seed<'_>) -> Self {
        std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("mkdir {path:?}: {e}"));
        write(&path.join("config.toml"), &config(seed));
        let auth = serde_json::json!({"auth_mode": "apikey", "OPENAI_API_KEY": seed.token});
        let auth_path = path.join("auth.json");
        write(&auth_path, &auth.to_string());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&auth_path, std::fs::Permissions::from_mode(0o600))
            .unwrap_or_else(|e| panic!("chmod {auth_path:?}: {e}"));
        let packages = shared_packages();
        std::fs::create_dir_all(&packages).unwrap_or_else(|e| panic!("mkdir {packages:?}: {e}"));
        link(&packages, &path.join("packages"));
        Self {
            path: path.to_owned(),
        }
    }

    /// The home's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes `sessions/` a link to `other`'s, as a family's homes share their threads.
    pub fn share_sessions(&self, other: &Home) {
        let sessions = other.path.join("sessions");
        std::fs::create_dir_all(&sessions).unwrap_or_else(|e| panic!("mkdir {sessions:?}: {e}"));
        link(&sessions, &self.path.join("sessions"));
    }

    /// The environment that runs the CLI in this home, with its temp files under `tmp`.
    pub fn env(&self, tmp: &Path) -> Vec<(String, String)> {
        [
            ("CODEX_HOME", self.path.to_string_lossy().as_ref()),
            ("TMPDIR", &tmp.to_string_lossy()),
            ("TERM", "xterm-256color"),
            ("LANG", "C.UTF-8"),
            ("TZ", "UTC"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// The pids of the processes running under this home: the daemons named in
    /// `app-server-daemon/*.pid` and any process whose environment holds this
    /// `CODEX_HOME` (a TUI, a daemon not written down yet).
    pub fn processes(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = ["daemon.pid", "daemon-updater.pid"]
            .iter()
            .filter_map(|name| daemon_pid(&self.path.join("app-server-daemon").join(name)))
            .chain(all_pids())
            .filter(|pid| runs_in(*pid, &self.path))
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Ends every process of [`Home::processes`], TERM first, KILL after 2 s; true when
    /// none is left.
    pub fn end_processes(&self) -> bool {
        signal(&self.processes(), "TERM");
        let gone = super::wait_for_or_none(Duration::from_secs(2), || {
            self.processes().is_empty().then_some(())
        });
        if gone.is_some() {
            return true;
        }
        signal(&self.processes(), "KILL");
        super::wait_for_or_none(Duration::from_secs(2), || {
            self.processes().is_empty().then_some(())
        })
        .is_some()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if !self.end_processes() {
            let _ = writeln!(
                std::io::stderr(),
                "WARNING: processes of Codex home {} outlive the test: {:?}",
                self.path.display(),
                self.processes()
            );
        }
    }
}

/// The `config.toml` of a seeded home.
fn config(seed: &Seed<'_>) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut text = format!(
        "model = {model}\nmodel_provider = \"mock\"\ncheck_for_update_on_startup = false\n\
         cli_auth_credentials_store = \"file\"\n",
        model = q(MODEL)
    );
    if !seed.notify.is_empty() {
        let argv: Vec<String> = seed.notify.iter().map(|a| q(a)).collect();
        text.push_str(&format!("notify = [{}]\n", argv.join(", ")));
    }
    text.push_str(&format!(
        "\n[notice]\nhide_rate_limit_model_nudge = true\n\n\
         [model_providers.mock]\nname = \"mock\"\nbase_url = {url}\nwire_api = \"responses\"\n\
         requires_openai_auth = true\nrequest_max_retries = 0\nstream_max_retries = 0\n",
        url = q(seed.api_url)
    ));
    for dir in seed.workdirs {
        text.push_str(&format!(
            "\n[projects.{}]\ntrust_level = \"trusted\"\n",
            q(&dir.to_string_lossy())
        ));
    }
    text
}

/// The pid in one of Codex's daemon pid files (`{"pid":…,"processIdentity":…}`).
fn daemon_pid(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    u32::try_from(value["pid"].as_u64()?).ok()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid`'s environment sets `CODEX_HOME` to `home`.
fn runs_in(pid: u32, home: &Path) -> bool {
    let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let want = format!("CODEX_HOME={}", home.display());
    environ.split(|b| *b == 0).any(|v| v == want.as_bytes())
}

fn signal(pids: &[u32], name: &str) {
    for pid in pids {
        // One that ended since it was found is no error: quiet.
        let _ = Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn link(target: &Path, link: &Path) {
    if std::fs::read_link(link).is_ok_and(|t| t == target) {
        return;
    }
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("link {link:?} -> {target:?}: {e}"));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_should_name_the_mock_trust_the_folders_and_quote_the_notify_argv() {
        let work = Path::new("/w/a \"b\"");
        let seed = Seed {
            api_url: "http://127.0.0.1:9/v1",
            token: "k",
            workdirs: &[work],
            notify: &["sh", "-c", "printf %s \"$1\" > f", "sh"],
        };
        let text = config(&seed);
        assert!(
            text.contains("base_url = \"http://127.0.0.1:9/v1\"\n"),
            "{text}"
        );
        assert!(
            text.contains(r#"notify = ["sh", "-c", "printf %s \"$1\" > f", "sh"]"#),
            "{text}"
        );
        assert!(
            text.contains("[projects.\"/w/a \\\"b\\\"\"]\ntrust_level = \"trusted\""),
            "{text}"
        );
        let notify = text.find("notify").unwrap();
        assert!(
            notify < text.find("[notice]").unwrap(),
            "a top-level key: {text}"
        );
    }

    #[test]
    fn daemon_pid_should_read_codexs_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.pid");
        std::fs::write(
            &path,
            r#"{"pid":4242,"processIdentity":{"bootId":"x","startTicks":7}}"#,
        )
        .unwrap();
        assert_eq!(daemon_pid(&path), Some(4242));
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(daemon_pid(&path), None);
    }

    #[test]
    fn home_should_find_and_end_a_process_running_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home {
            path: dir.path().join("h"),
        };
        let mut child = Command::new("sleep")
            .arg("30")
            .env("CODEX_HOME", home.path())
            .spawn()
            .unwrap();
        let mut other = Command::new("sleep")
            .arg("30")
            .env("CODEX_HOME", dir.path().join("h2"))
            .spawn()
            .unwrap();
        let pid = child.id();
        super::super::wait_for(Duration::from_secs(5), "the environment", || {
            home.processes().contains(&pid).then_some(())
        });
        assert!(!home.processes().contains(&other.id()));
        // The child is reaped by a thread so that it does not linger as a zombie.
        let reaper = std::thread::spawn(move || child.wait());
        assert!(home.end_processes());
        assert!(reaper.join().unwrap().is_ok());
        assert!(
            other.try_wait().unwrap().is_none(),
            "another home's process lives"
        );
        let _ = other.kill();
        let _ = other.wait();
    }
}
