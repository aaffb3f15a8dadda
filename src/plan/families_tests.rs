//! Pools over several families, table tests: the preferred family while it has an
//! account, idle sessions to the next one when it has none, a cut task handed off
//! (decided, saved, then carried out, its text after the note), the return at idle
//! points, dedicated sessions waiting.

use super::super::fixtures::*;
use crate::api::{AgentKind, HAND_OFF_NOTE};
use crate::observe::{Observed, Session};
use crate::plan::{Action, Event, Plan, SessionAction, TaskAction};
use crate::state::Stage;

const CODEX: AgentKind = AgentKind::Codex;
const CODEX_IDLE: &str = include_str!("../../tests/fixtures/codex/idle.txt");

/// Claude accounts `a` (and `b` with `two`), Codex `x`; pool `mix` of two over
/// `[claude, codex]` fed by inbox `tasks`; dedicated `desk` on Claude.
fn mixed(two: bool) -> crate::api::Manifests {
    let b = if two {
        "
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: b}
spec: {home: /h/b, priority: 1}"
    } else {
        ""
    };
    manifests(&format!(
        "
apiVersion: failover/v1alpha1
kind: Account
metadata: {{name: a}}
spec: {{home: /h/a}}{b}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {{name: x}}
spec: {{home: /h/x, agent: codex}}
---
apiVersion: failover/v1alpha1
kind: Pool
metadata: {{name: auto}}
spec: {{prefix: m-, min: 2, max: 2, workdir: /w, agents: [claude, codex]}}
---
apiVersion: failover/v1alpha1
kind: DedicatedSession
metadata: {{name: desk}}
spec: {{workdir: /w/desk}}
{INBOX}"
    ))
}

/// The mixed pool's sessions and the desk, ours, idle under `account` (Claude's or
/// Codex's screen by its family); both families' ledgers set.
fn world(account: &str) -> Observed {
    let mut o = observed();
    let screen = if account == "x" {
        CODEX_IDLE
    } else {
        IDLE_SCREEN
    };
    for (i, n) in ["m-0", "m-1"].iter().enumerate() {
        add(&mut o, session(n, "failover", account, 100 + i as u32));
        o.screens.insert((*n).into(), screen.into());
    }
    let claude = if account == "x" { "a" } else { account };
    add(&mut o, session("desk", "failover", claude, 200));
    o.screens.insert("desk".into(), IDLE_SCREEN.into());
    o.facts.family_mut(CLAUDE).active_account = Some("a".into());
    o.facts.family_mut(CODEX).active_account = Some("x".into());
    o
}

fn exhaust(o: &mut Observed, account: &str) {
    o.facts
        .exhausted_until
        .insert(account.into(), now() + jiff::SignedDuration::from_hours(1));
}

/// The session actions of a plan: `(action, session, account)`.
fn session_actions(p: &Plan) -> Vec<(&'static str, String, String)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Session(s) => {
                let (name, account) = match s {
                    SessionAction::CreateSession { session, .. }
                    | SessionAction::RestartSession { session, .. }
                    | SessionAction::MoveSession { session, .. }
                    | SessionAction::RecycleSession { session, .. } => {
                        (session.name.clone(), session.account.clone())
                    }
                    SessionAction::DeleteSession { name, .. } => (name.clone(), String::new()),
                };
                Some((s.into(), name, account))
            }
            _ => None,
        })
        .collect()
}

fn recycled(p: &Plan) -> Vec<(String, String)> {
    session_actions(p)
        .into_iter()
        .filter(|(a, _, _)| *a == "recycleSession")
        .map(|(_, n, acc)| (n, acc))
        .collect()
}

fn family_changes(p: &Plan) -> Vec<(String, AgentKind, bool)> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::FamilyChanged {
                session, to, back, ..
            } => Some((session.clone(), *to, *back)),
            _ => None,
        })
        .collect()
}

/// How many hand-offs the task of session `name` has, as the plan's facts say.
fn hand_offs(p: &Plan, name: &str) -> usize {
    p.facts.sessions[name]
        .task
        .as_ref()
        .map_or(0, |t| t.hand_offs.len())
}

/// Session `name` works on task `t.md`, its turn at the limit (the agent's report).
fn cut(o: &mut Observed, name: &str) {
    let mut t = task_facts(name);
    t.at_limit = true;
    t.conversation = Some(("c-1".into(), "/h/a/projects/w/c-1.jsonl".into()));
    claimed(o, name, t);
}

