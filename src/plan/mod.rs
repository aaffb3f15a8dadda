//! The pure planner: from the desired world (manifests), the observed one and the
//! persisted facts, the ordered actions that make them match, and every item it refuses
//! with the reason. No I/O: every rule is tested without tmux.

mod action;
mod agents;
mod daemons;
mod event;
mod families;
mod ledger;
mod record;
mod reports;
mod requests;
mod restarts;
mod resumes;
mod screens;
mod sessions;
mod shared;
mod tasks;
mod turns;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::api::{AccountSpec, AgentKind, Manifests, Object};
use crate::object::ObjectRef;
use crate::observe::Observed;

pub use action::{
    Action, Change, FsAction, Outcome, Role, SessionAction, SessionSpec, TaskAction, TaskKey,
    TaskRef,
};
pub(crate) use agents::{codex_want, reports_wanted};
pub(crate) use event::at_used;
pub use event::{Direction, Event, Source};
pub use record::record;
pub(crate) use requests::{REQUESTED, plan_alone as plan_request};

/// What one reconcile should do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// Actions, in the order they must run.
    pub actions: Vec<Action>,
    /// What the planner will not do, and why.
    pub refused: Vec<Refusal>,
    /// The account each family's sessions run under now: the family's active account
    /// (kept in `facts`) while it is available; none while it is exhausted.
    #[serde(skip)]
    pub accounts: BTreeMap<AgentKind, String>,
    /// The facts after this plan's bookkeeping (screens seen, idle times); the outcome
    /// of each action is added with [`record`].
    #[serde(skip)]
    pub facts: crate::state::Facts,
    /// Look again after this long even if nothing happens (a submit delay running out).
    #[serde(skip)]
    pub requeue_after: Option<std::time::Duration>,
    /// Decisions to journal: quota detections, swaps, all accounts exhausted.
    #[serde(skip)]
    pub events: Vec<Event>,
    /// The report files this plan folded into `facts`: the controller deletes them once
    /// the facts are saved.
    #[serde(skip)]
    pub consumed: Vec<PathBuf>,
    /// The files in the reports' folder that are not reports, and why: folded into
    /// nothing, the controller keeps them aside (never deletes them).
    #[serde(skip)]
    pub damaged: Vec<(PathBuf, String)>,
    /// What each live session of ours' screen was read as, by session (the board shows
    /// it: the planner reads every screen once).
    #[serde(skip)]
    pub screens: BTreeMap<String, crate::screen::Class>,
}

/// Something the planner will not do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Refusal {
    /// What it is about; written as refusals say it (`session X`, a path).
    #[serde(serialize_with = "crate::object::serialize_spoken")]
    pub object: ObjectRef,
    /// Why, and what the operator can do.
    pub reason: String,
}

impl Plan {
    /// The account the sessions of family `kind` run under now, if one is available.
    pub fn account(&self, kind: AgentKind) -> Option<&str> {
        self.accounts.get(&kind).map(String::as_str)
    }

    fn act(&mut self, action: impl Into<Action>) {
        self.actions.push(action.into());
    }

    /// Asks to be looked at again within `after`.
    fn wake(&mut self, after: std::time::Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |d| d.min(after)));
    }

    fn refuse(&mut self, object: ObjectRef, reason: impl Into<String>) {
        self.refused.push(Refusal {
            object,
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

/// When the first account of family `kind` resets, if every one is exhausted (`None`
/// while one is available).
pub fn all_exhausted(
    m: &Manifests,
    kind: AgentKind,
    facts: &crate::state::Facts,
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    ledger::all_exhausted(&m.family_by_priority(kind), facts, now)
}

/// The family pool `pool`'s new tasks go to under `plan`: its first with a usable
/// account (a pool over several families), else its preferred one.
pub fn pool_kind(m: &Manifests, plan: &Plan, pool: &str) -> AgentKind {
    m.pool(pool)
        .and_then(|p| families::wanted(m, &p.spec, &plan.accounts))
        .map_or_else(|| m.kind_of_pool(pool), |agent| m.kind_of(agent))
}

/// Whether `account` is exhausted at `now`: its reset time has not come.
pub fn exhausted(facts: &crate::state::Facts, account: &str, now: jiff::Timestamp) -> bool {
    ledger::exhausted(facts, account, now)
}

/// The shared-state problems alone (links to elsewhere, files or folders in the way,
/// missing homes): what a controller refuses to start with.
pub fn check_shared(m: &Manifests, observed: &Observed) -> Vec<Refusal> {
    let mut plan = Plan::default();
    shared::plan_shared(m, observed, &mut plan);
    plan.refused
}

/// How far a plan goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Folders, links, agent settings and sessions (what `diff` and `apply` do); the
    /// tasks already claimed are followed, none is dispatched.
    Sessions,
    /// Also the tasks: dispatch, completion, retries (what the controller does).
    Tasks,
}

/// What a plan is made with, besides the desired and the observed world: whose
/// sessions are ours, when and in which time zone it is (and the database of the
/// others), the screen classifiers
/// compiled when the manifests were adopted, and how far it goes. The planner reads
/// nothing else: no clock, no environment, no file, no global.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The controller's owner mark.
    pub owner: &'a str,
    /// Now.
    pub now: jiff::Timestamp,
    /// The zone of reset times that name none (the machine's).
    pub tz: jiff::tz::TimeZone,
    /// The zones reset times may name.
    pub zones: &'a jiff::tz::TimeZoneDatabase,
    /// Every agent profile's screen classifier.
    pub classifiers: &'a crate::screen::Classifiers,
    /// How far the plan goes.
    pub scope: Scope,
    /// The state folder cannot be written (a save failed, or a probe before a claim):
    /// no new task is claimed, since its claim could not be recorded. Tasks under way
    /// are followed to their end, sessions kept running.
    pub hold_claims: bool,
}

impl Context<'_> {
    /// Now, in the local zone.
    pub(crate) fn local(&self) -> crate::screen::Local {
        crate::screen::Local {
            now: jiff::Zoned::new(self.now, self.tz.clone()),
            zones: self.zones.clone(),
        }
    }
}

