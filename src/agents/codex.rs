//! What is OpenAI Codex CLI's: the defaults of a profile that runs it (command, the
//! home's variable, resume arguments, exit command, the screens it draws) and the file
//! failover manages in its homes (`config.toml`: `notify`, the rate-limit nudge off, the
//! update check off, file credentials, trust for the sessions' folders; see
//! `crate::codex_config`). Facts checked on 0.171.0: docs/agent-families.md.

use super::{Defaults, Screen};

/// The configuration file of a Codex home, where failover keeps its entries.
pub(crate) const CONFIG_FILE: &str = "config.toml";

/// The folder of a Codex home that holds its rollouts (`sessions/YYYY/MM/DD/…`).
pub(crate) const CONVERSATIONS: &str = "sessions";

/// What a Codex profile starts with: no approvals and no sandbox (the equivalent of
/// Claude Code's `--dangerously-skip-permissions`), and no shared app-server daemon,
/// which would outlive the session and copy 424 MB into every home.
pub(crate) const DEFAULTS: Defaults = Defaults {
    command: &[
        "codex",
        "--dangerously-bypass-approvals-and-sandbox",
        "--no-daemon",
    ],
    home_env: "CODEX_HOME",
    resume_args: &["resume", "{sessionId}"],
    exit_command: "/exit",
    screen: SCREEN,
};

/// The shapes Codex 0.171.0 draws (docs/agent-families.md, the reference's captures).
const SCREEN: Screen = Screen {
    prompt: "^› ",
    // The glyph blinks (`•`, `◦`) and the header may be a reasoning summary's, not
    // `Working`.
    busy: r"^[•◦] .*\(.*esc to interrupt\)",
    // Besides its dialogs, `loading` under the banner while it starts: the input line
    // is drawn already, but the agent is not ready for a task (neither idle nor busy).
    waiting: r"Do you trust the contents of this directory\?|Approaching rate limits|Switch to .* for lower credit usage\?|^ {5}loading$",
    placeholder: "^Ask Codex to do anything$",
    quota: &[
        // Every plan's wording (codex-rs/protocol/src/error.rs), typographic or plain
        // apostrophe; a wrapped line is read joined.
        r"^■\s+You[’']ve hit your usage limit\b",
    ],
    veto: &[
        r"(?i)Selected model is at capacity",
        r"(?i)high demand",
        // A billing problem, not a plan's limit that resets.
        r"Quota exceeded\. Check your plan and billing details",
        r"(?i)\binternal server error\b",
    ],
    transient: &[
        r"(?i)\brate limit(?:ed)?\b.*\bretry",
        r"(?i)reconnecting\b.*\d+/\d+",
    ],
    reset: &[
        r"(?i)try again at (?P<time>(?:[a-z]{3} \d{1,2}(?:st|nd|rd|th)?, \d{4} )?\d{1,2}(?::\d{2})?\s*[ap]m)",
    ],
};
