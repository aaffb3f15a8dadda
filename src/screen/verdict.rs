//! The full reading of a screen: besides idle, busy and waiting, whether the account's
//! quota is used up (and until when), a transient rate limit, or a server error, with
//! the pattern and the line that decided.
//!
//! Only the agent's own message lines of the current turn count: lines after the last
//! prompt the agent was given that start with a message mark (`●`, `⏺`, `⎿`, a spinner
//! glyph; Codex's `•` and `■`). Code, diffs and tool output are indented without a mark,
//! and the person's prompt starts with `>` (Codex: `›`): an agent editing
//! quota-detection code, or someone asking "what is rate_limit_error?", never reads as
//! a quota. A message wrapped at the pane's width (Codex wraps its error at the first
//! column) is read as one line.

use jiff::Timestamp;

use super::Local;
use regex::Regex;
use serde::Serialize;

use super::{Patterns, State, classify, reset};
use crate::api::ScreenPatterns;

/// What a screen says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// At its prompt.
    Idle,
    /// Working on a turn.
    Busy,
    /// A dialog waits for a person.
    Waiting,
    /// The account's quota is used up.
    QuotaExhausted,
    /// A transient rate limit, not a quota.
    RateLimited,
    /// A server error (it wins over quota words).
    ServerError,
    /// Nothing recognised.
    Unknown,
}

/// A reading and its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The class.
    pub class: Class,
    /// When the quota resets, when the screen says.
    pub resets_at: Option<Timestamp>,
    /// The pattern that decided.
    pub pattern: Option<String>,
    /// The line it matched.
    pub line: Option<String>,
    /// Idle, busy, waiting or unknown, from the prompt, busy and dialog patterns alone.
    #[serde(skip)]
    pub state: State,
    /// The prompt line that opened the current turn (`> …` or `❯ …` with text), if one
    /// is on screen.
    #[serde(skip)]
    pub turn: Option<String>,
}

/// A profile's patterns, compiled for full readings.
#[derive(Debug, Clone)]
pub struct Classifier {
    state: Patterns,
    quota: Vec<Regex>,
    veto: Vec<Regex>,
    transient: Vec<Regex>,
    reset: Vec<Regex>,
}

/// Marks that start the agent's message lines (`⚠` the notice under the input box;
/// `•` and `■` Codex's messages and errors).
const MARKS: [char; 12] = ['●', '⏺', '⎿', '✻', '✶', '✳', '✢', '✽', '·', '⚠', '•', '■'];

impl Classifier {
    /// The idle, busy and waiting patterns.
    pub fn patterns(&self) -> &Patterns {
        &self.state
    }

