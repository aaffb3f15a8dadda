//! The session rules' table tests: pools and dedicated sessions made, kept, grown and
//! trimmed; sessions without our mark left alone; moves off an exhausted account.

use super::super::fixtures::*;
use super::*;
use crate::plan::{Action, FsAction, SessionAction};

/// Account `main`, the active one, is exhausted until 07:00.
fn main_exhausted(o: &mut Observed) {
    o.facts
        .exhausted_until
        .insert("main".into(), "2026-11-21T07:00:00Z".parse().unwrap());
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
}

fn names(plan: &Plan, f: impl Fn(&Action) -> Option<String>) -> Vec<String> {
    plan.actions.iter().filter_map(f).collect()
}

fn created(plan: &Plan) -> Vec<String> {
    names(plan, |a| {
        if let Action::Session(SessionAction::CreateSession { session, .. }) = a {
            Some(session.name.clone())
        } else {
            None
        }
    })
}

fn deleted(plan: &Plan) -> Vec<String> {
    names(plan, |a| {
        if let Action::Session(SessionAction::DeleteSession { name, .. }) = a {
            Some(name.clone())
        } else {
            None
        }
    })
}

#[test]
fn planner_should_create_min_pool_sessions_from_start_index_and_the_dedicated_ones() {
    let m = manifests(POOL_AND_DEDICATED);
    let p = plan(&m, &observed(), "failover", now());
    assert_eq!(
        created(&p),
        ["ccl-auto-11", "ccl-auto-12", "ccl-auto-13", "ccl-1-x"]
    );
    assert!(p.refused.is_empty(), "{:?}", p.refused);
    let Action::Session(SessionAction::CreateSession { session, .. }) = &p.actions[0] else {
        panic!("{:?}", p.actions[0]);
    };
    assert_eq!(session.account, "main");
    assert_eq!(session.workdir, Path::new("/w"));
    assert_eq!(
        session.command,
        ["claude", "--dangerously-skip-permissions"]
    );
    assert_eq!(session.env["CLAUDE_CONFIG_DIR"], "/h/main");
    assert_eq!(session.env["ACCOUNT_VAR"], "a");
    assert_eq!(session.env["POOL_VAR"], "p");
    assert_eq!(
        session.role,
        Role::Pool {
            pool: "auto".into(),
            index: 11
        }
    );
}

#[test]
fn planner_should_never_touch_unowned_sessions() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    add(&mut o, session("ccl-0", "", "", 100));
    add(&mut o, session("ccl-auto-9", "", "", 101));
    add(&mut o, session("ccl-auto-12", "", "", 102));
    add(&mut o, session("ccl-auto-30", "someone-else", "main", 103));
    let p = plan(&m, &o, "failover", now());
    assert!(deleted(&p).is_empty(), "{:?}", p.actions);
    assert_eq!(
        created(&p),
        ["ccl-auto-11", "ccl-auto-13", "ccl-auto-14", "ccl-1-x"]
    );
    assert!(
        p.refused.is_empty(),
        "a free index was found: {:?}",
        p.refused
    );
}

#[test]
fn planner_should_refuse_when_foreign_sessions_fill_the_range() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    for (i, n) in [11, 12, 13, 14].iter().enumerate() {
        add(
            &mut o,
            session(&format!("ccl-auto-{n}"), "", "", 100 + i as u32),
        );
    }
    let p = plan(&m, &o, "failover", now());
    assert_eq!(created(&p), ["ccl-auto-15", "ccl-1-x"]);
    assert_eq!(p.refused.len(), 1);
    assert_eq!(p.refused[0].object.spoken().to_string(), "pool auto");
    assert!(
        p.refused[0].reason.contains("can keep only 1 of 3"),
        "{:?}",
        p.refused
    );
}

#[test]
fn planner_should_refuse_a_dedicated_name_taken_by_a_person_with_a_hint() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    add(&mut o, session("ccl-1-x", "", "", 100));
    let p = plan(&m, &o, "failover", now());
    assert!(!created(&p).contains(&"ccl-1-x".to_owned()));
    assert_eq!(p.refused[0].object.spoken().to_string(), "session ccl-1-x");
    assert!(p.refused[0].reason.contains("@failover-owner failover"));
}

