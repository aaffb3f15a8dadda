//! The fold's table tests: the agent's own reports end a task's turn, name its
//! conversation, count a usage limit at once, and keep each account's use.

use super::super::fixtures::*;
use super::super::{Action, Plan};
use crate::observe::Observed;
use crate::plan::TaskAction;
use crate::report::{Event, Report, Usage, Window, text_hash};
use crate::state::{Ended, Stage};

const PID: u32 = 100;
const W: &str = "ccl-auto-11";

fn at(secs: i64) -> jiff::Timestamp {
    now() + jiff::SignedDuration::from_secs(secs)
}

/// A pool of one, busy on task `t.md` (text "do it"), submitted a second ago.
fn world() -> (crate::api::Manifests, Observed) {
    let m = manifests(&format!("{POOL_AND_DEDICATED}{INBOX}"));
    let mut o = observed();
    add(&mut o, session(W, "failover", "main", PID));
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    o.screens.insert(W.into(), BUSY_SCREEN.into());
    let mut t = task_facts(W);
    t.stage = Stage::Submitted(1);
    t.expect = Some(text_hash("do it"));
    t.pasted = Some(at(-2));
    t.since = at(-1);
    claimed(&mut o, W, t);
    (m, o)
}

/// The `StopFailure` of prompt `p1` at a usage limit, with Claude Code's `message`.
fn usage_limit(message: &str) -> Event {
    Event::Failed {
        prompt_id: "p1".into(),
        error: "rate_limit".into(),
        message: message.into(),
    }
}

fn report(event: Event, secs: i64) -> Report {
    Report {
        path: format!("/state/reports/{W}.{secs}.json").into(),
        session: W.into(),
        account: Some("main".into()),
        pids: vec![PID + 1, PID],
        at: at(secs),
        event,
    }
}

fn submitted(prompt: &str, id: &str) -> Event {
    Event::Submitted {
        prompt_id: id.into(),
        prompt_hash: text_hash(prompt),
    }
}

fn stopped(id: &str, reply: &str) -> Event {
    Event::Stopped {
        prompt_id: id.into(),
        reply: reply.into(),
    }
}

fn with(o: &Observed, reports: Vec<Report>) -> Observed {
    let mut o = o.clone();
    o.reports.insert(W.into(), reports);
    o
}

fn completed(p: &Plan) -> Option<(String, Option<String>)> {
    p.actions.iter().find_map(|a| {
        if let Action::Task(TaskAction::CompleteTask { how, reply, .. }) = a {
            Some((how.clone(), reply.clone()))
        } else {
            None
        }
    })
}

fn task(p: &Plan) -> crate::state::TaskFacts {
    p.facts.sessions[W]
        .task
        .clone()
        .expect("the task is still there")
}

#[test]
fn the_stop_of_the_tasks_own_prompt_should_end_it_with_the_reply() {
    let (m, o) = world();
    let o = with(
        &o,
        vec![
            report(submitted("do it\n", "p1"), 0),
            report(stopped("p1", "Done."), 2),
        ],
    );
    let p = plan_with_tasks(&m, &o, "failover", at(3));
    assert_eq!(
        completed(&p),
        Some(("Stop report".into(), Some("Done.".into())))
    );
    assert_eq!(p.consumed.len(), 2, "every report read is consumed");
}

#[test]
fn a_file_that_is_not_a_report_should_be_kept_aside_not_consumed_nor_folded() {
    let (m, o) = world();
    let damaged = report(Event::Damaged("not JSON: expected value".into()), 1);
    let o = with(
        &o,
        vec![
            report(submitted("do it\n", "p1"), 0),
            damaged.clone(),
            report(stopped("p1", "Done."), 2),
        ],
    );
    let p = plan_with_tasks(&m, &o, "failover", at(3));
    assert!(completed(&p).is_some(), "the whole reports still count");
    assert_eq!(p.consumed.len(), 2, "{:?}", p.consumed);
    assert!(!p.consumed.contains(&damaged.path), "never deleted");
    assert_eq!(
        p.damaged,
        [(damaged.path, "not JSON: expected value".to_owned())]
    );
}

