//! The real Claude Code CLI in tests: finding the pinned version, seeding account homes
//! so that it starts offline, and the environment that points it at the mock API.
//!
//! The suite runs against the pinned [`VERSION`], or the one `FAILOVER_CLAUDE_VERSION`
//! names ([`NEWEST`] in CI's second run). `.ci/run` installs each with npm into
//! [`default_prefix`]; `FAILOVER_CLAUDE_CODE` names another binary. When neither is
//! there, the suite says so on the terminal and skips, unless
//! `FAILOVER_REAL_CLIENT=required`, where a missing CLI fails the test.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

pub use crate::claude_versions::{NEWEST, VERSION};

/// The version this run tests: `FAILOVER_CLAUDE_VERSION`, else [`VERSION`].
pub fn version() -> String {
    std::env::var("FAILOVER_CLAUDE_VERSION")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| VERSION.to_owned())
}

/// Where `.ci/run` installs the CLI: `$HOME/.cache/failover/claude-code-<version>`.
pub fn default_prefix() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(format!(".cache/failover/claude-code-{}", version()))
}

/// The binary of the CLI under test, or why it cannot be used.
pub fn locate() -> Result<PathBuf, String> {
    let want = version();
    let path = match std::env::var_os("FAILOVER_CLAUDE_CODE") {
        Some(path) => PathBuf::from(path),
        None => default_prefix().join("node_modules/.bin/claude"),
    };
    let out = std::process::Command::new(&path)
        .arg("--version")
        .env("DISABLE_AUTOUPDATER", "1")
        .output()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let version = String::from_utf8_lossy(&out.stdout);
    if !version.starts_with(&want) {
        return Err(format!(
            "{} is version {:?}, the suite needs {want}",
            path.display(),
            version.trim()
        ));
    }
    Ok(path)
}

/// The CLI for `test`, or `None` after telling the terminal that `test` is skipped and
/// why. Panics instead when `FAILOVER_REAL_CLIENT=required`.
pub fn locate_or_skip(test: &str) -> Option<PathBuf> {
    match locate() {
        Ok(path) => Some(path),
        Err(reason) if std::env::var("FAILOVER_REAL_CLIENT").as_deref() == Ok("required") => {
            panic!("{test}: the real Claude Code CLI is required: {reason}")
        }
        Err(reason) => {
            // Straight to the terminal: the test harness would swallow `eprintln!` of
            // a test that passes.
            let v = version();
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: the real Claude Code CLI {v} is not installed ({reason}); \
                 `npm install --prefix {} @anthropic-ai/claude-code@{v}` installs it",
                default_prefix().display()
            );
            None
        }
    }
}

/// Makes `home` an account home the CLI starts in without a person: onboarding done,
/// `workdirs` trusted, bypass-permissions mode accepted, and a subscription login whose
/// access token is `token` (what reaches the API as `Authorization: Bearer`).
pub fn seed_home(home: &Path, workdirs: &[&Path], token: &str) {
    std::fs::create_dir_all(home).unwrap_or_else(|e| panic!("mkdir {home:?}: {e}"));
    let projects: serde_json::Map<String, serde_json::Value> = workdirs
        .iter()
        .map(|w| {
            let trusted =
                json!({"hasTrustDialogAccepted": true, "hasCompletedProjectOnboarding": true});
            (w.to_string_lossy().into_owned(), trusted)
        })
        .collect();
    let settings = json!({
        "hasCompletedOnboarding": true,
        "lastOnboardingVersion": version(),
        "theme": "dark",
        "bypassPermissionsModeAccepted": true,
        "projects": projects,
    });
    write(&home.join(".claude.json"), &settings.to_string());
    let far = 4_102_444_800_000_i64; // 2100-01-01, in ms: no refresh is attempted.
    let credentials = json!({"claudeAiOauth": {
        "accessToken": token,
        "refreshToken": format!("sk-ant-ort01-{token}"),
        "expiresAt": far,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max",
    }});
    let path = home.join(".credentials.json");
    write(&path, &credentials.to_string());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .unwrap_or_else(|e| panic!("chmod {path:?}: {e}"));
}

/// The environment that runs the CLI offline against the mock at `api_url`, with its
/// sockets and temp files under `tmp`.
pub fn env(api_url: &str, tmp: &Path) -> Vec<(String, String)> {
    [
        ("ANTHROPIC_BASE_URL", api_url),
        ("DISABLE_AUTOUPDATER", "1"),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("CLAUDE_CODE_MAX_RETRIES", "1"),
        ("IS_SANDBOX", "1"),
        ("TMPDIR", &tmp.to_string_lossy()),
        ("TERM", "xterm-256color"),
        ("LANG", "C.UTF-8"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
}