#[test]
fn planner_should_leave_converged_sessions_alone() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    for (i, n) in ["ccl-auto-11", "ccl-auto-12", "ccl-auto-13", "ccl-1-x"]
        .iter()
        .enumerate()
    {
        add(&mut o, session(n, "failover", "main", 100 + i as u32));
    }
    let p = plan(&m, &o, "failover", now());
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn planner_should_restart_dead_sessions_and_remove_orphans_and_surplus() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    for (i, n) in [
        "ccl-auto-11",
        "ccl-auto-13",
        "ccl-auto-14",
        "ccl-auto-15",
        "ccl-1-x",
        "old-one",
    ]
    .iter()
    .enumerate()
    {
        add(&mut o, session(n, "failover", "main", 100 + i as u32));
    }
    o.sessions.get_mut("ccl-auto-13").unwrap().pane.dead = true;
    o.sessions.get_mut("ccl-auto-13").unwrap().pane.dead_status = Some(1);
    let p = plan(&m, &o, "failover", now());
    assert_eq!(
        deleted(&p),
        ["old-one"],
        "ccl-auto-15 is above min but not known idle"
    );
    assert!(created(&p).is_empty());
    let restarted = names(&p, |a| {
        if let Action::Session(SessionAction::RestartSession {
            session, reason, ..
        }) = a
        {
            Some(format!("{} {reason}", session.name))
        } else {
            None
        }
    });
    assert_eq!(restarted, ["ccl-auto-13 agent exited with status 1"]);
}

#[test]
fn planner_should_remove_idle_sessions_above_min_after_scale_down_after() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    for (i, n) in [
        "ccl-auto-11",
        "ccl-auto-12",
        "ccl-auto-13",
        "ccl-auto-14",
        "ccl-auto-15",
        "ccl-1-x",
    ]
    .iter()
    .enumerate()
    {
        add(&mut o, session(n, "failover", "main", 100 + i as u32));
        o.screens.insert((*n).into(), IDLE_SCREEN.into());
    }
    // Idle for 9 minutes: kept (scaleDownAfter is 10m by default).
    let nine = now() - jiff::SignedDuration::from_mins(9);
    for n in ["ccl-auto-14", "ccl-auto-15"] {
        o.facts.sessions.entry(n.into()).or_default().idle_since = Some(nine);
    }
    assert!(deleted(&plan(&m, &o, "failover", now())).is_empty());
    let later = now() + jiff::SignedDuration::from_mins(2);
    assert_eq!(
        deleted(&plan(&m, &o, "failover", later)),
        ["ccl-auto-15", "ccl-auto-14"]
    );
    // A session with a task is never scaled away.
    o.facts.sessions.get_mut("ccl-auto-15").unwrap().task = Some(task_facts("ccl-auto-15"));
    assert_eq!(deleted(&plan(&m, &o, "failover", later)), ["ccl-auto-14"]);
}

#[test]
fn planner_should_grow_the_pool_while_tasks_wait_and_no_session_is_free() {
    let text = format!("{POOL_AND_DEDICATED}{INBOX}");
    let m = manifests(&text);
    let mut o = observed();
    for (i, n) in ["ccl-auto-11", "ccl-auto-12", "ccl-auto-13", "ccl-1-x"]
        .iter()
        .enumerate()
    {
        add(&mut o, session(n, "failover", "main", 100 + i as u32));
        o.screens.insert((*n).into(), BUSY_SCREEN.into());
    }
    o.inboxes.insert("tasks".into(), waiting(1));
    assert_eq!(created(&plan(&m, &o, "failover", now())), ["ccl-auto-14"]);
    o.inboxes.insert("tasks".into(), waiting(5));
    assert_eq!(
        created(&plan(&m, &o, "failover", now())),
        ["ccl-auto-14", "ccl-auto-15"],
        "max is 5"
    );
    // A free session takes the task: no growth.
    o.screens.insert("ccl-auto-12".into(), IDLE_SCREEN.into());
    o.inboxes.insert("tasks".into(), waiting(1));
    assert!(created(&plan(&m, &o, "failover", now())).is_empty());
}

