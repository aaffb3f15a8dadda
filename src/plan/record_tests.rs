//! The record step's table tests: how each action's outcome folds into the facts. Every
//! case starts from the same facts ([`base`]), records one action, and says what the
//! facts become: the change it writes down is all that may differ.

use super::super::fixtures::now;
use super::super::{Action, FsAction, Role, SessionAction, SessionSpec, TaskAction, TaskRef};
use super::{Outcome, record};
use crate::state::{Ended, Facts, Redraw, SessionFacts, Stage, TaskFacts};

const W: &str = "ccl-auto-11";
/// The key of the task's tries.
const KEY: &str = "tasks/t.md";

/// When the action's outcome is recorded.
fn later() -> jiff::Timestamp {
    now() + jiff::SignedDuration::from_secs(60)
}

/// One action, its result, and what it changes in [`base`].
struct Case {
    /// The behaviour, as a test name would say it.
    name: &'static str,
    action: Action,
    result: Result<Outcome, String>,
    /// The facts after, written as a change to the facts before.
    change: fn(&mut Facts),
}

/// Every case's facts before: `W` works on its second try of `t.md`, running in
/// conversation `c1`, seen busy, at a limit and stalled; its screen shows a limit being
/// redrawn and another already counted. The first try's reason is kept.
fn base() -> Facts {
    let task = TaskFacts {
        inbox: "tasks".into(),
        file: crate::tasks::active_name(W, 2, "t.md"),
        task: "t.md".into(),
        attempt: 2,
        stage: Stage::Running,
        since: now(),
        started: Some(now()),
        idle_since: Some(now()),
        stalled: true,
        expect: Some(1),
        pasted: Some(now()),
        prompt_id: Some("p1".into()),
        conversation: Some(("c1".into(), "/h/main/projects/-w/c1.jsonl".into())),
        seen_busy: true,
        at_limit: true,
        ended: None,
        resumes: 0,
        resend: false,
        hand_offs: vec![],
    };
    let session = SessionFacts {
        task: Some(task),
        idle_since: Some(now()),
        redraw: Redraw::On {
            mark: Some("old".into()),
            submitted: false,
        },
        counted_quota: Some(("main".into(), "limit".into())),
        ..SessionFacts::default()
    };
    let mut facts = Facts::default();
    facts.sessions.insert(W.into(), session);
    facts.tries.insert(KEY.into(), 1);
    facts
        .try_reasons
        .insert(KEY.into(), vec!["try 1: session died".into()]);
    facts
}

fn session(f: &mut Facts) -> &mut SessionFacts {
    f.sessions.get_mut(W).expect("the session's facts")
}

fn task(f: &mut Facts) -> &mut TaskFacts {
    session(f).task.as_mut().expect("its task")
}

/// A fresh screen: no limit redrawn, none counted.
fn fresh_screen(f: &mut Facts) {
    let s = session(f);
    s.redraw = Redraw::Off;
    s.counted_quota = None;
}

/// The task goes on in its resumed conversation: `continue` once its agent is idle,
/// the limit on screen redrawn.
fn carried_on(f: &mut Facts) {
    fresh_screen(f);
    session(f).redraw = Redraw::On {
        mark: None,
        submitted: false,
    };
    // A resume that fails at once is known by this.
    session(f).resumed = Some(("c1".into(), later()));
    let t = task(f);
    t.stage = Stage::Resuming;
    t.since = later();
    t.idle_since = None;
    t.prompt_id = None;
    t.at_limit = false;
    t.seen_busy = false;
}

/// A fresh agent after a move: the task goes out again from the start, its old turn
/// forgotten.
fn sent_again(f: &mut Facts) {
    fresh_screen(f);
    let t = task(f);
    t.stage = Stage::Starting;
    t.since = later();
    t.idle_since = None;
    t.prompt_id = None;
    t.at_limit = false;
    t.seen_busy = false;
    t.conversation = None;
}

/// The dead agent's conversation was resumed: the task carried on, a resume counted.
fn resumed(f: &mut Facts) {
    carried_on(f);
    task(f).resumes = 1;
}

