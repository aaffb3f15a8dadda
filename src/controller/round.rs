//! One reconcile round — observe (tmux, files, the agents' reports), plan, act, record,
//! save — the same for the long-running controller and for `apply`; [`converge`], rounds
//! until nothing is left to do; and [`Desired`], the manifests as adopted, with their
//! screen classifiers compiled once.
//!
//! Whoever runs a round sees it through a [`Watcher`]: the plan before any action, each
//! action before and after it runs. The controller journals and logs there; `apply`
//! prints.

use std::path::{Path, PathBuf};

use crate::act;
use crate::api::Manifests;
use crate::observe::{self, Observed};
use crate::plan::{self, Action, Outcome, Plan, Scope, SessionAction};
use crate::screen::{self, Classifiers};
use crate::state::{self, Facts};

/// The manifests as adopted: validated, with every agent profile's screen patterns
/// compiled.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The manifests.
    pub manifests: Manifests,
    /// Their agent profiles' classifiers.
    pub classifiers: Classifiers,
}

impl Desired {
    /// Adopts `manifests`: a screen pattern that does not compile is refused here, not
    /// skipped when a screen is read.
    pub fn adopt(manifests: Manifests) -> Result<Self, screen::Error> {
        let classifiers = Classifiers::compile(&manifests)?;
        Ok(Self {
            manifests,
            classifiers,
        })
    }
}

/// The facts, as the last round left them, and whether they are all on disk.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    facts: Facts,
    unsaved: bool,
    /// Why the last write to the state folder failed, while it does.
    failing: Option<String>,
}

impl Store {
    /// The facts saved in the state folder `dir`; a damaged facts file is kept aside
    /// and the facts start empty, to be rebuilt from what the first round observes
    /// (see [`Facts::load_or_keep_aside`]), with what was done.
    pub fn load(dir: &Path) -> Result<(Self, Option<state::damage::Damage>), state::Error> {
        let (facts, damage) = Facts::load_or_keep_aside(dir, jiff::Timestamp::now())?;
        let store = Self {
            dir: dir.to_path_buf(),
            facts,
            unsaved: damage.is_some(),
            failing: None,
        };
        Ok((store, damage))
    }

    /// Changes the facts before any round, to be saved by the next (facts rebuilt
    /// from observation after damage).
    pub(crate) fn amend(&mut self, change: impl FnOnce(&mut Facts)) {
        change(&mut self.facts);
        self.unsaved = true;
    }

    /// The facts now.
    pub fn facts(&self) -> &Facts {
        &self.facts
    }

    /// Keeps `facts`, saving them when they changed or an earlier save failed; whether
    /// the facts on disk are now these (only then may the reports they fold go).
    pub fn save(&mut self, facts: &Facts) -> bool {
        if *facts == self.facts && !self.unsaved {
            return true;
        }
        self.facts = facts.clone();
        match self.facts.save(&self.dir) {
            Ok(()) => {
                self.unsaved = false;
                self.failing = None;
                true
            }
            Err(e) => {
                // Said by whoever runs the rounds (the controller: once a minute).
                self.unsaved = true;
                self.failing = Some(e.to_string());
                false
            }
        }
    }

    /// Why the state folder cannot be written, while the last write to it failed.
    pub fn failing(&self) -> Option<&str> {
        self.failing.as_deref()
    }

    /// Whether the state folder takes a write now (a private file made there and
    /// removed): asked before a claim while the last save went through, since a folder
    /// turned read-only shows only at the next save.
    pub fn probe(&mut self) -> bool {
        match state::probe_writable(&self.dir) {
            Ok(()) => true,
            Err(e) => {
                // Saved again next round, whether the facts change or not: a save
                // that goes through ends the outage.
                self.unsaved = true;
                self.failing = Some(e.to_string());
                false
            }
        }
    }

    /// Asks whether the state folder takes writes, every round while the last write
    /// went through (a round that writes nothing would not find out): cheaply, and by a
    /// [`probe`](Self::probe) only when the folder looks unwritable, which then fails
    /// the round's writes as a save would.
    pub fn check(&mut self) {
        if self.failing.is_none() && state::seems_unwritable(&self.dir) {
            self.probe();
        }
    }

