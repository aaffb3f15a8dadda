//! Session rules: pools keep `min` sessions named `prefix + i` in their range, dedicated
//! sessions exist, each runs under the active account of its profile's family (the
//! accounts of its agent kind), and sessions with our mark
//! that no manifest wants are removed. A session without our mark is never touched.

use crate::object::ObjectRef;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::tasks::View;
use super::{Plan, Role, SessionAction, SessionSpec};
use crate::api::{AccountSpec, AgentKind, Env, Manifests, Object, PoolSpec};
use crate::observe::{CodexThread, Observed, Session};

/// How long a move waits for the transcript of a task's conversation to be written,
/// counted from the paste, before it starts the agent afresh.
const TRANSCRIPT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A pool's session name with its index.
type Indexed = (u64, String);

struct Ctx<'a> {
    m: &'a Manifests,
    observed: &'a Observed,
    owner: &'a str,
    /// The account each family's sessions run under.
    accounts: BTreeMap<AgentKind, &'a Object<AccountSpec>>,
    /// The families none of whose sessions may start.
    blocked: BTreeSet<AgentKind>,
    view: &'a View<'a>,
    now: jiff::Timestamp,
}

/// Adds the session actions and refusals.
pub(super) fn plan_sessions(
    m: &Manifests,
    observed: &Observed,
    owner: &str,
    now: jiff::Timestamp,
    broken: &BTreeSet<String>,
    view: &View<'_>,
    plan: &mut Plan,
) {
    let families = m.families();
    let accounts: BTreeMap<AgentKind, &Object<AccountSpec>> = families
        .iter()
        .filter_map(|k| Some((*k, m.account(plan.account(*k)?)?)))
        .collect();
    let refusals: Vec<(AgentKind, Refusal)> = families
        .iter()
        .filter_map(|k| {
            Some((
                *k,
                blocked(m, *k, accounts.get(k).copied(), broken, now, plan)?,
            ))
        })
        .collect();
    let blocked: BTreeSet<AgentKind> = refusals.iter().map(|(k, _)| *k).collect();
    for (kind, refusal) in refusals {
        match refusal {
            Refusal::NoAccount(why) if families.len() > 1 => plan.refuse(
                ObjectRef::Accounts,
                format!("{kind}: {why}; {}", meanwhile(m, kind, &blocked)),
            ),
            Refusal::NoAccount(why) => plan.refuse(
                ObjectRef::Accounts,
                format!("{why}; no session is started, tasks wait in their inboxes"),
            ),
            Refusal::Broken(account) => plan.refuse(
                ObjectRef::Account(account),
                "its shared state is broken (see above); no session is started under it until it is fixed",
            ),
        }
    }
    let ctx = Ctx {
        m,
        observed,
        owner,
        accounts,
        blocked,
        view,
        now,
    };
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    for pool in &m.pools {
        wanted.extend(ctx.plan_pool(pool, &mut removed, plan));
    }
    for d in &m.dedicated {
        wanted.insert(d.name.clone());
        ctx.ensure(
            ctx.spec(
                &d.name,
                Role::Dedicated,
                &d.spec.agent,
                &d.spec.workdir,
                &d.spec.env,
            ),
            plan,
        );
    }
    ctx.remove_orphans(&wanted, &removed, plan);
}

/// Why no session of a family may start.
enum Refusal {
    /// No account of it can take sessions: why.
    NoAccount(String),
    /// Its active account's shared state is broken: the account.
    Broken(String),
}

/// Why no session of family `kind` may start, if none may: no account of it can take
/// them, or its active one's shared state is broken.
fn blocked(
    m: &Manifests,
    kind: AgentKind,
    account: Option<&Object<AccountSpec>>,
    broken: &BTreeSet<String>,
    now: jiff::Timestamp,
    plan: &Plan,
) -> Option<Refusal> {
    match account {
        None => {
            let family = m.family_by_priority(kind);
            Some(Refusal::NoAccount(super::ledger::why_none(
                &family,
                &plan.facts,
                broken,
                now,
            )))
        }
        Some(a) if broken.contains(&a.name) => Some(Refusal::Broken(a.name.clone())),
        Some(_) => None,
    }
}

