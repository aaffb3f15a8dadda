//! Pools over several agent families (`Pool.spec.agents`, first preferred): which
//! profile each pool session runs now. A pool runs its first profile whose family has
//! a usable account; a session of another family without a task restarts under it at
//! a safe point (idle, no turn under way), at once when its own family has no usable
//! account: in a fresh conversation, since a conversation never crosses families. The
//! same rule returns sessions to the preferred family once it is usable again.
//!
//! A task whose turn met the usage limit while no account of its family is usable is
//! handed to the pool's next usable family as a fresh task (its inbox's `handOffNote`,
//! then its own text). The hand-off is decided here into the facts and journaled; the
//! session rules carry it out only once the saved facts hold it (the facts as the
//! round observed them), so that a controller killed in between neither loses the task
//! nor runs it twice. Dedicated sessions never change family: they wait, and say so.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::tasks::View;
use super::{Action, Event, Plan, SessionAction, SessionSpec};
use crate::api::{AgentKind, Manifests, Object, PoolSpec, SessionOwner};
use crate::observe::{Observed, Session};
use crate::state::{HandOff, TaskFacts};

/// The profile pool `pool` runs its sessions under now: its first whose family has a
/// usable account in `accounts` (each family's available active account); none when
/// no family has one.
pub(super) fn wanted<'m>(
    m: &Manifests,
    pool: &'m PoolSpec,
    accounts: &BTreeMap<AgentKind, String>,
) -> Option<&'m str> {
    pool.profiles()
        .iter()
        .map(String::as_str)
        .find(|p| accounts.contains_key(&m.kind_of(p)))
}

/// The profile of `pool` of family `kind`, if it has one.
pub(super) fn profile_of<'m>(
    m: &Manifests,
    pool: &'m PoolSpec,
    kind: AgentKind,
) -> Option<&'m str> {
    pool.profiles()
        .iter()
        .map(String::as_str)
        .find(|p| m.kind_of(p) == kind)
}

/// The hand-off the task of session `name` waits for: its last one, once the facts
/// saved before this round hold it too (never the one this round decided).
pub(super) fn saved_hand_off<'f>(
    o: &Observed,
    name: &str,
    t: &'f TaskFacts,
) -> Option<&'f HandOff> {
    let last = t.hand_offs.last()?;
    let saved = o
        .facts
        .sessions
        .get(name)
        .and_then(|f| f.task.as_ref())
        .filter(|s| s.file == t.file)
        .and_then(|s| s.hand_offs.last());
    (saved == Some(last)).then_some(last)
}

/// Decides the hand-offs: a pool session over several families whose task's turn met
/// the limit (its agent's report, or a limit counted on its screen against its
/// account) while no account of its family is usable, and whose pool has another
/// family with one. The task starts over there (fresh), the hand-off kept in its facts
/// and journaled; it is carried out by the session rules next round.
pub(super) fn plan_hand_offs(
    m: &Manifests,
    o: &Observed,
    owner: &str,
    now: Timestamp,
    plan: &mut Plan,
) {
    for pool in m.pools.iter().filter(|p| p.spec.profiles().len() > 1) {
        for (name, s) in o
            .sessions
            .iter()
            .filter(|(n, s)| s.is_live_ours(owner) && pool.spec.index_of(n).is_some())
        {
            let account = s.account.clone().unwrap_or_default();
            let from = m.kind_under(name, s.account.as_deref());
            if plan.account(from).is_some() {
                continue;
            }
            let Some(to) = wanted(m, &pool.spec, &plan.accounts).map(|p| m.kind_of(p)) else {
                continue;
            };
            if to == from {
                continue;
            }
            let Some(f) = plan.facts.sessions.get_mut(name) else {
                continue;
            };
            let counted = f.counted_quota.as_ref().is_some_and(|(a, _)| *a == account);
            let Some(t) = f.task.as_mut() else { continue };
            let pending = t.hand_offs.last().is_some_and(|h| h.to == to);
            if t.ended.is_some() || pending || !(t.at_limit || counted) {
                continue;
            }
            t.start_over(now);
            t.resend = false;
            t.hand_offs.push(HandOff {
                from,
                account: account.clone(),
                to,
                at: now,
            });
            let (task, count) = (format!("{}/{}", t.inbox, t.task), t.hand_offs.len());
            plan.events.push(Event::HandedOff {
                session: name.clone(),
                task,
                from,
                account,
                to,
                count,
            });
            // Carried out next round, once the facts holding it are saved.
            plan.wake(std::time::Duration::ZERO);
        }
    }
}

