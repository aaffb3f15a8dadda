//! Scripted turn outcomes: what the next turn of the stand-in agent does.
//!
//! Outcomes come, in this order of precedence, from the account's limit file
//! (`$CLAUDE_CONFIG_DIR/.sim-limit`, present = every turn under that account hits the
//! usage limit), the first line of the control file, the `--script` queue, or else a
//! normal answer.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

/// What one turn does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A normal answer after the turn length.
    Ok,
    /// The subscription's usage limit, with the reset text shown (`None`: no reset time).
    Limit(Option<String>),
    /// The 2025 wording: `Claude AI usage limit reached|<epoch>`.
    LimitLegacy(u64),
    /// HTTP 500, retried, then an API error.
    Error500,
    /// HTTP 500 whose message mentions a rate limit: a server error, not a quota.
    Error500RateLimit,
    /// HTTP 529 overloaded.
    Overloaded,
    /// A transient 429 ("not your usage limit").
    RateLimit,
    /// A permission dialog that waits for a person.
    Dialog,
    /// Busy forever, until interrupted.
    Hang,
    /// The process dies with exit code 1.
    Crash,
    /// Ends the turn with `● <text>`.
    Say(String),
}

/// A directive that could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "sim-agent directive {0:?}: expected ok, limit [RESET|none], limit-legacy [EPOCH], error500, error500-ratelimit, overloaded, ratelimit, dialog, hang, crash or say TEXT"
)]
pub(crate) struct DirectiveError(String);

impl std::str::FromStr for Outcome {
    type Err = DirectiveError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, arg) = s.split_once(' ').map_or((s, ""), |(n, a)| (n, a.trim()));
        Ok(match (name, arg) {
            ("ok", "") => Outcome::Ok,
            ("limit", "") => Outcome::Limit(Some(default_reset())),
            ("limit", "none") => Outcome::Limit(None),
            ("limit", reset) => Outcome::Limit(Some(reset.to_owned())),
            ("limit-legacy", "") => {
                Outcome::LimitLegacy(jiff::Timestamp::now().as_second().unsigned_abs() + 3600)
            }
            ("limit-legacy", epoch) => {
                Outcome::LimitLegacy(epoch.parse().map_err(|_| DirectiveError(s.into()))?)
            }
            ("error500", "") => Outcome::Error500,
            ("error500-ratelimit", "") => Outcome::Error500RateLimit,
            ("overloaded", "") => Outcome::Overloaded,
            ("ratelimit", "") => Outcome::RateLimit,
            ("dialog", "") => Outcome::Dialog,
            ("hang", "") => Outcome::Hang,
            ("crash", "") => Outcome::Crash,
            ("say", text) if !text.is_empty() => Outcome::Say(text.to_owned()),
            _ => return Err(DirectiveError(s.to_owned())),
        })
    }
}

/// The reset text Claude Code shows: the next full hour in UTC, like `7am (UTC)`.
fn default_reset() -> String {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
    let hour = (now.hour() + 1) % 24;
    let (h12, ampm) = match hour {
        0 => (12, "am"),
        1..=11 => (hour, "am"),
        12 => (12, "pm"),
        _ => (hour - 12, "pm"),
    };
    format!("{h12}{ampm} (UTC)")
}

/// Where the next outcomes come from.
#[derive(Debug)]
pub(crate) struct Script {
    queue: VecDeque<Outcome>,
    control: Option<PathBuf>,
    limit_file: PathBuf,
}

