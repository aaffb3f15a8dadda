//! The choice of the active account, and what it weighs: whether each account is
//! available, its use, and `quota.moveAt`. The active account stays while it is
//! usable; it moves, after `cooldown`, to the usable account with the most headroom
//! when it is exhausted or over the threshold, and back to a preferred one once that
//! is usable again (`failback: idle`).

use jiff::Timestamp;

use crate::api::{AccountSpec, Failback, Manifests, Object};
use crate::plan::Event;
use crate::state::{Facts, Swap};

/// Keeps, swaps or fails back the active account.
pub(super) fn choose_account(
    m: &Manifests,
    facts: &mut Facts,
    now: Timestamp,
    events: &mut Vec<Event>,
) {
    let ranked = m.accounts_by_priority();
    let current = facts
        .active_account
        .as_deref()
        .and_then(|name| ranked.iter().find(|a| a.name == name))
        .copied();
    let cooldown = m.controller.spec.quota.cooldown.0.as_secs_f64();
    let choice = Choice {
        m,
        facts,
        now,
        ranked: &ranked,
        cooling: facts
            .last_swap
            .as_ref()
            .is_some_and(|s| now.duration_since(s.at).as_secs_f64() < cooldown),
    };
    let (next, reason) = choice.next(current, events);
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

/// What the choice of the active account reads.
struct Choice<'m, 'f> {
    m: &'m Manifests,
    facts: &'f Facts,
    now: Timestamp,
    /// The accounts by priority.
    ranked: &'f [&'m Object<AccountSpec>],
    /// The last swap is within `quota.cooldown`.
    cooling: bool,
}

impl<'m> Choice<'m, '_> {
    /// The account to be active next (`None`: none is available), and why it is not
    /// the current one.
    fn next(
        &self,
        current: Option<&'m Object<AccountSpec>>,
        events: &mut Vec<Event>,
    ) -> (Option<&'m Object<AccountSpec>>, Option<String>) {
        match current {
            None => (self.roomiest(), None),
            Some(c) if self.usable(c) => self.keep_or_fail_back(c),
            Some(c) if available(self.facts, c, self.now) => self.leave_over_threshold(c, events),
            Some(c) if self.cooling => (Some(c), None),
            Some(_) => (self.roomiest(), Some("quota exhausted".to_owned())),
        }
    }

    /// Whether sessions may go to account `a`: available and not over `quota.moveAt`.
    fn usable(&self, a: &Object<AccountSpec>) -> bool {
        available(self.facts, a, self.now) && !over(self.m, self.facts, &a.name, self.now)
    }

    /// Where sessions go when they leave: the usable account with the most headroom
    /// (unknown use counts as none), then by priority; else any available one.
    fn roomiest(&self) -> Option<&'m Object<AccountSpec>> {
        let use_of = |x: &Object<AccountSpec>| used(self.facts, &x.name, self.now).unwrap_or(0.0);
        self.ranked
            .iter()
            .filter(|a| self.usable(a))
            .min_by(|a, b| use_of(a).total_cmp(&use_of(b)))
            .or_else(|| {
                self.ranked
                    .iter()
                    .find(|a| available(self.facts, a, self.now))
            })
            .copied()
    }

    /// The usable current account `c` stays, unless a preferred account is usable
    /// again and `failback: idle` says to return to it, after the cooldown.
    fn keep_or_fail_back(
        &self,
        c: &'m Object<AccountSpec>,
    ) -> (Option<&'m Object<AccountSpec>>, Option<String>) {
        let preferred = self.ranked.iter().find(|a| self.usable(a)).copied();
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
        match self.roomiest() {
            Some(n) if n.name != c.name && self.usable(n) => {
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