    /// Compiles a profile's patterns.
    pub fn new(spec: &ScreenPatterns) -> Result<Self, super::PatternError> {
        let list =
            |field: &'static str, items: &[String]| -> Result<Vec<Regex>, super::PatternError> {
                items
                    .iter()
                    .map(|p| Regex::new(p).map_err(|source| super::PatternError { field, source }))
                    .collect()
            };
        Ok(Self {
            state: Patterns::new(spec)?,
            quota: list("quota", &spec.quota)?,
            veto: list("veto", &spec.veto)?,
            transient: list("transient", &spec.transient)?,
            reset: list("reset", &spec.reset)?,
        })
    }

    /// Reads a screen at `now` (its zone is the local one, for reset times without one).
    pub fn read(&self, text: &str, now: &Local) -> Verdict {
        let lines: Vec<&str> = text.lines().collect();
        let turn_prompt = self.turn_prompt(&lines);
        let turn = turn_prompt.map(|i| lines[i].trim_end().to_owned());
        let turn_start = turn_prompt.map_or(0, |i| i + 1);
        let messages = joined(&lines[turn_start..]);
        // The notice under the input box (`⚠ …`) decides only when no line of the
        // conversation does: a resumed conversation draws it again under the next
        // account, late, after the old limit it repeats.
        let mut decided: Option<(Class, String, String)> = None;
        let mut notice: Option<(Class, String, String)> = None;
        for line in messages.iter().map(String::as_str) {
            let hit = |set: &[Regex]| {
                set.iter()
                    .find(|r| r.is_match(line))
                    .map(|r| r.as_str().to_owned())
            };
            let found = hit(&self.veto)
                .map(|p| (Class::ServerError, p))
                .or_else(|| hit(&self.quota).map(|p| (Class::QuotaExhausted, p)))
                .or_else(|| hit(&self.transient).map(|p| (Class::RateLimited, p)));
            if let Some((class, pattern)) = found {
                let slot = if line.starts_with('⚠') {
                    &mut notice
                } else {
                    &mut decided
                };
                *slot = Some((class, pattern, line.to_owned()));
            }
        }
        let decided = decided.or(notice);
        let state = classify(text, &self.state);
        // A turn retrying a server error or a transient limit is still busy, but says
        // why it waits; a dialog, or a running turn after a limit, is what matters now.
        let retrying = |class: &Class| {
            state == State::Busy && matches!(class, Class::ServerError | Class::RateLimited)
        };
        match decided {
            Some((class, pattern, line))
                if retrying(&class) || (state != State::Busy && state != State::Waiting) =>
            {
                let resets_at = (class == Class::QuotaExhausted)
                    .then(|| self.reset_of(&line, &lines[turn_start..], now))
                    .flatten();
                Verdict {
                    class,
                    resets_at,
                    pattern: Some(pattern),
                    line: Some(line),
                    state,
                    turn,
                }
            }
            _ => Verdict {
                class: match state {
                    State::Idle => Class::Idle,
                    State::Busy => Class::Busy,
                    State::Waiting => Class::Waiting,
                    State::Unknown => Class::Unknown,
                },
                resets_at: None,
                pattern: None,
                line: None,
                state,
                turn,
            },
        }
    }

    /// Reads the message of an agent's report of a turn that ended on a rate limit
    /// (`StopFailure` `rate_limit`): a usage limit unless the veto or transient patterns
    /// say otherwise (Claude Code reports a transient 429 as `rate_limit` too), with the
    /// reset time it names.
    pub fn read_limit(&self, message: &str, now: &Local) -> (Class, Option<Timestamp>) {
        let hit = |set: &[Regex]| set.iter().any(|r| r.is_match(message));
        if hit(&self.veto) {
            (Class::ServerError, None)
        } else if hit(&self.transient) {
            (Class::RateLimited, None)
        } else {
            (
                Class::QuotaExhausted,
                self.reset_of(message.trim(), &[], now),
            )
        }
    }

    /// The line of the last prompt the agent was given: `> …`, `❯ …` that is not the
    /// input line, or Codex's `› …` above its input line (both are drawn alike).
    fn turn_prompt(&self, lines: &[&str]) -> Option<usize> {
        let input = lines.iter().rposition(|l| self.state_is_prompt(l));
        lines.iter().enumerate().rposition(|(i, l)| {
            l.starts_with("> ")
                || (l.starts_with('❯') && !self.state_is_prompt(l))
                || (l.starts_with("› ") && input.is_some_and(|at| i < at))
        })
    }

    fn state_is_prompt(&self, line: &str) -> bool {
        classify(line, &self.state) == State::Idle
    }

    /// The reset time on the deciding line, else on another message line of the turn;
    /// a time that names its zone wins over one read in local time.
    fn reset_of(&self, line: &str, turn: &[&str], now: &Local) -> Option<Timestamp> {
        let turn = joined(turn);
        let texts: Vec<&str> = std::iter::once(line)
            .chain(turn.iter().map(String::as_str))
            .filter_map(|l| {
                self.reset.iter().find_map(|r| {
                    let c = r.captures(l)?;
                    Some(c.name("epoch").or_else(|| c.name("time"))?.as_str())
                })
            })
            .collect();
        let zoned = texts
            .iter()
            .find(|t| t.contains('(') || t.bytes().all(|b| b.is_ascii_digit()));
        zoned.or(texts.first()).and_then(|t| reset::parse(t, now))
    }
}

/// The message lines among `lines` (their marks first, trimmed), each with the lines it
/// wrapped onto: the next lines that start at the first column with a letter or digit.
fn joined(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut open = false;
    for line in lines {
        let trimmed = line.trim_start();
        if trimmed.starts_with(MARKS) {
            out.push(trimmed.trim_end().to_owned());
            open = true;
        } else if open && line.starts_with(char::is_alphanumeric) {
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(line.trim_end());
            }
        } else {
            open = false;
        }
    }
    out
}