#[test]
fn planner_should_run_a_pool_over_several_families_under_the_preferred_one_while_it_has_an_account()
{
    let m = mixed(false);
    let p = plan(&m, &observed(), "failover", now());
    let made = session_actions(&p);
    assert_eq!(
        made,
        [
            ("createSession", "m-0".into(), "a".into()),
            ("createSession", "m-1".into(), "a".into()),
            ("createSession", "desk".into(), "a".into()),
        ]
    );
    let Some(Action::Session(SessionAction::CreateSession { session, .. })) = p
        .actions
        .iter()
        .find(|a| matches!(a, Action::Session(SessionAction::CreateSession { session, .. }) if session.name == "m-0"))
    else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(session.command[0], "claude");
}

#[test]
fn planner_should_restart_idle_pool_sessions_under_the_next_family_when_the_preferred_is_exhausted()
{
    let m = mixed(false);
    let mut o = world("a");
    exhaust(&mut o, "a");
    let p = plan_with_tasks(&m, &o, "failover", now());
    assert_eq!(
        recycled(&p),
        [("m-0".into(), "x".into()), ("m-1".into(), "x".into())],
        "{:?}",
        p.actions
    );
    let Some(Action::Session(SessionAction::RecycleSession { session, .. })) = p.actions.first()
    else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(session.command[0], "codex", "a fresh Codex agent");
    assert_eq!(session.env["CODEX_HOME"], "/h/x");
    assert_eq!(
        family_changes(&p),
        [("m-0".into(), CODEX, false), ("m-1".into(), CODEX, false)]
    );
    // The dedicated session stays and says it waits.
    assert!(session_actions(&p).iter().all(|(_, n, _)| n != "desk"));
    // The refusal says what goes on instead, not that tasks wait.
    assert_eq!(
        refusals(&p),
        [format!(
            "claude-code: every account is exhausted; the first resets at {until} (a until \
             {until}); no claude-code session is started; pool auto runs codex meanwhile; its \
             dedicated sessions wait for a claude-code account",
            until = now() + jiff::SignedDuration::from_hours(1)
        )]
    );
}

/// What the plan refuses about the accounts.
fn refusals(p: &Plan) -> Vec<String> {
    p.refused
        .iter()
        .filter(|r| r.object.spoken().to_string() == "accounts")
        .map(|r| r.reason.clone())
        .collect()
}

#[test]
fn planner_should_say_tasks_wait_only_once_every_family_of_their_pool_is_used_up() {
    let m = mixed(false);
    let mut o = world("x");
    exhaust(&mut o, "a");
    exhaust(&mut o, "x");
    let p = plan_with_tasks(&m, &o, "failover", now());
    let said = refusals(&p);
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(
        said[0].starts_with("claude-code: every account is exhausted")
            && said[0].ends_with(
                "no claude-code session is started; the tasks of pool auto wait in their \
                 inboxes; its dedicated sessions wait for a claude-code account"
            ),
        "{said:?}"
    );
    assert!(
        said[1].starts_with("codex: every account is exhausted")
            && said[1].ends_with(
                "no codex session is started; the tasks of pool auto wait in their inboxes"
            ),
        "{said:?}"
    );
}

