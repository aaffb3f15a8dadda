//! The account ledger: usage limits the agents report, and quota readings from every
//! session's screen, turn into "exhausted until"; the status line's figures into "over
//! `moveAt`". The active account follows: when it is exhausted or over the threshold, to
//! the available account with the most headroom (then by priority), not within
//! `cooldown` of the last swap; back to a preferred one once it is available again
//! (`failback: idle`); never when all are exhausted or over.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::reports::LimitReport;
use super::screens::Reading;
use super::{Event, Plan};
use crate::api::{AccountSpec, Failback, Manifests, Object};
use crate::observe::Observed;
use crate::state::{Facts, Stage, Swap};

/// The strongest sign of a used-up quota on one account.
#[derive(Debug, Clone)]
struct Sign {
    /// When it resets, if said.
    resets: Option<Timestamp>,
    /// The session it was seen on.
    session: String,
    /// The pattern that read it (`StopFailure rate_limit` for a report).
    pattern: String,
    /// The line or message.
    line: String,
    /// When the agent reported it: its own word needs no confirming poll.
    reported: Option<Timestamp>,
}

impl Sign {
    /// Whether this sign says more than `other`: a report beats a screen, a reset time
    /// beats none.
    fn beats(&self, other: &Sign) -> bool {
        (self.reported.is_some(), self.resets.is_some())
            > (other.reported.is_some(), other.resets.is_some())
    }
}

