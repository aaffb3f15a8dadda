//! The operator's requests (`failover restart session`, `failover return task`, `top`'s
//! `x` and `r`) as ordinary actions, planned after every other rule so that they see
//! (and win over) what this round would do to the same session:
//!
//! - a restart: the session's agent stopped and started again under its account,
//!   resuming the conversation it holds, as a crash restart resumes a task's
//!   ([`SessionAction::RestartSession`] with `live`);
//! - a return: the task's turn stopped (its agent started afresh, as the planner does
//!   for a claim that may sit unsent) and the task put back in its inbox, no try used
//!   ([`TaskAction::RequeueTask`]).
//!
//! What is not ours is refused: a person's session, a dedicated session's work, a task
//! that does not run. A request carried out or refused is consumed (its file deleted once
//! the facts are saved); one that must wait for a safe point (a task's text on its way,
//! another change to the session this round) stays for the next round.

use super::{Plan, Refusal};
use crate::api::{Manifests, SessionOwner};
use crate::object::ObjectRef;
use crate::observe::{Observed, Session};
use crate::plan::{Action, Role, SessionAction, SessionSpec, TaskAction, TaskKey, TaskRef};
use crate::request::{Request, Verb};
use crate::state::Stage;

/// What the actions of a request say of why they run.
pub(crate) const REQUESTED: &str = "at the operator's request";

/// What became of a request this round.
enum Answer {
    /// Carried out (its actions are in the plan) or refused.
    Done,
    /// Not now: looked at again next round.
    Wait,
}

/// Plans the requests `o` found, in the order they were made.
pub(super) fn plan_requests(m: &Manifests, o: &Observed, owner: &str, plan: &mut Plan) {
    for found in &o.requests {
        let before = plan.refused.len();
        let answer = match &found.request {
            Ok(request) => {
                let answer = answer(m, o, owner, request, plan);
                // Each refusal of a request is its own, journaled even when the same
                // request was refused the round before.
                for r in &mut plan.refused[before..] {
                    r.reason = format!("{} (asked at {})", r.reason, request.at);
                }
                answer
            }
            Err(why) => {
                plan.refuse(
                    ObjectRef::Path(found.path.clone()),
                    format!("not a request ({why}); deleted"),
                );
                Answer::Done
            }
        };
        match answer {
            Answer::Done => plan.consumed.push(found.path.clone()),
            Answer::Wait => plan.wake(std::time::Duration::from_millis(200)),
        }
    }
}

/// The plan of `request` alone, for the verbs when no controller runs: its actions,
/// refusals and the facts; nothing consumed when it must wait.
pub(crate) fn plan_alone(
    m: &Manifests,
    o: &Observed,
    owner: &str,
    request: &Request,
) -> (Plan, bool) {
    let mut plan = Plan {
        facts: o.facts.clone(),
        ..Plan::default()
    };
    let done = matches!(answer(m, o, owner, request, &mut plan), Answer::Done);
    (plan, done)
}

fn answer(m: &Manifests, o: &Observed, owner: &str, request: &Request, plan: &mut Plan) -> Answer {
    match (&request.verb, &request.object) {
        (Verb::Restart, ObjectRef::Session(name)) => restart(m, o, owner, name, plan),
        (Verb::Return, ObjectRef::Task { inbox, name }) => {
            give_back(m, o, owner, inbox.as_deref(), name, plan)
        }
        (verb, object) => {
            plan.refuse(
                object.clone(),
                format!(
                    "cannot {}: restart takes a session (session/NAME), return a task \
                     (task/NAME or task/INBOX/NAME)",
                    verb.word()
                ),
            );
            Answer::Done
        }
    }
}

