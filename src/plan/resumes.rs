//! Resumes that fail at once: an agent started with `--resume` that dies within
//! [`RESUME_GRACE`], or whose screen says it found no conversation, could not carry its
//! conversation on (the new account's home does not find the transcript). Its
//! conversation is not tried again: the session starts afresh, and a task it held is
//! sent again with its own text, its claim kept and no try used.

use std::time::Duration;

use jiff::Timestamp;

use super::{Event, Plan};
use crate::observe::Observed;
use crate::state::Stage;

/// How soon after a `--resume` start a death counts as a resume that failed.
pub(super) const RESUME_GRACE: Duration = Duration::from_secs(10);

/// What Claude Code prints when `--resume` names a conversation it cannot find.
const NOT_FOUND: &str = "No conversation found";

/// Finds the resumes that failed, drops their conversation from the facts (so the
/// session restarts afresh) and journals why; forgets the resumes that took.
pub(super) fn plan_resumes(o: &Observed, now: Timestamp, plan: &mut Plan) {
    for (name, f) in plan.facts.sessions.iter_mut() {
        let Some((id, at)) = f.resumed.clone() else {
            continue;
        };
        let Some(s) = o.sessions.get(name) else {
            continue;
        };
        let since: Duration = now.duration_since(at).try_into().unwrap_or_default();
        let said = o.screens.get(name).is_some_and(|t| t.contains(NOT_FOUND));
        if !s.pane.dead {
            if since > RESUME_GRACE && !said {
                f.resumed = None;
            }
            continue;
        }
        f.resumed = None;
        if since > RESUME_GRACE && !said {
            // It ran a while: an ordinary death, resumed again as usual.
            continue;
        }
        let reason = if said {
            format!("the agent said \"{NOT_FOUND}\" and exited")
        } else {
            format!(
                "the agent exited {}s after it was started resuming it",
                since.as_secs()
            )
        };
        let mut task = None;
        if let Some(t) = f.task.as_mut().filter(|t| t.ended.is_none()) {
            t.conversation = None;
            t.stage = Stage::Starting;
            t.since = now;
            t.prompt_id = None;
            t.at_limit = false;
            t.seen_busy = false;
            t.resend = true;
            task = Some(t.task.clone());
        }
        plan.events.push(Event::ResumeFailed {
            session: name.clone(),
            account: s.account.clone(),
            conversation: id,
            reason,
            task,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn world(dead: bool, screen: &str, started: i64) -> Observed {
        let mut o = observed();
        let mut s = session("ccl-auto-11", "failover", "alt", 100);
        s.pane.dead = dead;
        add(&mut o, s);
        o.screens.insert("ccl-auto-11".into(), screen.into());
        let mut t = task_facts("ccl-auto-11");
        t.conversation = Some(("c1".into(), "/h/main/projects/-w/c1.jsonl".into()));
        t.stage = crate::state::Stage::Resuming;
        claimed(&mut o, "ccl-auto-11", t);
        let f = o.facts.sessions.entry("ccl-auto-11".into()).or_default();
        f.resumed = Some((
            "c1".into(),
            now() - jiff::SignedDuration::from_secs(started),
        ));
        o
    }

    fn after(o: &Observed) -> Plan {
        let mut plan = Plan {
            facts: o.facts.clone(),
            ..Plan::default()
        };
        plan_resumes(o, now(), &mut plan);
        plan
    }

    #[test]
    fn an_agent_dead_at_once_after_a_resume_should_start_afresh_and_resend_its_task() {
        for (screen, started) in [("", 2), ("No conversation found with session ID: c1", 60)] {
            let p = after(&world(true, screen, started));
            let f = &p.facts.sessions["ccl-auto-11"];
            let t = f.task.as_ref().expect("the claim is kept");
            assert_eq!(t.conversation, None, "{screen}");
            assert_eq!(t.stage, Stage::Starting);
            assert!(t.resend);
            assert_eq!(t.attempt, 1, "no try used");
            assert_eq!(f.resumed, None);
            assert!(
                matches!(&p.events[..], [Event::ResumeFailed { conversation, task: Some(_), .. }] if conversation == "c1"),
                "{:?}",
                p.events
            );
        }
    }

    #[test]
    fn a_death_long_after_a_resume_should_resume_again_as_usual() {
        let p = after(&world(true, "", 60));
        let t = p.facts.sessions["ccl-auto-11"].task.as_ref().unwrap();
        assert!(t.conversation.is_some());
        assert!(!t.resend);
        assert!(p.events.is_empty());
    }

    #[test]
    fn a_resume_that_took_should_be_forgotten_after_the_grace() {
        let p = after(&world(false, "", 2));
        assert!(p.facts.sessions["ccl-auto-11"].resumed.is_some());
        let p = after(&world(false, "", 11));
        assert_eq!(p.facts.sessions["ccl-auto-11"].resumed, None);
        assert!(p.events.is_empty());
    }
}
