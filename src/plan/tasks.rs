//! Task rules, the dispatch side: waiting tasks go to idle, fresh pool sessions of an
//! account that takes new tasks, oldest first, inboxes of one pool taking turns; used
//! agents are started afresh. Also the per-session view the task and session rules
//! share ([`View`]) and the bookkeeping they need across reconciles: screen changes and
//! idle times. Following a claimed task to its end is [`super::turns`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use jiff::Timestamp;

use super::screens::Reading;
use super::{Plan, Role, SessionAction, SessionSpec, TaskAction, TaskKey, TaskRef};
use crate::api::{AccountSpec, AgentKind, InboxSpec, Manifests, Object, PoolSpec};
use crate::observe::{Observed, Session};
use crate::screen::{Class, State};
use crate::state::{Facts, SessionFacts};

/// How long a used agent may sit unchanged before it is restarted for a fresh context.
const RECYCLE_AFTER: Duration = Duration::from_secs(3);
/// How long a reported turn without its end may sit at an idle, empty prompt with an
/// unchanged screen before it is taken for cut (Claude Code reports no `Stop` for a turn
/// cut with Esc): well above the moment between Enter and the busy marker.
const TURN_GRACE: Duration = Duration::from_secs(5);
/// How long an agent's screen must rest unchanged before text is pasted into it: a
/// prompt just drawn may not take a paste as one yet (Claude Code under load once took
/// a paste into a prompt it had just drawn twice, the text doubled in one message).
pub(super) const SETTLE: Duration = Duration::from_millis(500);
/// How long an agent idle at its prompt waits for its screen to rest at most: a screen
/// that never rests holds no task back for longer.
const SETTLE_CAP: Duration = Duration::from_secs(2);

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
    /// The agent reports (its `SessionStart` named this very pid).
    pub reports: bool,
    /// It reported a turn under way, not cut since (idle at an empty prompt, unchanged
    /// for [`TURN_GRACE`]).
    pub turn_open: bool,
    /// Its screen has rested for [`SETTLE`] (or it has been idle for [`SETTLE_CAP`]), or
    /// no earlier screen of it is known: text may be pasted.
    pub settled: bool,
}

impl Seen {
    /// Idle with nothing typed: ready for text.
    pub(super) fn at_empty_prompt(&self) -> bool {
        self.state == State::Idle && self.empty_input
    }
}

/// What the view is built from besides the manifests and the observation.
pub(super) struct Inputs<'a> {
    /// The controller's owner mark.
    pub owner: &'a str,
    /// The plan's time.
    pub now: Timestamp,
    /// The account each family's sessions run under now.
    pub accounts: &'a BTreeMap<AgentKind, String>,
    /// The account each family's new tasks go to: its active one unless it is over
    /// `quota.moveAt`.
    pub intake: &'a BTreeMap<AgentKind, String>,
    /// Sessions whose screen may show a resumed conversation's old limit.
    pub redraw: &'a BTreeSet<String>,
    /// Every screen, read.
    pub readings: &'a BTreeMap<String, Reading>,
}

/// The inputs of the task rules, read once per plan.
pub(super) struct View<'a> {
    pub(super) m: &'a Manifests,
    pub(super) o: &'a Observed,
    pub(super) owner: &'a str,
    pub(super) now: Timestamp,
    /// The account each family's sessions run under now.
    accounts: BTreeMap<AgentKind, &'a Object<AccountSpec>>,
    /// The account each family's new tasks go to.
    intake: BTreeMap<AgentKind, &'a Object<AccountSpec>>,
    /// Our live sessions, by name.
    pub seen: BTreeMap<String, Seen>,
}

