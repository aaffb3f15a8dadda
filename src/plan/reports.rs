//! Folding the agents' own reports into the facts: the conversation each agent holds
//! (`SessionStart`), the turn under way, how a task's turn went (taken: its
//! `UserPromptSubmit`; ended: its `Stop` with the reply, or a `StopFailure`; Codex: its
//! `notify` for the task's thread and prompt), usage limits met (`StopFailure`
//! `rate_limit`, Codex's rollout's `usage_limit_exceeded`, for the ledger), and each
//! account's use from the status line (Codex: the rollout's `token_count`), with the
//! thresholds it crossed.
//!
//! Folding is idempotent: a report read twice (the controller died before deleting it)
//! changes nothing the second time. Every report read is listed in
//! [`Plan::consumed`], for the controller to delete once the facts are saved.

use jiff::Timestamp;

use super::{Context, Plan};
use crate::api::Manifests;
use crate::conversation::TurnEnd;
use crate::observe::Observed;
use crate::report::{Event, Report};
use crate::screen::Class;
use crate::state::{AgentFacts, Ended, LastTurn, Stage, UsageReading};

/// A usage limit an agent reported: the ledger counts it at once.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct LimitReport {
    /// The account it was met under.
    pub account: String,
    /// The session that met it.
    pub session: String,
    /// The message shown.
    pub message: String,
    /// When the limit resets, from the status line's figures or the message.
    pub resets_at: Option<Timestamp>,
    /// When the agent reported it.
    pub at: Timestamp,
    /// What said it: `StopFailure rate_limit`, or Codex's rollout.
    pub how: &'static str,
}

/// Use levels whose crossing is journaled, besides `quota.moveAt`.
const LEVELS: [f64; 4] = [50.0, 75.0, 90.0, 100.0];

/// One report, where it came from.
struct Origin<'r> {
    /// The session whose agent wrote it.
    session: &'r str,
    /// The report.
    report: &'r Report,
    /// The pid of the session's live agent.
    pane: Option<u32>,
    /// Written by that agent (not an earlier one of the session).
    current: bool,
    /// The account it ran under.
    account: Option<String>,
}

/// Folds every observed report into `plan.facts`; the usage limits reported.
pub(super) fn fold(
    m: &Manifests,
    o: &Observed,
    ctx: &Context,
    plan: &mut Plan,
) -> Vec<LimitReport> {
    let mut limits = Vec::new();
    for (session, reports) in &o.reports {
        let live = o.sessions.get(session);
        let pane = live.filter(|s| !s.pane.dead).map(|s| s.pane.pid);
        let account_now = live.and_then(|s| s.account.clone());
        for r in reports {
            if let Event::Damaged(why) = &r.event {
                plan.damaged.push((r.path.clone(), why.clone()));
                continue;
            }
            plan.consumed.push(r.path.clone());
            let from = Origin {
                session,
                report: r,
                pane,
                current: pane.is_some_and(|pid| r.pids.contains(&pid)),
                account: r.account.clone().or_else(|| account_now.clone()),
            };
            limits.extend(fold_one(m, o, ctx, &from, plan));
        }
    }
    limits.extend(fold_rollouts(m, o, ctx, plan));
    limits
}