#[test]
fn planner_should_keep_a_dedicated_session_in_its_family_and_say_it_waits() {
    let m = mixed(false);
    let mut o = world("a");
    exhaust(&mut o, "a");
    let p = plan_with_tasks(&m, &o, "failover", now());
    let waits: Vec<String> = p
        .events
        .iter()
        .filter(|e| matches!(e, Event::SessionWaits { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        waits,
        [
            "waits for a claude-code account until 07:00 UTC (a dedicated session never changes family)"
        ]
    );
    assert!(session_actions(&p).iter().all(|(_, n, _)| n != "desk"));
}

#[test]
fn planner_should_leave_a_pool_session_in_its_family_while_its_task_runs() {
    let m = mixed(false);
    let mut o = world("a");
    exhaust(&mut o, "a");
    claimed(&mut o, "m-0", task_facts("m-0"));
    o.screens.insert("m-0".into(), BUSY_SCREEN.into());
    let p = plan_with_tasks(&m, &o, "failover", now());
    assert_eq!(
        recycled(&p),
        [("m-1".into(), "x".into())],
        "{:?}",
        p.actions
    );
    assert_eq!(hand_offs(&p, "m-0"), 0);
}

#[test]
fn planner_should_carry_a_cut_task_on_in_its_own_family_while_it_has_an_account() {
    let m = mixed(true);
    let mut o = world("a");
    exhaust(&mut o, "a");
    cut(&mut o, "m-0");
    let p = plan_with_tasks(&m, &o, "failover", now());
    let moves: Vec<_> = session_actions(&p)
        .into_iter()
        .filter(|(a, _, _)| *a == "moveSession")
        .collect();
    assert!(
        moves.contains(&("moveSession", "m-0".into(), "b".into())),
        "{:?}",
        p.actions
    );
    assert!(family_changes(&p).is_empty(), "{:?}", p.events);
    assert_eq!(hand_offs(&p, "m-0"), 0);
}

#[test]
fn planner_should_hand_off_a_cut_task_when_its_family_is_exhausted() {
    let m = mixed(false);
    let mut o = world("a");
    exhaust(&mut o, "a");
    cut(&mut o, "m-0");
    // The hand-off is decided into the facts and journaled; nothing is done to the
    // session until the facts holding it are saved.
    let p = plan_with_tasks(&m, &o, "failover", now());
    let t = p.facts.sessions["m-0"].task.clone().unwrap();
    assert_eq!(t.hand_offs.len(), 1);
    assert_eq!((t.hand_offs[0].from, t.hand_offs[0].to), (CLAUDE, CODEX));
    assert_eq!(t.hand_offs[0].account, "a");
    assert_eq!(t.stage, Stage::Starting);
    assert!(t.conversation.is_none() && !t.at_limit);
    let handed: Vec<_> = journaled(&p)
        .into_iter()
        .filter(|(k, _)| k == "handedOff")
        .collect();
    assert_eq!(handed.len(), 1, "{:?}", p.events);
    assert_eq!(handed[0].1["task"], "tasks/t.md");
    assert!(
        session_actions(&p).iter().all(|(_, n, _)| n != "m-0"),
        "{:?}",
        p.actions
    );
    // The saved facts hold it: the session restarts fresh under Codex, in the task's
    // folder, and no second hand-off is journaled.
    o.facts = p.facts.clone();
    let p = plan_with_tasks(&m, &o, "failover", now());
    assert!(
        recycled(&p).contains(&("m-0".into(), "x".into())),
        "{:?}",
        p.actions
    );
    assert!(journaled(&p).iter().all(|(k, _)| k != "handedOff"));
    // Its fresh Codex agent at its prompt gets the note, then the task's own text.
    o.facts = p.facts.clone();
    let fresh = Session {
        ..session("m-0", "failover", "x", 300)
    };
    add(&mut o, fresh);
    o.screens.insert("m-0".into(), CODEX_IDLE.into());
    let p = plan_with_tasks(&m, &o, "failover", now());
    let pastes = |p: &Plan| {
        p.actions
            .iter()
            .filter(|a| matches!(a, Action::Task(TaskAction::PasteTask { .. })))
            .count()
    };
    assert_eq!(
        pastes(&p),
        0,
        "a prompt just drawn rests first: {:?}",
        p.actions
    );
    o.facts = p.facts.clone();
    let rested = now().checked_add(crate::plan::tasks::SETTLE).unwrap();
    let p = plan_with_tasks(&m, &o, "failover", rested);
    let paste = p.actions.iter().find_map(|a| match a {
        Action::Task(TaskAction::PasteTask { task, note, .. }) => Some((task, note)),
        _ => None,
    });
    let Some((task, note)) = paste else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(note.as_deref(), Some(HAND_OFF_NOTE));
    assert_eq!(task.hand_offs.len(), 1, "the record counts it");
    assert!(
        task.hand_offs[0].contains("claude-code"),
        "{:?}",
        task.hand_offs
    );
}

#[test]
fn planner_should_decide_a_hand_off_lost_before_its_save_again_and_never_act_on_it_unsaved() {
    let m = mixed(false);
    let mut o = world("a");
    exhaust(&mut o, "a");
    cut(&mut o, "m-0");
    // The controller died before saving: the next round sees the old facts, decides
    // again, and still leaves the session alone.
    for _ in 0..2 {
        let p = plan_with_tasks(&m, &o, "failover", now());
        assert_eq!(hand_offs(&p, "m-0"), 1);
        assert!(session_actions(&p).iter().all(|(_, n, _)| n != "m-0"));
    }
}

#[test]
fn planner_should_type_nothing_into_the_old_agent_of_a_session_it_hands_a_task_to_another_family() {
    let m = mixed(false);
    let mut o = world("a");
    exhaust(&mut o, "a");
    cut(&mut o, "m-0");
    o.facts = plan_with_tasks(&m, &o, "failover", now()).facts;
    // The old agent's screen reads idle at its prompt (its limit line gone): the task's
    // text waits for the new agent.
    o.screens.insert("m-0".into(), IDLE_SCREEN.into());
    let p = plan_with_tasks(&m, &o, "failover", now());
    assert!(
        recycled(&p).contains(&("m-0".into(), "x".into())),
        "{:?}",
        p.actions
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::Task(t) if t.types())),
        "{:?}",
        p.actions
    );
}

