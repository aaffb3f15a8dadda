//! A jump of the wall clock (NTP stepping it after a suspend, a VM restored from a
//! snapshot), seen by the controller between two rounds. The instants the facts keep
//! of what the controller observed or did move with the clock, so that every span
//! measured from them (the cooldown since the last swap, the stall and start timers,
//! quota confirmations, idle scale-down, crash-loop memory) goes on as the monotonic
//! clock measured it. The instants of the world stay where they are: an account's
//! reset (`exhaustedUntil`, a usage window's `resetsAt`) is a time of day.

use jiff::{SignedDuration, Timestamp};

use super::{Ended, Facts, SessionFacts, TaskFacts};

/// `t` moved by `by` (unchanged at the ends of time).
fn moved(t: &mut Timestamp, by: SignedDuration) {
    *t = t.saturating_add(by).unwrap_or(*t);
}

impl Facts {
    /// Moves every instant the controller measures a span from by `by`, the wall
    /// clock's jump; the world's instants stay.
    pub fn shift(&mut self, by: SignedDuration) {
        for ledger in self.families.ledgers_mut() {
            if let Some(swap) = ledger.last_swap.as_mut() {
                moved(&mut swap.at, by);
            }
            if let Some(t) = ledger.waiting_since.as_mut() {
                moved(t, by);
            }
        }
        for (_, at) in self.quota_polls.values_mut() {
            moved(at, by);
        }
        for reading in self.usage.values_mut() {
            moved(&mut reading.at, by);
        }
        for restarts in self.restarts.values_mut() {
            moved(&mut restarts.last, by);
        }
        for session in self.sessions.values_mut() {
            session.shift(by);
        }
    }
}

impl SessionFacts {
    fn shift(&mut self, by: SignedDuration) {
        if let Some((_, t)) = self.screen.as_mut() {
            moved(t, by);
        }
        for t in [self.idle_since.as_mut(), self.status_at.as_mut()]
            .into_iter()
            .flatten()
        {
            moved(t, by);
        }
        if let Some((_, t)) = self.resumed.as_mut() {
            moved(t, by);
        }
        if let Some(last) = self.last_turn.as_mut() {
            moved(&mut last.at, by);
        }
        if let Some(task) = self.task.as_mut() {
            task.shift(by);
        }
    }
}

impl TaskFacts {
    fn shift(&mut self, by: SignedDuration) {
        moved(&mut self.since, by);
        for t in [
            self.started.as_mut(),
            self.idle_since.as_mut(),
            self.pasted.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            moved(t, by);
        }
        if let Some(Ended::Reply { at, .. }) = self.ended.as_mut() {
            moved(at, by);
        }
        for h in &mut self.hand_offs {
            moved(&mut h.at, by);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::AgentKind;
    use crate::state::{LastTurn, Restarts, Stage, Swap};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Facts with every instant set to `t`, and the world's to `reset`.
    fn facts(t: Timestamp, reset: Timestamp) -> Facts {
        let mut f = Facts::default();
        let ledger = f.families.get_mut(AgentKind::ClaudeCode);
        ledger.last_swap = Some(Swap {
            at: t,
            from: "a".into(),
            to: "b".into(),
            reason: "quota".into(),
        });
        ledger.waiting_since = Some(t);
        f.exhausted_until.insert("a".into(), reset);
        f.quota_polls.insert("a".into(), (1, t));
        f.restarts
            .insert("w".into(), Restarts { count: 1, last: t });
        let s = f.sessions.entry("w".into()).or_default();
        s.screen = Some((1, t));
        s.idle_since = Some(t);
        s.status_at = Some(t);
        s.resumed = Some(("c".into(), t));
        s.last_turn = Some(LastTurn {
            at: t,
            prompt_id: "p".into(),
            error: None,
            message: String::new(),
        });
        s.task = Some(TaskFacts {
            stage: Stage::Running,
            since: t,
            started: Some(t),
            idle_since: Some(t),
            pasted: Some(t),
            ended: Some(Ended::Reply {
                reply: "ok".into(),
                how: "Stop report".into(),
                at: t,
            }),
            ..TaskFacts::default()
        });
        f
    }

    #[test]
    fn a_clock_jump_should_move_every_span_start_and_leave_the_worlds_resets() {
        let (t, reset) = (at("2026-12-06T08:00:00Z"), at("2026-12-06T09:00:00Z"));
        let by = SignedDuration::from_hours(2);
        let mut f = facts(t, reset);
        f.shift(by);
        // Every instant of ours moved: the facts are those made at t + 2h, but the
        // account's reset is where it was.
        let mut want = facts(t + by, reset);
        want.exhausted_until.insert("a".into(), reset);
        assert_eq!(f, want);
        // Back by minutes, the same.
        let back = SignedDuration::from_mins(-10);
        let mut f = facts(t, reset);
        f.shift(back);
        assert_eq!(f, facts(t + back, reset));
    }
}
