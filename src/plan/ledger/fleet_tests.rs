//! The fleet's news, table tests: an exhaustion or a use the ledger tells is taken when
//! it says more than the facts, journaled as `fleetLedger` for an exhaustion, each
//! telling in turn, for the accounts these manifests name; and once taken, the ledger's
//! rules move sessions on it as on this node's own agents' word.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::fleet::ledger::Local;
use crate::observe::Observed;
use crate::plan::fixtures::*;
use crate::plan::{Action, Event as PlanEvent, Plan, SessionAction};
use crate::report::{Event, Report, Usage, Window};

fn at(hours: i64) -> Timestamp {
    now() + SignedDuration::from_hours(hours)
}

/// The ledger's word that `account` is exhausted until `until`.
fn exhausted(account: &str, until: Timestamp) -> BTreeMap<String, Local> {
    told(
        account,
        Local {
            exhausted_until: Some(until),
            ..Local::default()
        },
    )
}

/// The ledger's word of `account`'s use: `used` % of its 5-hour window, read at `read`.
fn used(account: &str, used: f64, read: Timestamp) -> BTreeMap<String, Local> {
    told(
        account,
        Local {
            usage: Some(five_hour(used, at(3), read, "w-1 on n1")),
            ..Local::default()
        },
    )
}

fn told(account: &str, local: Local) -> BTreeMap<String, Local> {
    BTreeMap::from([(account.to_owned(), local)])
}

/// Pool `auto` idle under `main`, the active account; `tellings` from the fleet.
fn world(tellings: Vec<BTreeMap<String, Local>>) -> Observed {
    let mut o = observed();
    idle_pool(&mut o);
    o.fleet.told = tellings;
    o
}

fn plan_of(text: &str, o: &Observed) -> Plan {
    plan_with_tasks(&manifests(text), o, "failover", now())
}

fn taken(account: &str, until: Timestamp) -> PlanEvent {
    PlanEvent::FleetLedger {
        account: account.into(),
        exhausted_until: until,
        node: None,
    }
}

/// The `fleetLedger` events of a plan.
fn fleet_ledger(p: &Plan) -> Vec<PlanEvent> {
    p.events
        .iter()
        .filter(|e| matches!(e, PlanEvent::FleetLedger { .. }))
        .cloned()
        .collect()
}

fn moves(p: &Plan) -> usize {
    p.actions
        .iter()
        .filter(|a| matches!(a, Action::Session(SessionAction::MoveSession { .. })))
        .count()
}

#[test]
fn ledger_should_take_a_fleet_exhaustion_it_has_not_seen() {
    let p = plan_of(POOL_AND_DEDICATED, &world(vec![exhausted("main", at(5))]));
    assert_eq!(p.facts.exhausted_until["main"], at(5));
    assert_eq!(fleet_ledger(&p), [taken("main", at(5))]);
}

#[test]
fn the_fleet_ledger_entry_should_be_journaled_with_the_fields_it_always_had() {
    let entry = taken("main", "2026-12-05T10:00:00Z".parse().unwrap());
    assert_eq!(
        entry.detail().to_string(),
        r#"{"account":"main","exhaustedUntil":"2026-12-05T10:00:00Z"}"#
    );
}

#[test]
fn ledger_should_take_a_fleet_reset_later_than_its_own() {
    let mut o = world(vec![exhausted("main", at(7))]);
    o.facts.exhausted_until.insert("main".into(), at(5));
    let p = plan_of(POOL_AND_DEDICATED, &o);
    assert_eq!(p.facts.exhausted_until["main"], at(7));
    assert_eq!(fleet_ledger(&p), [taken("main", at(7))]);
}

#[test]
fn ledger_should_not_take_a_fleet_reset_no_later_than_its_own() {
    for theirs in [at(5), at(3)] {
        let mut o = world(vec![exhausted("main", theirs)]);
        o.facts.exhausted_until.insert("main".into(), at(5));
        let p = plan_of(POOL_AND_DEDICATED, &o);
        assert_eq!(p.facts.exhausted_until["main"], at(5), "{theirs}");
        assert_eq!(fleet_ledger(&p), [], "{theirs}: nothing to journal");
    }
}

#[test]
fn ledger_should_take_a_fleet_use_reading_newer_than_its_own_without_journaling_it() {
    let mut o = world(vec![used("main", 40.0, at(0))]);
    o.facts
        .usage
        .insert("main".into(), five_hour(20.0, at(3), at(-1), "ccl-auto-11"));
    let p = plan_of(POOL_AND_DEDICATED, &o);
    assert_eq!(
        p.facts.usage["main"],
        five_hour(40.0, at(3), at(0), "w-1 on n1")
    );
    assert_eq!(fleet_ledger(&p), []);
    assert_eq!(journaled(&p), [], "no level crossed is journaled for it");
}

#[test]
fn ledger_should_not_take_fleet_news_older_than_its_own_reading() {
    for read in [at(-2), at(-1)] {
        let mut o = world(vec![used("main", 40.0, read)]);
        let own = five_hour(20.0, at(3), at(-1), "ccl-auto-11");
        o.facts.usage.insert("main".into(), own.clone());
        let p = plan_of(POOL_AND_DEDICATED, &o);
        assert_eq!(p.facts.usage["main"], own, "read {read}");
    }
}

#[test]
fn ledger_should_take_a_fleet_use_of_an_account_it_has_no_reading_of() {
    let p = plan_of(POOL_AND_DEDICATED, &world(vec![used("alt", 40.0, at(0))]));
    assert_eq!(
        p.facts.usage["alt"],
        five_hour(40.0, at(3), at(0), "w-1 on n1")
    );
}

