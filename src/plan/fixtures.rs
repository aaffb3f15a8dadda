//! Manifests and observations for the planner's table tests.

use std::path::PathBuf;

use crate::api::{AgentKind, Manifests, load_str};
use crate::observe::{Entry, Observed, Pane, Session};

/// The family every account of these fixtures is in.
pub(crate) const CLAUDE: AgentKind = AgentKind::ClaudeCode;

pub(crate) const TWO_ACCOUNTS_SHARED: &str = "
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: main}
spec: {home: /h/main, priority: 0}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: alt}
spec: {home: /h/alt, priority: 1}
---
apiVersion: failover/v1alpha1
kind: SharedState
metadata: {name: shared}
spec: {target: /s, links: [projects, file-history]}
";

/// Two Codex accounts, `x` preferred, and a Codex pool of one (`cx-0`).
pub(crate) const CODEX_POOL: &str = "
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: x}
spec: {home: /h/x, agent: codex}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: x2}
spec: {home: /h/x2, agent: codex, priority: 1}
---
apiVersion: failover/v1alpha1
kind: Pool
metadata: {name: auto}
spec: {prefix: cx-, min: 1, max: 1, workdir: /w, agent: codex}
";

pub(crate) const POOL_AND_DEDICATED: &str = "
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: main}
spec: {home: /h/main, priority: 0, env: {ACCOUNT_VAR: a}}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: alt}
spec: {home: /h/alt, priority: 1}
---
apiVersion: failover/v1alpha1
kind: Pool
metadata: {name: auto}
spec: {prefix: ccl-auto-, startIndex: 11, min: 3, max: 5, workdir: /w, env: {POOL_VAR: p}}
---
apiVersion: failover/v1alpha1
kind: DedicatedSession
metadata: {name: ccl-1-x}
spec: {workdir: /w/x}
";

pub(crate) fn manifests(text: &str) -> Manifests {
    match load_str("test.yaml", text) {
        Ok(m) => m,
        Err(e) => panic!("fixture does not load: {e}"),
    }
}

pub(crate) fn observed() -> Observed {
    Observed {
        server_running: true,
        exe: Some("/usr/local/bin/failover".into()),
        ..Observed::default()
    }
}

pub(crate) fn dir(path: &str) -> Entry {
    Entry::Dir {
        entries: 0,
        real: PathBuf::from(path),
    }
}

/// Every account home exists.
pub(crate) fn home_dirs(o: &mut Observed, m: &Manifests) {
    for a in &m.accounts {
        o.entries
            .insert(a.spec.home.clone(), dir(&a.spec.home.to_string_lossy()));
    }
}

/// A live session; `owner`/`account` empty means unset.
pub(crate) fn session(name: &str, owner: &str, account: &str, pid: u32) -> Session {
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Session {
        name: name.to_owned(),
        owner: some(owner),
        account: some(account),
        pane: Pane {
            id: format!("%{pid}"),
            pid,
            dead: false,
            dead_status: None,
            path: "/w".into(),
            activity: 0,
        },
        panes: 1,
    }
}

/// Session `name`'s agent (pid `pid`) reported holding conversation `c1`: what a move
/// of a dedicated session resumes.
pub(crate) fn reported(o: &mut Observed, name: &str, pid: u32) {
    o.facts.sessions.entry(name.into()).or_default().agent = Some(crate::state::AgentFacts {
        pid,
        conversation: "c1".into(),
        transcript: "/h/main/projects/-w/c1.jsonl".into(),
        unheard: false,
    });
}

pub(crate) fn add(o: &mut Observed, s: Session) {
    o.sessions.insert(s.name.clone(), s);
}

/// Pool `auto`'s first three sessions, ours and idle under `main`, the active account.
pub(crate) fn idle_pool(o: &mut Observed) {
    for (i, n) in ["ccl-auto-11", "ccl-auto-12", "ccl-auto-13"]
        .iter()
        .enumerate()
    {
        add(o, session(n, "failover", "main", 100 + i as u32));
        o.screens.insert((*n).into(), IDLE_SCREEN.into());
    }
    o.facts.family_mut(CLAUDE).active_account = Some("main".into());
}

