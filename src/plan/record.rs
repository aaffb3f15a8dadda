//! Folding what an action did into the facts, so the next plan knows it.

use jiff::Timestamp;

use super::{Action, FsAction, Outcome, SessionAction, TaskAction, TaskRef};
use crate::state::{Facts, Redraw, Stage, TaskFacts};

/// Records the result of `action` in `facts`.
pub fn record(
    facts: &mut Facts,
    action: &Action,
    result: &Result<Outcome, String>,
    now: Timestamp,
) {
    let Ok(outcome) = result else { return };
    match action {
        Action::Fs(a) => record_fs(a),
        Action::Session(a) => record_session(facts, a, outcome, now),
        Action::Task(a) => record_task(facts, a, outcome, now),
    }
}

/// A folder, link or agent settings file was written: nothing the facts keep.
fn record_fs(action: &FsAction) {
    match action {
        FsAction::CreateDir { .. }
        | FsAction::CreateLink { .. }
        | FsAction::ConfigureAgent { .. }
        | FsAction::RestoreSettings { .. }
        | FsAction::RemoveLink { .. }
        | FsAction::EndDaemons { .. } => {}
    }
}

/// A session's agent was started, moved or removed.
fn record_session(facts: &mut Facts, action: &SessionAction, outcome: &Outcome, now: Timestamp) {
    let name = action.name();
    // A fresh agent has no old turn to redraw: a limit on its screen is a real one.
    let fresh = match action {
        SessionAction::MoveSession { .. } => !matches!(outcome, Outcome::Resumed(_)),
        SessionAction::CreateSession { .. }
        | SessionAction::RestartSession { .. }
        | SessionAction::RecycleSession { .. } => true,
        SessionAction::DeleteSession { .. } => false,
    };
    if fresh && let Some(f) = facts.sessions.get_mut(name) {
        f.new_turn();
    }
    match action {
        SessionAction::MoveSession { .. } => match outcome {
            Outcome::Resumed(id) => {
                // What was counted was against the old account; on this one, only new
                // limits count.
                let f = facts.sessions.entry(name.to_owned()).or_default();
                f.start_redraw(None);
                carry_on(facts, name, now);
                started(facts, name, Some((id.clone(), now)));
            }
            // A fresh agent: a task it had is sent again from the start.
            Outcome::Done | Outcome::Sent(_) | Outcome::Fresh(_) => {
                if let Some(t) = task_of(facts, name) {
                    t.start_over(now);
                }
                started(facts, name, None);
            }
            Outcome::Rejected(_) => {}
        },
        SessionAction::CreateSession {
            resume: Some(id), ..
        }
        | SessionAction::RestartSession {
            resume: Some(id), ..
        } => {
            // The dead agent's conversation, resumed: its last turn is redrawn, and the
            // task is carried on.
            let f = facts.sessions.entry(name.to_owned()).or_default();
            f.start_redraw(None);
            carry_on(facts, name, now);
            if let Some(t) = task_of(facts, name) {
                t.resumes += 1;
            }
            started(facts, name, Some((id.clone(), now)));
        }
        SessionAction::DeleteSession { .. } => {
            facts.sessions.remove(name);
        }
        SessionAction::CreateSession { resume: None, .. }
        | SessionAction::RestartSession { resume: None, .. }
        | SessionAction::RecycleSession { .. } => started(facts, name, None),
    }
}

/// A new agent runs in session `name`, resuming a conversation since a time, or
/// afresh: a resume that fails at once is known by it. A task waiting for a fresh agent
/// to be sent again to has it: if that agent dies before the text goes out, the task
/// goes back to its inbox as usual, no try used.
fn started(facts: &mut Facts, name: &str, resumed: Option<(String, Timestamp)>) {
    if let Some(f) = facts.sessions.get_mut(name) {
        f.resumed = resumed;
        if let Some(t) = f.task.as_mut() {
            t.resend = false;
        }
    }
}

