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
use crate::state::{Facts, Stage, Swap};

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
        let f = plan.facts.sessions.entry(name.clone()).or_default();
        // A new turn: one under way, or ours drawn (the screen changed since we
        // submitted it). Anything else, a respawned pane blank for a moment before it
        // redraws included, keeps a redraw pending.
        let ours_drawn = f.redraw_submit.is_some_and(|h| h != reading.hash);
        if ours_drawn || reading.state == crate::screen::State::Busy {
            f.end_redraw();
            f.counted_quota = None;
        }
        let Some(mark) = reading.quota_mark.clone() else {
            continue;
        };
        if f.redraw {
            match &f.redraw_mark {
                // The first limit after a move is the old turn's, redrawn.
                None => {
                    f.redraw_mark = Some(mark);
                    continue;
                }
                Some(seen) if *seen == mark => continue,
                // Another prompt or line: the person's new turn met a limit.
                Some(_) => f.end_redraw(),
            }
        }
        if f.counted_quota.as_ref() == Some(&(account.clone(), mark.clone())) {
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
        // The limits counted against it are spent: still on screen, they are old news,
        // and a task that met one carries on.
        for f in facts.sessions.values_mut() {
            let Some((counted, mark)) = &f.counted_quota else {
                continue;
            };
            if *counted != account {
                continue;
            }
            let mark = mark.clone();
            f.end_redraw();
            f.redraw = true;
            f.redraw_mark = Some(mark);
            f.counted_quota = None;
            if let Some(t) = f.task.as_mut()
                && matches!(t.stage, Stage::Submitted(_) | Stage::Running)
            {
                t.stage = Stage::Resuming;
                t.since = now;
            }
        }
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
    use super::super::record::{Outcome, record};
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

    /// Carries out a plan's moves as the controller would: the facts recorded, each
    /// moved session under its new account with a new agent.
    fn carry_out_moves(o: &mut crate::observe::Observed, p: &crate::plan::Plan) {
        o.facts = p.facts.clone();
        for action in &p.actions {
            if let Action::MoveSession { session: spec, .. } = action {
                let ok = Ok(Outcome::Resumed(
                    "0b9f5d8e-0000-4000-8000-000000000000".into(),
                ));
                record(&mut o.facts, action, &ok, now());
                let pid = o.sessions[&spec.name].pane.pid + 100;
                o.sessions.insert(
                    spec.name.clone(),
                    session(&spec.name, "failover", &spec.account, pid),
                );
            }
        }
    }

    /// Plans over each screen in turn, carrying the facts.
    fn read_in_turn(
        m: &crate::api::Manifests,
        o: &mut crate::observe::Observed,
        name: &str,
        screens: &[&str],
    ) -> crate::plan::Plan {
        let mut last = None;
        for screen in screens {
            o.screens.insert(name.into(), (*screen).into());
            let p = plan_with_tasks(m, o, "failover", now());
            o.facts = p.facts.clone();
            last = Some(p);
        }
        last.expect("at least one screen")
    }

    fn swapped_once() -> (crate::api::Manifests, crate::observe::Observed) {
        let m = manifests(POOL_AND_DEDICATED);
        let mut o = observed();
        add(&mut o, session("ccl-1-x", "failover", "main", 100));
        o.screens.insert("ccl-1-x".into(), LIMIT.into());
        o.facts.active_account = Some("main".into());
        let p = plan_with_tasks(&m, &o, "failover", now());
        assert_eq!(p.account.as_deref(), Some("alt"));
        assert!(
            p.actions
                .iter()
                .any(|a| matches!(a, Action::MoveSession { .. })),
            "{:?}",
            p.actions
        );
        carry_out_moves(&mut o, &p);
        (m, o)
    }

    #[test]
    fn a_limit_redrawn_after_a_move_should_not_count_against_the_next_account() {
        let (m, mut o) = swapped_once();
        // A blank screen for a moment, then the resumed conversation redraws the limit.
        let p = read_in_turn(&m, &mut o, "ccl-1-x", &["", LIMIT, IDLE_SCREEN, LIMIT]);
        assert!(!p.facts.exhausted_until.contains_key("alt"));
        assert!(!p.events.iter().any(|(k, _)| k == "quotaDetected"));
        // The person's next turn meets a limit under alt: that one counts.
        let again = LIMIT.replace("> go", "> go\n● Done.\n> go on");
        let p = read_in_turn(&m, &mut o, "ccl-1-x", &[&again]);
        assert!(p.facts.exhausted_until.contains_key("alt"));
    }

    #[test]
    fn the_same_limit_after_a_new_turn_should_count_against_the_next_account() {
        let (m, mut o) = swapped_once();
        // Redrawn, then a new turn with the very same prompt meets the very same line.
        let p = read_in_turn(&m, &mut o, "ccl-1-x", &[LIMIT, BUSY_SCREEN, LIMIT]);
        assert!(
            p.facts.exhausted_until.contains_key("alt"),
            "{:?}",
            p.events
        );
    }

    #[test]
    fn the_same_limit_on_our_next_turn_should_count_once_the_screen_changed() {
        let (m, mut o) = swapped_once();
        // The old turn was already a `continue`; ours is one too, and meets the same
        // line: same mark, but the screen changed after we submitted it.
        let old = LIMIT.replace("> go", "> continue");
        let p = read_in_turn(&m, &mut o, "ccl-1-x", &[&old]);
        assert!(!p.facts.exhausted_until.contains_key("alt"));
        let submit = Action::SubmitTask {
            task: super::super::TaskRef {
                inbox: "tasks".into(),
                path: "/p/.agent-queue/inbox".into(),
                name: "t.md".into(),
                file: "ccl-1-x.1.t.md".into(),
                session: "ccl-1-x".into(),
                account: "alt".into(),
                attempt: 1,
                started: None,
            },
            pane: "%1".into(),
        };
        record(&mut o.facts, &submit, &Ok(Outcome::Done), now());
        // Not drawn yet: still the redraw.
        let p = read_in_turn(&m, &mut o, "ccl-1-x", &[&old]);
        assert!(!p.facts.exhausted_until.contains_key("alt"));
        let ours = format!("> continue\n● Usage limit reached · resets 11pm (UTC)\n{old}");
        let p = read_in_turn(&m, &mut o, "ccl-1-x", &[&ours]);
        assert!(
            p.facts.exhausted_until.contains_key("alt"),
            "{:?}",
            p.events
        );
    }

    #[test]
    fn a_limit_drawn_after_the_capture_should_still_be_a_redraw_after_the_move() {
        // The session was idle when read, met the limit, and was moved anyway (its
        // account was exhausted by another session): no mark of its own.
        let (m, mut o) = swapped_once();
        let other = LIMIT.replace("> go", "> another prompt");
        let p = read_in_turn(&m, &mut o, "ccl-1-x", &[&other, &other]);
        assert!(!p.facts.exhausted_until.contains_key("alt"));
    }

    #[test]
    fn a_task_at_a_limit_should_wait_when_no_account_is_left() {
        let one = "
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: main}
spec: {home: /h/main}
---
apiVersion: failover/v1alpha1
kind: Pool
metadata: {name: auto}
spec: {prefix: ccl-auto-, startIndex: 11, min: 1, max: 1, workdir: /w}
";
        let m = manifests(&format!("{one}{INBOX}"));
        let mut o = observed();
        add(&mut o, session("ccl-auto-11", "failover", "main", 100));
        o.facts.active_account = Some("main".into());
        o.facts
            .sessions
            .entry("ccl-auto-11".into())
            .or_default()
            .task = Some(task_facts("ccl-auto-11"));
        let t = task_facts("ccl-auto-11");
        o.inboxes.insert(
            "tasks".into(),
            crate::observe::InboxState {
                waiting: vec![],
                active: vec![crate::observe::ActiveTask {
                    file: t.file.clone(),
                    session: "ccl-auto-11".into(),
                    attempt: 1,
                    task: t.task.clone(),
                }],
            },
        );
        o.screens.insert("ccl-auto-11".into(), LIMIT.into());
        for later in [0, 2, 60] {
            let at = now() + jiff::SignedDuration::from_secs(later);
            let p = plan_with_tasks(&m, &o, "failover", at);
            assert!(
                !p.actions
                    .iter()
                    .any(|a| matches!(a, Action::CompleteTask { .. })),
                "a task at its limit is not done: {:?}",
                p.actions
            );
            o.facts = p.facts;
        }
        assert!(o.facts.exhausted_until.contains_key("main"));
    }
}
