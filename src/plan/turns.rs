//! Task rules, the turn side: a claimed task is followed through its stages (started,
//! pasted, submitted, running) to its end, and it ends only on proof that its turn ran
//! and ended: the agent's `Stop` report for the very prompt that carried the task; for
//! agents that do not report, the conversation's transcript (the task's message, then a
//! complete reply); and the screen alone only after the turn was seen running. An
//! empty input box proves nothing.
//!
//! A turn that ended on an API error, or whose agent died, is carried on in its own
//! conversation (`continue`, after `--resume` for a dead agent) up to `maxTries` times;
//! then the task goes back to its inbox, or to `failed/` after its last try. No screen
//! change for `idleTimeout` marks a task stalled.

use std::time::Duration;

use jiff::Timestamp;

use super::tasks::{Seen, View, elapsed, screen_age};
use super::{Action, Plan, SessionAction, TaskAction, TaskRef};
use crate::api::{InboxSpec, Manifests, Object};
use crate::conversation::TurnEnd;
use crate::observe::{ActiveTask, Observed, Session};
use crate::screen::State;
use crate::state::{Ended, Stage, TaskFacts};

/// How long after a submit the screen must show it taken before Enter is sent again.
const RETAKE: Duration = Duration::from_secs(1);
/// How long an agent started afresh for a task may take to show its prompt: then the
/// task goes back to its inbox, no try used, and the agent starts again.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(120);
/// The shortest idle stretch that ends a turn seen running (two polls at most once a
/// second).
const MIN_IDLE: Duration = Duration::from_millis(200);
/// How long a task that ended on its `Stop` waits for the status line Claude Code
/// draws after a response (it carries the account's use) before its agent gets the
/// exit command.
const STATUS_WAIT: Duration = Duration::from_secs(1);

/// What a task's conversation is told to carry on: it names the account and the time,
/// so its turn never reads as an old one on a redrawn screen.
pub(super) fn continue_text(account: &str, now: Timestamp) -> String {
    let time = now.strftime("%H:%M:%S");
    format!("continue (now under account {account}, {time} UTC)")
}

/// Takes back claims a crash left out of the facts, when there is proof their text was
/// submitted (a submit report carrying it, or the transcript): they are followed as
/// running. The others are put back by [`View::follow`].
pub(super) fn adopt(m: &Manifests, o: &Observed, now: Timestamp, plan: &mut Plan) {
    for inbox in &m.inboxes {
        let Some(state) = o.inboxes.get(&inbox.name) else {
            continue;
        };
        for active in &state.active {
            let Some(proof) = o.evidence.get(&active.file) else {
                continue;
            };
            let f = plan
                .facts
                .sessions
                .entry(active.session.clone())
                .or_default();
            if f.task.as_ref().is_some_and(|t| t.file == active.file) {
                continue;
            }
            f.task = Some(TaskFacts {
                inbox: inbox.name.clone(),
                file: active.file.clone(),
                task: active.task.clone(),
                attempt: active.attempt,
                stage: Stage::Running,
                since: now,
                started: Some(now),
                expect: Some(proof.hash),
                prompt_id: proof.prompt_id.clone(),
                ..TaskFacts::default()
            });
        }
    }
}