/// Restarts session `name`'s agent under its account, resuming its conversation.
fn restart(m: &Manifests, o: &Observed, owner: &str, name: &str, plan: &mut Plan) -> Answer {
    let what = ObjectRef::Session(name.to_owned());
    let s = match ours(m, o, owner, name) {
        Ok(s) => s,
        Err(why) => return refuse(plan, what, why),
    };
    if s.pane.dead {
        // Its agent exited: the round's own restart (resuming a task mid-turn) is the one
        // asked for.
        return Answer::Done;
    }
    if busy(plan, name) {
        return Answer::Wait;
    }
    let facts = plan.facts.sessions.get(name);
    let task = facts.and_then(|f| f.task.as_ref());
    if task.is_some_and(|t| t.stage != Stage::Running) {
        // The task's text is on its way (or its agent resumes): a restart now would lose
        // where it is.
        return Answer::Wait;
    }
    // The conversation its agent reported holding, else its task's; resumed when its
    // transcript is there.
    let held = facts
        .and_then(|f| f.agent.as_ref())
        .filter(|a| a.pid == s.pane.pid)
        .map(|a| (a.conversation.clone(), a.transcript.clone()))
        .or_else(|| task.and_then(|t| t.conversation.clone()))
        .filter(|(_, transcript)| o.transcripts.contains(transcript))
        // A dedicated Codex session's thread, from its folder's rollouts.
        .or_else(|| match o.codex_threads.get(name)? {
            crate::observe::CodexThread::Held { thread, rollout } => {
                Some((thread.clone(), rollout.clone()))
            }
            _ => None,
        });
    if let (Some(t), None) = (task, &held) {
        return refuse(
            plan,
            what,
            format!(
                "its task {} runs in a conversation that cannot be resumed (no transcript \
                 found): restarting would lose it; return the task first (failover return \
                 task {})",
                t.task, t.task
            ),
        );
    }
    let Some(mut spec) = spec_under_account(m, s, None) else {
        return refuse(
            plan,
            what,
            "its account or agent profile is not in the manifests: not restarted",
        );
    };
    let resume = held.map(|(id, _)| id);
    if let Some(id) = &resume {
        // The profile of its account's family (a pool over several families).
        let agent = m.agent_under(name, Some(&spec.account));
        let args = m.agent(agent).map(|p| p.spec.resume_args.clone());
        spec.command.extend(
            args.unwrap_or_default()
                .iter()
                .map(|a| a.replace("{sessionId}", id)),
        );
    }
    plan.act(SessionAction::RestartSession {
        session: spec,
        pane: s.pane.id.clone(),
        reason: format!("restarted {REQUESTED}"),
        resume,
        live: true,
    });
    Answer::Done
}

/// Stops the turn of the running task `name` (of `inbox`, when given) and puts it back
/// in its inbox.
fn give_back(
    m: &Manifests,
    o: &Observed,
    owner: &str,
    inbox: Option<&str>,
    name: &str,
    plan: &mut Plan,
) -> Answer {
    let what = ObjectRef::Task {
        inbox: inbox.map(str::to_owned),
        name: name.to_owned(),
    };
    let inboxes: Vec<_> = m
        .inboxes
        .iter()
        .filter(|i| inbox.is_none_or(|n| n == i.name))
        .collect();
    let running: Vec<_> = inboxes
        .iter()
        .filter_map(|i| {
            let a = o
                .inboxes
                .get(&i.name)?
                .active
                .iter()
                .find(|a| a.task == name)?;
            Some((*i, a))
        })
        .collect();
    let (i, active) = match running[..] {
        [one] => one,
        [] => {
            let waits = inboxes.iter().find(|i| {
                o.inboxes
                    .get(&i.name)
                    .is_some_and(|s| s.waiting.iter().any(|w| w.name == name))
            });
            let why = match waits {
                Some(i) => format!("waits in inbox {}: no turn runs to stop", i.name),
                None => "runs in no session of ours (not claimed in any inbox)".to_owned(),
            };
            return refuse(plan, what, why);
        }
        _ => {
            let names: Vec<&str> = running.iter().map(|(i, _)| i.name.as_str()).collect();
            return refuse(
                plan,
                what,
                format!(
                    "runs in several inboxes ({}): name one, task/INBOX/{name}",
                    names.join(", ")
                ),
            );
        }
    };
    let session = active.session.as_str();
    let s = match ours(m, o, owner, session) {
        Ok(s) => s,
        Err(why) => return refuse(plan, what, format!("its session {session} {why}")),
    };
    let Some(SessionOwner::Pool { pool, .. }) = m.session_owner(session) else {
        return refuse(
            plan,
            what,
            format!("its session {session} is dedicated: its work is a person's"),
        );
    };
    if s.pane.dead {
        // Its agent exited: the round's own rules resume or requeue the task.
        return Answer::Wait;
    }
    let Some(spec) = spec_under_account(m, s, Some(&pool.spec.workdir)) else {
        return refuse(
            plan,
            what,
            format!("its session {session}'s account or agent profile is not in the manifests"),
        );
    };
    let key = TaskKey::new(&i.name, name);
    let task = TaskRef {
        inbox: i.name.clone(),
        path: i.spec.path.clone(),
        name: name.to_owned(),
        file: active.file.clone(),
        session: session.to_owned(),
        account: s.account.clone().unwrap_or_default(),
        attempt: active.attempt,
        started: plan
            .facts
            .sessions
            .get(session)
            .and_then(|f| f.task.as_ref())
            .and_then(|t| t.started),
        earlier: plan
            .facts
            .try_reasons
            .get(&key.to_string())
            .cloned()
            .unwrap_or_default(),
        hand_offs: plan
            .facts
            .sessions
            .get(session)
            .and_then(|f| f.task.as_ref())
            .map(crate::state::TaskFacts::hand_offs_told)
            .unwrap_or_default(),
    };
    // What this round would do to the session or the task gives way: its text sent,
    // its end, a move (planned again next round).
    plan.actions.retain(|a| !touches(a, session, &key));
    plan.act(SessionAction::RecycleSession {
        session: spec,
        pane: s.pane.id.clone(),
        reason: format!("stop the turn of task {name}, returned {REQUESTED}"),
    });
    plan.act(TaskAction::RequeueTask {
        task,
        reason: format!("returned {REQUESTED}; no try used"),
        failed: false,
        delivered: false,
    });
    Answer::Done
}

