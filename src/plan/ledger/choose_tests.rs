//! The choice's table tests with more than two accounts: a confirmed exhaustion moves
//! on at once to the third and fourth account, the refusal names every reset when all
//! are used up, work resumes once at the first reset, and an account whose shared state
//! is broken is passed over.

use std::collections::BTreeSet;

use crate::api::Manifests;
use crate::observe::Observed;
use crate::plan::fixtures::*;
use crate::plan::{Action, Plan, TaskAction};
use crate::report::{Event, Report};

const FOUR: &str = "
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: a}
spec: {home: /h/a, priority: 0}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: b}
spec: {home: /h/b, priority: 1}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: c}
spec: {home: /h/c, priority: 2}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: d}
spec: {home: /h/d, priority: 3}
---
apiVersion: failover/v1alpha1
kind: Pool
metadata: {name: auto}
spec: {prefix: ccl-auto-, startIndex: 11, min: 2, max: 2, workdir: /w}
";

fn at(secs: i64) -> jiff::Timestamp {
    now() + jiff::SignedDuration::from_secs(secs)
}

/// Four accounts a to d, default quota settings, a pool of two idle on `a`.
fn world() -> (Manifests, Observed) {
    let m = manifests(&format!("{FOUR}{INBOX}"));
    let mut o = observed();
    for (i, n) in ["ccl-auto-11", "ccl-auto-12"].iter().enumerate() {
        add(&mut o, session(n, "failover", "a", 100 + i as u32));
        o.screens.insert((*n).into(), IDLE_SCREEN.into());
    }
    o.facts.active_account = Some("a".into());
    (m, o)
}

/// The agent of `ccl-auto-11` reports the usage limit of `account` at `secs`, resetting
/// at `resets` (Claude Code's words).
fn limit(o: &mut Observed, account: &str, secs: i64, resets: &str) {
    let pid = o.sessions["ccl-auto-11"].pane.pid;
    o.reports.insert(
        "ccl-auto-11".into(),
        vec![Report {
            path: format!("/state/reports/ccl-auto-11.{secs}.json").into(),
            session: "ccl-auto-11".into(),
            account: Some(account.into()),
            pids: vec![pid],
            at: at(secs),
            event: Event::Failed {
                prompt_id: format!("p{secs}"),
                error: "rate_limit".into(),
                message: format!("You've hit your 5-hour limit · resets {resets} (UTC)"),
            },
        }],
    );
}

/// Plans at `secs`, then does what the controller would: the moves carried out, the
/// reports consumed.
fn round(m: &Manifests, o: &mut Observed, secs: i64) -> Plan {
    let p = plan_with_tasks(m, o, "failover", at(secs));
    carry_out_moves(o, &p);
    o.reports.clear();
    p
}

fn kinds(p: &Plan, kind: &str) -> Vec<serde_json::Value> {
    journaled(p)
        .into_iter()
        .filter(|(k, _)| k == kind)
        .map(|(_, e)| e)
        .collect()
}

#[test]
fn a_reported_limit_should_move_on_at_once_to_the_third_and_fourth_account() {
    let (m, mut o) = world();
    for (secs, exhausted, next) in [(0, "a", "b"), (3, "b", "c"), (6, "c", "d")] {
        limit(&mut o, exhausted, secs, "11pm");
        let p = round(&m, &mut o, secs);
        assert_eq!(p.account.as_deref(), Some(next), "{secs}s: {:?}", p.events);
        let swaps = kinds(&p, "swap");
        assert_eq!(swaps.len(), 1, "{secs}s: {:?}", p.events);
        assert_eq!(
            (&swaps[0]["from"], &swaps[0]["to"]),
            (&exhausted.into(), &next.into())
        );
        assert!(kinds(&p, "allExhausted").is_empty(), "{:?}", p.events);
        assert!(
            !p.refused
                .iter()
                .any(|r| r.object.spoken().to_string() == "accounts"),
            "{secs}s: {:?}",
            p.refused
        );
        for s in ["ccl-auto-11", "ccl-auto-12"] {
            assert_eq!(o.sessions[s].account.as_deref(), Some(next), "{secs}s");
        }
    }
}