/// What Codex's rollouts say of the tasks in flight: the account's use (its
/// `token_count` since the prompt was sent) and a usage limit their turn met (its
/// `task_complete` error, Codex's own word, as `StopFailure` is Claude Code's).
fn fold_rollouts(m: &Manifests, o: &Observed, ctx: &Context, plan: &mut Plan) -> Vec<LimitReport> {
    let mut limits = Vec::new();
    for (session, live) in &o.sessions {
        let Some(t) = plan
            .facts
            .sessions
            .get(session)
            .and_then(|f| f.task.as_ref())
        else {
            continue;
        };
        let Some(turn) = o.turns.get(&t.file) else {
            continue;
        };
        let account = live.account.clone();
        if let (Some((at, usage)), Some(account)) = (turn.usage, &account) {
            read_usage(m, plan, account, session, usage, at, ctx.now);
        }
        let Some(crate::conversation::Turn {
            prompt_id,
            end: Some(TurnEnd::Error(kind, message)),
        }) = &turn.turn
        else {
            continue;
        };
        let Some(t) = plan
            .facts
            .sessions
            .get_mut(session)
            .and_then(|f| f.task.as_mut())
        else {
            continue;
        };
        // Once per turn: the rollout says it again every round until the task moves.
        if kind != crate::conversation::codex::USAGE_LIMIT || t.at_limit {
            continue;
        }
        t.at_limit = true;
        t.prompt_id = prompt_id.clone().or(t.prompt_id.take());
        if let Some(account) = account {
            let reset = ctx
                .classifiers
                .of_session(m, session, Some(account.as_str()))
                .and_then(|c| c.read_limit(message, &ctx.local()).1);
            limits.push(LimitReport {
                resets_at: reset.or_else(|| usage_reset(plan, &account, ctx.now)),
                account,
                session: session.clone(),
                message: message.clone(),
                at: ctx.now,
                how: "rollout usage_limit_exceeded",
            });
        }
    }
    limits
}

/// Folds one report; the usage limit it reports, if any.
fn fold_one(
    m: &Manifests,
    o: &Observed,
    ctx: &Context,
    from: &Origin,
    plan: &mut Plan,
) -> Option<LimitReport> {
    let (session, r) = (from.session, from.report);
    match &r.event {
        Event::Started {
            conversation,
            transcript,
            ..
        } if from.current => {
            let f = plan.facts.sessions.entry(session.to_owned()).or_default();
            f.agent = from.pane.map(|pid| AgentFacts {
                pid,
                conversation: conversation.clone(),
                transcript: transcript.clone(),
                unheard: false,
            });
            f.status_at = None;
            // Read after the agent's first prompt (its file landed late): that prompt's
            // task runs in this conversation.
            if let Some(t) = f.task.as_mut().filter(|t| t.prompt_id.is_some())
                && t.conversation.is_none()
            {
                t.conversation = Some((conversation.clone(), transcript.clone()));
            }
        }
        Event::Submitted {
            prompt_id,
            prompt_hash,
        } => submitted(plan, session, r, prompt_id, *prompt_hash, from.current),
        Event::Stopped { prompt_id, reply } => {
            let f = ended(plan, session, r, prompt_id, None, reply)?;
            if let Some(t) = f
                .task
                .as_mut()
                .filter(|t| t.prompt_id.as_ref() == Some(prompt_id))
            {
                t.ended = Some(Ended::Reply {
                    reply: reply.clone(),
                    how: "Stop report".into(),
                    at: r.at,
                });
            }
        }
        Event::Failed {
            prompt_id,
            error,
            message,
        } => return failed(m, ctx, from, prompt_id, error, message, plan),
        Event::TurnComplete {
            thread,
            turn,
            prompt_hash,
            reply,
        } => turn_complete(o, plan, session, r, thread, turn, *prompt_hash, reply),
        Event::Status { usage } => {
            if from.current {
                let f = plan.facts.sessions.entry(session.to_owned()).or_default();
                f.status_at = f.status_at.max(Some(r.at));
            }
            if let (Some(usage), Some(account)) = (usage, &from.account) {
                read_usage(m, plan, account, session, *usage, r.at, ctx.now);
            }
        }
        Event::Started { .. } | Event::Other(_) | Event::Damaged(_) => {}
    }
    None
}

