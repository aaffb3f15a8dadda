//! The pure planner: from the desired world (manifests), the observed one and the
//! persisted facts, the ordered actions that make them match, and every item it refuses
//! with the reason. No I/O: every rule is tested without tmux.

mod agents;
mod ledger;
mod record;
mod render;
mod reports;
mod screens;
mod sessions;
mod shared;
mod tasks;
mod turns;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Serialize, Serializer};

use crate::api::{AccountSpec, Manifests, Object};
use crate::observe::Observed;

pub use record::{Outcome, record};
pub use render::{describe, render_diff, render_json, render_text, sign};

/// What one reconcile should do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Actions, in the order they must run.
    pub actions: Vec<Action>,
    /// What the planner will not do, and why.
    pub refused: Vec<Refusal>,
    /// The account sessions run under now: the ledger's active account (kept in
    /// `facts`) while it is available; `None` while it is exhausted.
    pub account: Option<String>,
    /// The facts after this plan's bookkeeping (screens seen, idle times); the outcome
    /// of each action is added with [`record`].
    #[serde(skip)]
    pub facts: crate::state::Facts,
    /// Look again after this long even if nothing happens (a submit delay running out).
    #[serde(skip)]
    pub requeue_after: Option<std::time::Duration>,
    /// Decisions to journal: quota detections, swaps, all accounts exhausted.
    #[serde(skip)]
    pub events: Vec<(String, serde_json::Value)>,
    /// The report files this plan folded into `facts`: the controller deletes them once
    /// the facts are saved.
    #[serde(skip)]
    pub consumed: Vec<PathBuf>,
}