#[test]
fn the_stop_of_another_prompt_should_not_end_the_task() {
    let (m, o) = world();
    let o = with(
        &o,
        vec![
            report(submitted("do it", "p1"), 0),
            report(stopped("p0", "old"), 1),
        ],
    );
    let p = plan_with_tasks(&m, &o, "failover", at(2));
    assert_eq!(completed(&p), None, "{:?}", p.actions);
    assert_eq!(task(&p).prompt_id.as_deref(), Some("p1"));
    assert_eq!(
        task(&p).stage,
        Stage::Running,
        "the submit report is proof it was taken"
    );
}

#[test]
fn a_prompt_the_agent_changed_should_still_be_the_tasks_when_it_is_the_first_after_the_paste() {
    let (m, o) = world();
    // Claude Code expanded a tab, say: the text differs, the order says it is ours.
    let o = with(
        &o,
        vec![
            report(submitted("something else", "p1"), 0),
            report(stopped("p1", "Done."), 2),
        ],
    );
    let p = plan_with_tasks(&m, &o, "failover", at(3));
    assert!(completed(&p).is_some(), "{:?}", p.actions);
    // The same from an earlier agent of the session (another pid): not ours.
    let (m, o) = world();
    let mut early = report(submitted("something else", "p1"), 0);
    early.pids = vec![7, 6];
    let o = with(&o, vec![early, report(stopped("p1", "Done."), 2)]);
    let p = plan_with_tasks(&m, &o, "failover", at(3));
    assert_eq!(completed(&p), None);
}

#[test]
fn a_session_start_should_name_the_agents_conversation_only_from_that_agent() {
    let (m, o) = world();
    let start = |pid: u32| {
        let mut r = report(
            Event::Started {
                conversation: "c1".into(),
                transcript: "/h/main/projects/-w/c1.jsonl".into(),
                resumed: false,
            },
            -5,
        );
        r.pids = vec![pid + 1, pid];
        r
    };
    let p = plan_with_tasks(&m, &with(&o, vec![start(PID)]), "failover", at(0));
    let agent = p.facts.sessions[W].agent.clone().unwrap();
    assert_eq!((agent.pid, agent.conversation.as_str()), (PID, "c1"));
    let p = plan_with_tasks(&m, &with(&o, vec![start(42)]), "failover", at(0));
    assert_eq!(p.facts.sessions[W].agent, None, "an earlier agent's report");
    // The task's turn, submitted by this agent, runs in that conversation.
    let o = with(&o, vec![start(PID), report(submitted("do it", "p1"), 0)]);
    let p = plan_with_tasks(&m, &o, "failover", at(1));
    assert_eq!(task(&p).conversation.unwrap().0, "c1");
}

#[test]
fn a_usage_limit_the_agent_reports_should_exhaust_its_account_at_once_and_hold_the_task() {
    let (m, o) = world();
    let limit = usage_limit("You've hit your 5-hour limit · resets 11pm (UTC)");
    let o = with(
        &o,
        vec![report(submitted("do it", "p1"), 0), report(limit, 1)],
    );
    let p = plan_with_tasks(&m, &o, "failover", at(2));
    assert_eq!(
        p.facts.exhausted_until["main"].to_string(),
        "2026-11-21T23:00:00Z",
        "no confirming poll, the reset from the message"
    );
    let detected: Vec<_> = journaled(&p)
        .into_iter()
        .filter(|(k, _)| k == "quotaDetected")
        .collect();
    assert_eq!(detected[0].1["source"], "report");
    assert!(journaled(&p).into_iter().any(|(k, _)| k == "swap"));
    assert!(task(&p).at_limit);
    assert_eq!(completed(&p), None);
}

#[test]
fn a_limit_report_without_a_reset_time_should_take_it_from_the_status_line() {
    let (m, mut o) = world();
    o.facts.usage.insert("main".into(), {
        let mut r = five_hour(100.0, "2026-11-21T09:30:00Z".parse().unwrap(), at(-60), W);
        r.usage.seven_day = Some(Window {
            used: 30.0,
            resets_at: "2026-11-25T00:00:00Z".parse().unwrap(),
        });
        r
    });
    let limit = usage_limit("You've hit your limit");
    let p = plan_with_tasks(&m, &with(&o, vec![report(limit, 1)]), "failover", at(2));
    assert_eq!(
        p.facts.exhausted_until["main"].to_string(),
        "2026-11-21T09:30:00Z"
    );
}