/// Reads quota signals and decides the active account; records both in `plan.facts`
/// and `plan.events`.
pub(super) fn plan_ledger(
    m: &Manifests,
    o: &Observed,
    readings: &BTreeMap<String, Reading>,
    limits: &[LimitReport],
    now: Timestamp,
    plan: &mut Plan,
) {
    let spec = &m.controller.spec.quota;
    let mut by_account: BTreeMap<String, Sign> = BTreeMap::new();
    let mut note = |account: &str, sign: Sign| match by_account.get(account) {
        Some(old) if !sign.beats(old) => {}
        _ => {
            by_account.insert(account.to_owned(), sign);
        }
    };
    for l in limits {
        note(
            &l.account,
            Sign {
                resets: l.resets_at,
                session: l.session.clone(),
                pattern: "StopFailure rate_limit".into(),
                line: l.message.chars().take(120).collect(),
                reported: Some(l.at),
            },
        );
    }
    let mut counted: Vec<(String, String, String)> = Vec::new();
    for (name, reading) in readings {
        let Some(account) = o.sessions.get(name).and_then(|s| s.account.as_ref()) else {
            continue;
        };
        let verdict = reading.verdict.clone();
        let f = plan.facts.sessions.entry(name.clone()).or_default();
        // A turn under way is a new one. Anything else, a respawned pane blank for a
        // moment before it redraws included, keeps a redraw pending.
        if reading.verdict.state == crate::screen::State::Busy {
            f.new_turn();
        }
        let Some(mark) = reading.quota_mark.clone() else {
            continue;
        };
        if f.redraw {
            match &f.redraw_mark {
                // The old screen, still.
                Some(seen) if *seen == mark => continue,
                // The first limit after a move, before we sent anything, is the old
                // turn's, redrawn.
                None if !f.redraw_submitted => {
                    f.redraw_mark = Some(mark);
                    continue;
                }
                // Another limit: a new turn met it, ours (its prompt names the account)
                // or the person's.
                _ => f.end_redraw(),
            }
        }
        if f.counted_quota.as_ref() == Some(&(account.clone(), mark.clone())) {
            continue;
        }
        counted.push((name.clone(), account.clone(), mark));
        note(
            account,
            Sign {
                resets: verdict.resets_at,
                session: name.clone(),
                pattern: verdict.pattern.unwrap_or_default(),
                line: verdict.line.unwrap_or_default().chars().take(120).collect(),
                reported: None,
            },
        );
    }
    let facts = &mut plan.facts;
    // Accounts whose reset time has come are available again.
    let recovered: Vec<String> = facts
        .exhausted_until
        .iter()
        .filter(|(_, until)| **until <= now)
        .map(|(a, _)| a.clone())
        .collect();
    for account in recovered {
        facts.exhausted_until.remove(&account);
        // The limits counted against it are spent: still on screen, they are old news,
        // and a task that met one carries on.
        for (name, f) in facts.sessions.iter_mut() {
            let Some((counted, mark)) = &f.counted_quota else {
                continue;
            };
            // Only sessions still under it: one moved away redraws its own screen.
            let under = o.sessions.get(name).and_then(|s| s.account.as_ref());
            if *counted != account || under != Some(&account) {
                continue;
            }
            let mark = mark.clone();
            f.start_redraw(Some(mark));
            if let Some(t) = f.task.as_mut()
                && matches!(t.stage, Stage::Submitted(_) | Stage::Running)
            {
                t.stage = Stage::Resuming;
                t.since = now;
            }
        }
        // A task whose agent reported the limit carries on too.
        for (name, f) in facts.sessions.iter_mut() {
            let under = o.sessions.get(name).and_then(|s| s.account.as_ref());
            if under == Some(&account)
                && let Some(t) = f.task.as_mut().filter(|t| t.at_limit)
            {
                // Its turn is over; the next is `continue`'s.
                t.at_limit = false;
                t.prompt_id = None;
                t.stage = Stage::Resuming;
                t.since = now;
            }
        }
        plan.events.push(Event::Recovered { account });
    }
    for account in &m.accounts {
        let Some(sign) = by_account.get(&account.name) else {
            facts.quota_polls.remove(&account.name);
            continue;
        };
        let already = facts
            .exhausted_until
            .get(&account.name)
            .is_some_and(|t| *t > now);
        if already {
            continue;
        }
        let fallback = || {
            now.checked_add(
                jiff::SignedDuration::try_from(spec.reset_fallback.0).unwrap_or_default(),
            )
            .unwrap_or(now)
        };
        let until = match sign.resets {
            Some(t) => Some(t),
            // The agent's own word needs no confirming poll.
            None if sign.reported.is_some() => Some(fallback()),
            None => {
                // One reading per poll interval counts, however often we reconcile.
                let poll = jiff::SignedDuration::try_from(m.controller.spec.poll_interval.0)
                    .unwrap_or_default();
                let (polls, last) = facts
                    .quota_polls
                    .entry(account.name.clone())
                    .or_insert((0, now));
                if *polls == 0 || now.duration_since(*last) >= poll {
                    *polls += 1;
                    *last = now;
                }
                (*polls >= spec.confirmations).then(fallback)
            }
        };
        plan.events.push(Event::QuotaDetected {
            account: account.name.clone(),
            session: sign.session.clone(),
            class: "quota-exhausted",
            pattern: sign.pattern.clone(),
            line: sign.line.clone(),
            resets_at: sign.resets,
            confirmed: until.is_some(),
            source: if sign.reported.is_some() {
                "report"
            } else {
                "screen"
            },
            reported_at: sign.reported,
        });
        if let Some(until) = until {
            facts
                .exhausted_until
                .insert(account.name.clone(), until.max(now));
            facts.quota_polls.remove(&account.name);
        }
    }
    // A limit that made its account exhausted is not counted again while on screen.
    for (session, account, mark) in counted {
        if facts
            .exhausted_until
            .get(&account)
            .is_some_and(|t| *t > now)
        {
            facts.sessions.entry(session).or_default().counted_quota = Some((account, mark));
        }
    }
    choose_account(m, facts, now, &mut plan.events);
    // Sessions run (and take tasks) only under an available account; an exhausted one
    // stays active through the cooldown or while all are exhausted, but nothing runs.
    plan.account = facts
        .active_account
        .clone()
        .filter(|a| facts.exhausted_until.get(a).is_none_or(|t| *t <= now));
}

fn available(facts: &Facts, a: &Object<AccountSpec>, now: Timestamp) -> bool {
    facts.exhausted_until.get(&a.name).is_none_or(|t| *t <= now)
}

/// The use of `account` that counts against `quota.moveAt`: its status line's highest
/// window that has not reset, in percent.
pub(super) fn used(facts: &Facts, account: &str, now: Timestamp) -> Option<f64> {
    facts.usage.get(account)?.usage.used_at(now)
}