/// One change to the world.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Action {
    /// Create a folder of the shared state.
    CreateDir {
        /// The folder.
        path: PathBuf,
    },
    /// Create the link `link -> target` in an account home.
    CreateLink {
        /// The link, inside the home.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// Put failover's hooks and status line into an account home's agent settings, or
    /// take them out, leaving the operator's entries as they are.
    ConfigureAgent {
        /// The account.
        account: String,
        /// Its `settings.json`.
        path: PathBuf,
        /// The failover binary the hooks run; `None` takes failover's entries out.
        exe: Option<PathBuf>,
        /// What changes, in words.
        changes: Vec<String>,
    },
    /// Start a session.
    CreateSession {
        /// What it runs.
        session: SessionSpec,
        /// The conversation its task is resumed in (the agent died mid-turn), if any.
        resume: Option<String>,
    },
    /// Start the agent of an existing session again (its process exited).
    RestartSession {
        /// What it runs.
        session: SessionSpec,
        /// The agent's pane (`%N`).
        pane: String,
        /// Why.
        reason: String,
        /// The conversation its task is resumed in (the agent died mid-turn), if any.
        resume: Option<String>,
    },
    /// Run a session's agent under another account, resuming its conversation.
    MoveSession {
        /// What it runs, under the new account.
        session: SessionSpec,
        /// The agent's pane (`%N`).
        pane: String,
        /// The account it runs under now.
        from: Option<String>,
        /// That account's home, where the agent's `sessions/<pid>.json` names its
        /// conversation.
        from_home: Option<PathBuf>,
        /// The agent's pid.
        pid: u32,
        /// The profile's resume arguments (`{sessionId}` to fill in), when the
        /// conversation is to be resumed; `None` starts afresh.
        resume: Option<Vec<String>>,
        /// The conversation the agent holds and its transcript, as its `SessionStart`
        /// report named them; without one, its `sessions/<pid>.json` in `from_home`.
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation: Option<(String, PathBuf)>,
    },
    /// Kill one of our sessions.
    DeleteSession {
        /// The session.
        name: String,
        /// Why.
        reason: String,
    },
    /// Start the agent of a session afresh (a fresh context) under the active account.
    RecycleSession {
        /// What it runs.
        session: SessionSpec,
        /// The agent's pane.
        pane: String,
        /// Why.
        reason: String,
    },
    /// Claim a waiting task for an idle session and paste its text (or start the agent
    /// in the task's folder first).
    DispatchTask {
        /// Which task.
        task: TaskRef,
        /// The agent's pane.
        pane: String,
        /// Start the agent afresh in the inbox's folder before pasting.
        restart: Option<SessionSpec>,
    },
    /// Paste a claimed task's text into the agent, now idle in the task's folder.
    PasteTask {
        /// Which task.
        task: TaskRef,
        /// The agent's pane.
        pane: String,
    },
    /// Carry on a task in a resumed conversation: paste a short prompt.
    ContinueTask {
        /// Which task.
        task: TaskRef,
        /// The agent's pane.
        pane: String,
        /// The prompt: it names the account and the time, so its turn never reads as
        /// an old one.
        text: String,
    },
    /// Send the lone Enter that submits the pasted text.
    SubmitTask {
        /// Which task.
        task: TaskRef,
        /// The agent's pane.
        pane: String,
    },
    /// Move a finished task to `done/` with the agent's last reply and, for a pool
    /// session whose agent is alive, end its context with the profile's exit command.
    CompleteTask {
        /// Which task.
        task: TaskRef,
        /// The agent's pane.
        pane: String,
        /// The agent's pid: after the task, no longer a fresh context.
        pid: u32,
        /// How the end was seen (`Stop report`, `transcript`, `idle screen after the
        /// turn ran`).
        how: String,
        /// The agent's last reply, when its report or transcript gave it.
        #[serde(skip_serializing_if = "Option::is_none")]
        reply: Option<String>,
        /// The exit command to type, for pool sessions.
        exit: Option<String>,
    },
    /// Put a claimed task back in its inbox, or in `failed/` after its last try.
    RequeueTask {
        /// Which task.
        task: TaskRef,
        /// Why.
        reason: String,
        /// To `failed/` instead of the inbox.
        failed: bool,
        /// Its text reached the agent (a try is used); a claim never delivered goes back
        /// with its tries as they were.
        delivered: bool,
    },
    /// Move a waiting task that must not be sent to `failed/`.
    RejectTask {
        /// The inbox.
        inbox: String,
        /// The inbox folder.
        path: PathBuf,
        /// The file name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Mark a task stalled: its screen has not changed for `idleTimeout`.
    StallTask {
        /// Which task.
        task: TaskRef,
    },
}

/// A claimed (or about to be claimed) task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    /// The inbox, by name.
    pub inbox: String,
    /// The inbox folder.
    pub path: PathBuf,
    /// Its file name as dropped.
    pub name: String,
    /// Its file name in `active/`.
    pub file: String,
    /// The session.
    pub session: String,
    /// The account of the session.
    pub account: String,
    /// Which try (1 for the first).
    pub attempt: u32,
    /// When it was submitted, if it was.
    pub started: Option<jiff::Timestamp>,
    /// Why its earlier tries ended, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<String>,
}

/// How an action counts in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Something new.
    Add,
    /// Something existing, changed.
    Change,
    /// Something removed.
    Delete,
}

impl Action {
    /// How it counts.
    pub fn change(&self) -> Change {
        match self {
            Action::CreateDir { .. } | Action::CreateLink { .. } | Action::CreateSession { .. } => {
                Change::Add
            }
            Action::DeleteSession { .. } => Change::Delete,
            Action::ConfigureAgent { .. }
            | Action::RestartSession { .. }
            | Action::MoveSession { .. }
            | Action::RecycleSession { .. }
            | Action::DispatchTask { .. }
            | Action::PasteTask { .. }
            | Action::ContinueTask { .. }
            | Action::SubmitTask { .. }
            | Action::CompleteTask { .. }
            | Action::RequeueTask { .. }
            | Action::RejectTask { .. }
            | Action::StallTask { .. } => Change::Change,
        }
    }

