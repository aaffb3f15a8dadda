//! The turn rules' table tests: what may end a task's turn, and what becomes of a task
//! whose agent died.

use super::super::fixtures::*;
use super::super::{Action, Plan};
use super::{SessionAction, TaskAction};
use crate::conversation::{Turn, TurnEnd};
use crate::observe::{Evidence, Observed, TaskTurn};
use crate::state::{AgentFacts, Ended, Stage, TaskFacts};

const W: &str = "ccl-auto-11";
const PID: u32 = 100;
const IDLE_EMPTY: &str = IDLE_SCREEN;

fn at(secs: i64) -> jiff::Timestamp {
    now() + jiff::SignedDuration::from_secs(secs)
}

/// A pool session `W` on account main with task `t.md` in `stage`, and its screen.
fn world(stage: Stage, screen: &str) -> (crate::api::Manifests, Observed) {
    let m = manifests(&format!("{POOL_AND_DEDICATED}{INBOX}"));
    let mut o = observed();
    add(&mut o, session(W, "failover", "main", PID));
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    o.screens.insert(W.into(), screen.into());
    let mut t = task_facts(W);
    t.stage = stage;
    t.since = at(-10);
    claimed(&mut o, W, t);
    (m, o)
}

fn task_mut(o: &mut Observed) -> &mut TaskFacts {
    o.facts
        .sessions
        .get_mut(W)
        .and_then(|f| f.task.as_mut())
        .expect("a task")
}

/// The agent of `W` reports (its SessionStart named its pid).
fn reporting(o: &mut Observed) {
    o.facts.sessions.entry(W.into()).or_default().agent = Some(AgentFacts {
        pid: PID,
        conversation: "c1".into(),
        transcript: "/h/main/projects/-w/c1.jsonl".into(),
        unheard: false,
    });
}

fn kinds(p: &Plan) -> Vec<&'static str> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::Task(TaskAction::CompleteTask { .. }) => "complete",
            Action::Task(TaskAction::RequeueTask { .. }) => "requeue",
            Action::Task(TaskAction::SubmitTask { .. }) => "submit",
            Action::Task(TaskAction::ContinueTask { .. }) => "continue",
            Action::Session(SessionAction::RestartSession { .. }) => "restart",
            Action::Session(SessionAction::CreateSession { .. }) => "create",
            Action::Session(SessionAction::RecycleSession { .. }) => "recycle",
            Action::Fs(_)
            | Action::Session(
                SessionAction::MoveSession { .. } | SessionAction::DeleteSession { .. },
            )
            | Action::Task(
                TaskAction::DispatchTask { .. }
                | TaskAction::PasteTask { .. }
                | TaskAction::RejectTask { .. }
                | TaskAction::StallTask { .. }
                | TaskAction::ReturnTask { .. },
            ) => "other",
        })
        .collect()
}

#[test]
fn an_empty_input_box_after_enter_should_never_be_taken_for_a_turn_that_ran() {
    // The moment between Enter and the busy marker: no marker, an empty box.
    let (m, mut o) = world(Stage::Submitted(1), IDLE_EMPTY);
    for secs in [0, 1, 5, 60] {
        let p = plan_with_tasks(&m, &o, "failover", at(secs));
        assert!(!kinds(&p).contains(&"complete"), "{secs}s: {:?}", p.actions);
        assert_eq!(
            p.facts.sessions[W].task.as_ref().unwrap().stage,
            Stage::Submitted(1)
        );
        o.facts = p.facts;
    }
}

#[test]
fn the_screen_should_end_a_turn_only_after_it_was_seen_busy_and_only_for_an_agent_that_does_not_report()
 {
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    task_mut(&mut o).idle_since = Some(at(-5));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(
        !kinds(&p).contains(&"complete"),
        "never seen busy: {:?}",
        p.actions
    );
    task_mut(&mut o).seen_busy = true;
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    let how = p.actions.iter().find_map(|a| {
        if let Action::Task(TaskAction::CompleteTask { how, .. }) = a {
            Some(how.clone())
        } else {
            None
        }
    });
    assert_eq!(how.as_deref(), Some("idle screen after the turn ran"));
    reporting(&mut o);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(
        !kinds(&p).contains(&"complete"),
        "a reporting agent's task ends on its Stop: {:?}",
        p.actions
    );
}

