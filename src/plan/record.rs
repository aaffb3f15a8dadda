//! Folding what an action did into the facts, so the next plan knows it.

use jiff::Timestamp;

use super::Action;
use crate::state::{Facts, Stage, TaskFacts};

/// What a successful action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it says.
    Done,
    /// It pasted a prompt into the agent: [`crate::report::text_hash`] of the text, by
    /// which the agent's submit report is known to be this task's.
    Sent(u64),
    /// The task it was to send went to `failed/` instead, or the move was not made,
    /// for this reason.
    Rejected(String),
    /// The agent was restarted resuming this conversation.
    Resumed(String),
}

/// Records the result of `action` in `facts`.
pub fn record(
    facts: &mut Facts,
    action: &Action,
    result: &Result<Outcome, String>,
    now: Timestamp,
) {
    let Ok(outcome) = result else { return };
    // A fresh agent has no old turn to redraw: a limit on its screen is a real one.
    let fresh = match action {
        Action::DispatchTask {
            task,
            restart: Some(_),
            ..
        }
        | Action::CompleteTask { task, .. } => Some(task.session.as_str()),
        Action::CreateSession { session, .. }
        | Action::RestartSession { session, .. }
        | Action::RecycleSession { session, .. } => Some(session.name.as_str()),
        Action::MoveSession { session, .. } if !matches!(outcome, Outcome::Resumed(_)) => {
            Some(session.name.as_str())
        }
        _ => None,
    };
    if let Some(f) = fresh.and_then(|name| facts.sessions.get_mut(name)) {
        f.new_turn();
    }
    // A turn we submit during a redraw: any limit but the redrawn one is its.
    if let Action::SubmitTask { task, .. } = action
        && let Some(f) = facts.sessions.get_mut(&task.session)
        && f.redraw
    {
        f.redraw_submitted = true;
    }
    let sent = match outcome {
        Outcome::Sent(hash) => Some(*hash),
        _ => None,
    };
    match action {
        Action::DispatchTask { task, restart, .. } => {
            facts.tries.remove(&format!("{}/{}", task.inbox, task.name));
            if matches!(outcome, Outcome::Rejected(_)) {
                return;
            }
            let f = facts.sessions.entry(task.session.clone()).or_default();
            f.idle_since = None;
            f.task = Some(TaskFacts {
                inbox: task.inbox.clone(),
                file: task.file.clone(),
                task: task.name.clone(),
                attempt: task.attempt,
                stage: if restart.is_some() {
                    Stage::Starting
                } else {
                    Stage::Pasted
                },
                since: now,
                expect: sent,
                pasted: sent.map(|_| now),
                ..TaskFacts::default()
            });
        }
        Action::PasteTask { task, .. } | Action::ContinueTask { task, .. } => {
            set_stage(facts, &task.session, Stage::Pasted, now);
            if let Some(t) = task_of(facts, &task.session) {
                // Carried on: a later stall is a new one, worth telling; the turn is a
                // new one, taken when its report or the busy marker says so.
                t.stalled = false;
                t.expect = sent.or(t.expect);
                t.pasted = Some(now);
                t.prompt_id = None;
                t.seen_busy = false;
            }
        }
        Action::MoveSession { session, .. } => match outcome {
            Outcome::Resumed(_) => {
                // What was counted was against the old account; on this one, only new
                // limits count.
                let f = facts.sessions.entry(session.name.clone()).or_default();
                f.start_redraw(None);
                carry_on(facts, &session.name, now);
            }
            // A fresh agent: a task it had is sent again from the start.
            Outcome::Done | Outcome::Sent(_) => {
                set_stage(facts, &session.name, Stage::Starting, now);
                // A turn that ended stays ended: the task completes, never runs again.
                if let Some(t) = task_of(facts, &session.name) {
                    t.prompt_id = None;
                    t.at_limit = false;
                    t.seen_busy = false;
                    t.conversation = None;
                }
            }
            Outcome::Rejected(_) => {}
        },
        Action::CreateSession {
            session,
            resume: Some(_),
        }
        | Action::RestartSession {
            session,
            resume: Some(_),
            ..
        } => {
            // The dead agent's conversation, resumed: its last turn is redrawn, and the
            // task is carried on.
            let f = facts.sessions.entry(session.name.clone()).or_default();
            f.start_redraw(None);
            carry_on(facts, &session.name, now);
            if let Some(t) = task_of(facts, &session.name) {
                t.resumes += 1;
            }
        }
        Action::SubmitTask { task, .. } => {
            let enters = match facts
                .sessions
                .get(&task.session)
                .and_then(|f| f.task.as_ref())
            {
                Some(TaskFacts {
                    stage: Stage::Submitted(n),
                    ..
                }) => n.saturating_add(1),
                _ => 1,
            };
            set_stage(facts, &task.session, Stage::Submitted(enters), now);
            if let Some(t) = facts
                .sessions
                .get_mut(&task.session)
                .and_then(|f| f.task.as_mut())
            {
                t.started = t.started.or(Some(now));
            }
        }
        Action::CompleteTask { task, pid, .. } => {
            let f = facts.sessions.entry(task.session.clone()).or_default();
            f.task = None;
            f.used_pid = Some(*pid);
            facts
                .try_reasons
                .remove(&format!("{}/{}", task.inbox, task.name));
        }
        Action::RequeueTask {
            task,
            failed,
            delivered,
            reason,
        } => {
            let key = format!("{}/{}", task.inbox, task.name);
            if *failed {
                facts.try_reasons.remove(&key);
            } else if *delivered {
                facts
                    .try_reasons
                    .entry(key)
                    .or_default()
                    .push(format!("try {}: {reason}", task.attempt));
            }
            if let Some(f) = facts.sessions.get_mut(&task.session)
                && f.task.as_ref().is_some_and(|t| t.file == task.file)
            {
                f.task = None;
            }
            if !failed {
                // Tries count deliveries: a claim that never reached an agent used none.
                let used = if *delivered {
                    task.attempt
                } else {
                    task.attempt.saturating_sub(1)
                };
                facts
                    .tries
                    .insert(format!("{}/{}", task.inbox, task.name), used);
            }
        }
        Action::StallTask { task } => {
            if let Some(t) = facts
                .sessions
                .get_mut(&task.session)
                .and_then(|f| f.task.as_mut())
            {
                t.stalled = true;
            }
        }
        Action::DeleteSession { name, .. } => {
            facts.sessions.remove(name);
        }
        _ => {}
    }
}

/// The task of `session`, if it has one.
fn task_of<'f>(facts: &'f mut Facts, session: &str) -> Option<&'f mut TaskFacts> {
    facts.sessions.get_mut(session)?.task.as_mut()
}

/// The task of `session` goes on in its resumed conversation: `continue` once idle.
fn carry_on(facts: &mut Facts, session: &str, now: Timestamp) {
    set_stage(facts, session, Stage::Resuming, now);
    if let Some(t) = task_of(facts, session) {
        t.prompt_id = None;
        t.at_limit = false;
        t.seen_busy = false;
    }
}

fn set_stage(facts: &mut Facts, session: &str, stage: Stage, now: Timestamp) {
    if let Some(t) = facts
        .sessions
        .get_mut(session)
        .and_then(|f| f.task.as_mut())
    {
        t.stage = stage;
        t.since = now;
        t.idle_since = None;
    }
}
