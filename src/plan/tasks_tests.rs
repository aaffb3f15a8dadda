//! The dispatch rules' table tests: which free session gets which waiting task, inboxes
//! taking turns, tries, links rejected, intake held; and the bookkeeping across
//! reconciles.

use super::super::fixtures::*;
use super::super::{Action, Plan, SessionAction, SessionSpec, TaskAction, TaskRef};
use crate::api::Manifests;
use crate::observe::{ActiveTask, InboxState, Observed, Waiting};

const W: &str = "ccl-auto-11";

/// A second inbox of pool `auto`.
const URGENT: &str = "
---
apiVersion: failover/v1alpha1
kind: Inbox
metadata: {name: urgent}
spec: {path: /q/.agent-queue/inbox, pool: auto, workdir: /w}
";

fn at(secs: i64) -> jiff::Timestamp {
    now() + jiff::SignedDuration::from_secs(secs)
}

/// Pool `auto`'s three sessions, ours, idle under `main`, the active account, with the
/// inbox `tasks` and `more` manifests.
fn world(more: &str) -> (Manifests, Observed) {
    let m = manifests(&format!("{POOL_AND_DEDICATED}{INBOX}{more}"));
    let mut o = observed();
    idle_pool(&mut o);
    (m, o)
}

/// An inbox whose waiting tasks are `names`, oldest first; a name ending in `@` is a
/// link.
fn inbox(names: &[&str]) -> InboxState {
    let waiting = names
        .iter()
        .map(|n| Waiting {
            name: n.trim_end_matches('@').into(),
            link: n.ends_with('@'),
        })
        .collect();
    InboxState {
        waiting,
        active: vec![],
        unread: false,
    }
}

/// The dispatches in `p`: `session <- inbox/task (try n)`.
fn dispatched(p: &Plan) -> Vec<String> {
    let each = |a: &Action| match a {
        Action::Task(TaskAction::DispatchTask { task, .. }) => Some(format!(
            "{} <- {}/{} (try {})",
            task.session, task.inbox, task.name, task.attempt
        )),
        Action::Fs(_) | Action::Session(_) | Action::Task(_) => None,
    };
    p.actions.iter().filter_map(each).collect()
}

/// The first dispatch in `p`: its task, and the spec its agent restarts with, if it
/// does.
fn first_dispatch(p: &Plan) -> (&TaskRef, Option<&SessionSpec>) {
    let first = p.actions.iter().find_map(|a| match a {
        Action::Task(TaskAction::DispatchTask { task, restart, .. }) => {
            Some((task, restart.as_ref()))
        }
        Action::Fs(_) | Action::Session(_) | Action::Task(_) => None,
    });
    first.unwrap_or_else(|| panic!("no dispatch: {:?}", p.actions))
}

/// The tasks rejected in `p`: `inbox/name: reason`.
fn rejected(p: &Plan) -> Vec<String> {
    let each = |a: &Action| match a {
        Action::Task(TaskAction::RejectTask {
            inbox,
            name,
            reason,
            ..
        }) => Some(format!("{inbox}/{name}: {reason}")),
        Action::Fs(_) | Action::Session(_) | Action::Task(_) => None,
    };
    p.actions.iter().filter_map(each).collect()
}

#[test]
fn dispatch_should_give_the_oldest_tasks_to_the_lowest_free_sessions() {
    let (m, mut o) = world("");
    o.inboxes
        .insert("tasks".into(), inbox(&["old.md", "new.md"]));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert_eq!(
        dispatched(&p),
        [
            "ccl-auto-11 <- tasks/old.md (try 1)",
            "ccl-auto-12 <- tasks/new.md (try 1)"
        ]
    );
    let (task, restart) = first_dispatch(&p);
    assert_eq!(task.file, crate::tasks::active_name(W, 1, "old.md"));
    assert_eq!(task.account, "main");
    assert!(
        restart.is_none(),
        "the agent is in the inbox's folder already"
    );
}