#[test]
fn the_transcript_should_end_the_task_of_an_agent_that_does_not_report() {
    let (m, mut o) = world(Stage::Submitted(1), IDLE_EMPTY);
    let file = task_mut(&mut o).file.clone();
    let turn = |end| TaskTurn {
        conversation: ("c1".into(), "/h/main/projects/-w/c1.jsonl".into()),
        turn: Some(Turn {
            prompt_id: Some("p1".into()),
            end,
        }),
        usage: None,
    };
    o.turns.insert(file.clone(), turn(None));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    let t = p.facts.sessions[W].task.clone().unwrap();
    assert_eq!(
        (t.stage, t.prompt_id.as_deref()),
        (Stage::Running, Some("p1"))
    );
    assert!(t.conversation.is_some());
    o.turns
        .insert(file, turn(Some(TurnEnd::Reply("Done.".into()))));
    let p = plan_with_tasks(&m, &o, "failover", at(1));
    let done = p.actions.iter().find_map(|a| {
        if let Action::Task(TaskAction::CompleteTask { how, reply, .. }) = a {
            Some((how.clone(), reply.clone()))
        } else {
            None
        }
    });
    assert_eq!(done, Some(("transcript".into(), Some("Done.".into()))));
}

#[test]
fn a_task_whose_agent_died_mid_turn_should_be_resumed_in_its_conversation() {
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    let transcript = std::path::PathBuf::from("/h/main/projects/-w/c1.jsonl");
    task_mut(&mut o).conversation = Some(("c1".into(), transcript.clone()));
    if let Some(s) = o.sessions.get_mut(W) {
        s.pane.dead = true;
    }
    // Without its transcript on disk: back to the inbox.
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(kinds(&p).contains(&"requeue"), "{:?}", p.actions);
    // With it: the agent starts again on that conversation, in the task's folder.
    o.transcripts.insert(transcript);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(!kinds(&p).contains(&"requeue"), "{:?}", p.actions);
    let restart = p.actions.iter().find_map(|a| {
        if let Action::Session(SessionAction::RestartSession {
            session, resume, ..
        }) = a
        {
            Some((
                session.command.clone(),
                session.workdir.clone(),
                resume.clone(),
            ))
        } else {
            None
        }
    });
    let (command, workdir, resume) = restart.expect("a restart");
    assert_eq!(resume.as_deref(), Some("c1"));
    assert_eq!(&command[command.len() - 2..], ["--resume", "c1"]);
    assert_eq!(workdir, std::path::PathBuf::from("/w"));
    // The same once the tmux server is gone with the session: it is created again.
    o.sessions.remove(W);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Session(SessionAction::CreateSession { resume: Some(c), .. }) if c == "c1")),
        "{:?}",
        p.actions
    );
    // Out of tries: back to the inbox.
    task_mut(&mut o).resumes = 3;
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(kinds(&p).contains(&"requeue"), "{:?}", p.actions);
}

#[test]
fn a_task_whose_turn_ended_before_its_agent_died_should_be_done_not_sent_again() {
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    task_mut(&mut o).ended = Some(Ended::Reply {
        reply: "Done.".into(),
        how: "Stop report".into(),
        at: at(-1),
    });
    o.sessions.remove(W);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    let exit = p.actions.iter().find_map(|a| {
        if let Action::Task(TaskAction::CompleteTask { exit, reply, .. }) = a {
            Some((exit.clone(), reply.clone()))
        } else {
            None
        }
    });
    assert_eq!(exit, Some((None, Some("Done.".into()))), "{:?}", p.actions);
    assert!(!kinds(&p).contains(&"requeue"));
}

#[test]
fn an_ended_turn_should_wait_a_moment_for_the_status_line_before_the_exit() {
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    reporting(&mut o);
    task_mut(&mut o).ended = Some(Ended::Reply {
        reply: "Done.".into(),
        how: "Stop report".into(),
        at: at(0),
    });
    o.facts.sessions.entry(W.into()).or_default().status_at = Some(at(-3));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(!kinds(&p).contains(&"complete"), "{:?}", p.actions);
    assert!(p.requeue_after.is_some());
    let p = plan_with_tasks(&m, &o, "failover", at(2));
    assert!(kinds(&p).contains(&"complete"), "waited long enough");
    o.facts.sessions.entry(W.into()).or_default().status_at = Some(at(0));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(kinds(&p).contains(&"complete"), "the status line came");
}

