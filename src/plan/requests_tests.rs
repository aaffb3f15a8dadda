use super::super::fixtures::*;
use super::*;
use crate::request::Found;

const OWNER: &str = "failover";

fn asked(o: &mut Observed, verb: Verb, object: ObjectRef) -> std::path::PathBuf {
    let path = std::path::PathBuf::from(format!("/s/requests/{}.json", o.requests.len()));
    o.requests.push(Found {
        path: path.clone(),
        request: Ok(Request {
            verb,
            object,
            at: now(),
        }),
    });
    path
}

/// Pool `auto` of [`POOL_AND_DEDICATED`] and its inbox, its three sessions idle under
/// `main`; ccl-auto-11's agent reported holding conversation `c-11`, whose transcript is
/// there.
fn pool() -> (Manifests, Observed) {
    let m = manifests(&format!("{POOL_AND_DEDICATED}{INBOX}"));
    let mut o = observed();
    home_dirs(&mut o, &m);
    idle_pool(&mut o);
    add(&mut o, session("ccl-1-x", OWNER, "main", 200));
    o.screens.insert("ccl-1-x".into(), IDLE_SCREEN.into());
    o.facts
        .sessions
        .entry("ccl-auto-11".into())
        .or_default()
        .agent = Some(crate::state::AgentFacts {
        pid: 100,
        conversation: "c-11".into(),
        transcript: "/h/main/projects/-w/c-11.jsonl".into(),
        unheard: false,
    });
    o.transcripts
        .insert("/h/main/projects/-w/c-11.jsonl".into());
    (m, o)
}

fn requested(p: &Plan) -> Vec<&Action> {
    p.actions
        .iter()
        .filter(|a| a.to_string().contains(REQUESTED))
        .collect()
}

#[test]
fn a_restart_should_stop_the_agent_and_resume_the_conversation_it_holds() {
    let (m, mut o) = pool();
    let path = asked(
        &mut o,
        Verb::Restart,
        ObjectRef::Session("ccl-auto-11".into()),
    );
    let p = plan_with_tasks(&m, &o, OWNER, now());
    let [
        Action::Session(SessionAction::RestartSession {
            session,
            pane,
            resume,
            live,
            ..
        }),
    ] = requested(&p)[..]
    else {
        panic!("{:#?}", p.actions);
    };
    assert_eq!(pane, "%100");
    assert!(*live, "the running agent is stopped first");
    assert_eq!(resume.as_deref(), Some("c-11"));
    assert_eq!(session.account, "main");
    assert!(
        session
            .command
            .ends_with(&["--resume".to_owned(), "c-11".to_owned()]),
        "{:?}",
        session.command
    );
    assert_eq!(p.consumed, [path]);
    assert!(p.refused.is_empty(), "{:?}", p.refused);
}

#[test]
fn a_restart_without_a_transcript_should_start_afresh() {
    let (m, mut o) = pool();
    o.transcripts.clear();
    asked(&mut o, Verb::Restart, ObjectRef::Session("ccl-1-x".into()));
    let p = plan_with_tasks(&m, &o, OWNER, now());
    let [
        Action::Session(SessionAction::RestartSession {
            resume, session, ..
        }),
    ] = requested(&p)[..]
    else {
        panic!("{:#?}", p.actions);
    };
    assert_eq!(*resume, None);
    assert_eq!(session.role, Role::Dedicated);
}

#[test]
fn a_person_s_session_or_none_should_be_refused_and_the_request_consumed() {
    let (m, mut o) = pool();
    add(&mut o, session("ccl-auto-14", "", "", 300));
    let mine = asked(
        &mut o,
        Verb::Restart,
        ObjectRef::Session("ccl-auto-14".into()),
    );
    let none = asked(&mut o, Verb::Restart, ObjectRef::Session("nope".into()));
    let p = plan_with_tasks(&m, &o, OWNER, now());
    assert!(requested(&p).is_empty(), "{:#?}", p.actions);
    assert_eq!(p.consumed, [mine, none]);
    let reasons: Vec<String> = p
        .refused
        .iter()
        .map(|r| format!("{}: {}", r.object.spoken(), r.reason))
        .collect();
    assert!(
        reasons[0].starts_with("session ccl-auto-14: is not ours"),
        "{reasons:?}"
    );
    assert!(
        reasons[0].ends_with(&format!("(asked at {})", now())),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("session nope: does not run"),
        "{reasons:?}"
    );
}