    /// Where it goes in a plan: folders before the links into them, agent settings
    /// before the agents that read them, deletions to free names for creations.
    fn order(&self) -> u8 {
        match self {
            Action::CreateDir { .. } => 0,
            Action::CreateLink { .. } => 1,
            Action::ConfigureAgent { .. } => 2,
            Action::DeleteSession { .. } => 3,
            Action::CreateSession { .. } => 4,
            Action::RestartSession { .. } => 5,
            Action::MoveSession { .. } => 6,
            Action::RecycleSession { .. }
            | Action::DispatchTask { .. }
            | Action::PasteTask { .. }
            | Action::ContinueTask { .. }
            | Action::SubmitTask { .. }
            | Action::CompleteTask { .. }
            | Action::RequeueTask { .. }
            | Action::RejectTask { .. }
            | Action::StallTask { .. } => 7,
        }
    }
}

/// Everything needed to start a session's agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSpec {
    /// The tmux session name.
    pub name: String,
    /// Why it exists.
    pub role: Role,
    /// The account it runs under.
    pub account: String,
    /// Its working folder.
    pub workdir: PathBuf,
    /// The agent's argv.
    pub command: Vec<String>,
    /// The agent's environment; only the names are ever printed (values may be
    /// secrets).
    #[serde(serialize_with = "names_only")]
    pub env: BTreeMap<String, String>,
    /// Variables another account sets and this one does not: cleared from the tmux
    /// session's environment before its agent is started again, so that nothing of the
    /// previous account leaks into the next.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

fn names_only<S: Serializer>(env: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(env.keys())
}

/// Why a session exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Role {
    /// A pool's session.
    Pool {
        /// The pool.
        pool: String,
        /// Its index in the pool's range.
        index: u64,
    },
    /// An operator's interactive session.
    Dedicated,
}

/// Something the planner will not do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// What it is about (a path, `session X`, `pool Y`).
    pub object: String,
    /// Why, and what the operator can do.
    pub reason: String,
}

impl Plan {
    fn act(&mut self, action: Action) {
        self.actions.push(action);
    }

    /// Asks to be looked at again within `after`.
    fn wake(&mut self, after: std::time::Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |d| d.min(after)));
    }

    fn refuse(&mut self, object: impl Into<String>, reason: impl Into<String>) {
        self.refused.push(Refusal {
            object: object.into(),
            reason: reason.into(),
        });
    }

    /// Whether there is nothing to do and nothing refused.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.refused.is_empty()
    }

    /// Counts of actions that add, change and delete.
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |c| self.actions.iter().filter(|a| a.change() == c).count();
        (
            count(Change::Add),
            count(Change::Change),
            count(Change::Delete),
        )
    }
}

/// What a session runs under `account`: the agent profile's command, and its environment
/// (the profile's, then the account's, then the session's own, then the account's home
/// in the profile's `homeEnv`).
pub(crate) fn session_spec(
    m: &Manifests,
    account: &Object<AccountSpec>,
    name: &str,
    role: Role,
    agent: &str,
    workdir: &std::path::Path,
    env: &crate::api::Env,
) -> Option<SessionSpec> {
    let profile = m.agent(agent)?;
    let mut all = profile.spec.env.clone();
    all.extend(account.spec.env.clone());
    all.extend(env.clone());
    all.insert(
        profile.spec.home_env.clone(),
        account.spec.home.to_string_lossy().into_owned(),
    );
    let unset: std::collections::BTreeSet<String> = m
        .accounts
        .iter()
        .flat_map(|a| a.spec.env.keys())
        .filter(|k| !all.contains_key(*k))
        .cloned()
        .collect();
    Some(SessionSpec {
        name: name.to_owned(),
        role,
        account: account.name.clone(),
        workdir: workdir.to_path_buf(),
        command: profile.spec.command.clone(),
        env: all,
        unset: unset.into_iter().collect(),
    })
}