/// Says why waiting tasks do not start while the active account is over `quota.moveAt`:
/// an event (`intakeHeld`, journaled once), not a refusal, since nothing is wrong.
pub(super) fn hold_intake(m: &Manifests, o: &Observed, account: &str, plan: &mut Plan) {
    let waiting = o
        .inboxes
        .values()
        .any(|i| i.waiting.iter().any(|w| !w.link));
    if waiting {
        let at = m.controller.spec.quota.move_at.unwrap_or(100);
        plan.events.push(Event::IntakeHeld {
            account: account.to_owned(),
            move_at: at,
            reason: "the active account is over quota.moveAt: new tasks wait for another account or a window's reset",
        });
    }
}

/// Whether `account` is at or over `quota.moveAt`: it takes no new task, and its
/// sessions move at safe points.
pub(super) fn over(m: &Manifests, facts: &Facts, account: &str, now: Timestamp) -> bool {
    let Some(at) = m.controller.spec.quota.move_at else {
        return false;
    };
    used(facts, account, now).is_some_and(|u| u >= f64::from(at))
}

/// Keeps, swaps or fails back the active account.
fn choose_account(m: &Manifests, facts: &mut Facts, now: Timestamp, events: &mut Vec<Event>) {
    let spec = &m.controller.spec.quota;
    let ranked = m.accounts_by_priority();
    let current = facts
        .active_account
        .as_deref()
        .and_then(|name| ranked.iter().find(|a| a.name == name))
        .copied();
    let cooling = facts
        .last_swap
        .as_ref()
        .is_some_and(|s| now.duration_since(s.at).as_secs_f64() < spec.cooldown.0.as_secs_f64());
    let usable =
        |a: &Object<AccountSpec>| available(facts, a, now) && !over(m, facts, &a.name, now);
    // Where sessions go when they leave: the usable account with the most headroom
    // (unknown use counts as none), then by priority; else any available one.
    let roomiest = ranked
        .iter()
        .filter(|a| usable(a))
        .min_by(|a, b| {
            let u = |x: &Object<AccountSpec>| used(facts, &x.name, now).unwrap_or(0.0);
            u(a).total_cmp(&u(b))
        })
        .or_else(|| ranked.iter().find(|a| available(facts, a, now)))
        .copied();
    let preferred = ranked.iter().find(|a| usable(a)).copied();
    let (next, reason) = match current {
        None => (roomiest, None),
        Some(c) if available(facts, c, now) && !over(m, facts, &c.name, now) => {
            // Fail back to a preferred account that is usable again.
            match preferred {
                Some(f)
                    if spec.failback == Failback::Idle
                        && f.spec.priority < c.spec.priority
                        && !cooling =>
                {
                    (Some(f), Some("fail-back".to_owned()))
                }
                _ => (Some(c), None),
            }
        }
        Some(c) if available(facts, c, now) => {
            // Over the threshold: move only to an account that is not, after the
            // cooldown; with none, stay and say so.
            let used = used(facts, &c.name, now).unwrap_or(0.0);
            let at = spec.move_at.unwrap_or(100);
            match roomiest {
                Some(n) if n.name != c.name && usable(n) => {
                    if cooling {
                        (Some(c), None)
                    } else {
                        (
                            Some(n),
                            Some(format!("usage {used:.0}% reached moveAt {at}%")),
                        )
                    }
                }
                _ => {
                    events.push(Event::AllOverThreshold {
                        account: c.name.clone(),
                        move_at: at,
                    });
                    (Some(c), None)
                }
            }
        }
        Some(c) if cooling => (Some(c), None),
        Some(_) => (roomiest, Some("quota exhausted".to_owned())),
    };
    let Some(next) = next else {
        if !facts.exhausted_until.is_empty() && current.is_some() {
            events.push(Event::AllExhausted {
                first_reset: facts.exhausted_until.values().min().copied(),
            });
        }
        return;
    };
    if let Some(c) = current
        && c.name != next.name
    {
        let reason = reason.unwrap_or_else(|| "quota exhausted".to_owned());
        facts.last_swap = Some(Swap {
            at: now,
            from: c.name.clone(),
            to: next.name.clone(),
            reason: reason.clone(),
        });
        events.push(Event::Swap {
            from: c.name.clone(),
            to: next.name.clone(),
            reason,
            used: used(facts, &c.name, now),
        });
    }
    facts.active_account = Some(next.name.clone());
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
