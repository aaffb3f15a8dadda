//! Reading an agent's screen: from a pane capture and the profile's patterns, whether
//! the agent is idle at its prompt, busy with a turn, or waiting on a dialog, and what
//! its input box holds.

mod reset;
mod verdict;

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;
use serde::Serialize;

use crate::api::ScreenPatterns;

pub(crate) use verdict::{Class, Classifier, Verdict};

/// What a screen says about its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// At its prompt, no turn running.
    Idle,
    /// A turn is running.
    Busy,
    /// A dialog waits for a person.
    Waiting,
    /// None of the patterns matched (starting up, a shell, something else).
    Unknown,
}

/// When a screen is read, and the time zones a reset time on it may name: now in the
/// local zone (for reset times that name none), and the database of the others. Passed
/// in, so that reading a screen reads no clock and no file.
#[derive(Debug, Clone)]
pub struct Local {
    /// Now, in the local zone.
    pub now: jiff::Zoned,
    /// The zones by name (`Etc/GMT+5`, `Asia/Calcutta`).
    pub zones: jiff::tz::TimeZoneDatabase,
}

/// A profile's patterns, compiled.
#[derive(Debug, Clone)]
pub struct Patterns {
    prompt: Regex,
    busy: Regex,
    waiting: Regex,
    placeholder: Regex,
}

/// A pattern that does not compile (validation normally catches it first).
#[derive(Debug, thiserror::Error)]
#[error("screen pattern {field}: {source}")]
pub struct PatternError {
    field: &'static str,
    source: regex::Error,
}

/// A profile whose patterns do not compile.
#[derive(Debug, thiserror::Error)]
#[error("agent profile {agent}: {source}")]
pub struct Error {
    /// The profile.
    pub agent: String,
    /// The pattern and why.
    pub source: PatternError,
}

/// Every agent profile's classifier, compiled once when manifests are adopted: every
/// reconcile reads every screen with them.
#[derive(Debug, Clone, Default)]
pub struct Classifiers(BTreeMap<String, Arc<Classifier>>);

impl Classifiers {
    /// Compiles the screen patterns of every agent profile in `m`.
    pub fn compile(m: &crate::api::Manifests) -> Result<Self, Error> {
        let mut map = BTreeMap::new();
        for agent in &m.agents {
            let c = Classifier::new(&agent.spec.screen).map_err(|source| Error {
                agent: agent.name.clone(),
                source,
            })?;
            map.insert(agent.name.clone(), Arc::new(c));
        }
        Ok(Self(map))
    }

    /// The classifier of the agent profile `agent`.
    pub fn get(&self, agent: &str) -> Option<&Classifier> {
        self.0.get(agent).map(AsRef::as_ref)
    }

    /// The classifier of the profile session `session` of `m` runs under `account` (the
    /// built-in one for a session no manifest names).
    pub fn of_session(
        &self,
        m: &crate::api::Manifests,
        session: &str,
        account: Option<&str>,
    ) -> Option<&Classifier> {
        self.get(m.agent_under(session, account))
    }
}

impl Patterns {
    /// Compiles the profile's patterns.
    pub fn new(spec: &ScreenPatterns) -> Result<Self, PatternError> {
        let compile = |field: &'static str, p: &str| {
            Regex::new(p).map_err(|source| PatternError { field, source })
        };
        Ok(Self {
            prompt: compile("prompt", &spec.prompt)?,
            busy: compile("busy", &spec.busy)?,
            waiting: compile("waiting", &spec.waiting)?,
            placeholder: compile("placeholder", &spec.placeholder)?,
        })
    }
}

/// Reads a screen: a dialog wins, then the busy marker, then the prompt.
pub(crate) fn classify(text: &str, p: &Patterns) -> State {
    let lines: Vec<&str> = text.lines().collect();
    if lines.iter().any(|l| p.waiting.is_match(l)) {
        State::Waiting
    } else if lines.iter().any(|l| p.busy.is_match(l)) {
        State::Busy
    } else if lines.iter().any(|l| p.prompt.is_match(l)) {
        State::Idle
    } else {
        State::Unknown
    }
}

/// What the input box holds: the text after the prompt mark on the last prompt line,
/// trimmed, and empty when it is the agent's own placeholder (`Resend your message to
/// try again`, drawn dim after an error); `None` when no prompt line is drawn.
pub(crate) fn input(text: &str, p: &Patterns) -> Option<String> {
    let typed = text
        .lines()
        .filter_map(|l| p.prompt.find(l).map(|m| l[m.end()..].trim().to_owned()))
        .next_back()?;
    Some(if p.placeholder.is_match(&typed) {
        String::new()
    } else {
        typed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claude() -> Patterns {
        Patterns::new(&ScreenPatterns::default()).unwrap()
    }

    const IDLE: &str = " ▐▛███▜▌   Claude Code v2.1.329\n\n────────\n❯\u{a0}\n────────\n  ⏵⏵ auto mode on (shift+tab to cycle)\n";
    const BUSY: &str = "> fix it\n\n✻ Churning… (3s)\n\n────────\n❯\u{a0}\n────────\n  ⏵⏵ auto mode on (shift+tab to cycle) · esc to interrupt\n";
    const DIALOG: &str =
        " Bash command\n\n   make build\n\n Do you want to proceed?\n ❯ 1. Yes\n   2. No\n";

    #[test]
    fn classify_should_read_claude_code_screens() {
        let p = claude();
        assert_eq!(classify(IDLE, &p), State::Idle);
        assert_eq!(
            classify(BUSY, &p),
            State::Busy,
            "the prompt is drawn while busy too"
        );
        assert_eq!(classify(DIALOG, &p), State::Waiting);
        assert_eq!(classify("$ ls\nfile\n$ ", &p), State::Unknown);
        assert_eq!(
            classify("❯ 1. Yes\n", &p),
            State::Unknown,
            "a menu mark is not the prompt"
        );
    }

    #[test]
    fn input_should_read_the_prompt_line() {
        let p = claude();
        assert_eq!(input(IDLE, &p).as_deref(), Some(""));
        let pasted = IDLE.replace("❯\u{a0}\n", "❯\u{a0}[Pasted text #1 +3 lines]\n");
        assert_eq!(
            input(&pasted, &p).as_deref(),
            Some("[Pasted text #1 +3 lines]")
        );
        assert_eq!(input("nothing here", &p), None);
        let after_error = IDLE.replace("❯\u{a0}\n", "❯\u{a0}Resend your message to try again\n");
        assert_eq!(input(&after_error, &p).as_deref(), Some(""));
    }
}
