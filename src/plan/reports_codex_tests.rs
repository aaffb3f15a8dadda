//! Codex's word on a task's turn: its `notify` report ends the turn of the task's
//! thread and prompt only; its rollout's `task_complete` at the usage limit counts the
//! limit once; its `token_count` is the account's use.

use super::super::fixtures::*;
use super::super::{Action, Plan};
use crate::api::AgentKind;
use crate::conversation::{Turn, TurnEnd, codex::USAGE_LIMIT};
use crate::observe::{Observed, TaskTurn};
use crate::plan::TaskAction;
use crate::report::{Event, Report, Usage, Window, text_hash};
use crate::state::Stage;

const PID: u32 = 100;
const W: &str = "cx-0";
const THREAD: &str = "01a2491a-3bf7-7d30-ace9-5b4397d89eb8";
const TITLE_THREAD: &str = "01a2491a-7c00-7580-bb27-92afae4f4b73";
const ROLLOUT: &str = "/h/x/sessions/2026/11/21/rollout-2026-11-21T05-59-58-01a2491a-3bf7-7d30-ace9-5b4397d89eb8.jsonl";

const BUSY: &str = "› do it\n\n• Working (3s • esc to interrupt)\n\n› Ask Codex to do anything\n";

fn at(secs: i64) -> jiff::Timestamp {
    now() + jiff::SignedDuration::from_secs(secs)
}

/// A Codex pool of one, busy on task `t.md` (text "do it"), submitted a second ago.
fn world() -> (crate::api::Manifests, Observed) {
    let m = manifests(&format!("{CODEX_POOL}{INBOX}"));
    let mut o = observed();
    add(&mut o, session(W, "failover", "x", PID));
    o.facts.family_mut(AgentKind::Codex).active_account = Some("x".into());
    o.screens.insert(W.into(), BUSY.into());
    let mut t = task_facts(W);
    t.stage = Stage::Submitted(1);
    t.expect = Some(text_hash("do it"));
    t.pasted = Some(at(-2));
    t.since = at(-1);
    claimed(&mut o, W, t);
    (m, o)
}

/// What the rollout shows of the task's turn.
fn rollout(o: &mut Observed, end: Option<TurnEnd>, usage: Option<Usage>) {
    let file = o.facts.sessions[W].task.as_ref().unwrap().file.clone();
    o.turns.insert(
        file,
        TaskTurn {
            conversation: (THREAD.into(), ROLLOUT.into()),
            turn: Some(Turn {
                prompt_id: Some("turn-1".into()),
                end,
            }),
            usage: usage.map(|u| (at(-1), u)),
        },
    );
}

fn notify(thread: &str, turn: &str, prompt: &str, secs: i64) -> Report {
    Report {
        path: format!("/state/reports/{W}.{secs}.json").into(),
        session: W.into(),
        account: Some("x".into()),
        pids: vec![PID + 1, PID],
        at: at(secs),
        event: Event::TurnComplete {
            thread: thread.into(),
            turn: turn.into(),
            prompt_hash: Some(text_hash(prompt)),
            reply: "Done.".into(),
        },
    }
}

fn completed(p: &Plan) -> Option<(String, Option<String>)> {
    p.actions.iter().find_map(|a| match a {
        Action::Task(TaskAction::CompleteTask { how, reply, .. }) => {
            Some((how.clone(), reply.clone()))
        }
        _ => None,
    })
}

#[test]
fn the_notify_of_the_tasks_thread_and_prompt_should_end_it() {
    let (m, mut o) = world();
    rollout(&mut o, None, None);
    o.reports
        .insert(W.into(), vec![notify(THREAD, "turn-1", "do it\n", 0)]);
    let p = plan_with_tasks(&m, &o, "failover", at(1));
    assert_eq!(
        completed(&p),
        Some(("notify report".into(), Some("Done.".into())))
    );
    assert_eq!(p.consumed.len(), 1);
}

#[test]
fn the_notify_of_codexs_title_request_should_never_end_a_task() {
    let (m, mut o) = world();
    rollout(&mut o, None, None);
    let title = "Generate a concise, single-line task title …\n\nUser prompt:\ndo it";
    o.reports.insert(
        W.into(),
        vec![
            notify(TITLE_THREAD, "turn-9", title, 0),
            // Even with the task's own text, another thread is not the task's.
            notify(TITLE_THREAD, "turn-9", "do it", 1),
        ],
    );
    let p = plan_with_tasks(&m, &o, "failover", at(2));
    assert_eq!(completed(&p), None, "{:?}", p.actions);
    assert_eq!(p.consumed.len(), 2, "read and dropped");
}

#[test]
fn a_usage_limit_in_the_rollout_should_count_once_as_codexs_own_word() {
    let (m, mut o) = world();
    let message = "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/usage to purchase more credits or try again at 10:07 AM.";
    rollout(
        &mut o,
        Some(TurnEnd::Error(USAGE_LIMIT.into(), message.into())),
        None,
    );
    let p = plan_with_tasks(&m, &o, "failover", at(1));
    let t = p.facts.sessions[W].task.clone().unwrap();
    assert!(t.at_limit, "{t:?}");
    assert_eq!(completed(&p), None);
    assert_eq!(
        p.facts
            .exhausted_until
            .get("x")
            .map(|t| t.to_string())
            .as_deref(),
        Some("2026-11-21T10:07:00Z"),
        "the account is exhausted at once, until the reset in the message (local time: UTC here)"
    );
    // Read again next round (the rollout still says it): not counted twice.
    let mut again = o.clone();
    again.facts = p.facts.clone();
    let p2 = plan_with_tasks(&m, &again, "failover", at(2));
    assert_eq!(p2.facts.exhausted_until, p.facts.exhausted_until);
    let detected = |p: &Plan| {
        p.events
            .iter()
            .filter(|e| e.name() == "quotaDetected")
            .count()
    };
    assert_eq!(detected(&p), 1, "{:?}", journaled(&p));
    assert_eq!(detected(&p2), 0, "{:?}", journaled(&p2));
}

#[test]
fn the_rollouts_use_should_be_the_accounts_by_window_length() {
    let (m, mut o) = world();
    let usage = Usage {
        five_hour: Some(Window {
            used: 42.0,
            resets_at: at(3600),
        }),
        seven_day: Some(Window {
            used: 17.0,
            resets_at: at(86_400),
        }),
    };
    rollout(&mut o, None, Some(usage));
    let p = plan_with_tasks(&m, &o, "failover", at(1));
    let reading = &p.facts.usage["x"];
    assert_eq!((reading.usage, reading.at), (usage, at(-1)));
    assert_eq!(reading.session, W);
}