#[test]
fn a_claim_a_crash_left_out_of_the_facts_should_be_followed_on_proof_only() {
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    let file = task_mut(&mut o).file.clone();
    o.facts.sessions.entry(W.into()).or_default().task = None;
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    let tasks: Vec<&str> = kinds(&p).into_iter().filter(|k| *k != "create").collect();
    assert_eq!(
        tasks,
        ["requeue", "recycle"],
        "no proof: back, and a clean agent"
    );
    o.evidence.insert(
        file,
        Evidence {
            hash: 7,
            prompt_id: Some("p1".into()),
        },
    );
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(!kinds(&p).contains(&"requeue"), "{:?}", p.actions);
    let t = p.facts.sessions[W].task.clone().unwrap();
    assert_eq!(
        (t.stage, t.prompt_id.as_deref(), t.expect),
        (Stage::Running, Some("p1"), Some(7))
    );
}

#[test]
fn an_account_over_move_at_should_take_no_new_task() {
    let m = manifests(&format!("{POOL_AND_DEDICATED}{INBOX}{MOVE_AT_95}"));
    let mut o = observed();
    idle_pool(&mut o);
    o.inboxes.insert("tasks".into(), waiting(1));
    let dispatched = |p: &Plan| {
        p.actions
            .iter()
            .filter_map(|a| {
                if let Action::Task(TaskAction::DispatchTask { task, .. }) = a {
                    Some(task.account.clone())
                } else {
                    None
                }
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        dispatched(&plan_with_tasks(&m, &o, "failover", at(0))),
        ["main"]
    );
    let reading = |used: f64| five_hour(used, at(3600), at(-1), "ccl-auto-11");
    o.facts.usage.insert("main".into(), reading(96.0));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(dispatched(&p).is_empty(), "{:?}", p.actions);
    let swap = journaled(&p)
        .into_iter()
        .find(|(k, _)| k == "swap")
        .expect("a swap");
    assert_eq!(swap.1["reason"], "usage 96% reached moveAt 95%");
    assert_eq!(p.account(CLAUDE), Some("alt"));
    // Both over it: nothing moves, no task starts, the operator is told.
    o.facts.usage.insert("alt".into(), reading(97.0));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(dispatched(&p).is_empty());
    assert_eq!(p.account(CLAUDE), Some("main"));
    assert!(
        journaled(&p)
            .into_iter()
            .any(|(k, _)| k == "allOverThreshold")
    );
    let held = journaled(&p).into_iter().find(|(k, _)| k == "intakeHeld");
    assert_eq!(
        held.map(|(_, e)| e["account"].clone()),
        Some("main".into()),
        "the operator is told why"
    );
    assert!(p.refused.is_empty(), "nothing is wrong: {:?}", p.refused);
    assert!(!journaled(&p).into_iter().any(|(k, _)| k == "swap"));
    // Past the window's reset the reading counts for nothing.
    let p = plan_with_tasks(&m, &o, "failover", at(3601));
    assert_eq!(dispatched(&p), ["main"]);
}

#[test]
fn a_reported_turn_should_hold_a_session_until_it_ends_or_sits_cut_at_its_prompt() {
    let m = manifests(&format!("{POOL_AND_DEDICATED}{MOVE_AT_95}"));
    let mut o = observed();
    add(&mut o, session("ccl-1-x", "failover", "main", PID));
    reported(&mut o, "ccl-1-x", PID);
    o.screens.insert("ccl-1-x".into(), IDLE_EMPTY.into());
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    o.facts
        .usage
        .insert("main".into(), five_hour(97.0, at(3600), at(-1), "ccl-1-x"));
    // The person pressed Enter a moment ago: the screen is idle and empty, the turn is
    // reported. It must not move.
    let f = o.facts.sessions.entry("ccl-1-x".into()).or_default();
    f.turn = Some("p1".into());
    f.screen = Some((super::super::screens::screen_hash(IDLE_EMPTY), at(-1)));
    let moved = |p: &Plan| {
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Session(SessionAction::MoveSession { session, .. }) if session.name == "ccl-1-x"))
    };
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(!moved(&p), "mid-turn: {:?}", p.actions);
    // Cut with Esc (no Stop comes): the same screen for a while, then it moves.
    let p = plan_with_tasks(&m, &o, "failover", at(10));
    assert!(moved(&p), "{:?}", p.actions);
    // Or its Stop came: it moves at once.
    o.facts.sessions.entry("ccl-1-x".into()).or_default().turn = None;
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(moved(&p), "{:?}", p.actions);
}