    /// Saves the facts, whether or not they changed (at stop).
    pub fn flush(&mut self) -> Result<(), state::Error> {
        self.facts.save(&self.dir)?;
        self.unsaved = false;
        Ok(())
    }
}

/// What the runner of a round sees of it, as it goes.
pub trait Watcher {
    /// The plan, before any of its actions runs.
    fn planned(&mut self, _plan: &Plan) {}
    /// Whether to run `action` now (false stops the round here: a stop signal).
    fn proceed(&mut self, _action: &Action) -> bool {
        true
    }
    /// `action` came to `result`.
    fn acted(&mut self, _action: &Action, _result: &Result<Outcome, String>) {}
    /// A damaged state file was kept aside (or could not be: `Err`).
    fn damaged(&mut self, _damage: &Result<state::damage::Damage, state::Error>) {}
}

/// A watcher that sees nothing.
impl Watcher for () {}

/// When a round began, by both clocks. The round reads the wall clock from it, carried
/// on by the monotonic clock: a jump of the wall clock in the middle of a round is not
/// seen by its planner (with facts not yet moved for it, a cooldown would end at once),
/// but by the next round, which moves the facts first (see `Controller::reconcile`).
#[derive(Debug, Clone, Copy)]
pub struct Began {
    /// The monotonic clock when the round began.
    pub mono: std::time::Instant,
    /// The wall clock when the round began.
    pub wall: jiff::Timestamp,
}

impl Began {
    /// Both clocks read now.
    pub fn now() -> Self {
        Self {
            mono: std::time::Instant::now(),
            wall: jiff::Timestamp::now(),
        }
    }

    /// The wall clock as the round reads it: the one at its start, plus the monotonic
    /// time since.
    pub fn wall_now(&self) -> jiff::Timestamp {
        jiff::SignedDuration::try_from(self.mono.elapsed())
            .ok()
            .and_then(|d| self.wall.checked_add(d).ok())
            .unwrap_or(self.wall)
    }
}

/// One round's setting: the connection and owner to act with, the manifests, how far
/// plans go, the local time zone, and when it began.
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    /// What actions run with.
    pub act: act::Context<'a>,
    /// The manifests.
    pub desired: &'a Desired,
    /// How far plans go: the controller's take tasks, `apply`'s do not.
    pub scope: Scope,
    /// The zone of reset times that name none.
    pub tz: &'a jiff::tz::TimeZone,
    /// The zones reset times may name.
    pub zones: &'a jiff::tz::TimeZoneDatabase,
    /// When it began: the clock its planner and its records read.
    pub began: Began,
}

/// What one round did.
#[derive(Debug)]
pub struct Report {
    /// What it observed.
    pub observed: Observed,
    /// What it planned.
    pub plan: Plan,
    /// The actions it ran and their results, in order.
    pub done: Vec<(Action, Result<Outcome, String>)>,
}