pub(crate) fn now() -> jiff::Timestamp {
    match "2026-11-21T06:00:00Z".parse() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

pub(crate) const INBOX: &str = "
---
apiVersion: failover/v1alpha1
kind: Inbox
metadata: {name: tasks}
spec: {path: /p/.agent-queue/inbox, pool: auto, workdir: /w}
";

/// A controller config: sessions move off an account at 95% of its use.
pub(crate) const MOVE_AT_95: &str = "
---
apiVersion: failover/v1alpha1
kind: ControllerConfig
metadata: {name: c}
spec: {quota: {moveAt: 95}}
";

pub(crate) const IDLE_SCREEN: &str = " ▐▛███▜▌   Claude Code v2.1.329\n\n────\n❯\u{a0}\n────\n  ⏵⏵ auto mode on (shift+tab to cycle)\n";
pub(crate) const BUSY_SCREEN: &str = "> go\n\n✻ Churning… (3s)\n\n────\n❯\u{a0}\n────\n  ⏵⏵ auto mode on (shift+tab to cycle) · esc to interrupt\n";

pub(crate) fn task_facts(session: &str) -> crate::state::TaskFacts {
    crate::state::TaskFacts {
        inbox: "tasks".into(),
        file: crate::tasks::active_name(session, 1, "t.md"),
        task: "t.md".into(),
        attempt: 1,
        stage: crate::state::Stage::Running,
        since: now(),
        started: Some(now()),
        ..crate::state::TaskFacts::default()
    }
}

/// `session` works on task `t` of inbox `tasks`: in the facts and in `active/`.
pub(crate) fn claimed(o: &mut Observed, session: &str, t: crate::state::TaskFacts) {
    o.inboxes.insert(
        "tasks".into(),
        crate::observe::InboxState {
            waiting: vec![],
            active: vec![crate::observe::ActiveTask {
                file: t.file.clone(),
                session: session.into(),
                attempt: t.attempt,
                task: t.task.clone(),
            }],
            unread: false,
        },
    );
    o.facts.sessions.entry(session.into()).or_default().task = Some(t);
}

/// Carries out a plan's moves as the controller would: the facts recorded, each
/// moved session under its new account with a new agent.
pub(crate) fn carry_out_moves(o: &mut Observed, p: &super::Plan) {
    o.facts = p.facts.clone();
    for action in &p.actions {
        if let super::Action::Session(super::SessionAction::MoveSession { session: spec, .. }) =
            action
        {
            let ok = Ok(super::Outcome::Resumed(
                "0b9f5d8e-0000-4000-8000-000000000000".into(),
            ));
            super::record(&mut o.facts, action, &ok, now());
            let pid = o.sessions[&spec.name].pane.pid + 100;
            o.sessions.insert(
                spec.name.clone(),
                session(&spec.name, "failover", &spec.account, pid),
            );
        }
    }
}

/// An account's use as a status line reported it: the 5-hour window only.
pub(crate) fn five_hour(
    used: f64,
    resets_at: jiff::Timestamp,
    at: jiff::Timestamp,
    session: &str,
) -> crate::state::UsageReading {
    crate::state::UsageReading {
        usage: crate::report::Usage {
            five_hour: Some(crate::report::Window { used, resets_at }),
            seven_day: None,
        },
        at,
        session: session.into(),
    }
}

/// An inbox with `n` tasks waiting (`t0.md`, …) and none claimed.
pub(crate) fn waiting(n: usize) -> crate::observe::InboxState {
    crate::observe::InboxState {
        waiting: (0..n)
            .map(|i| crate::observe::Waiting {
                name: format!("t{i}.md"),
                link: false,
            })
            .collect(),
        active: vec![],
        unread: false,
    }
}

/// The plan's events as journaled: `(kind, fields)`.
pub(crate) fn journaled(p: &super::Plan) -> Vec<(String, serde_json::Value)> {
    p.events
        .iter()
        .map(|e| (e.name().to_owned(), e.detail()))
        .collect()
}

/// Plans what `apply` does, at `now`, reset times without a zone read in UTC.
pub(crate) fn plan(m: &Manifests, o: &Observed, owner: &str, now: jiff::Timestamp) -> super::Plan {
    plan_in(m, o, owner, now, super::Scope::Sessions)
}

/// Plans what the controller does (tasks included), at `now`, in UTC.
pub(crate) fn plan_with_tasks(
    m: &Manifests,
    o: &Observed,
    owner: &str,
    now: jiff::Timestamp,
) -> super::Plan {
    plan_in(m, o, owner, now, super::Scope::Tasks)
}

fn plan_in(
    m: &Manifests,
    o: &Observed,
    owner: &str,
    now: jiff::Timestamp,
    scope: super::Scope,
) -> super::Plan {
    plan_held(m, o, owner, now, scope, false)
}

/// [`plan_in`], with claims held or not (the state folder cannot be written).
pub(crate) fn plan_held(
    m: &Manifests,
    o: &Observed,
    owner: &str,
    now: jiff::Timestamp,
    scope: super::Scope,
    hold_claims: bool,
) -> super::Plan {
    let classifiers = match crate::screen::Classifiers::compile(m) {
        Ok(c) => c,
        Err(e) => panic!("fixture manifests: {e}"),
    };
    let ctx = super::Context {
        owner,
        now,
        tz: jiff::tz::TimeZone::UTC,
        zones: jiff::tz::db(),
        classifiers: &classifiers,
        scope,
        hold_claims,
    };
    super::plan(m, o, &ctx)
}
