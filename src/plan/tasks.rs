//! Task rules: claimed tasks are followed through their stages (started, pasted,
//! submitted, running) to completion, failure or a stall; waiting tasks go to idle,
//! fresh pool sessions, oldest first, inboxes of one pool taking turns. Also the
//! bookkeeping the rules need across reconciles: screen changes and idle times.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;

use super::screens::Reading;
use super::{Action, Plan, Role, SessionSpec, TaskRef};
use crate::api::{AccountSpec, InboxSpec, Manifests, Object};
use crate::observe::{Observed, Session};
use crate::screen::{Class, State};
use crate::state::{Stage, TaskFacts};

/// How long after a submit the screen must show it taken before Enter is sent again.
const RETAKE: Duration = Duration::from_secs(1);
/// The shortest idle stretch that completes a task (two polls at most once a second).
const MIN_IDLE: Duration = Duration::from_millis(200);
/// How long a used agent may sit unchanged before it is restarted for a fresh context.
const RECYCLE_AFTER: Duration = Duration::from_secs(3);

impl Seen {
    /// Idle with nothing typed: ready for text.
    pub fn at_empty_prompt(&self) -> bool {
        self.state == State::Idle && self.empty_input
    }
}

/// What the task and scaling rules know of each of our sessions.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    /// The screen's reading (`Unknown` without a screen).
    pub state: State,
    /// The input box is empty.
    pub empty_input: bool,
    /// The agent already ran a task (not a fresh context).
    pub used: bool,
    /// The facts say it works on a task.
    pub busy: bool,
    /// The screen's hash, when it has one.
    pub hash: Option<u64>,
    /// Its turn met a usage limit and waits for a move or the reset.
    pub at_limit: bool,
}

/// The inputs of the task rules, read once per plan.
pub(super) struct View<'a> {
    m: &'a Manifests,
    o: &'a Observed,
    owner: &'a str,
    now: Timestamp,
    account: Option<&'a Object<AccountSpec>>,
    /// Our live sessions, by name.
    pub seen: BTreeMap<String, Seen>,
}