/// What the task rules know of our live session `s`, named `name`, from its screen's
/// reading and its facts `f`.
fn seen_of(name: &str, s: &Session, f: Option<&SessionFacts>, input: &Inputs<'_>) -> Seen {
    let reading = input.readings.get(name);
    let reported_limit = f.and_then(|f| f.task.as_ref()).is_some_and(|t| t.at_limit);
    // A screen showing a limit is not idle, even at its prompt: the turn did not end, it
    // waits for a move or the reset (unless it is a resumed conversation's old limit,
    // redrawn). An error did end the turn.
    let (state, empty_input, at_limit) = match reading {
        Some(r) => {
            let waits = r.verdict.class == Class::QuotaExhausted && !input.redraw.contains(name);
            let state = if waits || reported_limit {
                State::Unknown
            } else {
                r.verdict.state
            };
            (state, r.empty_input, waits || reported_limit)
        }
        None => (State::Unknown, false, reported_limit),
    };
    // How long the screen has been unchanged, as the facts saw it last.
    let unchanged = match (reading, f.and_then(|f| f.screen)) {
        (Some(r), Some((hash, at))) if r.hash == hash => Some(elapsed(input.now, at)),
        (_, Some(_)) => Some(Duration::ZERO),
        (_, None) => None,
    };
    let idle_for = f
        .and_then(|f| f.idle_since)
        .map_or(Duration::ZERO, |at| elapsed(input.now, at));
    Seen {
        settled: unchanged.is_none_or(|u| u >= SETTLE) || idle_for >= SETTLE_CAP,
        state,
        empty_input,
        used: f.and_then(|f| f.used_pid) == Some(s.pane.pid),
        busy: f.is_some_and(|f| f.task.is_some()),
        hash: reading.map(|r| r.hash),
        at_limit,
        reports: f
            .and_then(|f| f.agent.as_ref())
            .is_some_and(|a| a.reports(s.pane.pid)),
        turn_open: f.is_some_and(|f| {
            // Idle at an empty prompt, the screen unchanged for a while: the turn was cut
            // (no report comes for that).
            let resting = state == State::Idle && empty_input;
            f.turn.is_some() && !(resting && unchanged.unwrap_or_default() >= TURN_GRACE)
        }),
    }
}

/// How long from `since` to `now`; zero for a `since` after `now` (a clock stepped
/// back).
pub(super) fn elapsed(now: Timestamp, since: Timestamp) -> Duration {
    now.duration_since(since)
        .try_into()
        .unwrap_or(Duration::ZERO)
}

impl<'a> View<'a> {
    /// The view of our live sessions, with `facts` as the plan holds them so far.
    pub(super) fn new(m: &'a Manifests, o: &'a Observed, facts: &Facts, input: Inputs<'a>) -> Self {
        let seen = o
            .sessions
            .iter()
            .filter(|(_, s)| s.is_live_ours(input.owner))
            .map(|(name, s)| {
                (
                    name.clone(),
                    seen_of(name, s, facts.sessions.get(name), &input),
                )
            })
            .collect();
        let find = |by: &BTreeMap<AgentKind, String>| {
            by.iter()
                .filter_map(|(k, a)| Some((*k, m.account(a)?)))
                .collect()
        };
        Self {
            m,
            o,
            owner: input.owner,
            now: input.now,
            accounts: find(input.accounts),
            intake: find(input.intake),
            seen,
        }
    }

    /// Whether session `name` can take a task now: ours, alive, idle at an empty
    /// prompt, a fresh context, no task, no turn of anyone's under way.
    pub(super) fn free(&self, name: &str) -> bool {
        self.seen
            .get(name)
            .is_some_and(|s| s.at_empty_prompt() && !s.used && !s.busy && !s.turn_open)
    }

    /// Whether session `name` is at a safe point to move: idle at an empty prompt, no
    /// task, no turn under way.
    pub(super) fn resting(&self, name: &str) -> bool {
        self.seen
            .get(name)
            .is_some_and(|s| s.at_empty_prompt() && !s.turn_open)
            && !self.has_task(name)
    }

    /// Whether session `name` works on a task.
    pub(super) fn has_task(&self, name: &str) -> bool {
        self.seen.get(name).is_some_and(|s| s.busy)
            || self
                .o
                .inboxes
                .values()
                .any(|i| i.active.iter().any(|a| a.session == name))
    }

    /// Tasks waiting for pool `pool` (links excluded: they are rejected).
    pub(super) fn waiting_for(&self, pool: &str) -> usize {
        self.m
            .inboxes
            .iter()
            .filter(|i| i.spec.pool == pool)
            .filter_map(|i| self.o.inboxes.get(&i.name))
            .map(|s| s.waiting.iter().filter(|w| !w.link).count())
            .sum()
    }

    /// Since when session `name` has been idle without a task, as the facts say.
    pub(super) fn idle_since(&self, name: &str, plan: &Plan) -> Option<Timestamp> {
        plan.facts.sessions.get(name).and_then(|f| f.idle_since)
    }

