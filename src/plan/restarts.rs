//! Crash-loop backoff: an agent that keeps dying is started again at once three times,
//! then after a wait that doubles (1 s, 2 s, 4 s, … up to 5 min), counted in the facts
//! so that `diff` shows the wait and a restarted controller keeps it. A session that
//! stayed up for 10 minutes counts afresh. An agent that ended by its exit command after
//! a task is a fresh context, not a crash: it is neither counted nor journaled.

use crate::object::ObjectRef;
use std::time::Duration;

use jiff::Timestamp;

use super::{Action, Event, Plan, SessionAction};
use crate::observe::Observed;
use crate::state::{Facts, Restarts};

/// Starts allowed at once before backing off.
const FREE_RESTARTS: u32 = 3;
/// A session that stayed up this long starts counting afresh.
const RESTART_MEMORY: Duration = Duration::from_secs(600);
/// The first wait once the free starts are spent.
const RESTART_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between restarts of a crash-looping session.
const RESTART_MAX: Duration = Duration::from_secs(300);

/// The wait before the `n`th start past the free ones (1 for the first).
fn wait(n: u32) -> Duration {
    let factor = 1u32 << n.saturating_sub(1).min(16);
    RESTART_FIRST.saturating_mul(factor).min(RESTART_MAX)
}

/// Holds back the starts of crash-looping sessions (a refusal saying when, and a wake-up
/// then), counts the others, and journals each agent that died.
pub(super) fn plan_restarts(o: &Observed, now: Timestamp, plan: &mut Plan) {
    let since =
        |at: Timestamp| -> Duration { now.duration_since(at).try_into().unwrap_or_default() };
    plan.facts
        .restarts
        .retain(|_, r| since(r.last) <= RESTART_MEMORY);
    let mut kept = Vec::with_capacity(plan.actions.len());
    for action in std::mem::take(&mut plan.actions) {
        let (name, reason) = match &action {
            Action::Session(SessionAction::CreateSession { session, .. }) => (&session.name, None),
            Action::Session(SessionAction::RestartSession {
                session, reason, ..
            }) => (&session.name, Some(reason)),
            Action::Fs(_) | Action::Session(_) | Action::Task(_) => {
                kept.push(action);
                continue;
            }
        };
        if recycled(&plan.facts, o, name) {
            // Ended by its exit command after a task: a recycle, not a crash.
            kept.push(action);
            continue;
        }
        let r = plan.facts.restarts.get(name).copied();
        if let Some(r) = r.filter(|r| r.count >= FREE_RESTARTS) {
            let wait = wait(r.count - FREE_RESTARTS + 1);
            let waited = since(r.last);
            if waited < wait {
                let left = wait - waited;
                plan.refuse(
                    ObjectRef::Session(name.clone()),
                    format!(
                        "its agent keeps dying ({} starts in a row); started again in {}",
                        r.count,
                        crate::api::Duration(Duration::from_secs(left.as_secs().max(1)))
                    ),
                );
                plan.wake(left);
                continue;
            }
        }
        if let Some(reason) = reason {
            plan.events.push(died(&plan.facts, o, name, reason));
        }
        plan.facts.restarts.insert(
            name.clone(),
            Restarts {
                count: r.map_or(0, |r| r.count) + 1,
                last: now,
            },
        );
        kept.push(action);
    }
    plan.actions = kept;
}

/// Whether session `name`'s agent ended after finishing a task (a context recycle).
fn recycled(facts: &Facts, o: &Observed, name: &str) -> bool {
    let pid = o.sessions.get(name).map(|s| s.pane.pid);
    facts
        .sessions
        .get(name)
        .is_some_and(|f| f.task.is_none() && pid.is_some() && f.used_pid == pid)
}

/// The event of an agent that died: a task it worked on makes it a failure.
fn died(facts: &Facts, o: &Observed, name: &str, reason: &str) -> Event {
    let task = facts
        .sessions
        .get(name)
        .and_then(|f| f.task.as_ref())
        .map(|t| t.task.clone());
    let session = name.to_owned();
    let reason = reason.to_owned();
    let pid = o.sessions.get(name).map(|s| s.pane.pid);
    if task.is_some() {
        Event::SessionFailed {
            session,
            reason,
            pid,
            task,
        }
    } else {
        Event::SessionExited {
            session,
            reason,
            pid,
            task,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::plan::{Role, SessionSpec};

    fn restart(name: &str) -> Action {
        Action::Session(SessionAction::RestartSession {
            session: SessionSpec {
                name: name.into(),
                role: Role::Dedicated,
                account: "main".into(),
                workdir: "/w".into(),
                command: vec!["claude".into()],
                env: Default::default(),
                unset: vec![],
            },
            pane: "%1".into(),
            reason: "agent exited with status 1".into(),
            resume: None,
            live: false,
        })
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Plans one restart of `s` at `now` over `facts`; the plan after the rule.
    fn round(facts: &Facts, now: Timestamp) -> Plan {
        let mut o = observed();
        o.sessions
            .insert("s".into(), session("s", "failover", "main", 42));
        let mut plan = Plan {
            facts: facts.clone(),
            actions: vec![restart("s")],
            ..Plan::default()
        };
        plan_restarts(&o, now, &mut plan);
        plan
    }

    #[test]
    fn a_crash_looping_agent_should_be_held_back_after_three_quick_starts() {
        let mut facts = Facts::default();
        // Three starts a second apart go through, each journaled.
        for i in 0..3 {
            let p = round(&facts, at(i));
            assert_eq!(p.actions.len(), 1, "start {i} goes through");
            assert!(matches!(p.events[..], [Event::SessionExited { .. }]));
            facts = p.facts;
        }
        // The fourth waits a second after the third.
        let p = round(&facts, at(2));
        assert!(p.actions.is_empty());
        assert_eq!(p.refused.len(), 1, "{:?}", p.refused);
        assert!(p.refused[0].reason.contains("keeps dying (3 starts"));
        assert_eq!(p.requeue_after, Some(Duration::from_secs(1)));
        // Then it goes, and the next waits twice as long.
        let p = round(&facts, at(3));
        assert_eq!(p.actions.len(), 1);
        let p = round(&p.facts, at(4));
        assert!(p.actions.is_empty());
        assert_eq!(p.requeue_after, Some(Duration::from_secs(1)));
        assert_eq!(wait(2), Duration::from_secs(2));
        assert_eq!(wait(30), RESTART_MAX);
    }

    #[test]
    fn a_session_that_stayed_up_should_count_afresh() {
        let mut facts = Facts::default();
        facts.restarts.insert(
            "s".into(),
            Restarts {
                count: 9,
                last: at(0),
            },
        );
        let p = round(&facts, at(601));
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.facts.restarts["s"].count, 1);
    }

    #[test]
    fn an_agent_ended_by_its_exit_command_should_not_count_as_a_crash() {
        let mut facts = Facts::default();
        facts.sessions.entry("s".into()).or_default().used_pid = Some(42);
        facts.restarts.insert(
            "s".into(),
            Restarts {
                count: 5,
                last: at(0),
            },
        );
        let p = round(&facts, at(1));
        assert_eq!(p.actions.len(), 1, "a recycle is never held back");
        assert!(p.events.is_empty(), "nor journaled as an exit");
        assert_eq!(p.facts.restarts["s"].count, 5);
    }
}