impl Round<'_> {
    /// Observes and plans, acting on nothing (what `diff` shows).
    pub async fn look(&self, facts: &Facts) -> Result<(Observed, Plan), observe::Error> {
        self.look_with(facts, observe::Fleet::default(), false)
            .await
    }

    /// [`look`](Self::look), with what the fleet's ledger told since the last round.
    /// `hold_claims`: the state folder cannot be written, no new task is claimed.
    async fn look_with(
        &self,
        facts: &Facts,
        fleet: observe::Fleet,
        hold_claims: bool,
    ) -> Result<(Observed, Plan), observe::Error> {
        let m = &self.desired.manifests;
        let mut observed =
            observe::observe(self.act.tmux, m, facts.clone(), self.act.state_dir).await?;
        observed.fleet = fleet;
        let plan = self.plan(&observed, hold_claims);
        Ok((observed, plan))
    }

    /// Plans from `observed`, claims held or not.
    fn plan(&self, observed: &Observed, hold_claims: bool) -> Plan {
        let ctx = plan::Context {
            owner: self.act.owner,
            now: self.began.wall_now(),
            tz: self.tz.clone(),
            zones: self.zones,
            classifiers: &self.desired.classifiers,
            scope: self.scope,
            hold_claims,
        };
        plan::plan(&self.desired.manifests, observed, &ctx)
    }

    /// Observes, plans, runs the plan's actions in order, folds each result into the
    /// facts and saves them; then deletes the agents' reports the saved facts fold.
    /// Consecutive creations, and consecutive moves, go out together (see [`batch`]):
    /// a swap moves every session at once. The facts are saved at once after moves: a
    /// crash before the end of the round must not forget that the moved sessions'
    /// screens now redraw an old limit.
    pub async fn run(
        &self,
        store: &mut Store,
        watcher: &mut impl Watcher,
    ) -> Result<Report, observe::Error> {
        self.run_with(store, watcher, observe::Fleet::default())
            .await
    }

    /// [`run`](Self::run) for a controller joined in a fleet: `fleet`, what the fleet's
    /// ledger told since its last round, is observed with the rest, for the planner to
    /// take into the facts.
    pub async fn run_with(
        &self,
        store: &mut Store,
        watcher: &mut impl Watcher,
        fleet: observe::Fleet,
    ) -> Result<Report, observe::Error> {
        store.check();
        let held = store.failing().is_some();
        let (observed, mut plan) = self.look_with(store.facts(), fleet, held).await?;
        let hands_off = |plan: &Plan| {
            plan.events
                .iter()
                .any(|e| matches!(e, plan::Event::HandedOff { .. }))
        };
        if (claims(&plan) || hands_off(&plan)) && !store.probe() {
            // The folder turned read-only since the last save: the claim (or the
            // hand-off) could not be recorded.
            plan = self.plan(&observed, true);
        }
        // A hand-off is recorded before it is told and carried out: the facts that
        // hold it are saved first (the session rules act on saved hand-offs only).
        if hands_off(&plan) {
            store.save(&plan.facts);
        }
        watcher.planned(&plan);
        let mut facts = plan.facts.clone();
        let began = self.began;
        let done = carry_out(&plan.actions, self.act, watcher, |ran| {
            for (action, result) in ran {
                plan::record(&mut facts, action, result, began.wall_now());
            }
            if let Some((Action::Session(SessionAction::MoveSession { .. }), _)) = ran.first() {
                store.save(&facts);
            }
        })
        .await;
        if store.save(&facts) {
            // What the reports said is in the facts now: they can go.
            for path in &plan.consumed {
                let _ = std::fs::remove_file(path);
            }
        }
        // Files that are not reports said nothing: they are kept, aside.
        for (path, problem) in &plan.damaged {
            let kept = state::damage::keep_aside(path, jiff::Timestamp::now()).map(|kept| {
                state::damage::Damage {
                    file: path.clone(),
                    problem: problem.clone(),
                    kept,
                    done: "not a report: left out of the facts".to_owned(),
                }
            });
            watcher.damaged(&kept);
        }
        Ok(Report {
            observed,
            plan,
            done,
        })
    }
}

/// Whether `plan` claims a task.
fn claims(plan: &Plan) -> bool {
    plan.actions
        .iter()
        .any(|a| matches!(a, Action::Task(plan::TaskAction::DispatchTask { .. })))
}

/// Carries out `actions` in order, by their executors, in the runs [`batch`] makes:
/// `watcher` is asked before each run and told each result, `after` is given each run's
/// results. Every runner of actions — the controller's rounds, `apply`, `delete` — goes
/// through here. What ran, with its results, in order.
pub async fn carry_out(
    actions: &[Action],
    ctx: act::Context<'_>,
    watcher: &mut impl Watcher,
    mut after: impl FnMut(&[(Action, Result<Outcome, String>)]),
) -> Vec<(Action, Result<Outcome, String>)> {
    let mut done = Vec::new();
    let mut rest = actions;
    while !rest.is_empty() {
        let n = batch(rest);
        let (now, later) = rest.split_at(n);
        rest = later;
        if !now.iter().all(|a| watcher.proceed(a)) {
            break;
        }
        let results =
            futures_util::future::join_all(now.iter().map(|action| act::execute(action, ctx)))
                .await;
        let ran: Vec<_> = now
            .iter()
            .zip(results)
            .map(|(action, result)| {
                let result = result.map_err(|e| e.to_string());
                watcher.acted(action, &result);
                (action.clone(), result)
            })
            .collect();
        after(&ran);
        done.extend(ran);
    }
    done
}