/// A task was claimed, sent, submitted, ended or put back.
fn record_task(facts: &mut Facts, action: &TaskAction, outcome: &Outcome, now: Timestamp) {
    let sent = match outcome {
        Outcome::Sent(hash) => Some(*hash),
        Outcome::Done | Outcome::Rejected(_) | Outcome::Resumed(_) | Outcome::Fresh(_) => None,
    };
    match action {
        TaskAction::DispatchTask { task, restart, .. } => {
            dispatched(facts, task, restart.is_some(), outcome, sent, now);
        }
        TaskAction::PasteTask { task, .. } | TaskAction::ContinueTask { task, .. } => {
            set_stage(facts, &task.session, Stage::Pasted, now);
            if let Some(t) = task_of(facts, &task.session) {
                t.resend = false;
                // Carried on: a later stall is a new one, worth telling; the turn is a
                // new one, taken when its report or the busy marker says so.
                t.stalled = false;
                t.expect = sent.or(t.expect);
                t.pasted = Some(now);
                t.prompt_id = None;
                t.seen_busy = false;
            }
        }
        TaskAction::SubmitTask { task, .. } => submitted(facts, &task.session, now),
        TaskAction::CompleteTask { task, pid, .. } => completed(facts, task, *pid),
        TaskAction::RequeueTask {
            task,
            failed,
            delivered,
            reason,
        } => requeued(facts, task, *failed, *delivered, reason),
        TaskAction::StallTask { task } => {
            if let Some(t) = task_of(facts, &task.session) {
                t.stalled = true;
            }
        }
        // `failover delete`'s: the controller is not running.
        TaskAction::RejectTask { .. } | TaskAction::ReturnTask { .. } => {}
    }
}

/// A task was claimed for its session (`restart`ed for it, or its text `sent`): its
/// earlier tries are the claim's now, and the session works on it, unless the claim
/// was rejected.
fn dispatched(
    facts: &mut Facts,
    task: &TaskRef,
    restart: bool,
    outcome: &Outcome,
    sent: Option<u64>,
    now: Timestamp,
) {
    if restart && let Some(f) = facts.sessions.get_mut(&task.session) {
        // A fresh agent has no old turn to redraw.
        f.new_turn();
    }
    facts.tries.remove(&task.key().to_string());
    // Handed to another family before it came back: the claim carries that on.
    let hand_offs = facts
        .hand_offs
        .remove(&task.key().to_string())
        .unwrap_or_default();
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
        stage: if restart {
            Stage::Starting
        } else {
            Stage::Pasted
        },
        since: now,
        expect: sent,
        pasted: sent.map(|_| now),
        hand_offs,
        ..TaskFacts::default()
    });
}

/// A task is done: its session is free, its agent (`pid`) used, its tries' reasons
/// forgotten.
fn completed(facts: &mut Facts, task: &TaskRef, pid: u32) {
    if let Some(f) = facts.sessions.get_mut(&task.session) {
        // Its exit command starts a fresh context: no old turn to redraw.
        f.new_turn();
    }
    let f = facts.sessions.entry(task.session.clone()).or_default();
    f.task = None;
    f.used_pid = Some(pid);
    facts.try_reasons.remove(&task.key().to_string());
    facts.hand_offs.remove(&task.key().to_string());
}

/// The lone Enter went out: the `n`th for this paste.
fn submitted(facts: &mut Facts, session: &str, now: Timestamp) {
    let Some(f) = facts.sessions.get_mut(session) else {
        return;
    };
    // A turn we submit during a redraw: any limit but the redrawn one is its.
    if let Redraw::On { submitted, .. } = &mut f.redraw {
        *submitted = true;
    }
    let enters = match f.task.as_ref() {
        Some(TaskFacts {
            stage: Stage::Submitted(n),
            ..
        }) => n.saturating_add(1),
        Some(_) | None => 1,
    };
    set_stage(facts, session, Stage::Submitted(enters), now);
    if let Some(t) = task_of(facts, session) {
        t.started = t.started.or(Some(now));
    }
}

/// A claim ended without the task done: back to its inbox (a try used if its text was
/// delivered) or to `failed/`.
fn requeued(facts: &mut Facts, task: &TaskRef, failed: bool, delivered: bool, reason: &str) {
    let key = task.key().to_string();
    if failed {
        facts.try_reasons.remove(&key);
    } else if delivered {
        facts
            .try_reasons
            .entry(key.clone())
            .or_default()
            .push(format!("try {}: {reason}", task.attempt));
    }
    if let Some(f) = facts.sessions.get_mut(&task.session)
        && let Some(t) = f.task.take_if(|t| t.file == task.file)
        && !failed
        && !t.hand_offs.is_empty()
    {
        // Back to its inbox after a hand-off: the next claim carries it on.
        facts.hand_offs.insert(key.clone(), t.hand_offs);
    }
    if !failed {
        // Tries count deliveries: a claim that never reached an agent used none.
        let used = if delivered {
            task.attempt
        } else {
            task.attempt.saturating_sub(1)
        };
        facts.tries.insert(key, used);
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

/// The task of `session` is at `stage` from `now`, not idle.
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

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
