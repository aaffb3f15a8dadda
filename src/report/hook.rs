//! `failover hook`: the program Claude Code runs for each hook event and as its status
//! line, and Codex as its `notify` (`failover hook --agent codex <json>`). It reads the
//! JSON (Claude Code: on standard input; Codex: its last argument), writes one
//! [`Record`] into the folder `FAILOVER_REPORTS` names, and exits 0 at once whatever
//! happens: a missing or read-only folder, bad JSON or a full disk never show the agent
//! an error nor hold up its turn. No shell, no interpreter, no async runtime, no
//! logging.
//!
//! Outside failover (no `FAILOVER_SESSION`: the operator's own `claude` run under the
//! same account home) it records nothing and prints nothing.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use jiff::Timestamp;
use serde_json::Value;

use super::{ENV_ACCOUNT, ENV_REPORTS, ENV_SESSION, Record, STATUS_LINE, Usage, valid_session};

/// The most of its input the hook keeps: more is drained and not recorded.
const MAX_INPUT: u64 = 32 << 20;

/// Runs the hook (`status_line`: as the status line, printing the footer). Always
/// exit 0.
pub(crate) fn run(status_line: bool) -> ExitCode {
    let mut input = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let read = (&mut stdin).take(MAX_INPUT).read_to_end(&mut input).is_ok()
        && std::io::copy(&mut stdin, &mut std::io::sink()).is_ok_and(|rest| rest == 0);
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(session) = env(ENV_SESSION).filter(|s| valid_session(s)) else {
        return ExitCode::SUCCESS;
    };
    let account = env(ENV_ACCOUNT);
    let payload: Option<Value> = read.then(|| serde_json::from_slice(&input).ok()).flatten();
    if status_line {
        let usage = payload.as_ref().and_then(super::usage_of_status);
        let tz = jiff::tz::TimeZone::system();
        let line = footer(account.as_deref(), usage.as_ref(), Timestamp::now(), &tz);
        let _ = writeln!(std::io::stdout(), "{line}");
    }
    let event = if status_line {
        STATUS_LINE
    } else {
        "hook_event_name"
    };
    record(session, account, payload, event);
    ExitCode::SUCCESS
}

/// Runs as Codex's `notify`: `payload` is the JSON Codex appends as the last argument
/// (`{"type":"agent-turn-complete","thread-id":…}`). Always exit 0.
pub(crate) fn run_codex(payload: Option<&std::ffi::OsStr>) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(session) = env(ENV_SESSION).filter(|s| valid_session(s)) else {
        return ExitCode::SUCCESS;
    };
    let payload = payload
        .and_then(std::ffi::OsStr::to_str)
        .filter(|p| p.len() as u64 <= MAX_INPUT)
        .and_then(|p| serde_json::from_str(p).ok());
    record(session, env(ENV_ACCOUNT), payload, "type");
    ExitCode::SUCCESS
}

/// Writes the report of `payload` into `FAILOVER_REPORTS`, its event the payload's
/// string at `event_key` (or [`STATUS_LINE`] itself); nothing when either is missing.
fn record(session: String, account: Option<String>, payload: Option<Value>, event_key: &str) {
    let dir = std::env::var_os(ENV_REPORTS).map(PathBuf::from);
    let (Some(payload), Some(dir)) = (payload, dir.filter(|d| d.is_absolute())) else {
        return;
    };
    let event = if event_key == STATUS_LINE {
        STATUS_LINE.to_owned()
    } else {
        match payload.get(event_key).and_then(Value::as_str) {
            Some(name) => name.to_owned(),
            None => return,
        }
    };
    let record = Record {
        event,
        session,
        account,
        pids: parents(),
        at: Timestamp::now(),
        payload,
    };
    let _ = super::write(&dir, &record);
}

/// This process's parent and the two above it: Claude Code runs a hook through
/// `sh -c`, which may or may not run it as a child of its own, and npm's `codex` is a
/// node script that runs the native binary, so the agent's pane process is one of them.
fn parents() -> Vec<u32> {
    let mut pids = vec![std::os::unix::process::parent_id()];
    while pids.len() < 3 {
        match pids.last().and_then(|p| crate::procfs::parent(*p)) {
            Some(p) if p > 1 => pids.push(p),
            _ => break,
        }
    }
    pids
}

/// The status line failover draws under the agent's input box: the account, each
/// window's use, and the next reset (time of day within a day, else the date too).
pub(crate) fn footer(
    account: Option<&str>,
    usage: Option<&Usage>,
    now: Timestamp,
    tz: &jiff::tz::TimeZone,
) -> String {
    let mut parts = vec![format!("account {}", account.unwrap_or("?"))];
    if let Some(u) = usage {
        for (name, w) in u.windows() {
            parts.push(format!("{name} {:.0}%", w.used));
        }
        if let Some(next) = u
            .windows()
            .map(|(_, w)| w.resets_at)
            .filter(|t| *t > now)
            .min()
        {
            let local = next.to_zoned(tz.clone());
            let soon = next.duration_since(now).as_secs() < 86_400;
            let when = if soon {
                local.strftime("%H:%M").to_string()
            } else {
                local.strftime("%b %-d %H:%M").to_string()
            };
            parts.push(format!("resets {when}"));
        }
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Window;

    #[test]
    fn footer_should_show_the_account_each_window_and_the_next_reset() {
        let now: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        let tz = jiff::tz::TimeZone::UTC;
        let usage = Usage {
            five_hour: Some(Window {
                used: 42.0,
                resets_at: "2026-11-30T14:20:00Z".parse().unwrap(),
            }),
            seven_day: Some(Window {
                used: 17.4,
                resets_at: "2026-12-03T00:00:00Z".parse().unwrap(),
            }),
        };
        assert_eq!(
            footer(Some("a"), Some(&usage), now, &tz),
            "account a · 5h 42% · 7d 17% · resets 14:20"
        );
        let week = Usage {
            five_hour: None,
            ..usage
        };
        assert_eq!(
            footer(Some("b"), Some(&week), now, &tz),
            "account b · 7d 17% · resets Dec 3 00:00"
        );
        assert_eq!(footer(None, None, now, &tz), "account ?");
    }
}