/// What goes on while family `kind` may start no session, with several families: the
/// pools that run it and another family not `blocked` run that one meanwhile; the
/// others' tasks wait in their inboxes; its dedicated sessions wait.
fn meanwhile(m: &Manifests, kind: AgentKind, blocked: &BTreeSet<AgentKind>) -> String {
    let mut said = vec![format!("no {kind} session is started")];
    let mut waiting: Vec<&str> = Vec::new();
    for pool in &m.pools {
        let kinds: Vec<AgentKind> = pool.spec.profiles().iter().map(|p| m.kind_of(p)).collect();
        if !kinds.contains(&kind) {
            continue;
        }
        match kinds.iter().find(|k| !blocked.contains(k)) {
            Some(other) => said.push(format!("pool {} runs {other} meanwhile", pool.name)),
            None => waiting.push(&pool.name),
        }
    }
    if !waiting.is_empty() {
        said.push(format!(
            "the tasks of pool {} wait in their inboxes",
            waiting.join(", ")
        ));
    }
    if m.dedicated.iter().any(|d| m.kind_of(&d.spec.agent) == kind) {
        said.push(format!("its dedicated sessions wait for a {kind} account"));
    }
    said.join("; ")
}

impl Ctx<'_> {
    /// Plans one pool: grows it toward `max` while tasks wait for more sessions than
    /// are free, scales idle ones down toward `min`, and ensures each session it keeps.
    /// Returns the names it keeps; those it removes go into `removed`.
    fn plan_pool(
        &self,
        pool: &Object<PoolSpec>,
        removed: &mut BTreeSet<String>,
        plan: &mut Plan,
    ) -> Vec<String> {
        let names: Vec<Indexed> = pool.spec.indexed_names().collect();
        let (min, max) = (pool.spec.min as usize, pool.spec.max as usize);
        let existing: Vec<&Indexed> = names
            .iter()
            .filter(|(_, n)| {
                self.observed
                    .sessions
                    .get(n)
                    .is_some_and(|s| s.is_ours(self.owner))
            })
            .collect();
        // Grow toward max while tasks wait for more sessions than are free.
        let waiting = self.view.waiting_for(&pool.name);
        let free_now = existing.iter().filter(|(_, n)| self.view.free(n)).count();
        let grow = waiting.saturating_sub(free_now);
        let keep = self.scale_down(pool, &existing, waiting > 0, removed, plan);
        // Not growing: keep what is kept (at least min); growing: up to the target.
        let target = if grow > 0 {
            (existing.len() + grow).min(max).max(min)
        } else {
            keep.len().max(min)
        };
        let mut chosen = self.choose(pool, &names, keep, target, plan);
        chosen.sort();
        let mut wanted = Vec::new();
        for (index, name) in chosen {
            wanted.push(name.clone());
            let role = Role::Pool {
                pool: pool.name.clone(),
                index: *index,
            };
            let at = (self.view.has_task(name), self.view.resting(name));
            let agent = super::families::agent_for(self.m, self.observed, pool, name, at, plan);
            let spec = self.spec(name, role, agent, &pool.spec.workdir, &pool.spec.env);
            self.ensure(spec, plan);
        }
        wanted
    }

    /// Removes the pool's sessions above `min` that sat idle without a task for
    /// `scaleDownAfter`, highest index first; none while tasks wait. Returns the
    /// sessions kept, in order.
    fn scale_down<'n>(
        &self,
        pool: &Object<PoolSpec>,
        existing: &[&'n Indexed],
        tasks_wait: bool,
        removed: &mut BTreeSet<String>,
        plan: &mut Plan,
    ) -> Vec<&'n Indexed> {
        let min = pool.spec.min as usize;
        let linger = pool.spec.scale_down_after.0;
        let mut excess = if tasks_wait {
            0
        } else {
            existing.len().saturating_sub(min)
        };
        let mut keep: Vec<&Indexed> = Vec::new();
        for entry in existing.iter().rev() {
            let name = &entry.1;
            let idle_long = self.view.idle_since(name, plan).is_some_and(|t| {
                self.now
                    .duration_since(t)
                    .try_into()
                    .unwrap_or(std::time::Duration::ZERO)
                    >= linger
            });
            if excess > 0 && idle_long && !self.view.has_task(name) {
                plan.act(SessionAction::DeleteSession {
                    name: name.clone(),
                    reason: format!(
                        "pool {} is above its {min} sessions and this one is idle",
                        pool.name
                    ),
                });
                removed.insert(name.clone());
                excess -= 1;
            } else {
                keep.push(entry);
            }
        }
        keep.reverse();
        keep
    }

    /// The pool's sessions for `target`: those kept, a session gone with its tmux
    /// server while its task's turn ran (it comes back to resume it, whatever the
    /// pool's size), then the lowest free names. Refuses a pool whose range others'
    /// sessions fill below `min`.
    fn choose<'n>(
        &self,
        pool: &Object<PoolSpec>,
        names: &'n [Indexed],
        keep: Vec<&'n Indexed>,
        target: usize,
        plan: &mut Plan,
    ) -> Vec<&'n Indexed> {
        let min = pool.spec.min as usize;
        let need = target.saturating_sub(keep.len());
        let mut chosen = keep;
        let (resuming, free): (Vec<&Indexed>, Vec<&Indexed>) = names
            .iter()
            .filter(|(_, n)| !self.observed.sessions.contains_key(n))
            .partition(|(_, n)| self.view.resume_of(n, plan).is_some());
        let need = need.saturating_sub(resuming.len());
        chosen.extend(resuming);
        chosen.extend(free.into_iter().take(need));
        if chosen.len() < min.min(target) {
            let taken: Vec<&str> = names
                .iter()
                .filter(|(_, n)| {
                    self.observed
                        .sessions
                        .get(n)
                        .is_some_and(|s| !s.is_ours(self.owner))
                })
                .map(|(_, n)| n.as_str())
                .collect();
            plan.refuse(
                ObjectRef::Pool(pool.name.clone()),
                format!(
                    "can keep only {} of {min} sessions: {} in its range are not ours",
                    chosen.len(),
                    taken.join(", ")
                ),
            );
        }
        chosen
    }

    /// Removes our sessions that no manifest wants, except one still working on a task
    /// (refused until the task ends).
    fn remove_orphans(
        &self,
        wanted: &BTreeSet<String>,
        removed: &BTreeSet<String>,
        plan: &mut Plan,
    ) {
        let orphans = self.observed.sessions.iter().filter(|(name, s)| {
            s.is_ours(self.owner) && !wanted.contains(*name) && !removed.contains(*name)
        });
        for (name, _) in orphans {
            if self.view.has_task(name) {
                plan.refuse(
                    ObjectRef::Session(name.clone()),
                    "no manifest wants it, but it works on a task: removed once the task ends",
                );
                continue;
            }
            plan.act(SessionAction::DeleteSession {
                name: name.clone(),
                reason: "no manifest wants it (orphan)".to_owned(),
            });
        }
    }

    /// Plans a session that should exist: create, restart, move or leave it.
    fn ensure(&self, spec: Option<SessionSpec>, plan: &mut Plan) {
        let Some(mut spec) = spec else { return };
        let name = spec.name.clone();
        let what = ObjectRef::Session(name.clone());
        let kind = self
            .m
            .account(&spec.account)
            .map_or_else(|| self.m.kind_of_session(&name), |a| a.spec.agent);
        let blocked = self.blocked.contains(&kind);
        match self.observed.sessions.get(&name) {
            None if blocked => {}
            None => {
                let resume = self.resuming(&mut spec, plan);
                plan.act(SessionAction::CreateSession {
                    session: spec,
                    resume,
                });
            }
            Some(s) if !s.is_ours(self.owner) => plan.refuse(
                what,
                format!(
                    "exists and is not ours (no @failover-owner {0} mark); left alone. To hand it over: \
                     tmux set-option -t '={name}:' @failover-owner {0}",
                    self.owner
                ),
            ),
            Some(_) if blocked => {}
            Some(s) if self.m.kind_under(&name, s.account.as_deref()) != kind => {
                super::families::plan_switch(self.m, self.view, s, spec, plan);
            }
            Some(s) if s.pane.dead => {
                let reason = match s.pane.dead_status {
                    Some(code) => format!("agent exited with status {code}"),
                    None => "agent exited".to_owned(),
                };
                let resume = self.resuming(&mut spec, plan);
                plan.act(SessionAction::RestartSession {
                    session: spec,
                    pane: s.pane.id.clone(),
                    reason,
                    resume,
                    live: false,
                });
            }
            Some(s) if s.account.as_deref() != Some(spec.account.as_str()) => {
                self.plan_move(s, spec, plan);
            }
            Some(_) => {}
        }
    }

    fn spec(
        &self,
        name: &str,
        role: Role,
        agent: &str,
        workdir: &Path,
        env: &Env,
    ) -> Option<SessionSpec> {
        let account = self.accounts.get(&self.m.kind_of(agent))?;
        super::session_spec(self.m, account, name, role, agent, workdir, env)
    }

    /// A session's spec that resumes its task's conversation in the task's folder, when
    /// its agent died mid-turn: the conversation resumed, if so. One whose conversation
    /// could not be resumed starts afresh in the task's folder.
    fn resuming(&self, spec: &mut SessionSpec, plan: &Plan) -> Option<String> {
        if let Some(workdir) = self.view.resend_of(&spec.name, plan) {
            spec.workdir = workdir;
            return None;
        }
        let (id, workdir) = self.view.resume_of(&spec.name, plan)?;
        // The profile of the family it starts in (a pool over several families).
        let agent = self.m.agent_under(&spec.name, Some(&spec.account));
        let args = &self.m.agent(agent)?.spec.resume_args;
        spec.command
            .extend(args.iter().map(|a| a.replace("{sessionId}", &id)));
        spec.workdir = workdir;
        Some(id)
    }

    /// Moves a session to the desired account: at once when its account is exhausted,
    /// only while idle when failing back. Dedicated sessions and sessions with a task
    /// resume their conversation; a dedicated one with `resume: false` stays.
    fn plan_move(&self, s: &Session, mut spec: SessionSpec, plan: &mut Plan) {
        if self.view.has_task(&s.name) && !s.pane.path.as_os_str().is_empty() {
            // A task runs in its inbox's folder: the agent carries on there.
            spec.workdir = s.pane.path.clone();
        }
        let from_exhausted = s
            .account
            .as_ref()
            .is_none_or(|a| super::ledger::exhausted(&plan.facts, a, self.now));
        // From an account that is not used up (fail-back, or over `moveAt`), only at a
        // safe point: idle, no task, no turn under way.
        if !from_exhausted && !self.view.resting(&s.name) {
            return;
        }
        let wants_resume = self.wants_resume(s, &spec);
        if spec.role == Role::Dedicated && !wants_resume {
            plan.refuse(
                ObjectRef::Session(spec.name.clone()),
                format!(
                    "runs under account {}, wants {}; resume is off, so it is left as it is",
                    s.account.as_deref().unwrap_or("(none)"),
                    spec.account
                ),
            );
            return;
        }
        let conversation = conversation(s, plan, self.observed);
        let mut resume = wants_resume;
        if wants_resume && conversation.is_none() {
            match self.observed.codex_threads.get(&s.name) {
                // A Codex agent that has had no turn has nothing to carry on.
                Some(CodexThread::NoTurnYet) => resume = false,
                Some(CodexThread::Ambiguous { with }) => {
                    plan.refuse(
                        ObjectRef::Session(spec.name.clone()),
                        format!(
                            "runs under account {}, wants {}; its Codex thread cannot be \
                             told from that of {} (the same folder under the same home), \
                             so it is left as it is",
                            s.account.as_deref().unwrap_or("(none)"),
                            spec.account,
                            with.join(", ")
                        ),
                    );
                    return;
                }
                Some(CodexThread::Held { .. }) | None => {}
            }
        }
        if resume && conversation.is_none() && spec.role == Role::Dedicated {
            // Moved, the person's conversation would be lost, and the act would reject
            // the move every round. (A pool session's task is carried on or sent again
            // by the act and the record.)
            plan.refuse(
                ObjectRef::Session(spec.name.clone()),
                format!(
                    "runs under account {}, wants {}; its agent reported no conversation \
                     to resume, so it is left as it is",
                    s.account.as_deref().unwrap_or("(none)"),
                    spec.account
                ),
            );
            return;
        }
        // Claude Code writes a conversation's transcript a moment after its first
        // prompt: moved before that, the task could not be resumed and would be sent
        // again. The move waits for it a bounded time.
        if let Some((_, transcript)) = &conversation
            && self.waits_for_transcript(&s.name, transcript, plan)
        {
            plan.wake(std::time::Duration::from_millis(200));
            return;
        }
        let profile = self
            .m
            .agent(self.m.agent_under(&spec.name, Some(&spec.account)));
        plan.act(SessionAction::MoveSession {
            conversation,
            from: s.account.clone(),
            from_home: s
                .account
                .as_ref()
                .and_then(|a| self.m.account(a))
                .map(|a| a.spec.home.clone()),
            to_home: self.m.account(&spec.account).map(|a| a.spec.home.clone()),
            pid: s.pane.pid,
            pane: s.pane.id.clone(),
            resume: resume.then(|| {
                profile
                    .map(|p| p.spec.resume_args.clone())
                    .unwrap_or_default()
            }),
            session: spec,
        });
    }

    /// Whether a move of `s` to `spec` resumes its conversation: a dedicated session's
    /// when its manifest says `resume`, a pool session's when it has a task.
    fn wants_resume(&self, s: &Session, spec: &SessionSpec) -> bool {
        match &spec.role {
            Role::Dedicated => self
                .m
                .dedicated
                .iter()
                .any(|d| d.name == spec.name && d.spec.resume),
            Role::Pool { .. } => self.view.has_task(&s.name),
        }
    }

    /// Whether session `name` has a task whose text was sent less than
    /// [`TRANSCRIPT_WAIT`] ago and whose conversation's `transcript` is not on disk yet.
    fn waits_for_transcript(&self, name: &str, transcript: &Path, plan: &Plan) -> bool {
        let Some(task) = plan.facts.sessions.get(name).and_then(|f| f.task.as_ref()) else {
            return false;
        };
        // A clock stepped back (a paste "in the future") waits no longer.
        let recent = task.pasted.is_some_and(|at| {
            at <= self.now && super::tasks::elapsed(self.now, at) < TRANSCRIPT_WAIT
        });
        recent && !self.observed.transcripts.contains(transcript)
    }
}

/// The conversation the agent of `s` reported holding (its id and transcript), when
/// that agent is the one running now; else its task's, as the facts or this round's
/// transcript know it (Codex reports no conversation when it starts: its thread is
/// known from the task's rollout); else, for a dedicated Codex session, the thread its
/// folder's rollouts show.
fn conversation(s: &Session, plan: &Plan, o: &Observed) -> Option<(String, PathBuf)> {
    let f = plan.facts.sessions.get(&s.name);
    let reported = f
        .and_then(|f| f.agent.as_ref())
        .filter(|a| a.pid == s.pane.pid)
        .map(|a| (a.conversation.clone(), a.transcript.clone()));
    let task = || {
        let t = f?.task.as_ref()?;
        t.conversation
            .clone()
            .or_else(|| o.turns.get(&t.file).map(|tt| tt.conversation.clone()))
    };
    let thread = || match o.codex_threads.get(&s.name)? {
        CodexThread::Held { thread, rollout } => Some((thread.clone(), rollout.clone())),
        CodexThread::NoTurnYet | CodexThread::Ambiguous { .. } => None,
    };
    reported.or_else(task).or_else(thread)
}

#[cfg(test)]
#[path = "sessions_tests.rs"]
mod tests;