impl View<'_> {
    /// Follows one claimed task.
    pub(super) fn follow(&self, inbox: &Object<InboxSpec>, active: &ActiveTask, plan: &mut Plan) {
        let known = plan
            .facts
            .sessions
            .get(&active.session)
            .and_then(|f| f.task.clone())
            .filter(|t| t.file == active.file && t.inbox == inbox.name);
        let mut task = self.task_ref(
            &plan.facts,
            inbox,
            &active.file,
            &active.task,
            &active.session,
            active.attempt,
        );
        task.started = known.as_ref().and_then(|t| t.started);
        let session = self
            .o
            .sessions
            .get(&active.session)
            .filter(|s| s.is_live_ours(self.owner));
        let Some(s) = session else {
            self.follow_without_agent(inbox, active, task, known, plan);
            return;
        };
        let Some(facts) = known else {
            self.give_back_unsent(inbox, s, task, plan);
            return;
        };
        if facts.ended.is_some() {
            self.finish(Some(s), inbox, task, &facts, plan);
            return;
        }
        self.read_transcript(s, inbox, task.clone(), plan);
        if self
            .task_of(plan, &s.name)
            .is_some_and(|t| t.ended.is_none())
        {
            self.progress(s, task, plan);
        }
    }

    /// A claimed task whose agent is dead or gone: done or carried on when its turn
    /// ended before, resumed when its session starts again, else put back (a try used
    /// only if its text was delivered).
    fn follow_without_agent(
        &self,
        inbox: &Object<InboxSpec>,
        active: &ActiveTask,
        task: TaskRef,
        known: Option<TaskFacts>,
        plan: &mut Plan,
    ) {
        match known {
            // Its turn ended before its agent died: done, or carried on.
            Some(facts) if facts.ended.is_some() => {
                self.finish(None, inbox, task, &facts, plan);
            }
            // Resumed in its own conversation when the session starts again, or sent
            // again to its fresh agent when that conversation could not be resumed.
            Some(facts) if facts.resend && self.o.sessions.contains_key(&active.session) => {}
            Some(_) if self.resume_of(&active.session, plan).is_some() => {}
            known => {
                let delivered = known.as_ref().is_some_and(delivered);
                let reason = if delivered {
                    format!(
                        "session {} died while working on it (try {} of {})",
                        active.session, active.attempt, inbox.spec.max_tries
                    )
                } else {
                    format!(
                        "session {} died before the task was sent; no try used",
                        active.session
                    )
                };
                plan.act(TaskAction::RequeueTask {
                    reason,
                    failed: delivered && active.attempt >= inbox.spec.max_tries,
                    delivered,
                    task,
                });
            }
        }
    }

    /// A claim the facts do not hold, with no proof it was sent (a crash between claim
    /// and paste): the task goes back, no try used, and the agent starts afresh in case
    /// the text sits unsent in its input.
    fn give_back_unsent(
        &self,
        inbox: &Object<InboxSpec>,
        s: &Session,
        task: TaskRef,
        plan: &mut Plan,
    ) {
        plan.act(TaskAction::RequeueTask {
            task,
            reason: "claimed but not sent before the controller stopped; no try used".into(),
            failed: false,
            delivered: false,
        });
        if let Some(spec) = self
            .m
            .pool(&inbox.spec.pool)
            .and_then(|p| self.spec_for(p, s, &p.spec.workdir))
        {
            plan.act(SessionAction::RecycleSession {
                session: spec,
                pane: s.pane.id.clone(),
                reason: "clear a task that may sit unsent in its input".into(),
            });
        }
    }

    /// For an agent that does not report, what the transcript says of the task's turn:
    /// taken once its message is there, ended at the complete reply after it.
    fn read_transcript(
        &self,
        s: &Session,
        inbox: &Object<InboxSpec>,
        task: TaskRef,
        plan: &mut Plan,
    ) {
        let Some(turn) = self.o.turns.get(&task.file) else {
            return;
        };
        let Some(t) = task_mut(plan, &s.name) else {
            return;
        };
        t.conversation = Some(turn.conversation.clone());
        let Some(found) = &turn.turn else { return };
        if matches!(t.stage, Stage::Submitted(_)) {
            t.stage = Stage::Running;
            t.since = self.now;
        }
        t.prompt_id = found.prompt_id.clone().or(t.prompt_id.take());
        t.ended = match &found.end {
            Some(TurnEnd::Reply(reply)) => Some(Ended::Reply {
                reply: reply.clone(),
                how: "transcript".into(),
                at: self.now,
            }),
            // A usage limit is the ledger's: read on the screen (Claude Code), folded
            // with the reports (Codex's rollout, `plan::reports`).
            Some(TurnEnd::Error(kind, message))
                if kind != "rate_limit" && kind != crate::conversation::codex::USAGE_LIMIT =>
            {
                Some(Ended::Failed {
                    error: kind.clone(),
                    message: message.clone(),
                })
            }
            _ => None,
        };
        if let Some(facts) = self.task_of(plan, &s.name).filter(|t| t.ended.is_some()) {
            self.finish(Some(s), inbox, task, &facts, plan);
        }
    }

    /// Moves a known task on through its stages.
    fn progress(&self, s: &Session, task: TaskRef, plan: &mut Plan) {
        let Some(seen) = self.seen.get(&s.name) else {
            return;
        };
        // No screen change for idleTimeout, in any stage: stalled (kept in active/). A
        // turn waiting at a usage limit is not stalled: it waits for a move or the reset.
        let quiet = screen_age(plan, &s.name, self.now);
        let Some(tf) = task_mut(plan, &s.name) else {
            return;
        };
        if !tf.stalled
            && !seen.at_limit
            && quiet >= self.m.controller.spec.completion.idle_timeout.0
        {
            let stall = Action::Task(TaskAction::StallTask { task: task.clone() });
            plan.act(stall);
        }
        let Some(tf) = task_mut(plan, &s.name) else {
            return;
        };
        // The stage as this plan left it: the ledger may have turned a task at a spent
        // limit to Resuming, a report to Running.
        let since = elapsed(self.now, tf.since);
        if seen.state == State::Busy {
            tf.seen_busy = true;
        }
        match tf.stage {
            // A fresh agent gets the task, a resumed one `continue`, once at its prompt.
            // One that never gets there gives the task back, no try used.
            Stage::Starting if !seen.at_empty_prompt() && since >= START_TIMEOUT => {
                self.never_ready(s, seen, task, plan);
            }
            Stage::Starting | Stage::Resuming => {
                if !seen.at_empty_prompt() || !seen.settled {
                    plan.wake(Duration::from_millis(100));
                } else if tf.stage == Stage::Starting {
                    // A task handed to another family's agent: the inbox's note first.
                    let note = (!tf.hand_offs.is_empty())
                        .then(|| self.m.inboxes.iter().find(|i| i.name == task.inbox))
                        .flatten()
                        .map(|i| i.spec.hand_off_note.clone())
                        .filter(|n| !n.is_empty());
                    plan.act(TaskAction::PasteTask {
                        task,
                        pane: s.pane.id.clone(),
                        note,
                    });
                } else {
                    let text = continue_text(&task.account, self.now);
                    let pane = s.pane.id.clone();
                    plan.act(TaskAction::ContinueTask { task, pane, text });
                }
            }
            Stage::Pasted => {
                let delay = self.m.controller.spec.dispatch.submit_delay.0;
                if since >= delay {
                    let pane = s.pane.id.clone();
                    plan.act(TaskAction::SubmitTask { task, pane });
                } else {
                    plan.wake(delay - since);
                }
            }
            Stage::Submitted(enters) => self.submitted(s, seen, enters, since, task, plan),
            Stage::Running => self.running(s, seen, task, plan),
        }
    }

    /// A task whose fresh agent showed no empty prompt within [`START_TIMEOUT`] goes
    /// back, no try used, and the agent starts again.
    fn never_ready(&self, s: &Session, seen: &Seen, task: TaskRef, plan: &mut Plan) {
        let state = format!("{:?}", seen.state).to_lowercase();
        plan.act(TaskAction::RequeueTask {
            reason: format!(
                "its agent showed no empty prompt within {}s (its screen reads {state}); \
                 no try used",
                START_TIMEOUT.as_secs()
            ),
            failed: false,
            delivered: false,
            task,
        });
        if let Some(spec) = self.recycled(s) {
            plan.act(SessionAction::RecycleSession {
                session: spec,
                pane: s.pane.id.clone(),
                reason: "an agent that never became ready".into(),
            });
        }
    }

    /// A task submitted with `enters` Enters, `since` ago: taken at the busy marker (a
    /// report or the transcript moved it on already); Enter again when the text still
    /// sits in the box after [`RETAKE`]. An empty input box is not proof: the turn may
    /// not run yet.
    fn submitted(
        &self,
        s: &Session,
        seen: &Seen,
        enters: u8,
        since: Duration,
        task: TaskRef,
        plan: &mut Plan,
    ) {
        if seen.state == State::Busy {
            if let Some(tf) = task_mut(plan, &s.name) {
                tf.stage = Stage::Running;
                tf.since = self.now;
                tf.started = tf.started.or(Some(self.now));
            }
            plan.wake(self.m.controller.spec.poll_interval.0);
        } else if since >= RETAKE && enters < 2 && !seen.empty_input {
            let pane = s.pane.id.clone();
            plan.act(TaskAction::SubmitTask { task, pane });
        } else {
            plan.wake(Duration::from_millis(250));
        }
    }

    /// A running task: the screen ends its turn only for an agent that does not report
    /// (nor proves its turns' ends in its own files, as Codex does), and only after the
    /// turn was seen running, once idle for a poll interval.
    fn running(&self, s: &Session, seen: &Seen, task: TaskRef, plan: &mut Plan) {
        let Some(tf) = task_mut(plan, &s.name) else {
            return;
        };
        let proven = seen.reports || self.m.kind_of_session(&s.name).proves_turn_ends();
        if seen.state == State::Idle && tf.seen_busy && !proven {
            let idle = *tf.idle_since.get_or_insert(self.now);
            let needed = self.m.controller.spec.poll_interval.0.max(MIN_IDLE);
            if elapsed(self.now, idle) >= needed {
                self.complete(Some(s), task, "idle screen after the turn ran", None, plan);
                return;
            }
            plan.wake(needed - elapsed(self.now, idle));
        } else {
            tf.idle_since = None;
        }
    }

    /// Acts on a turn that ended: a reply completes the task; an API error carries it
    /// on in its conversation while tries are left, else puts it back.
    fn finish(
        &self,
        s: Option<&Session>,
        inbox: &Object<InboxSpec>,
        task: TaskRef,
        facts: &TaskFacts,
        plan: &mut Plan,
    ) {
        match &facts.ended {
            Some(Ended::Reply { reply, how, at }) => {
                // The status line drawn after the response carries the account's use:
                // the exit command waits for it a moment.
                let status = s.and_then(|s| {
                    let f = plan.facts.sessions.get(&s.name)?;
                    self.seen.get(&s.name).filter(|v| v.reports)?;
                    f.status_at
                });
                let waited = elapsed(self.now, *at);
                if status.is_some_and(|t| t < *at) && waited < STATUS_WAIT {
                    plan.wake(STATUS_WAIT - waited);
                    return;
                }
                self.complete(s, task, how, Some(reply.clone()), plan);
            }
            Some(Ended::Failed { error, message }) => {
                let carry_on = s.is_some() && facts.resumes < inbox.spec.max_tries;
                if carry_on && let Some(t) = task_mut(plan, &task.session) {
                    t.ended = None;
                    t.stage = Stage::Resuming;
                    t.since = self.now;
                    t.resumes += 1;
                    t.prompt_id = None;
                    plan.wake(Duration::from_millis(100));
                    return;
                }
                if let Some(s) = s {
                    // Its agent holds a failed turn: not a fresh context.
                    plan.facts
                        .sessions
                        .entry(s.name.clone())
                        .or_default()
                        .used_pid = Some(s.pane.pid);
                }
                let short: String = message.chars().take(160).collect();
                plan.act(TaskAction::RequeueTask {
                    reason: format!(
                        "its turn ended on an API error ({error}): {short} (try {} of {})",
                        task.attempt, inbox.spec.max_tries
                    ),
                    failed: task.attempt >= inbox.spec.max_tries,
                    delivered: true,
                    task,
                });
            }
            None => {}
        }
    }

    /// Finishes `task`, ending a live pool agent's context.
    fn complete(
        &self,
        s: Option<&Session>,
        task: TaskRef,
        how: &str,
        reply: Option<String>,
        plan: &mut Plan,
    ) {
        let exit = s.and_then(|s| self.exit_command(&s.name));
        plan.act(TaskAction::CompleteTask {
            pane: s.map(|s| s.pane.id.clone()).unwrap_or_default(),
            pid: s.map_or(0, |s| s.pane.pid),
            how: how.into(),
            reply,
            exit,
            task,
        });
    }

    /// The profile's exit command for pool sessions; dedicated ones never get it.
    fn exit_command(&self, session: &str) -> Option<String> {
        let crate::api::SessionOwner::Pool { .. } = self.m.session_owner(session)? else {
            return None;
        };
        let account = self
            .o
            .sessions
            .get(session)
            .and_then(|s| s.account.as_deref());
        let agent = self.m.agent_under(session, account);
        Some(self.m.agent(agent)?.spec.exit_command.clone())
    }

    /// For a session whose agent is dead or gone while its task's turn was under way:
    /// the conversation to resume it in, and the task's folder, when its transcript is
    /// there and tries are left.
    pub(super) fn resume_of(
        &self,
        session: &str,
        plan: &Plan,
    ) -> Option<(String, std::path::PathBuf)> {
        let t = plan.facts.sessions.get(session)?.task.as_ref()?;
        let inbox = self.m.inboxes.iter().find(|i| i.name == t.inbox)?;
        let (id, transcript) = t.conversation.as_ref()?;
        let under_way = matches!(
            t.stage,
            Stage::Submitted(_) | Stage::Running | Stage::Resuming
        );
        (under_way
            && t.ended.is_none()
            && t.resumes < inbox.spec.max_tries
            && self.o.transcripts.contains(transcript))
        .then(|| (id.clone(), inbox.spec.workdir.clone()))
    }

    /// For a session whose task's conversation could not be resumed: the task's folder,
    /// where its fresh agent starts, to be sent the task again.
    pub(super) fn resend_of(&self, session: &str, plan: &Plan) -> Option<std::path::PathBuf> {
        let t = plan.facts.sessions.get(session)?.task.as_ref()?;
        let inbox = self.m.inboxes.iter().find(|i| i.name == t.inbox)?;
        t.resend.then(|| inbox.spec.workdir.clone())
    }

    /// A fresh start of pool session `s` in its pool's folder.
    fn recycled(&self, s: &Session) -> Option<crate::plan::SessionSpec> {
        let crate::api::SessionOwner::Pool { pool, .. } = self.m.session_owner(&s.name)? else {
            return None;
        };
        self.spec_for(pool, s, &pool.spec.workdir)
    }

    fn task_of(&self, plan: &Plan, session: &str) -> Option<TaskFacts> {
        plan.facts.sessions.get(session)?.task.clone()
    }
}

/// Whether a task's text reached its agent: submitted, or a turn of it reported.
fn delivered(t: &TaskFacts) -> bool {
    t.prompt_id.is_some()
        || matches!(
            t.stage,
            Stage::Submitted(_) | Stage::Running | Stage::Resuming
        )
}

fn task_mut<'p>(plan: &'p mut Plan, session: &str) -> Option<&'p mut TaskFacts> {
    plan.facts.sessions.get_mut(session)?.task.as_mut()
}

#[cfg(test)]
#[path = "turns_tests.rs"]
mod tests;