/// The task's text was pasted (or `continue`): its stage starts again, a new turn.
fn pasted(f: &mut Facts) {
    let t = task(f);
    t.stage = Stage::Pasted;
    t.since = later();
    t.idle_since = None;
    t.stalled = false;
    t.pasted = Some(later());
    t.prompt_id = None;
    t.seen_busy = false;
}

fn spec() -> SessionSpec {
    SessionSpec {
        name: W.into(),
        role: Role::Pool {
            pool: "auto".into(),
            index: 11,
        },
        account: "alt".into(),
        workdir: "/w".into(),
        command: vec!["claude".into()],
        env: Default::default(),
        unset: vec![],
    }
}

/// `W`'s task as the actions name it; `file` differs for another claim of it.
fn task_ref(file: &str) -> TaskRef {
    TaskRef {
        inbox: "tasks".into(),
        path: "/p/.agent-queue/inbox".into(),
        name: "t.md".into(),
        file: file.into(),
        session: W.into(),
        account: "main".into(),
        attempt: 2,
        started: Some(now()),
        earlier: vec![],
        hand_offs: vec![],
    }
}

fn ours() -> TaskRef {
    task_ref(&crate::tasks::active_name(W, 2, "t.md"))
}

fn move_session() -> Action {
    Action::Session(SessionAction::MoveSession {
        session: spec(),
        pane: "%100".into(),
        from: Some("main".into()),
        from_home: None,
        to_home: None,
        pid: 100,
        resume: Some(vec!["--resume".into(), "{sessionId}".into()]),
        conversation: None,
    })
}

fn restart(resume: Option<&str>) -> Action {
    Action::Session(SessionAction::RestartSession {
        session: spec(),
        pane: "%100".into(),
        reason: "agent exited".into(),
        resume: resume.map(str::to_owned),
        live: false,
    })
}

fn requeue(failed: bool, delivered: bool) -> Action {
    Action::Task(TaskAction::RequeueTask {
        task: ours(),
        reason: "its turn ended on an API error".into(),
        failed,
        delivered,
    })
}

/// Records each case into [`base`] and compares with the change it states.
fn check(cases: Vec<Case>) {
    for case in cases {
        let mut facts = base();
        record(&mut facts, &case.action, &case.result, later());
        let mut expected = base();
        (case.change)(&mut expected);
        assert_eq!(facts, expected, "{}", case.name);
    }
}

/// An action's outcome without a change: it failed, or it changes nothing recorded.
fn unchanged(_: &mut Facts) {}

#[test]
fn record_should_fold_an_agent_started_afresh_or_removed() {
    check(agent_cases());
}

fn agent_cases() -> Vec<Case> {
    let ok = || Ok(Outcome::Done);
    vec![
        Case {
            name: "a_failed_action_should_change_nothing",
            action: restart(None),
            result: Err("tmux said no".into()),
            change: unchanged,
        },
        Case {
            name: "a_folder_or_link_should_change_no_fact",
            action: Action::Fs(FsAction::CreateDir { path: "/s".into() }),
            result: ok(),
            change: unchanged,
        },
        Case {
            name: "a_fresh_agent_should_have_no_limit_redrawn_or_counted",
            action: restart(None),
            result: ok(),
            change: fresh_screen,
        },
        Case {
            name: "a_recycled_agent_should_have_no_limit_redrawn_or_counted",
            action: Action::Session(SessionAction::RecycleSession {
                session: spec(),
                pane: "%100".into(),
                reason: "a fresh context".into(),
            }),
            result: ok(),
            change: fresh_screen,
        },
        Case {
            name: "a_deleted_session_should_leave_no_facts",
            action: Action::Session(SessionAction::DeleteSession {
                name: W.into(),
                reason: "orphan".into(),
            }),
            result: ok(),
            change: |f| {
                f.sessions.remove(W);
            },
        },
    ]
}

#[test]
fn record_should_fold_an_agent_resumed_or_moved() {
    check(resume_cases());
}