#[test]
fn dispatch_should_wait_for_a_prompt_just_drawn_to_rest_before_pasting_into_it() {
    let (m, mut o) = world("");
    o.inboxes.insert("tasks".into(), inbox(&["t.md"]));
    // The agents' screens were seen before, starting up: their prompts are new.
    for n in ["ccl-auto-11", "ccl-auto-12", "ccl-auto-13"] {
        o.facts.sessions.entry(n.into()).or_default().screen = Some((1, at(0)));
    }
    let p = plan_with_tasks(&m, &o, "failover", at(1));
    assert!(dispatched(&p).is_empty(), "{:?}", p.actions);
    assert!(
        p.requeue_after
            .is_some_and(|d| d <= super::super::tasks::SETTLE),
        "woken when it has rested: {:?}",
        p.requeue_after
    );
    // Unchanged since: the first free one gets it.
    o.facts = p.facts.clone();
    let rested = at(1) + jiff::SignedDuration::from_millis(500);
    let p = plan_with_tasks(&m, &o, "failover", rested);
    assert_eq!(dispatched(&p), ["ccl-auto-11 <- tasks/t.md (try 1)"]);
}

#[test]
fn dispatch_should_not_wait_for_a_screen_that_never_rests() {
    let (m, mut o) = world("");
    o.inboxes.insert("tasks".into(), inbox(&["t.md"]));
    // Idle at its prompt for two seconds, its screen changing at every look.
    for n in ["ccl-auto-11", "ccl-auto-12", "ccl-auto-13"] {
        let f = o.facts.sessions.entry(n.into()).or_default();
        f.screen = Some((1, at(2)));
        f.idle_since = Some(at(0));
    }
    let p = plan_with_tasks(&m, &o, "failover", at(2));
    assert_eq!(dispatched(&p), ["ccl-auto-11 <- tasks/t.md (try 1)"]);
}

#[test]
fn dispatch_should_take_inboxes_in_turn() {
    let (m, mut o) = world(URGENT);
    o.inboxes
        .insert("tasks".into(), inbox(&["a0.md", "a1.md", "a2.md"]));
    o.inboxes.insert("urgent".into(), inbox(&["b0.md"]));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert_eq!(
        dispatched(&p),
        [
            "ccl-auto-11 <- tasks/a0.md (try 1)",
            "ccl-auto-12 <- urgent/b0.md (try 1)",
            "ccl-auto-13 <- tasks/a1.md (try 1)"
        ],
        "an inbox with nothing left gives its turn on"
    );
    assert_eq!(p.facts.turn.get("auto"), Some(&1), "urgent's turn is next");
    o.facts.turn.insert("auto".into(), 1);
    assert_eq!(
        dispatched(&plan_with_tasks(&m, &o, "failover", at(0))),
        [
            "ccl-auto-11 <- urgent/b0.md (try 1)",
            "ccl-auto-12 <- tasks/a0.md (try 1)",
            "ccl-auto-13 <- tasks/a1.md (try 1)"
        ]
    );
}

#[test]
fn dispatch_should_count_the_tries_a_task_used_before() {
    let (m, mut o) = world("");
    o.inboxes.insert("tasks".into(), inbox(&["t.md"]));
    o.facts.tries.insert("tasks/t.md".into(), 2);
    let reasons = vec!["try 1: died".to_owned(), "try 2: API error".to_owned()];
    o.facts
        .try_reasons
        .insert("tasks/t.md".into(), reasons.clone());
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert_eq!(dispatched(&p), ["ccl-auto-11 <- tasks/t.md (try 3)"]);
    let (task, _) = first_dispatch(&p);
    assert_eq!(task.file, crate::tasks::active_name(W, 3, "t.md"));
    assert_eq!(task.earlier, reasons, "its record lists the earlier tries");
}

#[test]
fn dispatch_should_reject_links_and_never_send_them() {
    let (m, mut o) = world("");
    o.inboxes
        .insert("tasks".into(), inbox(&["link.md@", "t.md"]));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert_eq!(
        rejected(&p),
        [format!("tasks/link.md: {}", crate::tasks::Rejected::Link)]
    );
    assert_eq!(dispatched(&p), ["ccl-auto-11 <- tasks/t.md (try 1)"]);
}