/// A turn ended on an error: a usage limit is the ledger's (and the task's turn waits
/// at it); any other error ends the task's turn as failed.
fn failed(
    m: &Manifests,
    ctx: &Context,
    from: &Origin,
    prompt_id: &str,
    error: &str,
    message: &str,
    plan: &mut Plan,
) -> Option<LimitReport> {
    let (session, r) = (from.session, from.report);
    // As the screens are read: a reset time without a zone is the local time.
    let class = (error == "rate_limit").then(|| {
        ctx.classifiers
            .of_session(m, session, from.account.as_deref())
            .map_or((Class::QuotaExhausted, None), |c| {
                c.read_limit(message, &ctx.local())
            })
    });
    let quota = matches!(class, Some((Class::QuotaExhausted, _)));
    let limit = match &from.account {
        Some(account) if quota => Some(LimitReport {
            account: account.clone(),
            session: session.to_owned(),
            message: message.to_owned(),
            how: "StopFailure rate_limit",
            resets_at: class
                .and_then(|(_, t)| t)
                .or_else(|| usage_reset(plan, account, ctx.now)),
            at: r.at,
        }),
        Some(_) | None => None,
    };
    let error = error.to_owned();
    if let Some(f) = ended(plan, session, r, prompt_id, Some(&error), message)
        && let Some(t) = f
            .task
            .as_mut()
            .filter(|t| t.prompt_id.as_deref() == Some(prompt_id))
    {
        if quota {
            t.at_limit = true;
        } else {
            t.ended = Some(Ended::Failed {
                error,
                message: message.to_owned(),
            });
        }
    }
    limit
}

/// A Codex turn ended: the task's turn when it ran in the task's thread (as the facts
/// or this round's rollout know it) for the task's prompt (its text, or the turn the
/// rollout named); Codex's title request, in a thread of its own, never is.
#[allow(clippy::too_many_arguments)]
fn turn_complete(
    o: &Observed,
    plan: &mut Plan,
    session: &str,
    r: &Report,
    thread: &str,
    turn: &str,
    prompt_hash: Option<u64>,
    reply: &str,
) {
    let Some(t) = plan
        .facts
        .sessions
        .get(session)
        .and_then(|f| f.task.as_ref())
    else {
        return;
    };
    let known = t
        .conversation
        .as_ref()
        .or_else(|| o.turns.get(&t.file).map(|tt| &tt.conversation))
        .map(|(id, _)| id.as_str());
    let ours = known == Some(thread)
        && (t.prompt_id.as_deref() == Some(turn)
            || (prompt_hash.is_some() && prompt_hash == t.expect));
    if !ours || t.ended.is_some() {
        return;
    }
    let conversation = o.turns.get(&t.file).map(|tt| tt.conversation.clone());
    let Some(f) = ended(plan, session, r, turn, None, reply) else {
        return;
    };
    if let Some(t) = f.task.as_mut() {
        t.prompt_id = Some(turn.to_owned());
        t.conversation = t.conversation.take().or(conversation);
        if matches!(t.stage, Stage::Pasted | Stage::Submitted(_)) {
            t.stage = Stage::Running;
        }
        t.started = t.started.or(Some(r.at));
        t.ended = Some(Ended::Reply {
            reply: reply.to_owned(),
            how: "notify report".into(),
            at: r.at,
        });
    }
}

/// A prompt was submitted: the turn under way, and a task's turn taken when the text is
/// the one sent for it, or else when it is the first prompt the agent reports after
/// the task's text was pasted (in a pool session only failover sends prompts).
fn submitted(
    plan: &mut Plan,
    session: &str,
    r: &Report,
    prompt_id: &str,
    hash: u64,
    current: bool,
) {
    let f = plan.facts.sessions.entry(session.to_owned()).or_default();
    if current {
        f.turn = Some(prompt_id.to_owned());
    }
    let conversation = f
        .agent
        .as_ref()
        .filter(|a| r.pids.contains(&a.pid))
        .map(|a| (a.conversation.clone(), a.transcript.clone()));
    let Some(t) = f.task.as_mut() else { return };
    // Only a prompt submitted after the task's text was pasted (a claim a crash left
    // out of the facts has no paste time: its text is its proof).
    let after_paste = t.pasted.is_none_or(|at| at <= r.at);
    let same_text = t.expect == Some(hash);
    let next_after_paste = current
        && t.prompt_id.is_none()
        && t.pasted.is_some()
        && matches!(t.stage, Stage::Submitted(_) | Stage::Running);
    if !after_paste || !(same_text || next_after_paste) || t.prompt_id.as_deref() == Some(prompt_id)
    {
        return;
    }
    t.prompt_id = Some(prompt_id.to_owned());
    if matches!(t.stage, Stage::Pasted | Stage::Submitted(_)) {
        t.stage = Stage::Running;
        t.since = r.at;
    }
    t.started = t.started.or(Some(r.at));
    if conversation.is_some() {
        t.conversation = conversation;
    }
}