#[test]
fn a_restart_should_wait_while_a_task_s_text_is_on_its_way() {
    let (m, mut o) = pool();
    let mut t = task_facts("ccl-auto-11");
    t.stage = crate::state::Stage::Pasted;
    claimed(&mut o, "ccl-auto-11", t);
    asked(
        &mut o,
        Verb::Restart,
        ObjectRef::Session("ccl-auto-11".into()),
    );
    let p = plan_with_tasks(&m, &o, OWNER, now());
    assert!(requested(&p).is_empty(), "{:#?}", p.actions);
    assert!(p.consumed.is_empty(), "kept for the next round");
    assert!(p.requeue_after.is_some());
}

#[test]
fn a_return_should_stop_the_turn_and_requeue_the_task_with_no_try_used() {
    let (m, mut o) = pool();
    claimed(&mut o, "ccl-auto-11", task_facts("ccl-auto-11"));
    o.screens.insert("ccl-auto-11".into(), BUSY_SCREEN.into());
    let path = asked(
        &mut o,
        Verb::Return,
        ObjectRef::Task {
            inbox: None,
            name: "t.md".into(),
        },
    );
    let p = plan_with_tasks(&m, &o, OWNER, now());
    let touching: Vec<&Action> = p
        .actions
        .iter()
        .filter(|a| match a {
            Action::Session(s) => s.name() == "ccl-auto-11",
            Action::Task(t) => t.key().name == "t.md",
            Action::Fs(_) => false,
        })
        .collect();
    let [
        Action::Session(SessionAction::RecycleSession { pane, session, .. }),
        Action::Task(TaskAction::RequeueTask {
            task,
            failed: false,
            delivered: false,
            ..
        }),
    ] = touching[..]
    else {
        panic!("{:#?}", p.actions);
    };
    assert_eq!(pane, "%100");
    assert_eq!(
        session.workdir,
        std::path::Path::new("/w"),
        "a fresh pool agent"
    );
    assert_eq!(
        (task.inbox.as_str(), task.session.as_str()),
        ("tasks", "ccl-auto-11")
    );
    assert_eq!(p.consumed, [path]);
}

#[test]
fn a_return_of_a_task_that_does_not_run_should_be_refused() {
    let (m, mut o) = pool();
    o.inboxes.insert("tasks".into(), waiting(1));
    asked(&mut o, Verb::Return, ObjectRef::task("tasks", "t0.md"));
    asked(
        &mut o,
        Verb::Return,
        ObjectRef::Session("ccl-auto-11".into()),
    );
    let p = plan_with_tasks(&m, &o, OWNER, now());
    assert!(requested(&p).is_empty(), "{:#?}", p.actions);
    assert_eq!(p.consumed.len(), 2);
    assert!(
        p.refused[0].reason.starts_with("waits in inbox tasks"),
        "{:?}",
        p.refused
    );
    assert!(
        p.refused[1].reason.starts_with("cannot return"),
        "{:?}",
        p.refused
    );
}

#[test]
fn requests_should_be_planned_by_the_controller_only() {
    let (m, mut o) = pool();
    asked(
        &mut o,
        Verb::Restart,
        ObjectRef::Session("ccl-auto-11".into()),
    );
    let p = plan(&m, &o, OWNER, now());
    assert!(requested(&p).is_empty() && p.consumed.is_empty());
    let (alone, done) = plan_alone(&m, &o, OWNER, &o.requests[0].request.clone().unwrap());
    assert!(done);
    assert_eq!(alone.actions.len(), 1, "{:#?}", alone.actions);
}
