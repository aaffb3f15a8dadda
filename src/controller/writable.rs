//! Whether the state folder can be written, and saying so: a folder turned read-only
//! (a filesystem remounted after an error, a person's `chmod`) fails every save of the
//! facts and every journal line, every round. The controller keeps its sessions
//! running, claims no new task (its claim could not be recorded), holds the journal's
//! lines in memory, and says that the folder cannot be written once a minute, not once
//! a round; when a write goes through again it writes the lines held and says for how
//! long it could not.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::journal::Line;

/// How often a folder that still cannot be written is said again.
pub(super) const SAY_EVERY: Duration = Duration::from_secs(60);
/// The most journal lines held in memory; older ones beyond are dropped (and counted).
pub(super) const HELD_MAX: usize = 100_000;

/// A stretch of time the state folder could not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Outage {
    /// When the first write failed.
    pub since: jiff::Timestamp,
    /// The last error.
    pub error: String,
    /// Journal lines dropped because more were held than [`HELD_MAX`].
    pub dropped: usize,
}

/// The state folder's writability, as the controller's writes find it.
#[derive(Debug, Default)]
pub(super) struct Writable {
    outage: Option<Outage>,
    said: Option<Instant>,
    /// Journal lines not written yet, oldest first.
    held: VecDeque<Line>,
}

impl Writable {
    /// A write failed with `error` at `now` (`at` on the wall clock): whether to say
    /// so now (the first failure, or [`SAY_EVERY`] since it was last said).
    pub(super) fn failed(&mut self, error: &str, now: Instant, at: jiff::Timestamp) -> bool {
        let outage = self.outage.get_or_insert_with(|| Outage {
            since: at,
            error: String::new(),
            dropped: 0,
        });
        error.clone_into(&mut outage.error);
        let say = self
            .said
            .is_none_or(|said| now.saturating_duration_since(said) >= SAY_EVERY);
        if say {
            self.said = Some(now);
        }
        say
    }

    /// Every write went through: the outage this ends, once.
    pub(super) fn recovered(&mut self) -> Option<Outage> {
        self.said = None;
        self.outage.take()
    }

    /// Whether a write failed since the last round that wrote everything.
    pub(super) fn is_down(&self) -> bool {
        self.outage.is_some()
    }

    /// Holds `line` until the journal takes it.
    pub(super) fn hold(&mut self, line: Line) {
        if self.held.len() >= HELD_MAX {
            self.held.pop_front();
            if let Some(o) = self.outage.as_mut() {
                o.dropped += 1;
            }
        }
        self.held.push_back(line);
    }

    /// The lines held, oldest first, to write; those not written go back with
    /// [`Writable::unwritten`].
    pub(super) fn take_held(&mut self) -> VecDeque<Line> {
        std::mem::take(&mut self.held)
    }

    /// Puts back lines that still could not be written, before any held since.
    pub(super) fn unwritten(&mut self, mut lines: VecDeque<Line>) {
        lines.append(&mut self.held);
        self.held = lines;
    }

    /// How many lines are held.
    pub(super) fn held(&self) -> usize {
        self.held.len()
    }
}

/// While the state folder cannot be written the agents' reports (files in it) are
/// lost: every agent known to report is marked unheard, its turn read from the
/// transcript and the screen until its successor's `SessionStart` (a task whose
/// `Stop` report was lost would wait for it forever).
pub(super) fn unheard(facts: &mut crate::state::Facts) {
    for agent in facts.sessions.values_mut().filter_map(|f| f.agent.as_mut()) {
        agent.unheard = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_should_be_unheard_while_their_reports_may_be_lost() {
        let mut facts = crate::state::Facts::default();
        let agent = crate::state::AgentFacts {
            pid: 7,
            conversation: "c".into(),
            transcript: "/t".into(),
            unheard: false,
        };
        facts.sessions.entry("w".into()).or_default().agent = Some(agent);
        facts.sessions.entry("x".into()).or_default();
        assert!(facts.sessions["w"].agent.as_ref().unwrap().reports(7));
        unheard(&mut facts);
        let a = facts.sessions["w"].agent.as_ref().unwrap();
        assert!(a.unheard && !a.reports(7));
        assert!(facts.sessions["x"].agent.is_none());
    }

    fn line(n: u32) -> Line {
        Line {
            time: jiff::Timestamp::UNIX_EPOCH,
            entry: crate::journal::Life::Stopped { pid: Some(n) }.into(),
        }
    }

    #[test]
    fn a_folder_that_cannot_be_written_should_be_said_once_a_minute_not_once_a_round() {
        let start = Instant::now();
        let at = jiff::Timestamp::UNIX_EPOCH;
        let mut w = Writable::default();
        let said: Vec<u64> = (0..=300)
            .map(|s| start + Duration::from_millis(s * 500))
            .filter(|now| w.failed("read-only file system", *now, at))
            .map(|now| (now - start).as_secs())
            .collect();
        assert_eq!(said, [0, 60, 120]);
        assert!(w.is_down());
        let outage = w.recovered().expect("an outage ended");
        assert!(!w.is_down());
        assert_eq!(outage.error, "read-only file system");
        assert_eq!(w.recovered(), None, "said once");
        assert!(
            w.failed("again", start + Duration::from_secs(151), at),
            "a new outage"
        );
    }

    #[test]
    fn journal_lines_should_be_held_in_order_and_put_back_before_newer_ones() {
        let mut w = Writable::default();
        w.failed("ro", Instant::now(), jiff::Timestamp::UNIX_EPOCH);
        w.hold(line(1));
        w.hold(line(2));
        let taken = w.take_held();
        w.hold(line(3));
        w.unwritten(taken);
        let pids: Vec<_> = w.take_held().into_iter().map(|l| l.entry).collect();
        assert_eq!(pids, [line(1).entry, line(2).entry, line(3).entry]);
        assert_eq!(w.held(), 0);
    }
}