#[test]
fn planner_should_move_every_session_off_an_exhausted_account_resuming_dedicated_ones() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    for (i, n) in ["ccl-auto-11", "ccl-auto-12", "ccl-auto-13", "ccl-1-x"]
        .iter()
        .enumerate()
    {
        add(&mut o, session(n, "failover", "main", 100 + i as u32));
    }
    // The dedicated session's agent reported its conversation.
    reported(&mut o, "ccl-1-x", 103);
    main_exhausted(&mut o);
    let p = plan(&m, &o, "failover", now());
    let moved = names(&p, |a| {
        if let Action::Session(SessionAction::MoveSession { session, from, .. }) = a {
            Some(format!(
                "{} {}->{}",
                session.name,
                from.as_deref().unwrap_or(""),
                session.account
            ))
        } else {
            None
        }
    });
    assert_eq!(
        moved,
        [
            "ccl-auto-11 main->alt",
            "ccl-auto-12 main->alt",
            "ccl-auto-13 main->alt",
            "ccl-1-x main->alt"
        ]
    );
    let resumed: Vec<bool> = p
        .actions
        .iter()
        .filter_map(|a| {
            if let Action::Session(SessionAction::MoveSession { resume, .. }) = a {
                Some(resume.is_some())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        resumed,
        [false, false, false, true],
        "the dedicated one resumes its conversation"
    );
    assert!(p.refused.is_empty(), "{:?}", p.refused);
    assert_eq!(
        p.facts
            .family(CLAUDE)
            .last_swap
            .as_ref()
            .map(|s| (s.from.as_str(), s.to.as_str())),
        Some(("main", "alt"))
    );
    // Once the reset time has passed, main is preferred again.
    let later: jiff::Timestamp = "2026-11-21T07:00:01Z".parse().unwrap();
    assert!(plan(&m, &o, "failover", later).is_empty());
}

#[test]
fn planner_should_start_nothing_when_every_account_is_exhausted() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    let t: jiff::Timestamp = "2026-11-21T07:00:00Z".parse().unwrap();
    o.facts.exhausted_until.insert("main".into(), t);
    o.facts.exhausted_until.insert("alt".into(), t);
    let p = plan(&m, &o, "failover", now());
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.refused[0].object.spoken().to_string(), "accounts");
    assert!(p.refused[0].reason.contains("2026-11-21T07:00:00Z"));
}

#[test]
fn planner_should_prefer_the_persisted_active_account_while_available() {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    o.facts.family_mut(CLAUDE).active_account = Some("alt".into());
    // Fail-back (the default, `idle`) returns to the preferred account …
    let p = plan(&m, &o, "failover", now());
    let Action::Session(SessionAction::CreateSession { session, .. }) = &p.actions[0] else {
        panic!();
    };
    assert_eq!(session.account, "main");
    // … `never` stays where it is.
    let text = format!(
        "{POOL_AND_DEDICATED}---\napiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: c}}\nspec: {{quota: {{failback: never}}}}\n"
    );
    let p = plan(&manifests(&text), &o, "failover", now());
    let Action::Session(SessionAction::CreateSession { session, .. }) = &p.actions[0] else {
        panic!();
    };
    assert_eq!(session.account, "alt");
}

#[test]
fn planner_should_start_no_session_under_an_account_with_broken_shared_state() {
    let text = format!(
        "{POOL_AND_DEDICATED}---\napiVersion: failover/v1alpha1\nkind: SharedState\nmetadata: {{name: s}}\nspec: {{target: /s}}\n"
    );
    let m = manifests(&text);
    let mut o = observed();
    home_dirs(&mut o, &m);
    o.entries
        .insert("/h/main/projects".into(), crate::observe::Entry::File);
    let p = plan(&m, &o, "failover", now());
    assert!(created(&p).is_empty(), "{:?}", p.actions);
    assert!(
        p.refused
            .iter()
            .any(|r| r.object.spoken().to_string() == "account main"),
        "{:?}",
        p.refused
    );
    assert!(
        p.refused
            .iter()
            .any(|r| r.object.spoken().to_string() == "/h/main/projects"),
        "{:?}",
        p.refused
    );
    // The other account's links are still created.
    assert!(p.actions.iter().any(
        |a| matches!(a, Action::Fs(FsAction::CreateLink { link, .. }) if link.starts_with("/h/alt"))
    ));
}