fn resume_cases() -> Vec<Case> {
    let ok = || Ok(Outcome::Done);
    vec![
        Case {
            name: "a_restart_resuming_the_conversation_should_carry_the_task_on_and_count_a_resume",
            action: restart(Some("c1")),
            result: ok(),
            change: resumed,
        },
        Case {
            name: "a_created_session_resuming_the_conversation_should_carry_the_task_on_and_count_a_resume",
            action: Action::Session(SessionAction::CreateSession {
                session: spec(),
                resume: Some("c1".into()),
            }),
            result: ok(),
            change: resumed,
        },
        Case {
            name: "a_move_resuming_the_conversation_should_carry_the_task_on_without_a_resume_counted",
            action: move_session(),
            result: Ok(Outcome::Resumed("c1".into())),
            change: carried_on,
        },
        Case {
            name: "a_move_started_afresh_should_send_the_task_again_from_the_start",
            action: move_session(),
            result: ok(),
            change: sent_again,
        },
        Case {
            name: "a_move_whose_conversation_the_new_home_cannot_find_should_send_the_task_again",
            action: move_session(),
            result: Ok(Outcome::Fresh("not shared".into())),
            change: sent_again,
        },
        Case {
            name: "a_move_not_made_should_change_nothing_but_the_screen_taken_for_fresh",
            action: move_session(),
            result: Ok(Outcome::Rejected("no conversation".into())),
            change: fresh_screen,
        },
    ]
}

#[test]
fn record_should_fold_a_dispatch() {
    check(dispatch_cases());
}

fn dispatch(restart: bool) -> Action {
    Action::Task(TaskAction::DispatchTask {
        task: ours(),
        pane: "%100".into(),
        restart: restart.then(spec),
        note: None,
    })
}

/// `W`'s task as a dispatch just claimed it: the rest as in [`base`].
fn claimed(f: &mut Facts, stage: Stage, sent: Option<u64>) {
    f.tries.remove(KEY);
    let s = session(f);
    s.idle_since = None;
    s.task = Some(TaskFacts {
        inbox: "tasks".into(),
        file: crate::tasks::active_name(W, 2, "t.md"),
        task: "t.md".into(),
        attempt: 2,
        stage,
        since: later(),
        expect: sent,
        pasted: sent.map(|_| later()),
        ..TaskFacts::default()
    });
}

fn dispatch_cases() -> Vec<Case> {
    vec![
        Case {
            name: "a_dispatch_that_pasted_should_hold_the_task_pasted_and_its_text",
            action: dispatch(false),
            result: Ok(Outcome::Sent(7)),
            change: |f| claimed(f, Stage::Pasted, Some(7)),
        },
        Case {
            name: "a_dispatch_that_restarted_the_agent_should_wait_for_it_with_a_fresh_screen",
            action: dispatch(true),
            result: Ok(Outcome::Done),
            change: |f| {
                fresh_screen(f);
                claimed(f, Stage::Starting, None);
            },
        },
        Case {
            name: "a_rejected_dispatch_should_forget_the_tries_and_claim_nothing",
            action: dispatch(false),
            result: Ok(Outcome::Rejected("not valid UTF-8".into())),
            change: |f| {
                f.tries.remove(KEY);
            },
        },
    ]
}

#[test]
fn record_should_fold_each_step_of_a_turn() {
    check(turn_cases());
}

