//! The ledger's table tests: quota readings, swaps, redraws after a move, and tasks at
//! a limit.

use super::super::Action;
use super::super::Outcome;
use super::super::fixtures::*;
use super::super::record::record;
use crate::plan::{SessionAction, TaskAction};
use crate::state::Stage;

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
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    let p = plan_with_tasks(&m, &o, "failover", now());
    assert_eq!(p.account(CLAUDE), Some("alt"));
    assert_eq!(
        p.facts.exhausted_until["main"].to_string(),
        "2026-11-21T23:00:00Z"
    );
    assert!(journaled(&p).into_iter().any(|(k, _)| k == "swap"));
    // alt exhausted too, within the cooldown: no account runs anything, no task goes out.
    let mut o2 = o.clone();
    o2.facts = p.facts.clone();
    o2.facts
        .exhausted_until
        .insert("alt".into(), "2026-11-21T22:00:00Z".parse().unwrap());
    o2.inboxes.insert("tasks".into(), waiting(1));
    let p2 = plan_with_tasks(&m, &o2, "failover", now());
    assert_eq!(p2.account(CLAUDE), None);
    assert!(
        !p2.actions
            .iter()
            .any(|a| matches!(a, Action::Task(TaskAction::DispatchTask { .. }))),
        "{:?}",
        p2.actions
    );
    assert!(
        !journaled(&p2).into_iter().any(|(k, _)| k == "swap"),
        "no ping-pong"
    );
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

/// No cooldown: a limit read on a screen with its reset time counts at once (within a
/// cooldown it needs a second reading, tested on its own).
const NO_COOLDOWN: &str = "
---
apiVersion: failover/v1alpha1
kind: ControllerConfig
metadata: {name: c}
spec: {quota: {cooldown: 0s}}
";