/// Session `name`, when it is ours and a manifest wants it; else why not.
fn ours<'o>(
    m: &Manifests,
    o: &'o Observed,
    owner: &str,
    name: &str,
) -> Result<&'o Session, String> {
    let s = o
        .sessions
        .get(name)
        .ok_or_else(|| "does not run (no such tmux session)".to_owned())?;
    if !s.is_ours(owner) {
        return Err(format!(
            "is not ours (no @failover-owner {owner} mark): a person's session is never \
             restarted or stopped"
        ));
    }
    if m.session_owner(name).is_none() {
        return Err("is wanted by no manifest: it goes once its task ends".to_owned());
    }
    Ok(s)
}

/// Whether this round already changes session `name` or sends it text: a request for it
/// waits for the next round.
fn busy(plan: &Plan, name: &str) -> bool {
    plan.actions.iter().any(|a| match a {
        Action::Session(sa) => sa.name() == name,
        Action::Task(t) => t.task().is_some_and(|t| t.session == name),
        Action::Fs(_) => false,
    })
}

/// Whether `a` acts on `session` or on the task `key`.
fn touches(a: &Action, session: &str, key: &TaskKey) -> bool {
    match a {
        Action::Session(sa) => sa.name() == session,
        Action::Task(t) => t.key() == *key || t.task().is_some_and(|t| t.session == session),
        Action::Fs(_) => false,
    }
}

/// What session `s` runs under the account it runs under now, in its agent's folder
/// (a task's), or in `workdir` when given (a fresh agent of a pool).
fn spec_under_account(
    m: &Manifests,
    s: &Session,
    workdir: Option<&std::path::Path>,
) -> Option<SessionSpec> {
    let account = m.account(s.account.as_deref()?)?;
    let owner = m.session_owner(&s.name)?;
    let (manifest_workdir, env) = match owner {
        SessionOwner::Dedicated(d) => (&d.spec.workdir, &d.spec.env),
        SessionOwner::Pool { pool, .. } => (&pool.spec.workdir, &pool.spec.env),
    };
    // The profile of its account's family (a pool over several families).
    let agent = m.agent_under(&s.name, s.account.as_deref());
    let here = (!s.pane.path.as_os_str().is_empty()).then_some(s.pane.path.as_path());
    let workdir = workdir.or(here).unwrap_or(manifest_workdir);
    super::session_spec(m, account, &s.name, Role::from(owner), agent, workdir, env)
}

fn refuse(plan: &mut Plan, what: ObjectRef, why: impl Into<String>) -> Answer {
    plan.refused.push(Refusal {
        object: what,
        reason: why.into(),
    });
    Answer::Done
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
