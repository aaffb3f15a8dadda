//! The choice of the active account, and what it weighs: whether each account is
//! available, its use, `quota.moveAt`, and whether its shared state can take sessions.
//! The active account stays while it is usable. Exhausted (a confirmed limit: the
//! agent's report, a reset time read on a screen, or `quota.confirmations` readings),
//! it moves at once to the usable account with the most headroom, whatever the time
//! since the last swap: an exhausted account stays unavailable until its reset, so
//! there is nothing to ping-pong to. The cooldown holds only the moves that are a
//! choice: leaving an account over `moveAt`, and failing back to a preferred one.
//!
//! Each family (the accounts of one agent kind) is chosen for on its own, over its own
//! accounts and with its own ledger (`choose_family`): an exhaustion in one family never
//! moves another's sessions.

use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::api::{AccountSpec, AgentKind, Failback, Manifests, Object};
use crate::plan::Event;
use crate::state::{Facts, Swap, families::Ledger};

/// The accounts of one family, by priority.
pub(in crate::plan) type Family<'m> = [&'m Object<AccountSpec>];

/// Keeps, swaps or fails back the active account of family `kind`, over its accounts
/// and in its ledger in `facts`. `broken`: accounts whose shared state is broken, where
/// no session may go.
pub(super) fn choose_account(
    m: &Manifests,
    kind: AgentKind,
    facts: &mut Facts,
    broken: &BTreeSet<String>,
    now: Timestamp,
    events: &mut Vec<Event>,
) {
    let family = m.family_by_priority(kind);
    let mut ledger = std::mem::take(facts.family_mut(kind));
    choose_family(m, &family, &mut ledger, facts, broken, now, events);
    *facts.family_mut(kind) = ledger;
}