impl Script {
    /// A script from a `;`-separated queue, an optional control file, and the account
    /// home whose `.sim-limit` file marks the account exhausted.
    pub(crate) fn new(
        queue: &str,
        control: Option<PathBuf>,
        home: &Path,
    ) -> Result<Self, DirectiveError> {
        let queue = queue
            .split(';')
            .filter(|s| !s.trim().is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        Ok(Self {
            queue,
            control,
            limit_file: home.join(".sim-limit"),
        })
    }

    /// The outcome of the turn that starts now.
    pub(crate) fn next_outcome(&mut self) -> Outcome {
        if let Ok(reset) = std::fs::read_to_string(&self.limit_file) {
            let reset = reset.trim();
            return if reset.is_empty() {
                Outcome::Limit(None)
            } else {
                Outcome::Limit(Some(reset.to_owned()))
            };
        }
        if let Some(outcome) = self.control.as_deref().and_then(take_line) {
            return outcome;
        }
        self.queue.pop_front().unwrap_or(Outcome::Ok)
    }
}

/// Takes the first directive line of the control file, leaving the rest. Agents that
/// share the file take turns on an exclusive lock, so that two never take the same line
/// and none finds the file missing while another holds it.
fn take_line(path: &Path) -> Option<Outcome> {
    use std::io::{Read, Seek, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ok()?;
    file.lock().ok()?;
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    if text.trim().is_empty() {
        // Emptied and removed by the agent that took the last line while this one
        // waited: whatever is at the path now is a newer file, not this one's.
        return None;
    }
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().map(str::to_owned);
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        // The last line taken: the file goes, emptied first for an agent that opened
        // it and waits for the lock.
        let _ = file.set_len(0);
        let _ = std::fs::remove_file(path);
    } else {
        let rest = rest.join("\n") + "\n";
        let rewritten = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(rest.as_bytes()));
        if rewritten.is_err() {
            return None;
        }
    }
    // Unlocked as the file closes.
    first.and_then(|l| l.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_should_parse_with_and_without_arguments() {
        assert_eq!("ok".parse::<Outcome>().unwrap(), Outcome::Ok);
        assert_eq!(
            "limit 7:11am (UTC)".parse::<Outcome>().unwrap(),
            Outcome::Limit(Some("7:11am (UTC)".into()))
        );
        assert_eq!(
            "limit none".parse::<Outcome>().unwrap(),
            Outcome::Limit(None)
        );
        assert_eq!(
            "limit-legacy 1749924000".parse::<Outcome>().unwrap(),
            Outcome::LimitLegacy(1_749_924_000)
        );
        assert_eq!(
            "say hi there".parse::<Outcome>().unwrap(),
            Outcome::Say("hi there".into())
        );
        assert!("explode".parse::<Outcome>().is_err());
        assert!("ok now".parse::<Outcome>().is_err());
    }

    #[test]
    fn agents_sharing_a_control_file_should_each_take_a_different_line() {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("control");
        let lines: Vec<String> = (0..200).map(|i| format!("say line {i}")).collect();
        std::fs::write(&control, lines.join("\n") + "\n").unwrap();
        let takers: Vec<_> = (0..8)
            .map(|_| {
                let control = control.clone();
                std::thread::spawn(move || {
                    std::iter::from_fn(|| take_line(&control)).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut taken: Vec<String> = takers
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .map(|o| match o {
                Outcome::Say(text) => text,
                other => panic!("{other:?}"),
            })
            .collect();
        taken.sort();
        let mut want: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
        want.sort();
        assert_eq!(taken, want);
        assert!(!control.exists());
    }

    #[test]
    fn script_should_prefer_limit_file_then_control_file_then_queue() {
        let dir = tempfile::tempdir().unwrap();
        let control = dir.path().join("control");
        std::fs::write(&control, "error500\n\ndialog\n").unwrap();
        let mut script = Script::new("hang; crash", Some(control.clone()), dir.path()).unwrap();
        assert_eq!(script.next_outcome(), Outcome::Error500);
        assert_eq!(script.next_outcome(), Outcome::Dialog);
        assert!(!control.exists());
        assert_eq!(script.next_outcome(), Outcome::Hang);
        std::fs::write(dir.path().join(".sim-limit"), "5pm (UTC)\n").unwrap();
        assert_eq!(
            script.next_outcome(),
            Outcome::Limit(Some("5pm (UTC)".into()))
        );
        std::fs::remove_file(dir.path().join(".sim-limit")).unwrap();
        assert_eq!(script.next_outcome(), Outcome::Crash);
        assert_eq!(script.next_outcome(), Outcome::Ok);
    }
}