fn elapsed(now: Timestamp, since: Timestamp) -> Duration {
    now.duration_since(since)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

impl<'a> View<'a> {
    /// `redraw` holds the sessions whose screen may show a resumed conversation's old
    /// limit: it does not mean the agent is stuck.
    pub fn new(
        m: &'a Manifests,
        o: &'a Observed,
        owner: &'a str,
        now: Timestamp,
        account: Option<&str>,
        redraw: &std::collections::BTreeSet<String>,
        readings: &BTreeMap<String, Reading>,
    ) -> Self {
        let mut seen = BTreeMap::new();
        for (name, s) in &o.sessions {
            if s.owner.as_deref() != Some(owner) || s.pane.dead {
                continue;
            }
            // A screen showing a limit is not idle, even at its prompt: the turn did not
            // end, it waits for a move or the reset (unless it is a resumed
            // conversation's old limit, redrawn). An error did end the turn.
            let (state, empty_input, at_limit) = match readings.get(name) {
                Some(r) => {
                    let waits = r.verdict.class == Class::QuotaExhausted && !redraw.contains(name);
                    let state = if waits {
                        State::Unknown
                    } else {
                        r.verdict.state
                    };
                    (state, r.empty_input, waits)
                }
                None => (State::Unknown, false, false),
            };
            let facts = o.facts.sessions.get(name);
            seen.insert(
                name.clone(),
                Seen {
                    state,
                    empty_input,
                    used: facts.and_then(|f| f.used_pid) == Some(s.pane.pid),
                    busy: facts.is_some_and(|f| f.task.is_some()),
                    hash: readings.get(name).map(|r| r.hash),
                    at_limit,
                },
            );
        }
        Self {
            m,
            o,
            owner,
            now,
            account: account.and_then(|a| m.accounts.iter().find(|x| x.name == a)),
            seen,
        }
    }

    /// Whether session `name` can take a task now: ours, alive, idle at an empty
    /// prompt, a fresh context, no task.
    pub fn free(&self, name: &str) -> bool {
        self.seen
            .get(name)
            .is_some_and(|s| s.at_empty_prompt() && !s.used && !s.busy)
    }

    /// Whether session `name` works on a task.
    pub fn has_task(&self, name: &str) -> bool {
        self.seen.get(name).is_some_and(|s| s.busy)
            || self
                .o
                .inboxes
                .values()
                .any(|i| i.active.iter().any(|a| a.session == name))
    }

    /// Tasks waiting for pool `pool` (links excluded: they are rejected).
    pub fn waiting_for(&self, pool: &str) -> usize {
        self.m
            .inboxes
            .iter()
            .filter(|i| i.spec.pool == pool)
            .filter_map(|i| self.o.inboxes.get(&i.name))
            .map(|s| s.waiting.iter().filter(|w| !w.link).count())
            .sum()
    }

    /// Since when session `name` has been idle without a task, as the facts say.
    pub fn idle_since(&self, name: &str, plan: &Plan) -> Option<Timestamp> {
        plan.facts.sessions.get(name).and_then(|f| f.idle_since)
    }

    /// Records what persists between reconciles: each screen's last change, and since
    /// when each session has been idle without a task.
    pub fn bookkeep(&self, plan: &mut Plan) {
        plan.facts
            .sessions
            .retain(|name, _| self.o.sessions.contains_key(name));
        // A task the facts hold whose file left `active/` (finished or moved before a
        // crash): forget it, and do not take the agent for a fresh context.
        for (name, f) in plan.facts.sessions.iter_mut() {
            let gone = f.task.as_ref().is_some_and(|t| {
                !self
                    .o
                    .inboxes
                    .get(&t.inbox)
                    .is_some_and(|i| i.active.iter().any(|a| a.file == t.file))
            });
            if gone {
                f.task = None;
                f.used_pid = self.o.sessions.get(name).map(|s| s.pane.pid);
            }
        }
        for (name, seen) in &self.seen {
            let f = plan.facts.sessions.entry(name.clone()).or_default();
            if let Some(h) = seen.hash
                && f.screen.is_none_or(|(old, _)| old != h)
            {
                f.screen = Some((h, self.now));
            }
            let idle = seen.state == State::Idle && !seen.busy;
            f.idle_since = if idle {
                f.idle_since.or(Some(self.now))
            } else {
                None
            };
        }
    }

    /// Adds the task actions.
    pub fn plan_tasks(&self, plan: &mut Plan) {
        let mut claimed: BTreeSet<String> = BTreeSet::new();
        for inbox in &self.m.inboxes {
            let Some(state) = self.o.inboxes.get(&inbox.name) else {
                continue;
            };
            for active in &state.active {
                claimed.insert(active.session.clone());
                self.follow(inbox, active, plan);
            }
        }
        self.recycle_used(&claimed, plan);
        self.dispatch(&claimed, plan);
    }

    /// A pool agent that ran a task and still sits idle (the exit command did not end
    /// it, or a crash came between) is started afresh, so every task gets a fresh
    /// context.
    fn recycle_used(&self, claimed: &BTreeSet<String>, plan: &mut Plan) {
        for pool in &self.m.pools {
            for name in pool.spec.session_names() {
                let Some(seen) = self.seen.get(&name) else {
                    continue;
                };
                let quiet = entry_screen_age(plan, &name, self.now) >= RECYCLE_AFTER;
                if seen.used
                    && !seen.busy
                    && !claimed.contains(&name)
                    && quiet
                    && let Some(s) = self.o.sessions.get(&name)
                    && let Some(spec) = self.spec_for(pool, s, &pool.spec.workdir)
                {
                    plan.act(Action::RecycleSession {
                        session: spec,
                        pane: s.pane.id.clone(),
                        reason: "a fresh context for the next task".into(),
                    });
                }
            }
        }
    }

    fn task_ref(
        &self,
        inbox: &Object<InboxSpec>,
        file: &str,
        name: &str,
        session: &str,
        attempt: u32,
    ) -> TaskRef {
        let account = self
            .o
            .sessions
            .get(session)
            .and_then(|s| s.account.clone())
            .unwrap_or_default();
        let started = self
            .o
            .facts
            .sessions
            .get(session)
            .and_then(|f| f.task.as_ref())
            .and_then(|t| t.started);
        TaskRef {
            inbox: inbox.name.clone(),
            path: inbox.spec.path.clone(),
            name: name.to_owned(),
            file: file.to_owned(),
            session: session.to_owned(),
            account,
            attempt,
            started,
        }
    }

    /// Follows one claimed task.
    fn follow(
        &self,
        inbox: &Object<InboxSpec>,
        active: &crate::observe::ActiveTask,
        plan: &mut Plan,
    ) {
        let task = self.task_ref(
            inbox,
            &active.file,
            &active.task,
            &active.session,
            active.attempt,
        );
        let session = self
            .o
            .sessions
            .get(&active.session)
            .filter(|s| s.owner.as_deref() == Some(self.owner) && !s.pane.dead);
        let known = self
            .o
            .facts
            .sessions
            .get(&active.session)
            .and_then(|f| f.task.clone())
            .filter(|t| t.file == active.file && t.inbox == inbox.name);
        let Some(s) = session else {
            let last = active.attempt >= inbox.spec.max_tries;
            let reason = format!(
                "session {} died while working on it (try {} of {})",
                active.session, active.attempt, inbox.spec.max_tries
            );
            plan.act(Action::RequeueTask {
                task,
                reason,
                failed: last,
            });
            return;
        };
        let Some(facts) = known else {
            // A crash between claim and record: the conversation tells whether it was sent.
            if self.o.evidence.get(&active.file).copied().unwrap_or(false) {
                let f = plan
                    .facts
                    .sessions
                    .entry(active.session.clone())
                    .or_default();
                f.task = Some(TaskFacts {
                    inbox: inbox.name.clone(),
                    file: active.file.clone(),
                    task: active.task.clone(),
                    attempt: active.attempt,
                    stage: Stage::Running,
                    since: self.now,
                    started: Some(self.now),
                    idle_since: None,
                    stalled: false,
                });
            } else {
                plan.act(Action::RequeueTask {
                    task,
                    reason: "claimed but not sent before the controller stopped".into(),
                    failed: false,
                });
                if let Some(spec) = self
                    .m
                    .pool(&inbox.spec.pool)
                    .and_then(|p| self.spec_for(p, s, &p.spec.workdir))
                {
                    plan.act(Action::RecycleSession {
                        session: spec,
                        pane: s.pane.id.clone(),
                        reason: "clear a task that may sit unsent in its input".into(),
                    });
                }
            }
            return;
        };
        self.progress(s, task, facts, plan);
    }

    /// Moves a known task on through its stages.
    fn progress(&self, s: &Session, task: TaskRef, facts: TaskFacts, plan: &mut Plan) {
        let Some(seen) = self.seen.get(&s.name) else {
            return;
        };
        let spec = &self.m.controller.spec;
        let pane = s.pane.id.clone();
        let signalled = self
            .o
            .signals
            .get(&s.name)
            .is_some_and(|t| facts.started.is_some_and(|st| *t >= st));
        if signalled {
            self.complete(s, task, "signal", plan);
            return;
        }
        // No screen change for idleTimeout, in any stage: stalled (kept in active/). A
        // turn waiting at a usage limit is not stalled: it waits for a move or the reset.
        let quiet = entry_screen_age(plan, &s.name, self.now);
        if !facts.stalled && !seen.at_limit && quiet >= spec.completion.idle_timeout.0 {
            plan.act(Action::StallTask { task: task.clone() });
        }
        let entry = plan.facts.sessions.entry(s.name.clone()).or_default();
        let Some(tf) = entry.task.as_mut() else {
            return;
        };
        // The stage as this plan left it: the ledger may have turned a task at a spent
        // limit to Resuming.
        let since = elapsed(self.now, tf.since);
        match tf.stage {
            // A fresh agent gets the task, a resumed one `continue`, once at its prompt.
            Stage::Starting | Stage::Resuming => {
                if !seen.at_empty_prompt() {
                    plan.wake(Duration::from_millis(100));
                } else if tf.stage == Stage::Starting {
                    plan.act(Action::PasteTask { task, pane });
                } else {
                    plan.act(Action::ContinueTask { task, pane });
                }
            }
            Stage::Pasted => {
                let delay = spec.dispatch.submit_delay.0;
                if since >= delay {
                    plan.act(Action::SubmitTask { task, pane });
                } else {
                    plan.wake(delay - since);
                }
            }
            Stage::Submitted(enters) => {
                if seen.state == State::Busy || (seen.empty_input && seen.state != State::Unknown) {
                    tf.stage = Stage::Running;
                    tf.since = self.now;
                    tf.started = tf.started.or(Some(self.now));
                    plan.wake(spec.poll_interval.0);
                } else if since >= RETAKE && enters < 2 {
                    plan.act(Action::SubmitTask { task, pane });
                } else {
                    plan.wake(Duration::from_millis(250));
                }
            }
            Stage::Running => {
                if seen.state == State::Idle {
                    let idle = *tf.idle_since.get_or_insert(self.now);
                    let needed = spec.poll_interval.0.max(MIN_IDLE);
                    if elapsed(self.now, idle) >= needed {
                        self.complete(s, task, "idle prompt", plan);
                        return;
                    }
                    plan.wake(needed - elapsed(self.now, idle));
                } else {
                    tf.idle_since = None;
                }
            }
        }
    }

    /// Finishes `task` in session `s`, ending a pool agent's context.
    fn complete(&self, s: &Session, task: TaskRef, how: &str, plan: &mut Plan) {
        plan.act(Action::CompleteTask {
            task,
            pane: s.pane.id.clone(),
            pid: s.pane.pid,
            how: how.into(),
            exit: self.exit_command(&s.name),
        });
    }

    /// The profile's exit command for pool sessions; dedicated ones never get it.
    fn exit_command(&self, session: &str) -> Option<String> {
        let crate::api::SessionOwner::Pool { pool, .. } = self.m.session_owner(session)? else {
            return None;
        };
        Some(self.m.agent(&pool.spec.agent)?.spec.exit_command.clone())
    }

    /// Hands waiting tasks to free sessions: per pool, its inboxes take turns, each
    /// giving its oldest task.
    fn dispatch(&self, claimed: &BTreeSet<String>, plan: &mut Plan) {
        let Some(account) = self.account else { return };
        for inbox in &self.m.inboxes {
            let Some(state) = self.o.inboxes.get(&inbox.name) else {
                continue;
            };
            for w in state.waiting.iter().filter(|w| w.link) {
                plan.act(Action::RejectTask {
                    inbox: inbox.name.clone(),
                    path: inbox.spec.path.clone(),
                    name: w.name.clone(),
                    reason: crate::tasks::Rejected::Link.to_string(),
                });
            }
        }
        for pool in &self.m.pools {
            let mut free: Vec<&Session> = pool
                .spec
                .session_names()
                .filter(|n| !claimed.contains(n) && self.free(n))
                .filter_map(|n| self.o.sessions.get(&n))
                .filter(|s| s.account.as_deref() == Some(account.name.as_str()))
                .collect();
            let inboxes: Vec<&Object<InboxSpec>> = self
                .m
                .inboxes
                .iter()
                .filter(|i| i.spec.pool == pool.name)
                .collect();
            if inboxes.is_empty() || free.is_empty() {
                continue;
            }
            let mut queues: Vec<std::collections::VecDeque<&str>> = inboxes
                .iter()
                .map(|i| {
                    self.o
                        .inboxes
                        .get(&i.name)
                        .map(|s| {
                            s.waiting
                                .iter()
                                .filter(|w| !w.link)
                                .map(|w| w.name.as_str())
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect();
            let mut turn = plan.facts.turn.get(&pool.name).copied().unwrap_or(0) % inboxes.len();
            free.reverse();
            while !free.is_empty() && queues.iter().any(|q| !q.is_empty()) {
                let i = turn % inboxes.len();
                turn = (turn + 1) % inboxes.len();
                let Some(name) = queues[i].pop_front() else {
                    continue;
                };
                let Some(s) = free.pop() else { break };
                let inbox = inboxes[i];
                let key = format!("{}/{name}", inbox.name);
                let attempt = plan.facts.tries.get(&key).copied().unwrap_or(0) + 1;
                let file = crate::tasks::active_name(&s.name, attempt, name);
                let restart = (s.pane.path != inbox.spec.workdir)
                    .then(|| self.spec_for(pool, s, &inbox.spec.workdir))
                    .flatten();
                let mut task = self.task_ref(inbox, &file, name, &s.name, attempt);
                task.started = None;
                plan.act(Action::DispatchTask {
                    task,
                    pane: s.pane.id.clone(),
                    restart,
                });
            }
            plan.facts.turn.insert(pool.name.clone(), turn);
        }
    }

    /// The pool session's spec with the inbox's folder, to start a fresh agent there.
    /// A pool session's spec under the active account, in `workdir`.
    fn spec_for(
        &self,
        pool: &Object<crate::api::PoolSpec>,
        s: &Session,
        workdir: &std::path::Path,
    ) -> Option<SessionSpec> {
        let index = pool
            .spec
            .indexed_names()
            .find(|(_, n)| *n == s.name)
            .map_or(0, |(index, _)| index);
        let role = Role::Pool {
            pool: pool.name.clone(),
            index,
        };
        super::session_spec(
            self.m,
            self.account?,
            &s.name,
            role,
            &pool.spec.agent,
            workdir,
            &pool.spec.env,
        )
    }
}

/// How long session `name`'s screen has not changed.
fn entry_screen_age(plan: &Plan, name: &str, now: Timestamp) -> Duration {
    plan.facts
        .sessions
        .get(name)
        .and_then(|f| f.screen)
        .map_or(Duration::ZERO, |(_, at)| elapsed(now, at))
}

/// The agent profile a session of ours runs.
pub(super) fn agent_of<'m>(m: &'m Manifests, name: &str) -> Option<&'m str> {
    m.session_owner(name).map(|o| o.agent())
}