/// Keeps, swaps or fails back the active account of the family whose accounts are
/// `family` (by priority) and whose ledger is `ledger`; the accounts' state (resets,
/// use) is read in `facts`.
pub(super) fn choose_family(
    m: &Manifests,
    family: &Family<'_>,
    ledger: &mut Ledger,
    facts: &Facts,
    broken: &BTreeSet<String>,
    now: Timestamp,
    events: &mut Vec<Event>,
) {
    let current = ledger
        .active_account
        .as_deref()
        .and_then(|name| family.iter().find(|a| a.name == name))
        .copied();
    let choice = Choice {
        m,
        facts,
        now,
        ranked: family,
        broken,
        cooling: cooling(m, ledger, now),
    };
    let (next, reason) = choice.next(current, events);
    let Some(next) = next else {
        // Said once as the wait begins (kept in the facts, so a restart does not say it
        // again); the refusal says it every round.
        if all_exhausted(family, facts, now).is_some() && ledger.waiting_since.is_none() {
            let until: std::collections::BTreeMap<String, Timestamp> = family
                .iter()
                .filter_map(|a| Some((a.name.clone(), *facts.exhausted_until.get(&a.name)?)))
                .collect();
            events.push(Event::AllExhausted {
                first_reset: until.values().min().copied(),
                until,
            });
            ledger.waiting_since = Some(now);
        }
        return;
    };
    if let Some(since) = ledger.waiting_since.take() {
        events.push(Event::Resumed {
            account: next.name.clone(),
            since,
        });
    }
    if let Some(c) = current
        && c.name != next.name
    {
        let reason = reason.unwrap_or_else(|| "quota exhausted".to_owned());
        ledger.last_swap = Some(Swap {
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
    ledger.active_account = Some(next.name.clone());
}

/// Whether the family's last swap (in `ledger`) is within `quota.cooldown`.
pub(super) fn cooling(m: &Manifests, ledger: &Ledger, now: Timestamp) -> bool {
    let cooldown = m.controller.spec.quota.cooldown.0.as_secs_f64();
    ledger
        .last_swap
        .as_ref()
        .is_some_and(|s| now.duration_since(s.at).as_secs_f64() < cooldown)
}

/// What the choice of the active account reads.
struct Choice<'m, 'f> {
    m: &'m Manifests,
    facts: &'f Facts,
    now: Timestamp,
    /// The accounts by priority.
    ranked: &'f [&'m Object<AccountSpec>],
    /// Accounts whose shared state is broken: no session goes there.
    broken: &'f BTreeSet<String>,
    /// The last swap is within `quota.cooldown`.
    cooling: bool,
}

impl<'m> Choice<'m, '_> {
    /// The account to be active next (`None`: none can take the sessions), and why it
    /// is not the current one.
    fn next(
        &self,
        current: Option<&'m Object<AccountSpec>>,
        events: &mut Vec<Event>,
    ) -> (Option<&'m Object<AccountSpec>>, Option<String>) {
        match current {
            // The first choice: by headroom and priority, as before any move; an
            // account whose shared state is broken is refused as such, not passed over.
            None => (self.roomiest(false), None),
            Some(c) if self.usable(c) => self.keep_or_fail_back(c),
            Some(c) if available(self.facts, c, self.now) => self.leave_over_threshold(c, events),
            // Exhausted, on a confirmed limit: on at once, cooldown or not.
            Some(_) => (self.roomiest(true), Some("quota exhausted".to_owned())),
        }
    }

    /// Whether sessions may stay on account `a`: available and not over `quota.moveAt`.
    fn usable(&self, a: &Object<AccountSpec>) -> bool {
        available(self.facts, a, self.now) && !over(self.m, self.facts, &a.name, self.now)
    }

    /// Whether sessions may go to account `a`: usable, and its shared state whole.
    fn open(&self, a: &Object<AccountSpec>) -> bool {
        self.usable(a) && !self.broken.contains(&a.name)
    }

    /// Where sessions go: the usable account with the most headroom (unknown use
    /// counts as none), then by priority; else any available one (over `moveAt` beats
    /// exhausted). `moving`: they leave an account, so one whose shared state is broken
    /// cannot take them.
    fn roomiest(&self, moving: bool) -> Option<&'m Object<AccountSpec>> {
        let whole = |a: &Object<AccountSpec>| !moving || !self.broken.contains(&a.name);
        let use_of = |x: &Object<AccountSpec>| used(self.facts, &x.name, self.now).unwrap_or(0.0);
        self.ranked
            .iter()
            .filter(|a| self.usable(a) && whole(a))
            .min_by(|a, b| use_of(a).total_cmp(&use_of(b)))
            .or_else(|| {
                self.ranked
                    .iter()
                    .find(|a| available(self.facts, a, self.now) && whole(a))
            })
            .copied()
    }

    /// The usable current account `c` stays, unless a preferred account is open
    /// again and `failback: idle` says to return to it, after the cooldown.
    fn keep_or_fail_back(
        &self,
        c: &'m Object<AccountSpec>,
    ) -> (Option<&'m Object<AccountSpec>>, Option<String>) {
        let preferred = self.ranked.iter().find(|a| self.open(a)).copied();
        match preferred {
            Some(f)
                if self.m.controller.spec.quota.failback == Failback::Idle
                    && f.spec.priority < c.spec.priority
                    && !self.cooling =>
            {
                (Some(f), Some("fail-back".to_owned()))
            }
            _ => (Some(c), None),
        }
    }

    /// The current account `c` is over `quota.moveAt`: move only to an account that is
    /// not, after the cooldown; with none, stay and say so.
    fn leave_over_threshold(
        &self,
        c: &'m Object<AccountSpec>,
        events: &mut Vec<Event>,
    ) -> (Option<&'m Object<AccountSpec>>, Option<String>) {
        let used = used(self.facts, &c.name, self.now).unwrap_or(0.0);
        let at = self.m.controller.spec.quota.move_at.unwrap_or(100);
        match self.roomiest(true) {
            Some(n) if n.name != c.name && self.open(n) => {
                if self.cooling {
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
}

/// Why no account of `family` (by priority) can take sessions, naming each account's
/// reason: every one exhausted (the first reset, then each), or the exhausted ones and
/// those whose shared state is broken. What follows from it is the caller's to say.
pub(in crate::plan) fn why_none(
    family: &Family<'_>,
    facts: &Facts,
    broken: &BTreeSet<String>,
    now: Timestamp,
) -> String {
    let each: Vec<String> = family
        .iter()
        .map(|a| match facts.exhausted_until.get(&a.name) {
            Some(t) if *t > now => format!("{} until {}", a.name, t),
            _ if broken.contains(&a.name) => format!("{}: its shared state is broken", a.name),
            _ => format!("{}: available", a.name),
        })
        .collect();
    if let Some(first) = all_exhausted(family, facts, now) {
        let first = format!("; the first resets at {first}");
        format!("every account is exhausted{first} ({})", each.join(", "))
    } else {
        format!("no account can take sessions ({})", each.join(", "))
    }
}

/// When the first account of `family` resets, if every one is exhausted.
pub(in crate::plan) fn all_exhausted(
    family: &Family<'_>,
    facts: &Facts,
    now: Timestamp,
) -> Option<Timestamp> {
    family
        .iter()
        .map(|a| facts.exhausted_until.get(&a.name).filter(|t| **t > now))
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .min()
        .copied()
}

/// Whether `account` is at or over `quota.moveAt`: it takes no new task, and its
/// sessions move at safe points.
pub(in crate::plan) fn over(m: &Manifests, facts: &Facts, account: &str, now: Timestamp) -> bool {
    let Some(at) = m.controller.spec.quota.move_at else {
        return false;
    };
    used(facts, account, now).is_some_and(|u| u >= f64::from(at))
}

/// The use of `account` that counts against `quota.moveAt`: its status line's highest
/// window that has not reset, in percent.
fn used(facts: &Facts, account: &str, now: Timestamp) -> Option<f64> {
    facts.usage.get(account)?.usage.used_at(now)
}

/// Whether account `a` is available: its reset time, if any, has come.
fn available(facts: &Facts, a: &Object<AccountSpec>, now: Timestamp) -> bool {
    facts.exhausted_until.get(&a.name).is_none_or(|t| *t <= now)
}

#[cfg(test)]
#[path = "choose_tests.rs"]
mod tests;