/// Plans the changes that make `observed` match `m`.
pub fn plan(m: &Manifests, observed: &Observed, ctx: &Context) -> Plan {
    let (owner, now) = (ctx.owner, ctx.now);
    let mut plan = Plan {
        facts: observed.facts.clone(),
        ..Plan::default()
    };
    // What other nodes saw, first: as if it had been in the facts all along.
    ledger::take_fleet(m, observed, &mut plan);
    let broken = shared::plan_shared(m, observed, &mut plan);
    agents::plan_agent_settings(m, observed, &mut plan);
    let readings = screens::read_screens(m, observed, ctx);
    plan.screens = readings
        .iter()
        .map(|(name, r)| (name.clone(), r.verdict.class))
        .collect();
    // Claims a crash left out of the facts are taken back first, so that the reports
    // of their turns find them.
    turns::adopt(m, observed, now, &mut plan);
    let limits = reports::fold(m, observed, ctx, &mut plan);
    resumes::plan_resumes(observed, now, &mut plan);
    ledger::plan_ledger(m, observed, &readings, &limits, &broken, now, &mut plan);
    families::plan_waits(m, now, &mut plan);
    // A hand-off must be recorded before anything is done: none while the state
    // folder cannot be written.
    if ctx.scope == Scope::Tasks && !ctx.hold_claims {
        families::plan_hand_offs(m, observed, owner, now, &mut plan);
    }
    let redraw = redrawn(&plan);
    let accounts = plan.accounts.clone();
    // Each family's new tasks go to its active account unless that one is over moveAt,
    // and none anywhere while a claim could not be recorded.
    let intake: BTreeMap<AgentKind, String> = accounts
        .iter()
        .filter(|_| !ctx.hold_claims)
        .filter(|(_, a)| !ledger::over(m, &plan.facts, a, now))
        .map(|(k, a)| (*k, a.clone()))
        .collect();
    let view = tasks::View::new(
        m,
        observed,
        &plan.facts,
        tasks::Inputs {
            owner,
            now,
            accounts: &accounts,
            intake: &intake,
            redraw: &redraw,
            readings: &readings,
        },
    );
    view.bookkeep(&mut plan);
    match ctx.scope {
        Scope::Sessions => {}
        Scope::Tasks => {
            view.plan_tasks(&mut plan);
            let over = accounts.iter().filter(|_| !ctx.hold_claims);
            for (kind, a) in over.filter(|(k, _)| !intake.contains_key(k)) {
                ledger::hold_intake(m, observed, *kind, a, &mut plan);
            }
        }
    }
    sessions::plan_sessions(m, observed, owner, now, &broken, &view, &mut plan);
    restarts::plan_restarts(observed, now, &mut plan);
    daemons::plan_daemons(m, observed, owner, &mut plan);
    hold_text_of_moving(&mut plan);
    // The operator's requests last: they see what the round would do, and win over it.
    if ctx.scope == Scope::Tasks {
        requests::plan_requests(m, observed, owner, &mut plan);
    }
    plan.actions.sort_by_key(Action::order);
    plan
}

/// The sessions whose screen redraws an old limit that makes no one wait: a redrawn
/// limit does not make a session wait, unless a turn of a task is under way there (then
/// a limit on screen is never taken for its end).
fn redrawn(plan: &Plan) -> std::collections::BTreeSet<String> {
    plan.facts
        .sessions
        .iter()
        .filter(|(_, f)| {
            f.redraw.is_on()
                && f.task
                    .as_ref()
                    .is_none_or(|t| t.stage == crate::state::Stage::Resuming)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// A session being moved, or whose agent is started afresh (a recycle: another family,
/// say), gets no text this time: the next plan sees its new agent.
fn hold_text_of_moving(plan: &mut Plan) {
    let moving: std::collections::BTreeSet<String> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Session(
                SessionAction::MoveSession { session, .. }
                | SessionAction::RecycleSession { session, .. },
            ) => Some(session.name.clone()),
            _ => None,
        })
        .collect();
    plan.actions.retain(|a| {
        let Action::Task(t) = a else { return true };
        !t.types() || t.task().is_none_or(|t| !moving.contains(&t.session))
    });
}

#[cfg(test)]
pub(crate) mod fixtures;