#[test]
fn a_transient_limit_or_a_server_error_should_never_count_and_carry_the_task_on() {
    for (error, message) in [
        (
            "rate_limit",
            "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
        ),
        ("server_error", "API Error: 500 Internal server error"),
    ] {
        let (m, o) = world();
        let failed = Event::Failed {
            prompt_id: "p1".into(),
            error: error.into(),
            message: message.into(),
        };
        let o = with(
            &o,
            vec![report(submitted("do it", "p1"), 0), report(failed, 1)],
        );
        let p = plan_with_tasks(&m, &o, "failover", at(2));
        assert!(
            p.facts.exhausted_until.is_empty(),
            "{error}: {:?}",
            p.events
        );
        let t = task(&p);
        assert_eq!(
            (t.stage, t.resumes, t.ended),
            (Stage::Resuming, 1, None),
            "{error}"
        );
        assert_eq!(completed(&p), None);
    }
}

#[test]
fn a_failed_turn_with_no_tries_left_should_go_back_to_its_inbox() {
    let (m, mut o) = world();
    if let Some(t) = o.facts.sessions.get_mut(W).and_then(|f| f.task.as_mut()) {
        t.resumes = 3;
    }
    let failed = Event::Failed {
        prompt_id: "p1".into(),
        error: "server_error".into(),
        message: "API Error: 500".into(),
    };
    let o = with(
        &o,
        vec![report(submitted("do it", "p1"), 0), report(failed, 1)],
    );
    let p = plan_with_tasks(&m, &o, "failover", at(2));
    let requeued = p.actions.iter().find_map(|a| {
        if let Action::Task(TaskAction::RequeueTask { reason, failed, .. }) = a {
            Some((reason.clone(), *failed))
        } else {
            None
        }
    });
    let (reason, failed) = requeued.expect("put back");
    assert!(reason.contains("server_error"), "{reason}");
    assert!(!failed, "its first try of three");
    assert_eq!(
        p.facts.sessions[W].used_pid,
        Some(PID),
        "not a fresh context"
    );
}

#[test]
fn the_status_line_should_keep_each_accounts_use_and_journal_the_levels_crossed() {
    let text = format!(
        "{POOL_AND_DEDICATED}{INBOX}---\napiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: c}}\nspec: {{quota: {{moveAt: 95}}}}\n"
    );
    let m = manifests(&text);
    let (_, o) = world();
    let usage = |used: f64| Event::Status {
        usage: Some(Usage {
            five_hour: Some(Window {
                used,
                resets_at: at(3600),
            }),
            seven_day: None,
        }),
    };
    let o1 = with(&o, vec![report(usage(96.0), 0)]);
    let p = plan_with_tasks(&m, &o1, "failover", at(1));
    assert_eq!(p.facts.usage["main"].usage.five_hour.unwrap().used, 96.0);
    let crossed: Vec<f64> = journaled(&p)
        .into_iter()
        .filter(|(k, _)| k == "usageCrossed")
        .map(|(_, e)| e["level"].as_f64().unwrap())
        .collect();
    assert_eq!(crossed, [95.0], "the highest level crossed, once");
    // A later redraw of older figures in the same window never lowers the use.
    let mut o3 = with(&o, vec![report(usage(90.0), 5)]);
    o3.facts = p.facts.clone();
    let p3 = plan_with_tasks(&m, &o3, "failover", at(6));
    assert_eq!(p3.facts.usage["main"].usage.five_hour.unwrap().used, 96.0);
    // An older reading read later changes nothing; the same one again journals nothing.
    let mut o2 = with(&o, vec![report(usage(10.0), -30), report(usage(96.0), 0)]);
    o2.facts = p.facts.clone();
    let p2 = plan_with_tasks(&m, &o2, "failover", at(2));
    assert_eq!(p2.facts.usage["main"].usage.five_hour.unwrap().used, 96.0);
    assert!(!journaled(&p2).into_iter().any(|(k, _)| k == "usageCrossed"));
}