/// `mixed(false)` with a second Codex account `y`.
fn with_y() -> crate::api::Manifests {
    let mut m = mixed(false);
    let mut y = m.accounts.iter().find(|a| a.name == "x").unwrap().clone();
    y.name = "y".into();
    y.spec.home = "/h/y".into();
    y.spec.priority = 1;
    m.accounts.push(y);
    m
}

#[test]
fn planner_should_resume_a_codex_task_of_a_mixed_pool_with_codexs_resume_arguments() {
    let m = with_y();
    let mut o = world("x");
    exhaust(&mut o, "a");
    exhaust(&mut o, "x");
    let mut t = task_facts("m-0");
    t.at_limit = true;
    t.conversation = Some(("th-1".into(), "/h/x/sessions/2026/11/21/r.jsonl".into()));
    claimed(&mut o, "m-0", t);
    let p = plan_with_tasks(&m, &o, "failover", now());
    let resume = p.actions.iter().find_map(|a| match a {
        Action::Session(SessionAction::MoveSession {
            session, resume, ..
        }) if session.name == "m-0" => Some((session.account.clone(), resume.clone())),
        _ => None,
    });
    assert_eq!(
        resume,
        Some((
            "y".into(),
            Some(vec!["resume".into(), "{sessionId}".into()])
        )),
        "{:?}",
        p.actions
    );
    assert_eq!(hand_offs(&p, "m-0"), 0, "its family still has y");
}

#[test]
fn planner_should_bring_a_session_gone_with_its_server_back_in_the_family_its_task_ran_in() {
    let m = mixed(false);
    let mut o = world("x");
    // Codex ran the task when last seen; the tmux server died; Claude is usable again.
    o.sessions.remove("m-0");
    let mut t = task_facts("m-0");
    t.conversation = Some(("th-1".into(), "/h/x/sessions/2026/11/21/r.jsonl".into()));
    claimed(&mut o, "m-0", t);
    o.facts.sessions.get_mut("m-0").unwrap().kind = Some(CODEX);
    o.transcripts
        .insert("/h/x/sessions/2026/11/21/r.jsonl".into());
    let p = plan_with_tasks(&m, &o, "failover", now());
    let created = p.actions.iter().find_map(|a| match a {
        Action::Session(SessionAction::CreateSession { session, resume })
            if session.name == "m-0" =>
        {
            Some((
                session.account.clone(),
                session.command.clone(),
                resume.clone(),
            ))
        }
        _ => None,
    });
    let Some((account, command, resume)) = created else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(account, "x");
    assert_eq!(command.last().map(String::as_str), Some("th-1"));
    assert_eq!(command[command.len() - 2], "resume");
    assert_eq!(resume.as_deref(), Some("th-1"));
}

#[test]
fn planner_should_put_no_note_before_a_handed_off_task_when_the_inbox_wants_none() {
    let text = format!(
        "{}\n---\napiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: quiet}}\nspec: {{path: /q/.agent-queue/inbox, pool: auto, workdir: /w, handOffNote: ''}}\n",
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {name: a}\nspec: {home: /h/a}\n---\napiVersion: failover/v1alpha1\nkind: Account\nmetadata: {name: x}\nspec: {home: /h/x, agent: codex}\n---\napiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {name: auto}\nspec: {prefix: m-, min: 1, max: 1, workdir: /w, agents: [claude, codex]}"
    );
    let m = manifests(&text);
    assert_eq!(m.inboxes[0].spec.hand_off_note, "");
    assert_eq!(m.pools[0].spec.agent, "claude", "the preferred profile");
}