#[test]
fn a_session_gone_with_its_tmux_server_should_come_back_to_resume_its_task_beyond_min() {
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    // The task ran on the pool's fifth session (min is 3); the server died with it.
    let mut t = task_mut(&mut o).clone();
    o.facts.sessions.remove(W);
    o.sessions.remove(W);
    let far = "ccl-auto-15";
    t.file = crate::tasks::active_name(far, 1, "t.md");
    let transcript = std::path::PathBuf::from("/h/main/projects/-w/c1.jsonl");
    t.conversation = Some(("c1".into(), transcript.clone()));
    claimed(&mut o, far, t);
    o.transcripts.insert(transcript);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(
        p.actions.iter().any(|a| matches!(a, Action::Session(SessionAction::CreateSession { session, resume: Some(_) }) if session.name == far)),
        "{:?}",
        p.actions
    );
    assert!(!kinds(&p).contains(&"requeue"), "{:?}", p.actions);
}

#[test]
fn a_move_should_wait_a_bounded_time_for_the_transcript_of_a_task_just_sent() {
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    reporting(&mut o);
    task_mut(&mut o).at_limit = true;
    task_mut(&mut o).pasted = Some(at(-2));
    o.facts
        .exhausted_until
        .insert("main".into(), "2026-11-21T23:00:00Z".parse().unwrap());
    let moves = |o: &Observed, now| {
        let p = plan_with_tasks(&m, o, "failover", at(now));
        let n = p
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Session(SessionAction::MoveSession { .. })))
            .count();
        (n, p.requeue_after.is_some())
    };
    // Not written yet: moved now, the task could only be sent again.
    assert_eq!(moves(&o, 0), (0, true));
    // Written: resumed.
    o.transcripts.insert("/h/main/projects/-w/c1.jsonl".into());
    assert_eq!(moves(&o, 0).0, 1);
    // Never written: after 10 s the agent moves anyway.
    o.transcripts.clear();
    assert_eq!(moves(&o, 7).0, 0);
    assert_eq!(moves(&o, 8).0, 1);
}

#[test]
fn a_move_should_resume_the_conversation_the_agent_reported() {
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    reporting(&mut o);
    task_mut(&mut o).at_limit = true;
    o.facts
        .exhausted_until
        .insert("main".into(), "2026-11-21T23:00:00Z".parse().unwrap());
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    let moved = p.actions.iter().find_map(|a| match a {
        Action::Session(SessionAction::MoveSession {
            session,
            conversation,
            resume,
            ..
        }) if session.name == W => Some((conversation.clone(), resume.is_some())),
        Action::Fs(_) | Action::Session(_) | Action::Task(_) => None,
    });
    let (conversation, resume) = moved.expect("moved");
    assert!(resume, "a task's conversation is resumed");
    assert_eq!(conversation.map(|c| c.0).as_deref(), Some("c1"));
    // Started afresh instead (its transcript was gone): the old turn is forgotten, an
    // ended one is not.
    let mut facts = p.facts.clone();
    if let Some(t) = facts.sessions.get_mut(W).and_then(|f| f.task.as_mut()) {
        t.ended = Some(Ended::Reply {
            reply: "Done.".into(),
            how: "Stop report".into(),
            at: at(0),
        });
    }
    let action = p
        .actions
        .iter()
        .find(|a| matches!(a, Action::Session(SessionAction::MoveSession { .. })))
        .cloned()
        .unwrap();
    super::super::record(&mut facts, &action, &Ok(super::super::Outcome::Done), at(1));
    let t = facts.sessions[W].task.clone().unwrap();
    assert_eq!(
        (t.stage, t.at_limit, t.prompt_id),
        (Stage::Starting, false, None)
    );
    assert!(t.ended.is_some(), "a turn that ended stays ended");
}

/// The requeue in `p`, recorded into `o`'s facts: (its reason, tries now counted).
fn requeued(p: &Plan, o: &mut Observed) -> Option<(String, u32)> {
    let action = p
        .actions
        .iter()
        .find(|a| matches!(a, Action::Task(TaskAction::RequeueTask { .. })))?
        .clone();
    let Action::Task(TaskAction::RequeueTask { reason, .. }) = &action else {
        return None;
    };
    super::super::record(
        &mut o.facts,
        &action,
        &Ok(super::super::Outcome::Done),
        at(0),
    );
    Some((
        reason.clone(),
        o.facts.tries.get("tasks/t.md").copied().unwrap_or(0),
    ))
}