fn swapped_once() -> (crate::api::Manifests, crate::observe::Observed) {
    let m = manifests(&format!("{POOL_AND_DEDICATED}{NO_COOLDOWN}"));
    let mut o = observed();
    add(&mut o, session("ccl-1-x", "failover", "main", 100));
    reported(&mut o, "ccl-1-x", 100);
    o.screens.insert("ccl-1-x".into(), LIMIT.into());
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    let p = plan_with_tasks(&m, &o, "failover", now());
    assert_eq!(p.account(CLAUDE), Some("alt"));
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Session(SessionAction::MoveSession { .. }))),
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
    assert!(!journaled(&p).into_iter().any(|(k, _)| k == "quotaDetected"));
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
fn our_next_turn_should_count_once_drawn_and_no_other_change_before() {
    let (m, mut o) = swapped_once();
    // The redraw: the old turn was already one of our `continue`s.
    let old = LIMIT.replace("> go", "> continue (now under account main, 05:00:00)");
    let p = read_in_turn(&m, &mut o, "ccl-1-x", &[&old]);
    assert!(!p.facts.exhausted_until.contains_key("alt"));
    let submit = Action::Task(TaskAction::SubmitTask {
        task: super::super::TaskRef {
            inbox: "tasks".into(),
            path: "/p/.agent-queue/inbox".into(),
            name: "t.md".into(),
            file: "ccl-1-x.1.t.md".into(),
            session: "ccl-1-x".into(),
            account: "alt".into(),
            attempt: 1,
            started: None,
            earlier: Vec::new(),
            hand_offs: Vec::new(),
        },
        pane: "%1".into(),
    });
    record(&mut o.facts, &submit, &Ok(Outcome::Done), now());
    // Not drawn yet, the pasted text still in the input box, a notice in the footer:
    // the screen changed, the limit on it is still the redrawn one.
    let pasted = old.replace(
        "❯\u{a0}\n",
        "❯\u{a0}continue (now under account alt, 06:00:00)\n",
    ) + "  ⚠ Usage limit reached · limit resets 11pm\n";
    let p = read_in_turn(&m, &mut o, "ccl-1-x", &[&old, &pasted]);
    assert!(
        !p.facts.exhausted_until.contains_key("alt"),
        "{:?}",
        p.events
    );
    // Our turn, drawn, meets the very same line under alt: that counts.
    let ours = LIMIT.replace(
        "> go",
        "> continue (now under account main, 05:00:00)\n● Usage limit reached · continuing automatically at 11pm · esc to cancel\n> continue (now under account alt, 06:00:00)",
    );
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

/// One account, a pool of one, and its task in `stage`, claimed.
fn one_account_with_task(stage: Stage) -> (crate::api::Manifests, crate::observe::Observed) {
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
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    let mut t = task_facts("ccl-auto-11");
    t.stage = stage;
    claimed(&mut o, "ccl-auto-11", t);
    o.screens.insert("ccl-auto-11".into(), LIMIT.into());
    (m, o)
}

fn has(p: &crate::plan::Plan, what: fn(&Action) -> bool) -> bool {
    p.actions.iter().any(what)
}

#[test]
fn a_task_at_a_limit_should_wait_when_no_account_is_left() {
    for stage in [Stage::Running, Stage::Submitted(1)] {
        let (m, mut o) = one_account_with_task(stage);
        for later in [0, 2, 60] {
            let at = now() + jiff::SignedDuration::from_secs(later);
            let p = plan_with_tasks(&m, &o, "failover", at);
            assert!(
                !has(&p, |a| matches!(
                    a,
                    Action::Task(TaskAction::CompleteTask { .. })
                )),
                "{stage:?}: a task at its limit is not done: {:?}",
                p.actions
            );
            o.facts = p.facts;
        }
        assert!(o.facts.exhausted_until.contains_key("main"));
    }
}

#[test]
fn a_task_at_a_limit_should_get_continue_once_its_account_recovers() {
    // Submitted(1): the limit came before the turn was ever seen busy.
    for stage in [Stage::Running, Stage::Submitted(1)] {
        let (m, mut o) = one_account_with_task(stage);
        let p = plan_with_tasks(&m, &o, "failover", now());
        o.facts = p.facts;
        // Past the reset (23:00 UTC), the same screen: carry on, never "done".
        let later = "2026-11-21T23:00:05Z".parse().unwrap();
        let p = plan_with_tasks(&m, &o, "failover", later);
        assert!(
            has(&p, |a| matches!(
                a,
                Action::Task(TaskAction::ContinueTask { .. })
            )),
            "{stage:?}: {:?}",
            p.actions
        );
        assert!(!has(&p, |a| matches!(
            a,
            Action::Task(TaskAction::CompleteTask { .. })
        )));
        assert!(journaled(&p).into_iter().any(|(k, _)| k == "recovered"));
    }
}

#[test]
fn a_recovery_should_leave_the_redraw_of_a_session_moved_away_alone() {
    let (m, mut o) = swapped_once();
    // The resumed screen draws the limit without its second line.
    let redrawn =
        "> go\n  ⎿  You've hit your 5-hour limit · resets 11pm (UTC)\n────\n❯\u{a0}\n────\n";
    read_in_turn(&m, &mut o, "ccl-1-x", &[redrawn]);
    // main recovers (23:00 UTC) while the session still shows the redraw under alt.
    let later: jiff::Timestamp = "2026-11-21T23:00:05Z".parse().unwrap();
    let p = plan_with_tasks(&m, &o, "failover", later);
    assert!(journaled(&p).into_iter().any(|(k, _)| k == "recovered"));
    o.facts = p.facts;
    let p = plan_with_tasks(&m, &o, "failover", later);
    assert!(
        !p.facts.exhausted_until.contains_key("alt"),
        "{:?}",
        p.events
    );
}

#[test]
fn a_session_being_moved_should_get_no_task_text_in_the_same_plan() {
    let text = format!("{POOL_AND_DEDICATED}{INBOX}");
    let m = manifests(&text);
    let mut o = observed();
    add(&mut o, session("ccl-auto-11", "failover", "main", 100));
    add(&mut o, session("ccl-1-x", "failover", "main", 101));
    reported(&mut o, "ccl-1-x", 101);
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    // ccl-auto-11's text is pasted and due for its Enter; ccl-1-x meets the limit.
    let mut t = task_facts("ccl-auto-11");
    t.stage = Stage::Pasted;
    t.since = now() - jiff::SignedDuration::from_secs(2);
    claimed(&mut o, "ccl-auto-11", t);
    let pasted = IDLE_SCREEN.replace("❯\u{a0}", "❯\u{a0}[Pasted text #1 +3 lines]");
    o.screens.insert("ccl-auto-11".into(), pasted);
    o.screens.insert("ccl-1-x".into(), LIMIT.into());
    let p = plan_with_tasks(&m, &o, "failover", now());
    let moved = |name: &str| {
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Session(SessionAction::MoveSession { session, .. }) if session.name == name))
    };
    assert!(moved("ccl-auto-11") && moved("ccl-1-x"), "{:?}", p.actions);
    assert!(
        !has(&p, |a| matches!(
            a,
            Action::Task(TaskAction::SubmitTask { .. })
        )),
        "{:?}",
        p.actions
    );
}