/// A turn ended: no longer under way, and remembered as the session's last. The
/// session's facts, for the task to be told.
fn ended<'p>(
    plan: &'p mut Plan,
    session: &str,
    r: &Report,
    prompt_id: &str,
    error: Option<&String>,
    message: &str,
) -> Option<&'p mut crate::state::SessionFacts> {
    let f = plan.facts.sessions.get_mut(session)?;
    if f.turn.as_deref() == Some(prompt_id) {
        f.turn = None;
    }
    f.last_turn = Some(LastTurn {
        at: r.at,
        prompt_id: prompt_id.to_owned(),
        error: error.cloned(),
        message: message.chars().take(200).collect(),
    });
    Some(f)
}

/// When `account`'s spent window resets, as its last usage reading says, when the
/// limit's message names no time: a window at (or about) its limit that has not reset.
fn usage_reset(plan: &Plan, account: &str, now: Timestamp) -> Option<Timestamp> {
    let reading = plan.facts.usage.get(account)?;
    reading
        .usage
        .windows()
        .filter(|(_, w)| w.resets_at > now && w.used >= 95.0)
        .max_by(|a, b| a.1.used.total_cmp(&b.1.used))
        .map(|(_, w)| w.resets_at)
}

/// Takes a newer usage reading of `account`, journaling each level it crossed. Within
/// one window use only grows, and a window is never replaced by an earlier one: an agent
/// redrawing figures it got before never lowers what another reported since.
fn read_usage(
    m: &Manifests,
    plan: &mut Plan,
    account: &str,
    session: &str,
    usage: crate::report::Usage,
    at: Timestamp,
    now: Timestamp,
) {
    use crate::report::Window;
    let old = plan.facts.usage.get(account);
    if old.is_some_and(|o| o.at >= at) {
        return;
    }
    let old_usage = old.map(|o| o.usage).unwrap_or_default();
    let keep = |new: Option<Window>, old: Option<Window>| match (new, old) {
        (Some(n), Some(o)) if o.resets_at > n.resets_at => Some(o),
        (Some(n), Some(o)) if o.resets_at == n.resets_at && o.used > n.used => Some(o),
        (n, o) => n.or(o),
    };
    let usage = crate::report::Usage {
        five_hour: keep(usage.five_hour, old_usage.five_hour),
        seven_day: keep(usage.seven_day, old_usage.seven_day),
    };
    let mut levels: Vec<f64> = LEVELS.to_vec();
    if let Some(at) = m.controller.spec.quota.move_at {
        levels.push(f64::from(at));
    }
    for (window, w) in usage.windows() {
        let before = old_usage
            .windows()
            .find(|(n, _)| *n == window)
            .filter(|(_, ow)| ow.resets_at > now)
            .map_or(0.0, |(_, ow)| ow.used);
        let crossed = levels
            .iter()
            .filter(|l| (before < **l) != (w.used < **l))
            .fold(None::<f64>, |best, l| Some(best.map_or(*l, |b| b.max(*l))));
        if let Some(level) = crossed {
            let direction = if w.used >= level {
                super::event::Direction::Up
            } else {
                super::event::Direction::Down
            };
            plan.events.push(super::Event::UsageCrossed {
                account: account.to_owned(),
                window: window.into(),
                used: w.used,
                level,
                direction,
                resets_at: w.resets_at,
                session: session.to_owned(),
            });
        }
    }
    plan.facts.usage.insert(
        account.to_owned(),
        UsageReading {
            usage,
            at,
            session: session.to_owned(),
        },
    );
}

#[cfg(test)]
#[path = "reports_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "reports_codex_tests.rs"]
mod codex_tests;