#[test]
fn dispatch_should_hold_intake_while_every_account_is_over_move_at_but_still_reject_links() {
    let (m, mut o) = world(MOVE_AT_95);
    o.inboxes
        .insert("tasks".into(), inbox(&["link.md@", "t.md"]));
    for (account, used) in [("main", 96.0), ("alt", 97.0)] {
        let reading = five_hour(used, at(3600), at(-1), W);
        o.facts.usage.insert(account.into(), reading);
    }
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(dispatched(&p).is_empty(), "{:?}", p.actions);
    assert_eq!(rejected(&p).len(), 1, "{:?}", p.actions);
    let held = journaled(&p).into_iter().find(|(k, _)| k == "intakeHeld");
    assert_eq!(held.map(|(_, e)| e["account"].clone()), Some("main".into()));
    // The window resets: main takes tasks again.
    let p = plan_with_tasks(&m, &o, "failover", at(3601));
    assert_eq!(dispatched(&p), ["ccl-auto-11 <- tasks/t.md (try 1)"]);
}

#[test]
fn no_task_should_be_claimed_while_the_state_folder_cannot_be_written_but_claimed_ones_followed() {
    let (m, mut o) = world("");
    claimed(&mut o, W, task_facts(W));
    let waiting = inbox(&["new.md", "link.md@"]).waiting;
    o.inboxes.get_mut("tasks").unwrap().waiting = waiting;
    let held = plan_held(&m, &o, "failover", at(0), crate::plan::Scope::Tasks, true);
    assert!(dispatched(&held).is_empty(), "{:?}", held.actions);
    assert_eq!(rejected(&held).len(), 1, "a link is still rejected");
    assert!(
        journaled(&held).iter().all(|(k, _)| k != "intakeHeld"),
        "no account is over moveAt: {:?}",
        journaled(&held)
    );
    assert!(
        held.facts.sessions[W].task.is_some(),
        "the claimed task is kept"
    );
    let open = plan_with_tasks(&m, &o, "failover", at(0));
    assert_eq!(dispatched(&open), ["ccl-auto-12 <- tasks/new.md (try 1)"]);
}

#[test]
fn dispatch_should_pass_over_a_session_that_is_not_free() {
    type Setup = fn(&mut Observed);
    let cases: [(&str, Setup); 8] = [
        ("free", |_| {}),
        ("busy on screen", |o| {
            o.screens.insert(W.into(), BUSY_SCREEN.into());
        }),
        ("its agent ran a task", |o| {
            o.facts.sessions.entry(W.into()).or_default().used_pid = Some(100);
        }),
        ("a turn of the person's under way", |o| {
            let f = o.facts.sessions.entry(W.into()).or_default();
            f.turn = Some("p1".into());
        }),
        ("its agent dead", |o| {
            if let Some(s) = o.sessions.get_mut(W) {
                s.pane.dead = true;
            }
        }),
        ("not ours", |o| add(o, session(W, "someone", "main", 100))),
        ("under another account", |o| {
            add(o, session(W, "failover", "alt", 100));
        }),
        ("claimed for another task", |o| {
            let mut state = inbox(&["t.md"]);
            state.active.push(ActiveTask {
                file: crate::tasks::active_name(W, 1, "other.md"),
                session: W.into(),
                attempt: 1,
                task: "other.md".into(),
            });
            o.inboxes.insert("tasks".into(), state);
        }),
    ];
    let (m, mut base) = world("");
    base.sessions.retain(|name, _| name == W);
    base.inboxes.insert("tasks".into(), inbox(&["t.md"]));
    for (case, setup) in cases {
        let mut o = base.clone();
        setup(&mut o);
        let p = plan_with_tasks(&m, &o, "failover", at(0));
        let want: &[&str] = match case {
            "free" => &["ccl-auto-11 <- tasks/t.md (try 1)"],
            _ => &[],
        };
        assert_eq!(dispatched(&p), want, "{case}: {:?}", p.actions);
    }
}