/// Whether `account` is at or over `quota.moveAt` by its last usage reading in `facts`.
pub fn over_threshold(
    m: &Manifests,
    facts: &crate::state::Facts,
    account: &str,
    now: jiff::Timestamp,
) -> bool {
    ledger::over(m, facts, account, now)
}

/// The shared-state problems alone (links to elsewhere, files or folders in the way,
/// missing homes): what a controller refuses to start with.
pub fn check_shared(m: &Manifests, observed: &Observed) -> Vec<Refusal> {
    let mut plan = Plan::default();
    shared::plan_shared(m, observed, &mut plan);
    plan.refused
}

/// Plans the changes that make `observed` match `m`: folders, links and sessions (what
/// `diff` and `apply` do). `owner` is the controller's mark.
pub fn plan(m: &Manifests, observed: &Observed, owner: &str, now: jiff::Timestamp) -> Plan {
    plan_all(m, observed, owner, now, false)
}

/// Plans like [`plan`], and also the tasks: dispatch, completion, retries (what the
/// controller does).
pub fn plan_with_tasks(
    m: &Manifests,
    observed: &Observed,
    owner: &str,
    now: jiff::Timestamp,
) -> Plan {
    plan_all(m, observed, owner, now, true)
}

fn plan_all(
    m: &Manifests,
    observed: &Observed,
    owner: &str,
    now: jiff::Timestamp,
    with_tasks: bool,
) -> Plan {
    let mut plan = Plan {
        facts: observed.facts.clone(),
        ..Plan::default()
    };
    let broken = shared::plan_shared(m, observed, &mut plan);
    agents::plan_agent_settings(m, observed, &mut plan);
    let readings = screens::read_screens(m, observed, owner, now);
    // Claims a crash left out of the facts are taken back first, so that the reports
    // of their turns find them.
    turns::adopt(m, observed, now, &mut plan);
    let limits = reports::fold(m, observed, now, &mut plan);
    ledger::plan_ledger(m, observed, &readings, &limits, now, &mut plan);
    // A redrawn limit does not make a session wait, unless a turn of a task is under
    // way there: then a limit on screen is never taken for its end.
    let redraw: std::collections::BTreeSet<String> = plan
        .facts
        .sessions
        .iter()
        .filter(|(_, f)| {
            f.redraw
                && f.task
                    .as_ref()
                    .is_none_or(|t| t.stage == crate::state::Stage::Resuming)
        })
        .map(|(name, _)| name.clone())
        .collect();
    let account = plan.account.clone();
    let intake = account
        .clone()
        .filter(|a| !ledger::over(m, &plan.facts, a, now));
    let view = tasks::View::new(
        m,
        observed,
        &plan.facts,
        tasks::Inputs {
            owner,
            now,
            account: account.as_deref(),
            intake: intake.as_deref(),
            redraw: &redraw,
            readings: &readings,
        },
    );
    view.bookkeep(&mut plan);
    if with_tasks {
        view.plan_tasks(&mut plan);
        if let Some(a) = account.as_deref().filter(|_| intake.is_none()) {
            ledger::hold_intake(m, observed, a, &mut plan);
        }
    }
    sessions::plan_sessions(m, observed, owner, now, &broken, &view, &mut plan);
    // A session being moved gets no text this time: the next plan sees its new agent.
    let moving: std::collections::BTreeSet<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::MoveSession { session, .. } => Some(session.name.clone()),
            _ => None,
        })
        .collect();
    plan.actions.retain(|a| match a {
        Action::PasteTask { task, .. }
        | Action::ContinueTask { task, .. }
        | Action::SubmitTask { task, .. }
        | Action::CompleteTask { task, .. } => !moving.contains(&task.session),
        _ => true,
    });
    plan.actions.sort_by_key(Action::order);
    plan
}

#[cfg(test)]
pub(crate) mod fixtures;