#[test]
fn folding_the_same_reports_twice_should_change_nothing_more() {
    let (m, o) = world();
    let reports = vec![
        report(submitted("do it", "p1"), 0),
        report(stopped("p1", "Done."), 2),
    ];
    let p1 = plan_with_tasks(&m, &with(&o, reports.clone()), "failover", at(3));
    let mut again = with(&o, reports);
    again.facts = p1.facts.clone();
    let mut p2 = plan_with_tasks(&m, &again, "failover", at(3));
    // The sessions this world lacks are started again each plan, and each start counts
    // (crash-loop backoff): a decision of the plan, not a report folded.
    p2.facts.restarts = p1.facts.restarts.clone();
    assert_eq!(p2.facts, p1.facts);
    let Some(Ended::Reply { reply, .. }) = task(&p2).ended else {
        panic!("{:?}", task(&p2));
    };
    assert_eq!(reply, "Done.");
}

#[test]
fn a_prompt_reported_before_the_tasks_paste_should_never_be_the_tasks() {
    let (m, o) = world();
    // The same text, submitted before this try's paste (an earlier try's late report).
    let o = with(
        &o,
        vec![
            report(submitted("do it", "p0"), -5),
            report(stopped("p0", "old"), -4),
        ],
    );
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert_eq!(completed(&p), None, "{:?}", p.actions);
    assert_eq!(task(&p).prompt_id, None);
}

#[test]
fn a_session_start_read_after_the_first_prompt_should_still_name_the_tasks_conversation() {
    let (m, o) = world();
    let p1 = plan_with_tasks(
        &m,
        &with(&o, vec![report(submitted("do it", "p1"), 0)]),
        "failover",
        at(1),
    );
    assert_eq!(task(&p1).conversation, None, "not known yet");
    let mut o2 = with(
        &o,
        vec![report(
            Event::Started {
                conversation: "c1".into(),
                transcript: "/h/main/projects/-w/c1.jsonl".into(),
                resumed: false,
            },
            -3,
        )],
    );
    o2.facts = p1.facts.clone();
    let p2 = plan_with_tasks(&m, &o2, "failover", at(2));
    assert_eq!(task(&p2).conversation.map(|c| c.0).as_deref(), Some("c1"));
    assert_eq!(
        p2.facts.sessions[W].turn.as_deref(),
        Some("p1"),
        "the turn stays open"
    );
}

#[test]
fn the_reset_a_limits_message_names_should_win_over_the_status_line() {
    let (m, mut o) = world();
    o.facts.usage.insert(
        "main".into(),
        five_hour(100.0, "2026-11-21T09:30:00Z".parse().unwrap(), at(-3600), W),
    );
    let limit = usage_limit("You've hit your weekly limit · resets 11pm (UTC)");
    let p = plan_with_tasks(&m, &with(&o, vec![report(limit, 1)]), "failover", at(2));
    assert_eq!(
        p.facts.exhausted_until["main"].to_string(),
        "2026-11-21T23:00:00Z"
    );
}

#[test]
fn a_limit_read_again_after_its_account_recovered_should_not_hold_the_task_again() {
    let (m, o) = world();
    let limit = usage_limit("You've hit your 5-hour limit · resets 7am (UTC)");
    let reports = vec![report(submitted("do it", "p1"), 0), report(limit, 1)];
    // One account only, so the task waits at its limit.
    let one = manifests(&format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: /h/main}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec: {{prefix: ccl-auto-, startIndex: 11, min: 1, max: 1, workdir: /w}}\n{INBOX}"
    ));
    let _ = m;
    let p1 = plan_with_tasks(&one, &with(&o, reports.clone()), "failover", at(2));
    assert!(task(&p1).at_limit);
    // Past the reset (07:00): the task carries on; the same report read again (the
    // controller died before deleting it) does not hold it again.
    let mut again = with(&o, reports);
    again.facts = p1.facts.clone();
    let later: jiff::Timestamp = "2026-11-21T07:00:05Z".parse().unwrap();
    let p2 = plan_with_tasks(&one, &again, "failover", later);
    let t = task(&p2);
    assert_eq!((t.at_limit, t.stage), (false, Stage::Resuming), "{t:?}");
}