#[test]
fn a_moved_task_should_resume_its_own_conversation_when_the_agent_reported_none() {
    // Codex reports no conversation when it starts: its thread is the task's, known from
    // the facts (a report folded) or this round's rollout.
    let m = manifests(POOL_AND_DEDICATED);
    for from_rollout in [false, true] {
        let mut o = observed();
        add(&mut o, session("ccl-auto-11", "failover", "main", 100));
        let thread = (
            "t1".to_owned(),
            PathBuf::from("/h/main/sessions/x-t1.jsonl"),
        );
        let mut t = task_facts("ccl-auto-11");
        if from_rollout {
            o.turns.insert(
                t.file.clone(),
                crate::observe::TaskTurn {
                    conversation: thread.clone(),
                    turn: None,
                    usage: None,
                },
            );
        } else {
            t.conversation = Some(thread.clone());
        }
        claimed(&mut o, "ccl-auto-11", t);
        main_exhausted(&mut o);
        let p = plan(&m, &o, "failover", now());
        let moved = p.actions.iter().find_map(|a| match a {
            Action::Session(SessionAction::MoveSession {
                session,
                conversation,
                resume,
                ..
            }) if session.name == "ccl-auto-11" => Some((conversation.clone(), resume.is_some())),
            _ => None,
        });
        assert_eq!(
            moved,
            Some((Some(thread), true)),
            "from the rollout: {from_rollout}"
        );
    }
}

#[test]
fn a_dedicated_codex_session_should_move_with_the_thread_its_rollouts_show() {
    // Codex reports no conversation and a dedicated session has no task: its thread is
    // the newest rollout of its folder (observed); with none yet it starts afresh, and
    // with another session in its folder it stays, saying why.
    use crate::observe::CodexThread;
    let m = manifests(POOL_AND_DEDICATED);
    let rollout = PathBuf::from("/h/main/sessions/2026/11/21/rollout-x-t1.jsonl");
    let cases = [
        (
            CodexThread::Held {
                thread: "t1".into(),
                rollout: rollout.clone(),
            },
            Some((Some(("t1".to_owned(), rollout.clone())), true)),
        ),
        (CodexThread::NoTurnYet, Some((None, false))),
        (
            CodexThread::Ambiguous {
                with: vec!["other".into()],
            },
            None,
        ),
    ];
    for (thread, want) in cases {
        let mut o = observed();
        add(&mut o, session("ccl-1-x", "failover", "main", 100));
        o.codex_threads.insert("ccl-1-x".into(), thread.clone());
        main_exhausted(&mut o);
        let p = plan(&m, &o, "failover", now());
        let moved = p.actions.iter().find_map(|a| match a {
            Action::Session(SessionAction::MoveSession {
                session,
                conversation,
                resume,
                ..
            }) if session.name == "ccl-1-x" => Some((conversation.clone(), resume.is_some())),
            _ => None,
        });
        assert_eq!(moved, want, "{thread:?}");
        let refused: Vec<&str> = p.refused.iter().map(|r| r.reason.as_str()).collect();
        match thread {
            CodexThread::Ambiguous { .. } => assert!(
                refused
                    .iter()
                    .any(|r| r.contains("cannot be told from that of other")),
                "{refused:?}"
            ),
            _ => assert!(refused.is_empty(), "{refused:?}"),
        }
    }
}

#[test]
fn a_session_to_resume_without_a_known_conversation_should_be_refused_not_moved() {
    // A dedicated agent that reported no conversation (its profile's reports off, its
    // report not folded yet): moved, the person's conversation would be lost, and the
    // act would reject the move every round. One refusal, journaled once, instead.
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    add(&mut o, session("ccl-1-x", "failover", "main", 100));
    main_exhausted(&mut o);
    let p = plan(&m, &o, "failover", now());
    assert!(
        !p.actions.iter().any(|a| matches!(
            a,
            Action::Session(SessionAction::MoveSession { session, .. }) if session.name == "ccl-1-x"
        )),
        "{:?}",
        p.actions
    );
    let refused: Vec<&str> = p.refused.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        refused,
        [
            "runs under account main, wants alt; its agent reported no conversation to resume, \
          so it is left as it is"
        ]
    );
}
