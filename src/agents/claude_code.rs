//! What is Claude Code's: the defaults of a profile that runs it (command, the home's
//! variable, resume arguments, exit command, the screens it draws) and the file failover
//! manages in its homes (`settings.json`: hooks and status line, see
//! `crate::agent_settings`).

use super::{Defaults, Screen};

/// The settings file of a Claude Code home, where failover keeps its hooks and status
/// line.
pub(crate) const SETTINGS_FILE: &str = "settings.json";

/// The folder of a Claude Code home that holds its transcripts (`projects/<slug>/…`).
pub(crate) const CONVERSATIONS: &str = "projects";

/// A Claude Code profile's defaults.
pub(crate) const DEFAULTS: Defaults = Defaults {
    command: &["claude", "--dangerously-skip-permissions"],
    home_env: "CLAUDE_CONFIG_DIR",
    resume_args: &["--resume", "{sessionId}"],
    exit_command: "/exit",
    screen: SCREEN,
};

/// The shapes Claude Code draws: see docs/decisions.md, "Reading screens".
const SCREEN: Screen = Screen {
    prompt: "^❯\u{a0}",
    busy: "esc to interrupt",
    waiting: r"Do you want to proceed\?|Yes, I trust this folder|Do you want to use this API key\?|Bypass Permissions mode",
    placeholder: "^Resend your message to try again$",
    quota: &[
        r"^⎿\s+You've hit your (?:[\w-]+ ){0,2}limit\b",
        r"^⎿\s+(?:[\w-]+ ){0,2}limit reached\b",
        r"^[●⏺]\s+(?:Claude (?:AI )?)?[Uu]sage limit reached\b",
        r"^[●⏺]\s+(?:[\w-]+ ){0,2}limit reached\b",
        r"^✻\s+(?:[\w-]+ ){0,2}limit reached\b",
        r"^⚠\s+(?:[\w-]+ ){0,2}limit reached\b",
        r"Claude AI usage limit reached\|\d{10}",
        r#"^[●⏺]\s+API Error: 429\b.*"rate_limit_error""#,
    ],
    veto: &[
        r"\bapi_error\b",
        r"\boverloaded_error\b",
        r"(?i)\binternal server error\b",
        r"API Error: (?:Repeated )?5\d\d\b",
        r"API Error \(5\d\d\b",
        r"^✻\s+5\d\d\b",
        r"server-side issue",
    ],
    transient: &[
        r"(?i)not your usage limit",
        r"(?i)temporarily limiting requests",
        r"^✻\s+429\b",
        r"^[●⏺]\s+API Error: 429\b",
        r"(?i)retrying in \d+",
    ],
    reset: &[
        r"(?i)resets? (?:at )?(?P<time>(?:[a-z]{3}[a-z]* \d{1,2}(?:, \d{4})?(?:,| at) )?\d{1,2}(?::\d{2})?\s*[ap]m(?: \([^)]+\))?)",
        r"(?i)continu(?:ing|e) automatically at (?P<time>\d{1,2}(?::\d{2})?\s*[ap]m(?: \([^)]+\))?)",
        r"\|(?P<epoch>\d{10})\b",
    ],
};