#[test]
fn with_every_account_used_up_tasks_should_wait_and_work_resume_once_at_the_first_reset() {
    let (m, mut o) = world();
    o.inboxes.insert("tasks".into(), waiting(2));
    let resets = [("a", "11pm"), ("b", "9pm"), ("c", "10pm"), ("d", "11pm")];
    let mut said = Vec::new();
    for (i, (account, when)) in resets.iter().enumerate() {
        limit(&mut o, account, i as i64, when);
        let p = round(&m, &mut o, i as i64);
        said.push(kinds(&p, "allExhausted"));
    }
    // Said once, as d ran out.
    assert!(said[..3].iter().all(Vec::is_empty), "{said:?}");
    let all = &said[3];
    assert_eq!(all.len(), 1, "{said:?}");
    assert_eq!(all[0]["firstReset"], "2026-11-21T21:00:00Z");
    assert_eq!(all[0]["until"]["c"], "2026-11-21T22:00:00Z");
    let p = round(&m, &mut o, 4);
    assert!(kinds(&p, "allExhausted").is_empty(), "{:?}", p.events);
    assert_eq!(p.account, None);
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::Task(TaskAction::DispatchTask { .. }))),
        "no task goes out: {:?}",
        p.actions
    );
    let refusal = p
        .refused
        .iter()
        .find(|r| r.object.spoken().to_string() == "accounts")
        .unwrap_or_else(|| panic!("{:?}", p.refused));
    assert_eq!(
        refusal.reason,
        "every account is exhausted; the first resets at 2026-11-21T21:00:00Z \
         (a until 2026-11-21T23:00:00Z, b until 2026-11-21T21:00:00Z, \
         c until 2026-11-21T22:00:00Z, d until 2026-11-21T23:00:00Z); \
         no session is started, tasks wait in their inboxes"
    );
    // b resets first: work resumes there, said once.
    let reset = (15 * 3600) + 1;
    let p = round(&m, &mut o, reset);
    assert_eq!(p.account.as_deref(), Some("b"), "{:?}", p.events);
    let resumed = kinds(&p, "resumed");
    assert_eq!(resumed.len(), 1, "{:?}", p.events);
    assert_eq!(resumed[0]["account"], "b");
    assert_eq!(resumed[0]["since"], at(3).to_string());
    // The sessions moved to b, the waiting tasks go out, and nothing more is said.
    let p = round(&m, &mut o, reset + 1);
    assert!(kinds(&p, "resumed").is_empty(), "{:?}", p.events);
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Task(TaskAction::DispatchTask { .. }))),
        "{:?}",
        p.actions
    );
}

#[test]
fn an_exhausted_account_should_pass_over_one_whose_shared_state_is_broken() {
    let (m, mut o) = world();
    limit(&mut o, "a", 0, "11pm");
    let mut facts = o.facts.clone();
    let mut events = Vec::new();
    facts
        .exhausted_until
        .insert("a".into(), "2026-11-21T23:00:00Z".parse().unwrap());
    let broken: BTreeSet<String> = ["b".to_owned()].into();
    super::choose_account(&m, &mut facts, &broken, now(), &mut events);
    assert_eq!(facts.active_account.as_deref(), Some("c"));
    // With c and d used up as well, nothing can take the sessions: not "every account
    // is exhausted", but why each cannot.
    let mut facts = o.facts.clone();
    for x in ["a", "c", "d"] {
        facts
            .exhausted_until
            .insert(x.into(), "2026-11-21T23:00:00Z".parse().unwrap());
    }
    let mut events = Vec::new();
    super::choose_account(&m, &mut facts, &broken, now(), &mut events);
    assert_eq!(facts.active_account.as_deref(), Some("a"));
    assert!(events.is_empty(), "{events:?}");
    let why = super::why_none(&m, &facts, &broken, now());
    assert_eq!(
        why,
        "no account can take sessions (a until 2026-11-21T23:00:00Z, b: its shared state is broken, \
         c until 2026-11-21T23:00:00Z, d until 2026-11-21T23:00:00Z); no session is started, \
         tasks wait in their inboxes"
    );
}

#[test]
fn the_cooldown_should_still_hold_a_fail_back_and_a_move_over_move_at() {
    let m = manifests(&format!("{FOUR}{MOVE_AT_95}"));
    let mut facts = crate::state::Facts {
        active_account: Some("b".into()),
        last_swap: Some(crate::state::Swap {
            at: now(),
            from: "a".into(),
            to: "b".into(),
            reason: "quota exhausted".into(),
        }),
        ..Default::default()
    };
    let none = BTreeSet::new();
    // a is usable again a minute after the move: no fail-back within the cooldown.
    let mut events = Vec::new();
    super::choose_account(&m, &mut facts, &none, at(60), &mut events);
    assert_eq!(facts.active_account.as_deref(), Some("b"), "{events:?}");
    // b over moveAt within the cooldown: it stays.
    facts
        .exhausted_until
        .insert("a".into(), "2026-11-21T23:00:00Z".parse().unwrap());
    facts
        .usage
        .insert("b".into(), five_hour(97.0, at(3600), at(60), "ccl-auto-11"));
    super::choose_account(&m, &mut facts, &none, at(61), &mut events);
    assert_eq!(facts.active_account.as_deref(), Some("b"), "{events:?}");
    // After it, on to c.
    super::choose_account(&m, &mut facts, &none, at(301), &mut events);
    assert_eq!(facts.active_account.as_deref(), Some("c"), "{events:?}");
    // a resets a minute later: no fail-back within the new cooldown, then one.
    facts.exhausted_until.clear();
    super::choose_account(&m, &mut facts, &none, at(361), &mut events);
    assert_eq!(facts.active_account.as_deref(), Some("c"), "{events:?}");
    super::choose_account(&m, &mut facts, &none, at(602), &mut events);
    assert_eq!(facts.active_account.as_deref(), Some("a"), "{events:?}");
    assert_eq!(
        facts.last_swap.as_ref().map(|s| s.reason.as_str()),
        Some("fail-back")
    );
}