/// The profile pool session `name` of `pool` runs this round: the one its task was
/// handed to (once saved); the one it runs while it has a task (`busy`: in the facts or
/// claimed in an inbox); else the pool's wanted one, which a running session of another
/// family takes at a safe point (`resting`), at once when its own family has no usable
/// account.
pub(super) fn agent_for<'m>(
    m: &'m Manifests,
    o: &Observed,
    pool: &'m Object<PoolSpec>,
    name: &str,
    (busy, resting): (bool, bool),
    plan: &Plan,
) -> &'m str {
    let preferred = pool.spec.agent.as_str();
    if pool.spec.profiles().len() < 2 {
        return preferred;
    }
    let s = o.sessions.get(name);
    let running = s.map(|s| agent_under(m, name, s.account.as_deref(), preferred));
    let task = plan.facts.sessions.get(name).and_then(|f| f.task.as_ref());
    if let Some(h) = task.and_then(|t| saved_hand_off(o, name, t))
        && let Some(p) = profile_of(m, &pool.spec, h.to)
    {
        return p;
    }
    if let Some(t) = task {
        // Its own family; a session gone with its server comes back in the one it was
        // last seen in, else the one its task was last handed to.
        let last_seen = plan.facts.sessions.get(name).and_then(|f| f.kind);
        let handed = t.hand_offs.last().map(|h| h.to);
        return running
            .or_else(|| profile_of(m, &pool.spec, last_seen.or(handed)?))
            .unwrap_or(preferred);
    }
    if busy && let Some(r) = running {
        // A claim the facts do not know yet: it keeps its family until it is given back.
        return r;
    }
    let wanted = wanted(m, &pool.spec, &plan.accounts);
    match (running, wanted) {
        (None, w) => w.unwrap_or(preferred),
        (Some(r), Some(w)) if r != w => {
            let dead = s.is_some_and(|s| s.pane.dead);
            if resting || dead || plan.account(m.kind_of(r)).is_none() {
                w
            } else {
                r
            }
        }
        (Some(r), _) => r,
    }
}

/// Restarts pool session `s` under another family (`spec`'s account's): a fresh
/// conversation, in its task's folder when it carries a handed-off task; journaled.
pub(super) fn plan_switch(
    m: &Manifests,
    view: &View<'_>,
    s: &Session,
    mut spec: SessionSpec,
    plan: &mut Plan,
) {
    let from = m.kind_under(&s.name, s.account.as_deref());
    let to = m.kind_under(&s.name, Some(&spec.account));
    if view.has_task(&s.name) && !s.pane.path.as_os_str().is_empty() {
        spec.workdir = s.pane.path.clone();
    }
    let back = returns(m, &s.name, from, to);
    let reason = if back {
        format!("back to {to}, usable again")
    } else {
        format!("no {from} account is usable: {to} from now on")
    };
    plan.events.push(Event::FamilyChanged {
        session: s.name.clone(),
        from,
        to,
        account: spec.account.clone(),
        back,
    });
    // A recycle the task rules planned under the old family gives way to this one.
    plan.actions.retain(|a| {
        !matches!(a, Action::Session(SessionAction::RecycleSession { session, .. })
            if session.name == s.name)
    });
    let pane = s.pane.id.clone();
    plan.act(if s.pane.dead {
        SessionAction::RestartSession {
            session: spec,
            pane,
            reason,
            resume: None,
            live: false,
        }
    } else {
        SessionAction::RecycleSession {
            session: spec,
            pane,
            reason,
        }
    });
}

/// The family session `name` of a pool over several families runs, by its account's
/// (kept in its facts: see [`agent_for`]); none for any other session.
pub(super) fn seen_kind(m: &Manifests, o: &Observed, name: &str) -> Option<AgentKind> {
    let Some(SessionOwner::Pool { pool, .. }) = m.session_owner(name) else {
        return None;
    };
    let account = o.sessions.get(name)?.account.as_deref()?;
    (pool.spec.profiles().len() > 1).then(|| m.account(account).map(|a| a.spec.agent))?
}

/// The profile a session of ours runs under `account` (the preferred one of a session
/// without an account).
fn agent_under<'m>(
    m: &'m Manifests,
    name: &str,
    account: Option<&str>,
    preferred: &'m str,
) -> &'m str {
    match account {
        Some(_) => m.agent_under(name, account),
        None => preferred,
    }
}

/// Dedicated sessions whose family has no usable account wait: said as one event per
/// family (journaled once while it holds).
pub(super) fn plan_waits(m: &Manifests, now: Timestamp, plan: &mut Plan) {
    let mut waiting: BTreeMap<AgentKind, Vec<String>> = BTreeMap::new();
    for d in &m.dedicated {
        let kind = m.kind_of(&d.spec.agent);
        if plan.account(kind).is_none() {
            waiting.entry(kind).or_default().push(d.name.clone());
        }
    }
    for (kind, sessions) in waiting {
        let until = super::all_exhausted(m, kind, &plan.facts, now);
        plan.events.push(Event::SessionWaits {
            sessions,
            kind,
            until,
        });
    }
}

/// Whether the move of `name` from `from` to `to` returns it to a family its pool
/// prefers.
fn returns(m: &Manifests, name: &str, from: AgentKind, to: AgentKind) -> bool {
    let Some(SessionOwner::Pool { pool, .. }) = m.session_owner(name) else {
        return false;
    };
    let rank = |k| pool.spec.profiles().iter().position(|p| m.kind_of(p) == k);
    rank(to) < rank(from)
}

#[cfg(test)]
#[path = "families_tests.rs"]
mod tests;