/// How many of the first actions of `actions` run together: a run of session
/// creations, or of moves (each its own session, one tmux command list each, pipelined
/// on the one connection); any other action runs alone.
fn batch(actions: &[Action]) -> usize {
    let together = |a: &Action, b: &Action| match (a, b) {
        (
            Action::Session(SessionAction::CreateSession { .. }),
            Action::Session(SessionAction::CreateSession { .. }),
        )
        | (
            Action::Session(SessionAction::MoveSession { .. }),
            Action::Session(SessionAction::MoveSession { .. }),
        ) => true,
        (Action::Fs(_) | Action::Session(_) | Action::Task(_), _) => false,
    };
    match actions.split_first() {
        Some((first, rest)) => 1 + rest.iter().take_while(|a| together(first, a)).count(),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{FsAction, Role, SessionSpec};

    fn spec(name: &str) -> SessionSpec {
        SessionSpec {
            name: name.into(),
            role: Role::Dedicated,
            account: "b".into(),
            workdir: "/w".into(),
            command: vec!["claude".into()],
            env: Default::default(),
            unset: vec![],
        }
    }

    fn create(name: &str) -> Action {
        Action::Session(SessionAction::CreateSession {
            session: spec(name),
            resume: None,
        })
    }

    fn moving(name: &str) -> Action {
        Action::Session(SessionAction::MoveSession {
            session: spec(name),
            pane: "%1".into(),
            from: Some("a".into()),
            from_home: None,
            to_home: None,
            pid: 1,
            resume: None,
            conversation: None,
        })
    }

    #[test]
    fn creations_and_moves_should_go_out_in_runs_and_anything_else_alone() {
        let dir = Action::Fs(FsAction::CreateDir { path: "/x".into() });
        let plan = [
            dir.clone(),
            dir,
            create("a"),
            create("b"),
            moving("a"),
            moving("b"),
            moving("c"),
        ];
        let mut sizes = Vec::new();
        let mut rest = &plan[..];
        while !rest.is_empty() {
            let n = batch(rest);
            sizes.push(n);
            rest = &rest[n..];
        }
        assert_eq!(sizes, [1, 1, 2, 3]);
        assert_eq!(batch(&[]), 0);
    }
}

/// What [`converge`] did.
#[derive(Debug)]
pub struct Converged {
    /// Every action carried out, with its outcome, in order.
    pub done: Vec<(Action, Result<Outcome, String>)>,
    /// The plan after the last round: empty when converged; its refusals otherwise.
    pub remaining: Plan,
    /// The last observation.
    pub observed: Observed,
}

/// Stops a round whose plan repeats the last one's actions: they made no progress.
struct Repeats<'w, W> {
    inner: &'w mut W,
    previous: Option<Vec<Action>>,
    repeated: bool,
}

impl<W: Watcher> Watcher for Repeats<'_, W> {
    fn planned(&mut self, plan: &Plan) {
        self.repeated = self.previous.as_ref() == Some(&plan.actions);
        self.previous = Some(plan.actions.clone());
        self.inner.planned(plan);
    }

    fn proceed(&mut self, action: &Action) -> bool {
        !self.repeated && self.inner.proceed(action)
    }

    fn acted(&mut self, action: &Action, result: &Result<Outcome, String>) {
        self.inner.acted(action, result);
    }

    fn damaged(&mut self, damage: &Result<state::damage::Damage, state::Error>) {
        self.inner.damaged(damage);
    }
}

/// Runs rounds until a plan has no actions, the same actions come back (no progress),
/// or `rounds` runs out (then one more look says what remains).
pub async fn converge(
    round: &Round<'_>,
    store: &mut Store,
    rounds: usize,
    watcher: &mut impl Watcher,
) -> Result<Converged, observe::Error> {
    let mut done = Vec::new();
    let mut watcher = Repeats {
        inner: watcher,
        previous: None,
        repeated: false,
    };
    for _ in 0..rounds.max(1) {
        let report = round.run(store, &mut watcher).await?;
        let finished = report.plan.actions.is_empty() || watcher.repeated;
        done.extend(report.done);
        if finished {
            return Ok(Converged {
                done,
                remaining: report.plan,
                observed: report.observed,
            });
        }
    }
    let (observed, remaining) = round.look(store.facts()).await?;
    Ok(Converged {
        done,
        remaining,
        observed,
    })
}