#[test]
fn planner_should_return_idle_sessions_to_the_preferred_family_once_it_is_usable() {
    let m = mixed(false);
    let mut o = world("x");
    // m-1 still works on a task under Codex: it returns after it.
    claimed(&mut o, "m-1", task_facts("m-1"));
    let p = plan_with_tasks(&m, &o, "failover", now());
    assert_eq!(
        recycled(&p),
        [("m-0".into(), "a".into())],
        "{:?}",
        p.actions
    );
    assert_eq!(family_changes(&p), [("m-0".into(), CLAUDE, true)]);
    let said = p
        .events
        .iter()
        .find(|e| matches!(e, Event::FamilyChanged { .. }))
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        said.starts_with("returns from codex to claude-code"),
        "{said}"
    );
}

#[test]
fn planner_should_hand_new_tasks_to_the_next_family_while_the_preferred_is_exhausted() {
    let m = mixed(false);
    let mut o = world("x");
    exhaust(&mut o, "a");
    o.inboxes.insert("tasks".into(), waiting(3));
    let p = plan_with_tasks(&m, &o, "failover", now());
    let to: Vec<(String, String)> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Task(TaskAction::DispatchTask { task, .. }) => {
                Some((task.session.clone(), task.account.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        to,
        [("m-0".into(), "x".into()), ("m-1".into(), "x".into())],
        "{:?}",
        p.actions
    );
    assert!(recycled(&p).is_empty(), "{:?}", p.actions);
}

#[test]
fn a_handed_off_task_back_in_its_inbox_should_carry_its_hand_off_and_note_to_its_next_claim() {
    let m = mixed(false);
    let mut o = world("x");
    exhaust(&mut o, "a");
    let mut t = task_facts("m-0");
    t.hand_offs.push(crate::state::HandOff {
        from: CLAUDE,
        account: "a".into(),
        to: CODEX,
        at: now(),
    });
    claimed(&mut o, "m-0", t.clone());
    // Its session died with its server: the task goes back to its inbox (a try used).
    let requeue = Action::Task(TaskAction::RequeueTask {
        task: crate::plan::TaskRef {
            inbox: "tasks".into(),
            path: "/p/.agent-queue/inbox".into(),
            name: "t.md".into(),
            file: t.file.clone(),
            session: "m-0".into(),
            account: "x".into(),
            attempt: 1,
            started: None,
            earlier: vec![],
            hand_offs: vec![],
        },
        reason: "session m-0 died while working on it".into(),
        failed: false,
        delivered: true,
    });
    let mut facts = o.facts.clone();
    crate::plan::record(&mut facts, &requeue, &Ok(crate::plan::Outcome::Done), now());
    assert!(facts.sessions["m-0"].task.is_none());
    assert_eq!(facts.hand_offs["tasks/t.md"], t.hand_offs);
    // Claimed again by an idle Codex session in its folder: pasted at once, the note
    // first, and the record still lists the hand-off.
    o.facts = facts;
    o.inboxes.insert(
        "tasks".into(),
        crate::observe::InboxState {
            waiting: vec![crate::observe::Waiting {
                name: "t.md".into(),
                link: false,
            }],
            active: vec![],
            unread: false,
        },
    );
    let p = plan_with_tasks(&m, &o, "failover", now());
    let dispatch = p.actions.iter().find(
        |a| matches!(a, Action::Task(TaskAction::DispatchTask { task, .. }) if task.name == "t.md"),
    );
    let Some(
        action @ Action::Task(TaskAction::DispatchTask {
            task,
            note,
            restart,
            ..
        }),
    ) = dispatch
    else {
        panic!("{:?}", p.actions)
    };
    assert!(restart.is_none(), "{restart:?}");
    assert_eq!(note.as_deref(), Some(HAND_OFF_NOTE));
    assert_eq!(task.hand_offs.len(), 1, "{:?}", task.hand_offs);
    // The claim's facts carry it on, and the waiting list forgets it.
    let mut facts = p.facts.clone();
    crate::plan::record(
        &mut facts,
        action,
        &Ok(crate::plan::Outcome::Sent(1)),
        now(),
    );
    let claimed = facts.sessions[&task.session].task.as_ref().unwrap();
    assert_eq!(claimed.hand_offs, t.hand_offs);
    assert!(facts.hand_offs.is_empty(), "{:?}", facts.hand_offs);
}
