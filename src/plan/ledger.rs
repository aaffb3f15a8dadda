//! The account ledger: usage limits the agents report, and quota readings from every
//! session's screen, turn into "exhausted until"; the status line's figures into "over
//! `moveAt`". The active account follows: exhausted, at once to the available account
//! with the most headroom (then by priority); over the threshold, the same but not
//! within `cooldown` of the last swap; back to a preferred one once it is available
//! again (`failback: idle`), not within the cooldown either; never when all are
//! exhausted or over. That choice is `choose`'s. Within the cooldown, a limit read on a
//! screen alone counts only once confirmed by `quota.confirmations` readings, even
//! with a reset time shown. What the fleet's ledger told (other nodes' agents) is taken
//! into the facts first, as this node's agents' word (`fleet`). Limits, use and resets
//! belong to accounts; the active account, the swaps and the cooldown to a family (the
//! accounts of one agent kind), each chosen for on its own.

use crate::object::ObjectRef;
use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use super::reports::LimitReport;
use super::screens::Reading;
use super::{Event, Plan};
use crate::api::Manifests;
use crate::observe::Observed;
use crate::state::{Facts, Redraw, SessionFacts, Stage};

mod choose;
mod fleet;

pub(super) use choose::{all_exhausted, over, why_none};
pub(super) use fleet::take as take_fleet;

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

    /// The journal's word of this sign on `account`, `confirmed` once it makes the
    /// account exhausted.
    fn detected(&self, account: &str, confirmed: bool) -> Event {
        Event::QuotaDetected {
            account: account.to_owned(),
            session: self.session.clone(),
            class: "quota-exhausted".into(),
            pattern: self.pattern.clone(),
            line: self.line.clone(),
            resets_at: self.resets,
            confirmed,
            source: if self.reported.is_some() {
                super::event::Source::Report
            } else {
                super::event::Source::Screen
            },
            reported_at: self.reported,
        }
    }
}

/// The strongest sign of each account, by account.
#[derive(Debug, Default)]
struct Signs(BTreeMap<String, Sign>);

impl Signs {
    /// Keeps `sign` for `account` unless the one kept already says as much.
    fn note(&mut self, account: &str, sign: Sign) {
        match self.0.get(account) {
            Some(old) if !sign.beats(old) => {}
            _ => {
                self.0.insert(account.to_owned(), sign);
            }
        }
    }
}

/// A limit read on a session's screen and taken as a sign against its account: once
/// the account is exhausted, it is not counted again while on screen.
struct Counted {
    /// The session whose screen shows it.
    session: String,
    /// The account the session runs under.
    account: String,
    /// The limit's quota mark (the turn's prompt and the deciding line).
    mark: String,
}

/// Reads quota signals and decides the active account; records both in `plan.facts`
/// and `plan.events`. `broken`: accounts whose shared state is broken, where no
/// session may go.
pub(super) fn plan_ledger(
    m: &Manifests,
    o: &Observed,
    readings: &BTreeMap<String, Reading>,
    limits: &[LimitReport],
    broken: &BTreeSet<String>,
    now: Timestamp,
    plan: &mut Plan,
) {
    let mut signs = Signs::default();
    for l in limits {
        signs.note(
            &l.account,
            Sign {
                resets: l.resets_at,
                session: l.session.clone(),
                pattern: l.how.into(),
                line: l.message.chars().take(120).collect(),
                reported: Some(l.at),
            },
        );
    }
    let counted = quota_on_screens(o, readings, &mut plan.facts, &mut signs);
    recover(o, &mut plan.facts, now, &mut plan.events);
    confirm(m, &signs, now, plan);
    let facts = &mut plan.facts;
    // A limit that made its account exhausted is not counted again while on screen.
    for c in counted {
        if exhausted(facts, &c.account, now) {
            facts.sessions.entry(c.session).or_default().counted_quota = Some((c.account, c.mark));
        }
    }
    let families = m.families();
    for kind in &families {
        choose::choose_account(m, *kind, facts, broken, now, &mut plan.events);
    }
    // Sessions run (and take tasks) only under an available account of their family;
    // an exhausted one stays active while no other can take its sessions, but nothing
    // runs.
    plan.accounts = families
        .into_iter()
        .filter_map(|kind| {
            let active = facts.family(kind).active_account.clone()?;
            (!exhausted(facts, &active, now)).then_some((kind, active))
        })
        .collect();
}

