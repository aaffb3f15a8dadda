//! The choice's table tests with more than two accounts: a confirmed exhaustion moves
//! on at once to the third and fourth account, the refusal names every reset when all
//! are used up, work resumes once at the first reset, and an account whose shared state
//! is broken is passed over. Families: two groups of accounts, each with its own ledger,
//! never move each other (an exhaustion, the wait, the cooldown).

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
    o.facts.family_mut(CLAUDE).active_account = Some("a".into());
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
        assert_eq!(p.account(CLAUDE), Some(next), "{secs}s: {:?}", p.events);
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
    assert_eq!(p.account(CLAUDE), None);
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
    assert_eq!(p.account(CLAUDE), Some("b"), "{:?}", p.events);
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
    super::choose_account(&m, CLAUDE, &mut facts, &broken, now(), &mut events);
    assert_eq!(facts.family(CLAUDE).active_account.as_deref(), Some("c"));
    // With c and d used up as well, nothing can take the sessions: not "every account
    // is exhausted", but why each cannot.
    let mut facts = o.facts.clone();
    for x in ["a", "c", "d"] {
        facts
            .exhausted_until
            .insert(x.into(), "2026-11-21T23:00:00Z".parse().unwrap());
    }
    let mut events = Vec::new();
    super::choose_account(&m, CLAUDE, &mut facts, &broken, now(), &mut events);
    assert_eq!(facts.family(CLAUDE).active_account.as_deref(), Some("a"));
    assert!(events.is_empty(), "{events:?}");
    let why = super::why_none(&m.family_by_priority(CLAUDE), &facts, &broken, now());
    assert_eq!(
        why,
        "no account can take sessions (a until 2026-11-21T23:00:00Z, b: its shared state is broken, \
         c until 2026-11-21T23:00:00Z, d until 2026-11-21T23:00:00Z)"
    );
}

