//! The agent families failover drives: [`AgentKind`], a closed type the compiler follows
//! to every place that differs between agents (where a home is, what failover manages in
//! it, the profile's defaults), one module per kind behind one `match` each, and the
//! built-in profiles ([`BUILTIN`]) as a table.
//!
//! Adding a kind is one file beside `claude_code.rs` plus the arms the compiler asks
//! for: no `match` here has a catch-all.

pub(crate) mod claude_code;
pub(crate) mod codex;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which agent CLI a profile runs and an account's home is for. Accounts of one kind
/// form a family: the ledger (active account, swaps, the wait for a reset) is kept per
/// family, and a conversation never leaves its family.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Anthropic's Claude Code (`claude`).
    #[default]
    ClaudeCode,
    /// OpenAI's Codex CLI (`codex`).
    Codex,
}

/// What a kind of agent starts with when its profile leaves a field out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Defaults {
    /// The agent's argv.
    pub command: &'static [&'static str],
    /// The variable that carries the account's home.
    pub home_env: &'static str,
    /// Arguments appended to resume a conversation (`{sessionId}` replaced).
    pub resume_args: &'static [&'static str],
    /// Typed to end a pool session's context after a task.
    pub exit_command: &'static str,
    /// The regexes that read its screen.
    pub screen: Screen,
}

/// The default screen patterns of a kind, as `ScreenPatterns` holds them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Screen {
    /// The input prompt line.
    pub prompt: &'static str,
    /// A turn under way.
    pub busy: &'static str,
    /// A dialog that waits for a person.
    pub waiting: &'static str,
    /// The input box's own hint, read as empty.
    pub placeholder: &'static str,
    /// The account's quota is used up.
    pub quota: &'static [&'static str],
    /// Server errors, which win over quota words.
    pub veto: &'static [&'static str],
    /// Transient rate limits.
    pub transient: &'static [&'static str],
    /// Reset times (group `time` or `epoch`).
    pub reset: &'static [&'static str],
}

/// A profile that needs no manifest: its name and kind. A manifest's `AgentProfile` of
/// the same name replaces it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Builtin {
    /// The profile's name (`Pool.spec.agent` names it).
    pub(crate) name: &'static str,
    /// The agent it runs, with that kind's defaults.
    pub(crate) kind: AgentKind,
}

/// The built-in profiles, the default one (`Pool.spec.agent` left out) first.
pub(crate) const BUILTIN: &[Builtin] = &[
    Builtin {
        name: "claude",
        kind: AgentKind::ClaudeCode,
    },
    Builtin {
        name: "codex",
        kind: AgentKind::Codex,
    },
];

impl AgentKind {
    /// Every kind, in the order families are told.
    pub const ALL: [AgentKind; 2] = [AgentKind::ClaudeCode, AgentKind::Codex];

    /// The kind as manifests write it (`claude-code`).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::ClaudeCode => "claude-code",
            AgentKind::Codex => "codex",
        }
    }

    /// The kind written `name`, if any.
    pub fn parse(name: &str) -> Option<AgentKind> {
        AgentKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// What a profile of this kind starts with.
    pub(crate) fn defaults(self) -> &'static Defaults {
        match self {
            AgentKind::ClaudeCode => &claude_code::DEFAULTS,
            AgentKind::Codex => &codex::DEFAULTS,
        }
    }

    /// The file failover keeps its hooks and status line in, in a home of this kind
    /// (Claude Code's `settings.json`), if failover manages one there.
    pub(crate) fn settings_file(self) -> Option<&'static str> {
        match self {
            AgentKind::ClaudeCode => Some(claude_code::SETTINGS_FILE),
            // Codex keeps failover's entries in TOML: `config_file`.
            AgentKind::Codex => None,
        }
    }
}

impl AgentKind {
    /// The TOML file failover keeps its entries in, in a home of this kind (Codex's
    /// `config.toml`, see `crate::codex_config`), if failover manages one there.
    pub(crate) fn config_file(self) -> Option<&'static str> {
        match self {
            AgentKind::ClaudeCode => None,
            AgentKind::Codex => Some(codex::CONFIG_FILE),
        }
    }

    /// Whether an agent of this kind proves every turn's end in its own files, so that
    /// an idle screen never ends a task: Codex writes the rollout's `task_complete` and
    /// runs `notify` (the screen's working line blinks between two glyphs, and one
    /// missed shape would end a turn still under way). Claude Code proves it by its hooks
    /// only when they report (a profile may turn them off): its screen stays a proof.
    pub(crate) fn proves_turn_ends(self) -> bool {
        match self {
            AgentKind::ClaudeCode => false,
            AgentKind::Codex => true,
        }
    }

    /// The folder below a home of this kind that holds its conversations, the one a
    /// family's homes share so that a moved session resumes (Claude Code's `projects`,
    /// Codex's `sessions`).
    pub(crate) fn conversations(self) -> &'static str {
        match self {
            AgentKind::ClaudeCode => claude_code::CONVERSATIONS,
            AgentKind::Codex => codex::CONVERSATIONS,
        }
    }
}

impl std::fmt::Display for AgentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_should_read_back_from_the_name_manifests_write() {
        for kind in AgentKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::json!(kind.as_str()));
            assert_eq!(serde_json::from_value::<AgentKind>(json).unwrap(), kind);
            assert_eq!(AgentKind::parse(kind.as_str()), Some(kind));
            let clap = <AgentKind as clap::ValueEnum>::from_str(kind.as_str(), false);
            assert_eq!(clap, Ok(kind));
        }
        assert_eq!(AgentKind::parse("codex-cli"), None);
    }

    #[test]
    fn the_default_profile_should_be_the_first_builtin_and_run_the_default_kind() {
        assert_eq!(BUILTIN[0].name, crate::api::BUILTIN_AGENT);
        assert_eq!(BUILTIN[0].kind, AgentKind::default());
        let names: std::collections::BTreeSet<&str> = BUILTIN.iter().map(|b| b.name).collect();
        assert_eq!(names.len(), BUILTIN.len(), "built-in names are unique");
    }
}