#[cfg(test)]
#[path = "verdict_codex_tests.rs"]
mod codex_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const BOX: &str = "\n────────\n❯\u{a0}\n────────\n  ⏵⏵ auto mode on (shift+tab to cycle)\n";
    const BUSY_BOX: &str = "\n────────\n❯\u{a0}\n────────\n  ⏵⏵ auto mode on (shift+tab to cycle) · esc to interrupt\n";

    fn now() -> Local {
        Local {
            now: "2026-11-21T07:00:00+01:00[Europe/Berlin]".parse().unwrap(),
            zones: jiff::tz::db().clone(),
        }
    }

    fn read(body: &str) -> Verdict {
        let c = Classifier::new(&ScreenPatterns::default()).unwrap();
        let screen = format!(" ▐▛███▜▌   Claude Code v2.1.329\n\n> do the task\n{body}{BOX}");
        c.read(&screen, &now())
    }

    fn class(body: &str) -> (Class, Option<String>) {
        let v = read(body);
        (v.class, v.resets_at.map(|t| t.to_string()))
    }

    #[test]
    fn quota_wordings_from_mid_2025_to_today_should_read_as_quota_with_their_reset() {
        let q = Class::QuotaExhausted;
        let cases: [(&str, Option<&str>); 12] = [
            // 2.1.329, subscription login (reference screens).
            (
                "  ⎿  You've hit your 5-hour limit · resets 7:11am (UTC)\n● Usage limit reached · continuing automatically at 7:11am · esc to cancel\n",
                Some("2026-11-21T07:11:00Z"),
            ),
            // 2.1.329, a reset more than a day away: the date has its year and a dialog
            // asks what to do (seen on the real CLI against the mock API).
            (
                "  ⎿  You've hit your 5-hour limit · resets Mar 17, 2030, 5:46pm (UTC)\n\n▔▔▔▔\n  What do you want to do?\n\n  ❯ 1. Stop and wait for limit to reset\n    2. Wait here, then continue automatically at Mar 17, 2030, 5:46pm\n    3. Upgrade your plan\n\n  Enter to confirm · Esc to cancel\n",
                Some("2030-03-17T17:46:00Z"),
            ),
            (
                "  ⎿  You've hit your limit · resets 11pm (America/Anchorage)\n",
                Some("2026-11-21T08:00:00Z"),
            ),
            (
                "  ⎿  You've hit your session limit · resets 8:30pm (Asia/Tokyo)\n",
                Some("2026-11-21T11:30:00Z"),
            ),
            (
                "  ⎿  You've hit your weekly limit · resets Sep 15 at 7pm\n",
                Some("2027-09-15T17:00:00Z"),
            ),
            (
                "  ⎿  You've hit your weekly limit · resets Jan 25, 9pm (America/New_York)\n",
                Some("2027-01-26T02:00:00Z"),
            ),
            // 2.0.x, late 2025.
            (
                "  ⎿  Weekly limit reached · resets 10am (Asia/Seoul) · /upgrade to Max or turn on /extra-usage\n     /upgrade to increase your usage limit.\n",
                Some("2026-11-22T01:00:00Z"),
            ),
            (
                "  ⎿  5-hour limit reached ∙ resets 3pm\n",
                Some("2026-11-21T14:00:00Z"),
            ),
            // mid 2025.
            (
                "● Claude AI usage limit reached|1749924000\n",
                Some("2025-06-14T18:00:00Z"),
            ),
            (
                "● Claude usage limit reached. Your limit will reset at 3pm (America/New_York).\n",
                Some("2026-11-21T20:00:00Z"),
            ),
            // API key, and the raw error of older versions: no reset shown.
            (
                "✻ 5-hour limit reached · retrying in 4s … attempt 4/10\n",
                None,
            ),
            (
                "● API Error: 429 {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"This request would exceed your account's rate limit. Please try again later.\"}}\n",
                None,
            ),
        ];
        for (body, reset) in cases {
            assert_eq!(class(body), (q, reset.map(String::from)), "{body}");
        }
    }

    #[test]
    fn a_limit_report_should_read_as_quota_unless_its_message_says_transient() {
        let c = Classifier::new(&ScreenPatterns::default()).unwrap();
        let (class, reset) =
            c.read_limit("You've hit your 5-hour limit · resets 3pm (UTC)", &now());
        assert_eq!(class, Class::QuotaExhausted);
        assert_eq!(reset.unwrap().to_string(), "2026-11-21T15:00:00Z");
        assert_eq!(
            c.read_limit("You've hit your usage limit", &now()),
            (Class::QuotaExhausted, None)
        );
        let transient = "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited";
        assert_eq!(c.read_limit(transient, &now()).0, Class::RateLimited);
        assert_eq!(
            c.read_limit("API Error: 500 Internal server error", &now())
                .0,
            Class::ServerError
        );
    }

    #[test]
    fn a_busy_turn_retrying_should_say_why_it_waits() {
        for (body, want) in [
            (
                "  ⎿  API Error (529 {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}) · Retrying in 4 seconds… (attempt 4/10)\n",
                Class::ServerError,
            ),
            (
                "✻ 529 Overloaded · retrying in 4s · attempt 2/10\n",
                Class::ServerError,
            ),
            (
                "✻ 429 Too Many Requests · retrying in 8s · attempt 5/10\n",
                Class::RateLimited,
            ),
        ] {
            let c = Classifier::new(&ScreenPatterns::default()).unwrap();
            let screen = format!("> do the task\n{body}{BUSY_BOX}");
            let v = c.read(&screen, &now());
            assert_eq!((v.class, v.state), (want, State::Busy), "{body}");
        }
    }

    #[test]
    fn the_notice_under_the_input_box_should_read_as_quota() {
        let c = Classifier::new(&ScreenPatterns::default()).unwrap();
        // 2.1.329: the turn's lines, then the notice drawn under the input box.
        let screen = "❯ meet the limit\n  ⎿  You've hit your 5-hour limit · resets 3pm (UTC)\n\n────\n❯\u{a0}\n────\n  ⚠ Usage limit reached · limit resets 3pm\n    Continuing automatically at 3pm · Esc to cancel\n  ⏵⏵ bypass permissions on\n";
        let v = c.read(screen, &now());
        assert_eq!(v.class, Class::QuotaExhausted, "{screen}");
        assert_eq!(
            v.line.as_deref(),
            Some("⎿  You've hit your 5-hour limit · resets 3pm (UTC)"),
            "a line of the conversation wins over the notice"
        );
        // The notice alone, and 2.1.332's "set to continue automatically".
        let notice = "\n────\n❯\u{a0}\n────\n  ⚠ Usage limit reached · limit resets 12pm\n    Continuing automatically at 12pm · Esc to cancel\n";
        let v = c.read(notice, &now());
        assert_eq!(v.class, Class::QuotaExhausted);
        assert_eq!(v.resets_at.unwrap().to_string(), "2026-11-21T11:00:00Z");
        let newer =
            format!("> go\n● Usage limit reached · set to continue automatically at 3:01pm\n{BOX}");
        let v = c.read(&newer, &now());
        assert_eq!(v.class, Class::QuotaExhausted);
        assert_eq!(v.resets_at.unwrap().to_string(), "2026-11-21T14:01:00Z");
    }

    #[test]
    fn server_errors_should_win_over_quota_words() {
        for body in [
            "✻ 500 Internal server error · retrying in 2s · attempt 3/10\n",
            "● API Error: 500 Internal server error. This is a server-side issue, usually temporary — try again in a moment.\n",
            "● API Error: 500 {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error: upstream rate limit exceeded\"}}\n",
            "● API Error: 529 {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n",
            "● API Error: Repeated 529 Overloaded errors\n",
        ] {
            assert_eq!(read(body).class, Class::ServerError, "{body}");
        }
    }

    #[test]
    fn transient_rate_limits_should_not_read_as_quota() {
        for body in [
            "● API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited\n",
            "✻ 429 Too Many Requests · retrying in 8s · attempt 5/10\n",
        ] {
            assert_eq!(read(body).class, Class::RateLimited, "{body}");
        }
    }

    #[test]
    fn prose_code_and_warnings_should_never_read_as_quota() {
        for body in [
            "  ⎿  Approaching usage limit · resets at 10pm\n",
            "● The rate_limit_error type means your usage limit reached its cap; You've hit your limit is what the CLI prints.\n",
            "● Update(src/quota.rs)\n  ⎿  Updated src/quota.rs with 2 additions\n       12 +    if line.contains(\"You've hit your limit\") {\n       13 +        return Class::QuotaExhausted; // Usage limit reached\n",
            "  ⎿  Read 42 lines (ctrl+r to expand)\n● Done: the classifier now knows \"5-hour limit reached\".\n",
        ] {
            assert_eq!(read(body).class, Class::Idle, "{body}");
        }
        let c = Classifier::new(&ScreenPatterns::default()).unwrap();
        let asked = format!(
            "> what is rate_limit_error? and what does \"You've hit your limit\" mean?\n{BOX}"
        );
        assert_eq!(c.read(&asked, &now()).class, Class::Idle);
    }

    #[test]
    fn only_the_current_turn_should_count() {
        let c = Classifier::new(&ScreenPatterns::default()).unwrap();
        let screen = format!(
            "> first\n  ⎿  You've hit your limit · resets 3pm (UTC)\n> continue\n✻ Churning… (2s){BUSY_BOX}"
        );
        assert_eq!(c.read(&screen, &now()).class, Class::Busy);
        let screen = format!(
            "> first\n  ⎿  You've hit your limit · resets 3pm (UTC)\n> continue\n● Done.{BOX}"
        );
        assert_eq!(c.read(&screen, &now()).class, Class::Idle);
    }

    #[test]
    fn verdicts_should_name_their_pattern_and_line() {
        let v = read("  ⎿  You've hit your 5-hour limit · resets 7:11am (UTC)\n");
        assert_eq!(
            v.line.as_deref(),
            Some("⎿  You've hit your 5-hour limit · resets 7:11am (UTC)")
        );
        assert!(v.pattern.unwrap().contains("You've hit your"));
        let c = Classifier::new(&ScreenPatterns::default()).unwrap();
        let dialog = " Do you want to proceed?\n ❯ 1. Yes\n   2. No\n";
        assert_eq!(c.read(dialog, &now()).class, Class::Waiting);
    }
}