#[test]
fn the_cooldown_should_still_hold_a_fail_back_and_a_move_over_move_at() {
    let m = manifests(&format!("{FOUR}{MOVE_AT_95}"));
    let mut facts = crate::state::Facts::default();
    *facts.family_mut(CLAUDE) = crate::state::families::Ledger {
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
    super::choose_account(&m, CLAUDE, &mut facts, &none, at(60), &mut events);
    assert_eq!(
        facts.family(CLAUDE).active_account.as_deref(),
        Some("b"),
        "{events:?}"
    );
    // b over moveAt within the cooldown: it stays.
    facts
        .exhausted_until
        .insert("a".into(), "2026-11-21T23:00:00Z".parse().unwrap());
    facts
        .usage
        .insert("b".into(), five_hour(97.0, at(3600), at(60), "ccl-auto-11"));
    super::choose_account(&m, CLAUDE, &mut facts, &none, at(61), &mut events);
    assert_eq!(
        facts.family(CLAUDE).active_account.as_deref(),
        Some("b"),
        "{events:?}"
    );
    // After it, on to c.
    super::choose_account(&m, CLAUDE, &mut facts, &none, at(301), &mut events);
    assert_eq!(
        facts.family(CLAUDE).active_account.as_deref(),
        Some("c"),
        "{events:?}"
    );
    // a resets a minute later: no fail-back within the new cooldown, then one.
    facts.exhausted_until.clear();
    super::choose_account(&m, CLAUDE, &mut facts, &none, at(361), &mut events);
    assert_eq!(
        facts.family(CLAUDE).active_account.as_deref(),
        Some("c"),
        "{events:?}"
    );
    super::choose_account(&m, CLAUDE, &mut facts, &none, at(602), &mut events);
    assert_eq!(
        facts.family(CLAUDE).active_account.as_deref(),
        Some("a"),
        "{events:?}"
    );
    assert_eq!(
        facts
            .family(CLAUDE)
            .last_swap
            .as_ref()
            .map(|s| s.reason.as_str()),
        Some("fail-back")
    );
}

/// Accounts `a` and `b` as one family and `c` and `d` as another, as data: the choice
/// takes one family's accounts and ledger at a time, whatever their kind.
fn two_families(
    m: &Manifests,
) -> (
    Vec<&crate::api::Object<crate::api::AccountSpec>>,
    Vec<&crate::api::Object<crate::api::AccountSpec>>,
) {
    let ranked = m.accounts_by_priority();
    let (one, two): (Vec<_>, Vec<_>) = ranked.into_iter().partition(|a| a.name.as_str() < "c");
    (one, two)
}

fn ledger(active: &str) -> crate::state::families::Ledger {
    crate::state::families::Ledger {
        active_account: Some(active.into()),
        ..Default::default()
    }
}

#[test]
fn an_exhaustion_in_one_family_should_never_move_the_others_account() {
    let m = manifests(FOUR);
    let (one, two) = two_families(&m);
    let (mut first, mut second) = (ledger("a"), ledger("c"));
    let mut facts = crate::state::Facts::default();
    facts
        .exhausted_until
        .insert("a".into(), "2026-11-21T23:00:00Z".parse().unwrap());
    let none = BTreeSet::new();
    let mut events = Vec::new();
    super::choose_family(&m, &one, &mut first, &facts, &none, now(), &mut events);
    assert_eq!(first.active_account.as_deref(), Some("b"), "{events:?}");
    assert_eq!(events.len(), 1, "{events:?}");
    let mut others = Vec::new();
    super::choose_family(&m, &two, &mut second, &facts, &none, now(), &mut others);
    assert_eq!(second, ledger("c"), "the other family keeps its account");
    assert!(others.is_empty(), "{others:?}");
    // The swap is the first family's: the second's cooldown does not run.
    assert!(super::cooling(&m, &first, now()) && !super::cooling(&m, &second, now()));
}

#[test]
fn a_family_whose_accounts_are_all_exhausted_should_wait_alone() {
    let m = manifests(FOUR);
    let (one, two) = two_families(&m);
    let (mut first, mut second) = (ledger("a"), ledger("c"));
    let mut facts = crate::state::Facts::default();
    for (x, t) in [("a", "2026-11-21T23:00:00Z"), ("b", "2026-11-21T22:00:00Z")] {
        facts.exhausted_until.insert(x.into(), t.parse().unwrap());
    }
    let none = BTreeSet::new();
    let mut events = Vec::new();
    super::choose_family(&m, &one, &mut first, &facts, &none, now(), &mut events);
    super::choose_family(&m, &two, &mut second, &facts, &none, now(), &mut events);
    let [crate::plan::Event::AllExhausted { until, first_reset }] = events.as_slice() else {
        panic!("one allExhausted, the first family's: {events:?}");
    };
    assert_eq!(until.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        first_reset.map(|t| t.to_string()).as_deref(),
        Some("2026-11-21T22:00:00Z")
    );
    assert_eq!(first.waiting_since, Some(now()));
    assert_eq!(second, ledger("c"));
    assert!(super::all_exhausted(&one, &facts, now()).is_some());
    assert_eq!(super::all_exhausted(&two, &facts, now()), None);
    assert_eq!(
        super::why_none(&one, &facts, &none, now()),
        "every account is exhausted; the first resets at 2026-11-21T22:00:00Z (a until \
         2026-11-21T23:00:00Z, b until 2026-11-21T22:00:00Z)"
    );
}

#[test]
fn a_fail_back_should_be_held_only_by_its_own_familys_cooldown() {
    let m = manifests(FOUR);
    let (one, two) = two_families(&m);
    // Both families left their preferred account; only the second did so just now.
    let mut first = ledger("b");
    let mut second = crate::state::families::Ledger {
        last_swap: Some(crate::state::Swap {
            at: now(),
            from: "c".into(),
            to: "d".into(),
            reason: "quota exhausted".into(),
        }),
        ..ledger("d")
    };
    let facts = crate::state::Facts::default();
    let none = BTreeSet::new();
    let mut events = Vec::new();
    super::choose_family(&m, &one, &mut first, &facts, &none, at(60), &mut events);
    super::choose_family(&m, &two, &mut second, &facts, &none, at(60), &mut events);
    assert_eq!(first.active_account.as_deref(), Some("a"), "{events:?}");
    assert_eq!(
        first.last_swap.as_ref().map(|s| s.reason.as_str()),
        Some("fail-back")
    );
    assert_eq!(
        second.active_account.as_deref(),
        Some("d"),
        "within its cooldown"
    );
}