fn turn_cases() -> Vec<Case> {
    let pane = || "%100".to_owned();
    vec![
        Case {
            name: "a_paste_should_start_a_new_turn_and_expect_its_text",
            action: Action::Task(TaskAction::PasteTask {
                task: ours(),
                pane: pane(),
                note: None,
            }),
            result: Ok(Outcome::Sent(9)),
            change: |f| {
                pasted(f);
                task(f).expect = Some(9);
            },
        },
        Case {
            name: "a_continue_without_a_hash_should_keep_the_text_expected",
            action: Action::Task(TaskAction::ContinueTask {
                task: ours(),
                pane: pane(),
                text: "continue".into(),
            }),
            result: Ok(Outcome::Done),
            change: pasted,
        },
        Case {
            name: "a_submit_should_count_its_enter_and_a_turn_submitted_during_a_redraw",
            action: Action::Task(TaskAction::SubmitTask {
                task: ours(),
                pane: pane(),
            }),
            result: Ok(Outcome::Done),
            change: |f| {
                if let Redraw::On { submitted, .. } = &mut session(f).redraw {
                    *submitted = true;
                }
                let t = task(f);
                t.stage = Stage::Submitted(1);
                t.since = later();
                t.idle_since = None;
            },
        },
        Case {
            name: "a_stall_should_be_marked",
            action: Action::Task(TaskAction::StallTask { task: ours() }),
            result: Ok(Outcome::Done),
            change: |f| task(f).stalled = true,
        },
        Case {
            name: "a_rejected_waiting_task_should_change_no_fact",
            action: Action::Task(TaskAction::RejectTask {
                inbox: "tasks".into(),
                path: "/p/.agent-queue/inbox".into(),
                name: "link.md".into(),
                reason: "a link".into(),
            }),
            result: Ok(Outcome::Done),
            change: unchanged,
        },
    ]
}

#[test]
fn record_should_fold_how_each_task_ended() {
    check(ending_cases());
}

fn ending_cases() -> Vec<Case> {
    vec![
        Case {
            name: "a_completed_task_should_free_its_session_used_and_forget_its_reasons",
            action: Action::Task(TaskAction::CompleteTask {
                task: ours(),
                pane: "%100".into(),
                pid: 100,
                how: "Stop report".into(),
                reply: Some("Done.".into()),
                exit: Some("/exit".into()),
            }),
            result: Ok(Outcome::Done),
            change: |f| {
                fresh_screen(f);
                session(f).task = None;
                session(f).used_pid = Some(100);
                f.try_reasons.remove(KEY);
            },
        },
        Case {
            name: "a_requeue_after_delivery_should_count_a_try_and_keep_its_reason",
            action: requeue(false, true),
            result: Ok(Outcome::Done),
            change: |f| {
                session(f).task = None;
                f.tries.insert(KEY.into(), 2);
                f.try_reasons.insert(
                    KEY.into(),
                    vec![
                        "try 1: session died".into(),
                        "try 2: its turn ended on an API error".into(),
                    ],
                );
            },
        },
        Case {
            name: "a_requeue_never_delivered_should_use_no_try",
            action: requeue(false, false),
            result: Ok(Outcome::Done),
            change: |f| session(f).task = None,
        },
        Case {
            name: "a_task_to_failed_should_forget_its_reasons_and_count_no_try",
            action: requeue(true, true),
            result: Ok(Outcome::Done),
            change: |f| {
                session(f).task = None;
                f.try_reasons.remove(KEY);
            },
        },
        Case {
            name: "a_requeue_of_another_claim_should_leave_the_sessions_task",
            action: Action::Task(TaskAction::RequeueTask {
                task: task_ref("ccl-auto-11.1.t.md"),
                reason: "died".into(),
                failed: false,
                delivered: false,
            }),
            result: Ok(Outcome::Done),
            change: unchanged,
        },
    ]
}

#[test]
fn a_second_enter_should_count_on_from_the_first_and_keep_the_submit_time() {
    let mut facts = base();
    task(&mut facts).stage = Stage::Submitted(1);
    let submit = Action::Task(TaskAction::SubmitTask {
        task: ours(),
        pane: "%100".into(),
    });
    record(&mut facts, &submit, &Ok(Outcome::Done), later());
    let t = task(&mut facts);
    assert_eq!(t.stage, Stage::Submitted(2));
    assert_eq!(t.started, Some(now()), "submitted first at the first Enter");
}

#[test]
fn a_move_started_afresh_should_leave_an_ended_turn_ended() {
    let mut facts = base();
    let reply = Ended::Reply {
        reply: "Done.".into(),
        how: "Stop report".into(),
        at: now(),
    };
    task(&mut facts).ended = Some(reply.clone());
    record(&mut facts, &move_session(), &Ok(Outcome::Sent(3)), later());
    let t = task(&mut facts);
    assert_eq!((t.stage, t.ended.as_ref()), (Stage::Starting, Some(&reply)));
}
