//! Resumes that fail at once: an agent started with `--resume` that dies within
//! [`RESUME_GRACE`] without a sign that it took (its `SessionStart` report, a turn sent
//! since, its exit command after a task) could not carry its conversation on (Claude Code
//! prints "No conversation found" and exits 1 when the new account's home does not find
//! the transcript). Its conversation is not tried again: the session starts afresh, and
//! a task it held is sent again with its own text, its claim kept and no try used.

use std::time::Duration;

use jiff::Timestamp;

use super::{Event, Plan};
use crate::observe::Observed;
use crate::state::{SessionFacts, Stage};

/// How soon after a `--resume` start a death without a sign of life counts as a resume
/// that failed.
pub(super) const RESUME_GRACE: Duration = Duration::from_secs(10);

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
        let took = took(f, s.pane.pid);
        if !s.pane.dead {
            if took || since > RESUME_GRACE {
                f.resumed = None;
            }
            continue;
        }
        f.resumed = None;
        if took || since > RESUME_GRACE {
            // It ran: an ordinary death, resumed again as usual.
            continue;
        }
        let mut task = None;
        if let Some(t) = f.task.as_mut().filter(|t| t.ended.is_none()) {
            t.start_over(now);
            t.resend = true;
            task = Some(t.task.clone());
        }
        plan.events.push(Event::ResumeFailed {
            session: name.clone(),
            account: s.account.clone(),
            conversation: id,
            reason: format!(
                "the agent exited {}s after it was started resuming it, before any sign that it had",
                since.as_secs()
            ),
            task,
        });
    }
}

/// Whether the agent with `pid` shows that its resume took: it reported its start, a
/// turn of its task went out since, or it ended by its exit command after the task.
fn took(f: &SessionFacts, pid: u32) -> bool {
    f.agent.as_ref().is_some_and(|a| a.pid == pid)
        || f.used_pid == Some(pid)
        || f.task.as_ref().is_some_and(|t| t.stage != Stage::Resuming)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn world(dead: bool, started: i64) -> Observed {
        let mut o = observed();
        let mut s = session("ccl-auto-11", "failover", "alt", 100);
        s.pane.dead = dead;
        add(&mut o, s);
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
        for started in [0, 2, 10] {
            let p = after(&world(true, started));
            let f = &p.facts.sessions["ccl-auto-11"];
            let t = f.task.as_ref().expect("the claim is kept");
            assert_eq!(t.conversation, None, "{started}");
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
    fn a_death_after_a_sign_of_life_or_long_after_a_resume_should_resume_again_as_usual() {
        let signs: [fn(&mut Observed); 4] = [
            // Long after.
            |o| shift(o, 60),
            // Its SessionStart report came.
            |o| {
                let f = o.facts.sessions.get_mut("ccl-auto-11").unwrap();
                f.agent = Some(crate::state::AgentFacts {
                    pid: 100,
                    conversation: "c1".into(),
                    transcript: "/h/main/projects/-w/c1.jsonl".into(),
                    unheard: false,
                });
            },
            // The task's `continue` went out.
            |o| {
                let f = o.facts.sessions.get_mut("ccl-auto-11").unwrap();
                f.task.as_mut().unwrap().stage = Stage::Submitted(1);
            },
            // It ended by its exit command after the task.
            |o| {
                let f = o.facts.sessions.get_mut("ccl-auto-11").unwrap();
                f.task = None;
                f.used_pid = Some(100);
            },
        ];
        for (i, sign) in signs.iter().enumerate() {
            let mut o = world(true, 2);
            sign(&mut o);
            let p = after(&o);
            let f = &p.facts.sessions["ccl-auto-11"];
            assert_eq!(f.resumed, None, "{i}");
            assert!(
                f.task
                    .as_ref()
                    .is_none_or(|t| t.conversation.is_some() && !t.resend),
                "{i}"
            );
            assert!(p.events.is_empty(), "{i}: {:?}", p.events);
        }
    }

    /// The resume started `secs` earlier than it did.
    fn shift(o: &mut Observed, secs: i64) {
        let f = o.facts.sessions.get_mut("ccl-auto-11").unwrap();
        if let Some((_, at)) = f.resumed.as_mut() {
            *at -= jiff::SignedDuration::from_secs(secs);
        }
    }

    #[test]
    fn a_resume_that_took_should_be_forgotten() {
        let p = after(&world(false, 2));
        assert!(p.facts.sessions["ccl-auto-11"].resumed.is_some(), "not yet");
        let p = after(&world(false, 11));
        assert_eq!(p.facts.sessions["ccl-auto-11"].resumed, None);
        assert!(p.events.is_empty());
    }
}