#[test]
fn a_task_for_another_folder_should_start_its_agent_there() {
    let other = INBOX.replace("workdir: /w}", "workdir: /w2}");
    let m = manifests(&format!("{POOL_AND_DEDICATED}{other}"));
    let (_, mut o) = world("");
    o.inboxes.insert("tasks".into(), inbox(&["t.md"]));
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    let spec = first_dispatch(&p).1.expect("a restart");
    assert_eq!(
        (spec.name.as_str(), spec.workdir.as_path()),
        (W, std::path::Path::new("/w2"))
    );
}

#[test]
fn a_used_agent_should_be_started_afresh_once_its_screen_is_quiet() {
    let (m, mut o) = world("");
    let f = o.facts.sessions.entry(W.into()).or_default();
    f.used_pid = Some(100);
    f.screen = Some((super::super::screens::screen_hash(IDLE_SCREEN), at(-2)));
    let recycled = |p: &Plan| {
        p.actions.iter().any(|a| {
            matches!(a, Action::Session(SessionAction::RecycleSession { session, .. }) if session.name == W)
        })
    };
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(!recycled(&p), "its screen changed 2s ago: {:?}", p.actions);
    let p = plan_with_tasks(&m, &o, "failover", at(1));
    assert!(recycled(&p), "{:?}", p.actions);
}

#[test]
fn bookkeeping_should_keep_since_when_a_session_is_idle_and_its_screen_unchanged() {
    let (m, mut o) = world("");
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    let f = &p.facts.sessions[W];
    let idle_hash = super::super::screens::screen_hash(IDLE_SCREEN);
    assert_eq!(
        (f.idle_since, f.screen),
        (Some(at(0)), Some((idle_hash, at(0))))
    );
    o.facts = p.facts;
    let p = plan_with_tasks(&m, &o, "failover", at(30));
    let f = &p.facts.sessions[W];
    assert_eq!(
        (f.idle_since, f.screen),
        (Some(at(0)), Some((idle_hash, at(0))))
    );
    // Busy: not idle, and the screen changed.
    o.facts = p.facts;
    o.screens.insert(W.into(), BUSY_SCREEN.into());
    let p = plan_with_tasks(&m, &o, "failover", at(40));
    let f = &p.facts.sessions[W];
    let busy_hash = super::super::screens::screen_hash(BUSY_SCREEN);
    assert_eq!((f.idle_since, f.screen), (None, Some((busy_hash, at(40)))));
}

#[test]
fn bookkeeping_should_forget_a_task_whose_file_left_active_and_the_facts_of_gone_sessions() {
    let (m, mut o) = world(URGENT);
    o.inboxes.insert("tasks".into(), inbox(&[]));
    o.facts.sessions.entry(W.into()).or_default().task = Some(task_facts(W));
    o.facts.sessions.insert("gone".into(), Default::default());
    let mut named = inbox(&[]);
    let gone_task = crate::tasks::active_name("gone-too", 1, "t.md");
    named.active.push(ActiveTask {
        file: gone_task,
        session: "gone-too".into(),
        attempt: 1,
        task: "t.md".into(),
    });
    o.inboxes.insert("urgent".into(), named);
    o.facts
        .sessions
        .insert("gone-too".into(), Default::default());
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    let f = &p.facts.sessions[W];
    assert_eq!(
        (f.task.is_none(), f.used_pid),
        (true, Some(100)),
        "not fresh"
    );
    assert!(!p.facts.sessions.contains_key("gone"));
    assert!(
        p.facts.sessions.contains_key("gone-too"),
        "a claim names it"
    );
    // An inbox that could not be read says nothing of its tasks.
    o.inboxes.get_mut("tasks").expect("the inbox").unread = true;
    let p = plan_with_tasks(&m, &o, "failover", at(0));
    assert!(p.facts.sessions[W].task.is_some());
}