#[test]
fn ledger_should_leave_accounts_its_manifests_do_not_name_to_other_nodes() {
    let mut news = exhausted("elsewhere", at(5));
    news.extend(used("elsewhere", 40.0, at(0)));
    let p = plan_of(POOL_AND_DEDICATED, &world(vec![news]));
    assert!(!p.facts.exhausted_until.contains_key("elsewhere"));
    assert!(!p.facts.usage.contains_key("elsewhere"));
    assert_eq!(fleet_ledger(&p), []);
}

#[test]
fn ledger_should_take_each_telling_in_turn() {
    // Told a reset, then a later one: both journaled, the later kept.
    let later = world(vec![exhausted("main", at(5)), exhausted("main", at(7))]);
    let p = plan_of(POOL_AND_DEDICATED, &later);
    assert_eq!(p.facts.exhausted_until["main"], at(7));
    assert_eq!(
        fleet_ledger(&p),
        [taken("main", at(5)), taken("main", at(7))]
    );
    // Told a reset, then an earlier one: the first stays, once.
    let earlier = world(vec![exhausted("main", at(7)), exhausted("main", at(5))]);
    let p = plan_of(POOL_AND_DEDICATED, &earlier);
    assert_eq!(p.facts.exhausted_until["main"], at(7));
    assert_eq!(fleet_ledger(&p), [taken("main", at(7))]);
    // Both accounts in one telling, the use with the exhaustion.
    let mut both = exhausted("main", at(5));
    both.insert(
        "alt".into(),
        Local {
            exhausted_until: Some(at(6)),
            usage: Some(five_hour(99.0, at(6), at(0), "w-1 on n2")),
            reading: None,
        },
    );
    let p = plan_of(POOL_AND_DEDICATED, &world(vec![both]));
    assert_eq!(
        fleet_ledger(&p),
        [taken("alt", at(6)), taken("main", at(5))]
    );
    assert_eq!(p.facts.usage["alt"].usage.five_hour.unwrap().used, 99.0);
}

#[test]
fn ledger_should_take_nothing_when_the_fleet_told_nothing() {
    let o = world(vec![]);
    let mut with_empty = o.clone();
    with_empty.fleet.tell(BTreeMap::new());
    assert!(with_empty.fleet.is_empty(), "an empty telling is no news");
    assert_eq!(
        plan_of(POOL_AND_DEDICATED, &with_empty),
        plan_of(POOL_AND_DEDICATED, &o)
    );
}

#[test]
fn a_fleet_exhaustion_of_the_active_account_should_move_its_sessions_at_once_cooldown_or_not() {
    let mut o = world(vec![exhausted("main", at(5))]);
    // A swap a moment ago: well within the cooldown.
    o.facts.family_mut(CLAUDE).last_swap = Some(crate::state::Swap {
        at: now() - SignedDuration::from_secs(10),
        from: "alt".into(),
        to: "main".into(),
        reason: "fail-back".into(),
    });
    let p = plan_of(POOL_AND_DEDICATED, &o);
    assert_eq!(p.account(CLAUDE), Some("alt"));
    assert_eq!(moves(&p), 3, "{:?}", p.actions);
    assert!(
        journaled(&p)
            .iter()
            .any(|(k, e)| k == "swap" && e["to"] == "alt"),
        "{:?}",
        p.events
    );
    assert!(
        !journaled(&p).iter().any(|(k, _)| k == "quotaDetected"),
        "this node's agents read nothing"
    );
}

#[test]
fn a_fleet_use_over_move_at_should_move_sessions_as_the_nodes_own_status_line_would() {
    let text = format!("{POOL_AND_DEDICATED}{MOVE_AT_95}");
    let p = plan_of(&text, &world(vec![used("main", 96.0, at(0))]));
    assert_eq!(p.account(CLAUDE), Some("alt"));
    assert_eq!(moves(&p), 3, "{:?}", p.actions);
    let swap = journaled(&p)
        .into_iter()
        .find(|(k, _)| k == "swap")
        .expect("a swap");
    assert_eq!(swap.1["reason"], "usage 96% reached moveAt 95%");
}

#[test]
fn a_fleet_reading_should_be_taken_before_this_rounds_own_older_status_line() {
    let text = format!("{POOL_AND_DEDICATED}{MOVE_AT_95}");
    let mut o = world(vec![used("main", 96.0, at(0))]);
    // This node's own status line said as much a minute before the other node's: old
    // news, and the level was crossed over there.
    let status = Event::Status {
        usage: Some(Usage {
            five_hour: Some(Window {
                used: 96.0,
                resets_at: at(3),
            }),
            seven_day: None,
        }),
    };
    o.reports.insert(
        "ccl-auto-11".into(),
        vec![Report {
            path: "/state/reports/ccl-auto-11.1.json".into(),
            session: "ccl-auto-11".into(),
            account: Some("main".into()),
            pids: vec![101, 100],
            at: now() - SignedDuration::from_mins(1),
            event: status,
        }],
    );
    let p = plan_of(&text, &o);
    assert_eq!(p.facts.usage["main"].session, "w-1 on n1");
    assert!(
        !journaled(&p).iter().any(|(k, _)| k == "usageCrossed"),
        "{:?}",
        p.events
    );
    assert_eq!(p.consumed.len(), 1, "the report is read all the same");
}