/// Notes the limits on our screens as signs against their sessions' accounts, and
/// returns them; a limit already counted, or the old turn's redrawn after a move, is
/// left out. A busy screen is a new turn.
fn quota_on_screens(
    o: &Observed,
    readings: &BTreeMap<String, Reading>,
    facts: &mut Facts,
    signs: &mut Signs,
) -> Vec<Counted> {
    let mut counted = Vec::new();
    for (name, reading) in readings {
        let Some(account) = o.sessions.get(name).and_then(|s| s.account.as_ref()) else {
            continue;
        };
        let f = facts.sessions.entry(name.clone()).or_default();
        // A turn under way is a new one. Anything else, a respawned pane blank for a
        // moment before it redraws included, keeps a redraw pending.
        if reading.verdict.state == crate::screen::State::Busy {
            f.new_turn();
        }
        let Some(mark) = reading.quota_mark.clone() else {
            continue;
        };
        if redrawn(f, &mark) || f.counted_quota.as_ref() == Some(&(account.clone(), mark.clone())) {
            continue;
        }
        let verdict = reading.verdict.clone();
        counted.push(Counted {
            session: name.clone(),
            account: account.clone(),
            mark,
        });
        signs.note(
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
    counted
}

/// Whether the limit `mark` on a session's screen is the old turn's, redrawn after a
/// move; another limit ends the redraw.
fn redrawn(f: &mut SessionFacts, mark: &str) -> bool {
    let Redraw::On {
        mark: seen,
        submitted,
    } = &mut f.redraw
    else {
        return false;
    };
    match seen {
        // The old screen, still.
        Some(seen) if seen == mark => true,
        // The first limit after a move, before we sent anything, is the old turn's,
        // redrawn.
        None if !*submitted => {
            *seen = Some(mark.to_owned());
            true
        }
        // Another limit: a new turn met it, ours (its prompt names the account) or the
        // person's.
        Some(_) | None => {
            f.end_redraw();
            false
        }
    }
}

/// Makes the accounts whose reset time has come available again.
fn recover(o: &Observed, facts: &mut Facts, now: Timestamp, events: &mut Vec<Event>) {
    let recovered: Vec<String> = facts
        .exhausted_until
        .iter()
        .filter(|(_, until)| **until <= now)
        .map(|(a, _)| a.clone())
        .collect();
    for account in recovered {
        facts.exhausted_until.remove(&account);
        spend_limits(o, facts, &account, now);
        events.push(Event::Recovered { account });
    }
}

/// The limits counted against `account`, available again, are spent: still on screen,
/// they are old news, and a task that met one, or whose agent reported one, carries
/// on. Only sessions still under it: one moved away redraws its own screen.
fn spend_limits(o: &Observed, facts: &mut Facts, account: &str, now: Timestamp) {
    let under =
        |name: &str| o.sessions.get(name).and_then(|s| s.account.as_deref()) == Some(account);
    for (name, f) in facts.sessions.iter_mut() {
        let Some((counted, mark)) = &f.counted_quota else {
            continue;
        };
        if counted != account || !under(name) {
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
    for (name, f) in facts.sessions.iter_mut() {
        if under(name)
            && let Some(t) = f.task.as_mut().filter(|t| t.at_limit)
        {
            // Its turn is over; the next is `continue`'s.
            t.at_limit = false;
            t.prompt_id = None;
            t.stage = Stage::Resuming;
            t.since = now;
        }
    }
}

/// Journals each account's sign and makes the account exhausted once the sign is
/// confirmed; an account without a sign starts its count of polls again. A sign still
/// to be confirmed keeps its account's sessions where they are: refused, with why.
fn confirm(m: &Manifests, signs: &Signs, now: Timestamp, plan: &mut Plan) {
    for account in &m.accounts {
        let cooling = choose::cooling(m, plan.facts.family(account.spec.agent), now);
        let facts = &mut plan.facts;
        let Some(sign) = signs.0.get(&account.name) else {
            facts.quota_polls.remove(&account.name);
            continue;
        };
        if exhausted(facts, &account.name, now) {
            continue;
        }
        let until = exhausted_until(m, facts, &account.name, sign, cooling, now);
        plan.events
            .push(sign.detected(&account.name, until.is_some()));
        match until {
            Some(until) => {
                facts
                    .exhausted_until
                    .insert(account.name.clone(), until.max(now));
                facts.quota_polls.remove(&account.name);
            }
            None => {
                let spec = &m.controller.spec;
                let polls = facts.quota_polls.get(&account.name).map_or(0, |p| p.0);
                let why = if cooling && sign.resets.is_some() {
                    "a limit read on a screen alone within quota.cooldown of the last swap"
                } else {
                    "a limit read on a screen alone, without a reset time"
                };
                plan.refuse(
                    ObjectRef::Account(account.name.clone()),
                    format!(
                        "{why} (session {}): {polls} of {} readings (quota.confirmations, one per \
                         pollInterval); its sessions stay on it until the limit is confirmed, \
                         within {}",
                        sign.session,
                        spec.quota.confirmations,
                        crate::api::Duration(
                            spec.poll_interval
                                .0
                                .saturating_mul(spec.quota.confirmations.saturating_sub(polls))
                        ),
                    ),
                );
                plan.wake(spec.poll_interval.0);
            }
        }
    }
}

/// Until when `sign` makes `account` exhausted: its reset time; else
/// `quota.resetFallback` from now. At once on the agent's own word, or on a reset time
/// read on a screen outside the cooldown; else after `quota.confirmations` polls of a
/// screen (one reading per poll interval counts, however often we reconcile). `None`
/// while a screen's limit is not confirmed yet.
fn exhausted_until(
    m: &Manifests,
    facts: &mut Facts,
    account: &str,
    sign: &Sign,
    cooling: bool,
    now: Timestamp,
) -> Option<Timestamp> {
    let spec = &m.controller.spec.quota;
    let until = || {
        sign.resets.unwrap_or_else(|| {
            now.checked_add(
                jiff::SignedDuration::try_from(spec.reset_fallback.0).unwrap_or_default(),
            )
            .unwrap_or(now)
        })
    };
    // The agent's own word, or a typed reset time outside the cooldown: confirmed.
    if sign.reported.is_some() || (sign.resets.is_some() && !cooling) {
        return Some(until());
    }
    let poll =
        jiff::SignedDuration::try_from(m.controller.spec.poll_interval.0).unwrap_or_default();
    let (polls, last) = facts
        .quota_polls
        .entry(account.to_owned())
        .or_insert((0, now));
    if *polls == 0 || now.duration_since(*last) >= poll {
        *polls += 1;
        *last = now;
    }
    (*polls >= spec.confirmations).then(until)
}

/// Whether `account` is exhausted at `now`: its reset time has not come.
pub(super) fn exhausted(facts: &Facts, account: &str, now: Timestamp) -> bool {
    facts.exhausted_until.get(account).is_some_and(|t| *t > now)
}

/// Says why waiting tasks of family `kind` do not start while its active account is
/// over `quota.moveAt`: an event (`intakeHeld`, journaled once), not a refusal, since
/// nothing is wrong.
pub(super) fn hold_intake(
    m: &Manifests,
    o: &Observed,
    kind: crate::api::AgentKind,
    account: &str,
    plan: &mut Plan,
) {
    let waiting = o
        .inboxes
        .iter()
        .filter(|(name, _)| {
            m.inboxes
                .iter()
                .find(|i| i.name == **name)
                .is_none_or(|i| m.kind_of_pool(&i.spec.pool) == kind)
        })
        .any(|(_, i)| i.waiting.iter().any(|w| !w.link));
    if waiting {
        let at = m.controller.spec.quota.move_at.unwrap_or(100);
        plan.events.push(Event::IntakeHeld {
            account: account.to_owned(),
            move_at: at,
            reason: "the active account is over quota.moveAt: new tasks wait for another account or a window's reset".into(),
        });
    }
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