#[test]
fn a_screen_limit_within_the_cooldown_should_move_nothing_until_a_second_reading() {
    let third = "
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: third}
spec: {home: /h/third, priority: 2}
";
    let m = manifests(&format!("{POOL_AND_DEDICATED}{third}"));
    let mut o = observed();
    add(&mut o, session("ccl-1-x", "failover", "main", 100));
    reported(&mut o, "ccl-1-x", 100);
    o.screens.insert("ccl-1-x".into(), LIMIT.into());
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    let p = plan_with_tasks(&m, &o, "failover", now());
    assert_eq!(p.account(CLAUDE), Some("alt"));
    carry_out_moves(&mut o, &p);
    read_in_turn(&m, &mut o, "ccl-1-x", &[LIMIT]); // the resumed conversation's redraw
    // A minute later, a new turn meets alt's limit on the screen alone: within the
    // cooldown (5m) one reading is not enough, reset time or not.
    let again = LIMIT.replace("> go", "> go\n● Done.\n> go on");
    o.screens.insert("ccl-1-x".into(), again);
    let at = |ms| now() + jiff::SignedDuration::from_millis(ms);
    for ms in [60_000, 60_500] {
        let p = plan_with_tasks(&m, &o, "failover", at(ms));
        assert!(
            !p.facts.exhausted_until.contains_key("alt"),
            "{ms}: {:?}",
            p.events
        );
        assert!(!journaled(&p).into_iter().any(|(k, _)| k == "swap"));
        assert_eq!(p.account(CLAUDE), Some("alt"));
        let refusal = p
            .refused
            .iter()
            .find(|r| r.object.spoken().to_string() == "account alt")
            .unwrap_or_else(|| panic!("{:?}", p.refused));
        assert!(
            refusal.reason.contains("within quota.cooldown")
                && refusal.reason.contains("1 of 2 readings"),
            "{}",
            refusal.reason
        );
        o.facts = p.facts;
    }
    // The second reading, a poll interval (1s) later, confirms it: on to third at once,
    // cooldown or not.
    let p = plan_with_tasks(&m, &o, "failover", at(61_000));
    assert_eq!(p.account(CLAUDE), Some("third"), "{:?}", p.events);
    assert_eq!(
        p.facts.exhausted_until["alt"].to_string(),
        "2026-11-21T23:00:00Z"
    );
    assert!(
        journaled(&p)
            .into_iter()
            .any(|(k, e)| k == "swap" && e["to"] == "third")
    );
}

#[test]
fn a_server_error_that_mentions_a_rate_limit_should_never_move_anything() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    add(&mut o, session("ccl-1-x", "failover", "main", 100));
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    // The earlier daemon's ping-pong: a 500 whose text says "rate limit", read for
    // minutes, inside and outside the cooldown.
    let error = "> go\n● API Error: 500 {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal server error: upstream rate limit exceeded\"}}\n────\n❯\u{a0}\n────\n";
    o.screens.insert("ccl-1-x".into(), error.into());
    // A swap a moment ago: the first readings fall within the cooldown.
    o.facts.family_mut(CLAUDE).last_swap = Some(crate::state::Swap {
        at: now(),
        from: "alt".into(),
        to: "main".into(),
        reason: "fail-back".into(),
    });
    for secs in [0, 1, 2, 60, 400, 4000] {
        let p = plan_with_tasks(
            &m,
            &o,
            "failover",
            now() + jiff::SignedDuration::from_secs(secs),
        );
        assert!(p.facts.exhausted_until.is_empty(), "{secs}: {:?}", p.events);
        assert!(journaled(&p).is_empty(), "{secs}: {:?}", p.events);
        assert!(p.refused.is_empty(), "{secs}: {:?}", p.refused);
        assert_eq!(p.account(CLAUDE), Some("main"));
        o.facts = p.facts;
    }
}

#[test]
fn a_limit_without_a_reset_time_should_count_once_per_poll_interval() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    add(&mut o, session("ccl-1-x", "failover", "main", 100));
    o.screens.insert(
        "ccl-1-x".into(),
        "> go\n● Usage limit reached\n────\n❯\u{a0}\n────\n".into(),
    );
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    let at = |ms| now() + jiff::SignedDuration::from_millis(ms);
    // Reconciles come as often as events do: within one poll interval (1s) the
    // readings count once, whatever their number.
    for ms in [0, 0, 300, 999] {
        let p = plan_with_tasks(&m, &o, "failover", at(ms));
        let detected: Vec<_> = journaled(&p)
            .into_iter()
            .filter(|(k, _)| k == "quotaDetected")
            .collect();
        assert_eq!(detected.len(), 1, "{ms} ms");
        assert_eq!(
            detected[0].1["confirmed"], false,
            "{ms} ms: only the first poll"
        );
        assert_eq!(p.account(CLAUDE), Some("main"), "{ms} ms");
        o.facts = p.facts;
    }
    // The second poll confirms (confirmations: 2): exhausted for resetFallback (5h).
    let p = plan_with_tasks(&m, &o, "failover", at(1000));
    assert_eq!(p.account(CLAUDE), Some("alt"));
    assert_eq!(
        p.facts.exhausted_until["main"].to_string(),
        "2026-11-21T11:00:01Z"
    );
}