    /// Records what persists between reconciles: each screen's last change, and since
    /// when each session has been idle without a task. Facts of sessions that are gone
    /// go, unless a claimed task names them (its turn may have ended on a report).
    pub(super) fn bookkeep(&self, plan: &mut Plan) {
        let claimed: BTreeSet<&str> = self
            .o
            .inboxes
            .values()
            .flat_map(|i| i.active.iter().map(|a| a.session.as_str()))
            .collect();
        plan.facts.sessions.retain(|name, _| {
            self.o.sessions.contains_key(name) || claimed.contains(name.as_str())
        });
        // A task the facts hold whose file left `active/` (finished or moved before a
        // crash): forget it, and do not take the agent for a fresh context.
        // An inbox that could not be read says nothing either way.
        for (name, f) in plan.facts.sessions.iter_mut() {
            let gone = f.task.as_ref().is_some_and(|t| {
                !self
                    .o
                    .inboxes
                    .get(&t.inbox)
                    .is_some_and(|i| i.unread || i.active.iter().any(|a| a.file == t.file))
            });
            if gone {
                f.task = None;
                f.used_pid = self.o.sessions.get(name).map(|s| s.pane.pid);
            }
        }
        // The tries of tasks no longer waiting nor claimed (deleted by hand, or their
        // inbox removed) go; an inbox not read this time keeps its own.
        let known = |key: &String| {
            let Some(TaskKey { inbox, name }) = TaskKey::parse(key) else {
                return false;
            };
            if !self.m.inboxes.iter().any(|i| i.name == inbox) {
                return false;
            }
            self.o.inboxes.get(&inbox).is_none_or(|i| {
                i.unread
                    || i.waiting.iter().any(|w| w.name == name)
                    || i.active.iter().any(|a| a.task == name)
            })
        };
        plan.facts.tries.retain(|key, _| known(key));
        plan.facts.try_reasons.retain(|key, _| known(key));
        plan.facts.hand_offs.retain(|key, _| known(key));
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
            f.kind = super::families::seen_kind(self.m, self.o, name).or(f.kind);
        }
    }

    /// Adds the task actions.
    pub(super) fn plan_tasks(&self, plan: &mut Plan) {
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
                let quiet = screen_age(plan, &name, self.now) >= RECYCLE_AFTER;
                if seen.used
                    && !seen.busy
                    && !claimed.contains(&name)
                    && quiet
                    && let Some(s) = self.o.sessions.get(&name)
                    && let Some(spec) = self.spec_for(pool, s, &pool.spec.workdir)
                {
                    plan.act(SessionAction::RecycleSession {
                        session: spec,
                        pane: s.pane.id.clone(),
                        reason: "a fresh context for the next task".into(),
                    });
                }
            }
        }
    }

    /// The task `name` of `inbox`, claimed as `file` for `session`; its earlier tries'
    /// reasons from `facts` (the plan's). Not yet submitted.
    pub(super) fn task_ref(
        &self,
        facts: &Facts,
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
        let key = TaskKey::new(&inbox.name, name).to_string();
        let hand_offs = facts
            .sessions
            .get(session)
            .and_then(|f| f.task.as_ref())
            .filter(|t| t.file == file)
            .map(crate::state::TaskFacts::hand_offs_told)
            .or_else(|| {
                let back = facts.hand_offs.get(&key)?;
                Some(back.iter().map(crate::state::HandOff::told).collect())
            })
            .unwrap_or_default();
        TaskRef {
            hand_offs,
            inbox: inbox.name.clone(),
            path: inbox.spec.path.clone(),
            name: name.to_owned(),
            file: file.to_owned(),
            session: session.to_owned(),
            account,
            attempt,
            started: None,
            earlier: facts.try_reasons.get(&key).cloned().unwrap_or_default(),
        }
    }

    /// Hands waiting tasks to free sessions of the account that takes new tasks in
    /// each pool's family: per pool, its inboxes take turns, each giving its oldest
    /// task. Links are rejected even while no account takes new tasks.
    fn dispatch(&self, claimed: &BTreeSet<String>, plan: &mut Plan) {
        self.reject_links(plan);
        for pool in &self.m.pools {
            // A pool over several families takes new tasks in the first with a usable
            // account.
            let accounts: BTreeMap<AgentKind, String> = self
                .accounts
                .iter()
                .map(|(k, a)| (*k, a.name.clone()))
                .collect();
            let agent =
                super::families::wanted(self.m, &pool.spec, &accounts).unwrap_or(&pool.spec.agent);
            let kind = self.m.kind_of(agent);
            if let Some(account) = self.intake.get(&kind) {
                self.dispatch_pool(pool, account, claimed, plan);
            }
        }
    }

    /// Rejects every waiting task that is a link: it is never sent.
    fn reject_links(&self, plan: &mut Plan) {
        for inbox in &self.m.inboxes {
            let Some(state) = self.o.inboxes.get(&inbox.name) else {
                continue;
            };
            for w in state.waiting.iter().filter(|w| w.link) {
                plan.act(TaskAction::RejectTask {
                    inbox: inbox.name.clone(),
                    path: inbox.spec.path.clone(),
                    name: w.name.clone(),
                    reason: crate::tasks::Rejected::Link.to_string(),
                });
            }
        }
    }

    /// Hands the waiting tasks of `pool`'s inboxes to its free sessions under
    /// `account`, lowest name first: the inboxes take turns from the one whose turn the
    /// facts keep, and the turn is kept for the next plan.
    fn dispatch_pool(
        &self,
        pool: &Object<PoolSpec>,
        account: &Object<AccountSpec>,
        claimed: &BTreeSet<String>,
        plan: &mut Plan,
    ) {
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
            return;
        }
        // A prompt just drawn gets its task once its screen has rested.
        let before = free.len();
        free.retain(|s| self.seen.get(&s.name).is_some_and(|seen| seen.settled));
        if free.len() < before {
            plan.wake(SETTLE / 2);
        }
        if free.is_empty() {
            return;
        }
        let mut queues: Vec<VecDeque<&str>> = inboxes.iter().map(|i| self.queue(i)).collect();
        let mut turn = plan.facts.turn.get(&pool.name).copied().unwrap_or(0) % inboxes.len();
        free.reverse();
        while !free.is_empty() && queues.iter().any(|q| !q.is_empty()) {
            let i = turn % inboxes.len();
            turn = (turn + 1) % inboxes.len();
            let Some(name) = queues[i].pop_front() else {
                continue;
            };
            let Some(s) = free.pop() else { break };
            self.hand(pool, inboxes[i], name, s, plan);
        }
        plan.facts.turn.insert(pool.name.clone(), turn);
    }

    /// The tasks waiting in `inbox` that may be sent, oldest first.
    fn queue(&self, inbox: &Object<InboxSpec>) -> VecDeque<&str> {
        self.o
            .inboxes
            .get(&inbox.name)
            .map(|s| {
                s.waiting
                    .iter()
                    .filter(|w| !w.link)
                    .map(|w| w.name.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Dispatches task `name` of `inbox` to the free session `s` of `pool`, as its next
    /// try; its agent starts afresh when it is not in the inbox's folder.
    fn hand(
        &self,
        pool: &Object<PoolSpec>,
        inbox: &Object<InboxSpec>,
        name: &str,
        s: &Session,
        plan: &mut Plan,
    ) {
        let key = TaskKey::new(&inbox.name, name).to_string();
        let attempt = plan.facts.tries.get(&key).copied().unwrap_or(0) + 1;
        let file = crate::tasks::active_name(&s.name, attempt, name);
        let restart = (s.pane.path != inbox.spec.workdir)
            .then(|| self.spec_for(pool, s, &inbox.spec.workdir))
            .flatten();
        let task = self.task_ref(&plan.facts, inbox, &file, name, &s.name, attempt);
        // Handed to another family before it came back: pasted at once, the note first
        // (a fresh agent gets it with the text once ready).
        let note = (restart.is_none() && !task.hand_offs.is_empty())
            .then(|| inbox.spec.hand_off_note.clone())
            .filter(|n| !n.is_empty());
        plan.act(TaskAction::DispatchTask {
            task,
            pane: s.pane.id.clone(),
            restart,
            note,
        });
    }

    /// A pool session's spec under the active account of its family, in `workdir`.
    pub(super) fn spec_for(
        &self,
        pool: &Object<PoolSpec>,
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
        // The profile it runs now (a pool over several families: its account's).
        let agent = match s.account.as_deref() {
            Some(a) => self.m.agent_under(&s.name, Some(a)),
            None => pool.spec.agent.as_str(),
        };
        super::session_spec(
            self.m,
            self.accounts.get(&self.m.kind_of(agent))?,
            &s.name,
            role,
            agent,
            workdir,
            &pool.spec.env,
        )
    }
}

/// How long session `name`'s screen has not changed.
pub(super) fn screen_age(plan: &Plan, name: &str, now: Timestamp) -> Duration {
    plan.facts
        .sessions
        .get(name)
        .and_then(|f| f.screen)
        .map_or(Duration::ZERO, |(_, at)| elapsed(now, at))
}

#[cfg(test)]
#[path = "tasks_tests.rs"]
mod tests;
