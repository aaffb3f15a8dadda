//! The account ledger: quota readings from every session's screen turn into
//! "exhausted until", and the active account follows: to the next available one by
//! priority when it is exhausted (not within `cooldown` of the last swap), back to a
//! preferred one once it is available again (`failback: idle`), never when all are
//! exhausted.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::json;

use super::Plan;
use super::screens::Reading;
use crate::api::{AccountSpec, Failback, Manifests, Object};
use crate::observe::Observed;
use crate::state::{Facts, Swap};

/// Reads quota signals and decides the active account; records both in `plan.facts`
/// and `plan.events`.
pub(super) fn plan_ledger(
    m: &Manifests,
    o: &Observed,
    readings: &BTreeMap<String, Reading>,
    now: Timestamp,
    plan: &mut Plan,
) {
    let spec = &m.controller.spec.quota;
    // The strongest reading per account: a reset time beats none.
    let mut by_account: BTreeMap<String, (Option<Timestamp>, String, String, String)> =
        BTreeMap::new();
    let mut counted: Vec<(String, String, String)> = Vec::new();
    for (name, reading) in readings {
        let Some(account) = o.sessions.get(name).and_then(|s| s.account.as_ref()) else {
            continue;
        };
        let verdict = reading.verdict.clone();
        let Some(mark) = reading.quota_mark.clone() else {
            continue;
        };
        // Kept through blank and other screens: a respawned pane is blank for a moment
        // before the resumed conversation redraws the limit.
        let f = plan.facts.sessions.entry(name.clone()).or_default();
        if f.stale_quota.as_deref() == Some(mark.as_str()) {
            continue;
        }
        counted.push((name.clone(), account.clone(), mark));
        let line: String = verdict.line.unwrap_or_default().chars().take(120).collect();
        let entry = by_account.entry(account.clone()).or_insert((
            None,
            name.clone(),
            verdict.pattern.clone().unwrap_or_default(),
            line.clone(),
        ));
        if entry.0.is_none() && verdict.resets_at.is_some() {
            *entry = (
                verdict.resets_at,
                name.clone(),
                verdict.pattern.unwrap_or_default(),
                line,
            );
        }
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
        plan.events
            .push(("recovered".into(), json!({"account": account})));
    }
    for account in &m.accounts {
        let Some((resets, session, pattern, line)) = by_account.get(&account.name) else {
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
        let until = match resets {
            Some(t) => Some(*t),
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
                (*polls >= spec.confirmations).then(|| {
                    now.checked_add(
                        jiff::SignedDuration::try_from(spec.reset_fallback.0).unwrap_or_default(),
                    )
                    .unwrap_or(now)
                })
            }
        };
        let event = json!({
            "account": account.name, "session": session, "class": "quota-exhausted",
            "pattern": pattern, "line": line, "resetsAt": resets,
            "confirmed": until.is_some(),
        });
        plan.events.push(("quotaDetected".into(), event));
        if let Some(until) = until {
            facts
                .exhausted_until
                .insert(account.name.clone(), until.max(now));
            facts.quota_polls.remove(&account.name);
        }
    }
    // A limit (turn and line) that made its account exhausted is not read again: a
    // resumed conversation redraws it under the next account.
    for (session, account, line) in counted {
        if facts
            .exhausted_until
            .get(&account)
            .is_some_and(|t| *t > now)
        {
            facts.sessions.entry(session).or_default().stale_quota = Some(line);
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

/// Keeps, swaps or fails back the active account.
fn choose_account(
    m: &Manifests,
    facts: &mut Facts,
    now: Timestamp,
    events: &mut Vec<(String, serde_json::Value)>,
) {
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
    let first_available = ranked.iter().find(|a| available(facts, a, now)).copied();
    let next = match current {
        None => first_available,
        Some(c) if available(facts, c, now) => {
            // Fail back to a preferred account that is available again.
            match first_available {
                Some(f)
                    if spec.failback == Failback::Idle
                        && f.spec.priority < c.spec.priority
                        && !cooling =>
                {
                    Some(f)
                }
                _ => Some(c),
            }
        }
        Some(c) if cooling => Some(c),
        Some(_) => first_available,
    };
    let Some(next) = next else {
        if !facts.exhausted_until.is_empty() && current.is_some() {
            events.push((
                "allExhausted".into(),
                json!({"firstReset": facts.exhausted_until.values().min()}),
            ));
        }
        return;
    };
    if let Some(c) = current
        && c.name != next.name
    {
        let reason = if available(facts, c, now) {
            "fail-back"
        } else {
            "quota exhausted"
        };
        facts.last_swap = Some(Swap {
            at: now,
            from: c.name.clone(),
            to: next.name.clone(),
            reason: reason.into(),
        });
        events.push((
            "swap".into(),
            json!({"from": c.name, "to": next.name, "reason": reason}),
        ));
    }
    facts.active_account = Some(next.name.clone());
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{Action, plan_with_tasks};

    const LIMIT: &str = "> go\n  ⎿  You've hit your 5-hour limit · resets 11pm (UTC)\n● Usage limit reached · continuing automatically at 11pm · esc to cancel\n────\n❯\u{a0}\n────\n";

    #[test]
    fn a_quota_screen_should_swap_and_nothing_should_run_while_every_account_is_exhausted() {
        let text = format!("{POOL_AND_DEDICATED}{INBOX}");
        let m = manifests(&text);
        let mut o = observed();
        for (i, n) in ["ccl-auto-11", "ccl-auto-12", "ccl-auto-13", "ccl-1-x"]
            .iter()
            .enumerate()
        {
            add(&mut o, session(n, "failover", "main", 100 + i as u32));
            o.screens.insert((*n).into(), IDLE_SCREEN.into());
        }
        o.screens.insert("ccl-auto-11".into(), LIMIT.into());
        o.facts.active_account = Some("main".into());
        let p = plan_with_tasks(&m, &o, "failover", now());
        assert_eq!(p.account.as_deref(), Some("alt"));
        assert_eq!(
            p.facts.exhausted_until["main"].to_string(),
            "2026-11-21T23:00:00Z"
        );
        assert!(p.events.iter().any(|(k, _)| k == "swap"));
        // alt exhausted too, within the cooldown: no account runs anything, no task goes out.
        let mut o2 = o.clone();
        o2.facts = p.facts.clone();
        o2.facts
            .exhausted_until
            .insert("alt".into(), "2026-11-21T22:00:00Z".parse().unwrap());
        o2.inboxes.insert(
            "tasks".into(),
            crate::observe::InboxState {
                waiting: vec![crate::observe::Waiting {
                    name: "t.md".into(),
                    link: false,
                }],
                active: vec![],
            },
        );
        let p2 = plan_with_tasks(&m, &o2, "failover", now());
        assert_eq!(p2.account, None);
        assert!(
            !p2.actions
                .iter()
                .any(|a| matches!(a, Action::DispatchTask { .. })),
            "{:?}",
            p2.actions
        );
        assert!(!p2.events.iter().any(|(k, _)| k == "swap"), "no ping-pong");
    }

    #[test]
    fn a_limit_redrawn_after_a_move_should_not_count_against_the_next_account() {
        let m = manifests(POOL_AND_DEDICATED);
        let mut o = observed();
        add(&mut o, session("ccl-1-x", "failover", "main", 100));
        o.screens.insert("ccl-1-x".into(), LIMIT.into());
        o.facts.active_account = Some("main".into());
        let p = plan_with_tasks(&m, &o, "failover", now());
        assert_eq!(p.account.as_deref(), Some("alt"));
        // Moved: a blank screen for a moment, then the resumed conversation redraws
        // the limit under alt.
        let mut o = o.clone();
        o.facts = p.facts.clone();
        o.sessions
            .insert("ccl-1-x".into(), session("ccl-1-x", "failover", "alt", 101));
        for screen in ["", LIMIT] {
            o.screens.insert("ccl-1-x".into(), screen.into());
            let p = plan_with_tasks(&m, &o, "failover", now());
            assert!(!p.facts.exhausted_until.contains_key("alt"), "{screen:?}");
            assert!(
                !p.events.iter().any(|(k, _)| k == "quotaDetected"),
                "{screen:?}"
            );
            o.facts = p.facts;
        }
        // A new turn that meets a limit under alt does count.
        let again = LIMIT.replace("> go", "> go\n● Done.\n> continue");
        o.screens.insert("ccl-1-x".into(), again);
        let p = plan_with_tasks(&m, &o, "failover", now());
        assert!(p.facts.exhausted_until.contains_key("alt"));
    }
}