#[test]
fn a_claim_that_never_reached_its_agent_should_go_back_without_using_a_try() {
    const DIALOG: &str =
        " Do you trust the files in this folder?\n ❯ 1. Yes, I trust this folder\n";
    // An agent started for the task shows a dialog and never its prompt.
    let (m, mut o) = world(Stage::Starting, DIALOG);
    task_mut(&mut o).since = at(-60);
    assert!(requeued(&plan_with_tasks(&m, &o, "failover", at(0)), &mut o.clone()).is_none());
    task_mut(&mut o).since = at(-121);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(kinds(&p).contains(&"recycle"), "{:?}", p.actions);
    let (reason, tries) = requeued(&p, &mut o).expect("given back");
    assert!(reason.contains("reads waiting"), "{reason}");
    assert_eq!(tries, 0, "no try used");
    // Its session died with the text pasted, never submitted: no try either, even on
    // its last one.
    let (m, mut o) = world(Stage::Pasted, IDLE_EMPTY);
    task_mut(&mut o).attempt = 3;
    o.sessions.remove(W);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(
        p.actions.iter().any(|a| matches!(
            a,
            Action::Task(TaskAction::RequeueTask {
                failed: false,
                delivered: false,
                ..
            })
        )),
        "{:?}",
        p.actions
    );
    // Died mid-turn with nothing to resume: a try used.
    let (m, mut o) = world(Stage::Running, IDLE_EMPTY);
    o.sessions.remove(W);
    let (reason, tries) = requeued(&plan_with_tasks(&m, &o, "failover", at(0)), &mut o).unwrap();
    assert!(
        reason.contains("died while working on it (try 1 of 3)"),
        "{reason}"
    );
    assert_eq!(tries, 1);
}

#[test]
fn tries_should_be_kept_while_their_task_waits_or_its_inbox_cannot_be_read() {
    let m = manifests(&format!("{POOL_AND_DEDICATED}{INBOX}"));
    let mut o = observed();
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
    for key in ["tasks/t0.md", "tasks/gone.md", "removed/t.md"] {
        o.facts.tries.insert(key.into(), 1);
        o.facts
            .try_reasons
            .insert(key.into(), vec!["try 1: died".into()]);
    }
    o.inboxes.insert("tasks".into(), waiting(1));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    // Waiting: kept. Deleted by hand, or its inbox no longer in the manifests: gone.
    let kept: Vec<&String> = p.facts.tries.keys().collect();
    assert_eq!(kept, ["tasks/t0.md"]);
    assert_eq!(p.facts.try_reasons.len(), 1);
    // An inbox that could not be read says nothing of its tasks: all kept.
    let mut unread = waiting(0);
    unread.unread = true;
    o.inboxes.insert("tasks".into(), unread);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert_eq!(p.facts.tries.len(), 2, "{:?}", p.facts.tries);
}

#[test]
fn an_idle_codex_screen_should_never_end_a_turn_codex_proves_in_its_own_files() {
    // Codex 0.171.0's working line blinks between `•` and `◦`: one shape the classifier
    // missed read idle mid-turn and ended a task whose reply was 4 s away. Codex ends a
    // turn by its rollout and its notify report; its screen never does.
    let text = format!("{POOL_AND_DEDICATED}{INBOX}")
        .replace(
            "spec: {home: /h/main, priority: 0,",
            "spec: {home: /h/main, agent: codex, priority: 0,",
        )
        .replace(
            "spec: {home: /h/alt, priority: 1}",
            "spec: {home: /h/alt, agent: codex, priority: 1}",
        )
        .replace(
            "spec: {prefix: ccl-auto-,",
            "spec: {agent: codex, prefix: ccl-auto-,",
        )
        .replace(
            "spec: {workdir: /w/x}",
            "spec: {workdir: /w/x, agent: codex}",
        );
    let m = manifests(&text);
    assert_eq!(m.kind_of_session(W), crate::api::AgentKind::Codex);
    let idle = "  >_ OpenAI Codex (v0.171.0)\n     /w\n\n› Ask Codex to do anything\n\n  gpt-5.5 default · /w\n";
    let mut o = observed();
    add(&mut o, session(W, "failover", "main", PID));
    o.facts
        .family_mut(crate::api::AgentKind::Codex)
        .active_account = Some("main".into());
    o.screens.insert(W.into(), idle.into());
    let mut t = task_facts(W);
    t.stage = Stage::Running;
    t.since = at(-10);
    t.seen_busy = true;
    t.idle_since = Some(at(-5));
    claimed(&mut o, W, t);
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(
        !kinds(&p).contains(&"complete"),
        "an idle Codex screen ended a turn: {:?}",
        p.actions
    );
}
