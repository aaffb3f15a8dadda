//! The journal told in words: each entry as the objects it concerns (`session/w-5`,
//! `account/a`, `task/t.md`, `inbox/i`, `controller`), its event and one sentence
//! saying what happened and why. A move carries the reading behind it: the swap and the
//! quota report or screen line that caused it, told before it in the same story.

use serde::Serialize;

use super::{Acted, Entry, Life, Line};
use crate::object::ObjectRef;
use crate::plan::{Action, Event, FsAction, SessionAction, TaskAction, TaskRef};

/// One journal entry in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Told {
    /// When it was written (RFC 3339, as journaled).
    pub time: String,
    /// What it concerns, first the main one: `session/NAME`, `account/NAME`,
    /// `task/NAME`, `inbox/NAME`, a path, or `controller`.
    pub objects: Vec<ObjectRef>,
    /// The journal event (`taskDone`, `swap`), or for an action what it did
    /// (`moveSession`, `createSession`).
    pub event: String,
    /// What happened and why.
    pub message: String,
    /// Whether it went wrong (an action that failed).
    pub failed: bool,
}

impl Told {
    /// Whether it concerns `object` (`task/INBOX/NAME` and `task/NAME` both match a
    /// task).
    pub fn concerns(&self, object: &ObjectRef) -> bool {
        self.objects.iter().any(|o| o == object)
    }

    /// The main object it concerns.
    pub fn object(&self) -> Option<&ObjectRef> {
        self.objects.first()
    }
}

/// Tells entries in order, remembering the last swap and quota reading so that a move
/// says what caused it.
#[derive(Debug, Default)]
pub struct Teller {
    /// `account: reason` of the last swap, with the reading behind it.
    cause: Option<String>,
    /// The last quota reading, in words.
    reading: Option<String>,
}

impl Teller {
    /// Tells every line of `lines`, oldest first.
    pub fn tell_all(lines: &[Line]) -> Vec<Told> {
        let mut teller = Self::default();
        lines.iter().map(|l| teller.tell(l)).collect()
    }

    /// Tells one line; lines must come oldest first.
    pub fn tell(&mut self, line: &Line) -> Told {
        let (objects, message) = match &line.entry {
            Entry::Acted(a) => self.acted(a),
            Entry::Event(e) => self.event(e),
            Entry::Controller(life) => life_of(life),
            Entry::Refused(r) => (vec![r.object.clone()], format!("refused: {}", r.reason)),
            Entry::Unknown(u) => (
                vec![ObjectRef::Controller],
                format!(
                    "{} (an event this failover does not know)",
                    if u.event.is_empty() { "?" } else { &u.event }
                ),
            ),
        };
        // An action is named by what it did (`moveSession`), not the journal's `action`.
        let event = match &line.entry {
            Entry::Acted(a) if a.event == super::Kind::Action => a.action.verb().to_owned(),
            other => other.event().to_owned(),
        };
        Told {
            time: line.time.to_string(),
            objects,
            event,
            message,
            failed: matches!(&line.entry, Entry::Acted(a) if !a.ok()),
        }
    }

    fn acted(&self, a: &Acted) -> (Vec<ObjectRef>, String) {
        let (objects, mut message) = self.action(a);
        if let Some(error) = &a.error {
            message = format!("FAILED: {message}: {error}");
        }
        if a.replayed {
            message.push_str(" (finished after a restart of the controller)");
        }
        (objects, message)
    }

    /// The action of `acted` in words: its `fresh` says why a move started the agent
    /// afresh instead of resuming, its event whether a claim failed.
    fn action(&self, acted: &Acted) -> (Vec<ObjectRef>, String) {
        let (action, fresh) = (&acted.action, acted.fresh.as_deref());
        let path = |p: &std::path::Path| vec![ObjectRef::Path(p.to_path_buf())];
        let session = |name: &str| vec![ObjectRef::Session(name.to_owned())];
        match action {
            Action::Fs(fs) => match fs {
                FsAction::CreateDir { path: p } => {
                    (path(p), format!("created folder {}", p.display()))
                }
                FsAction::CreateLink { link, target } => (
                    path(link),
                    format!("linked {} -> {}", link.display(), target.display()),
                ),
                FsAction::ConfigureAgent {
                    account,
                    path: p,
                    changes,
                    ..
                } => (
                    vec![ObjectRef::Account(account.clone())],
                    format!("agent settings {}: {}", p.display(), changes.join("; ")),
                ),
                FsAction::RestoreSettings {
                    path: p,
                    removed,
                    original,
                    ..
                } => {
                    let how = if *removed {
                        "removed (there was none before failover)"
                    } else if *original {
                        "put back as they were before failover"
                    } else {
                        "failover's entries taken out"
                    };
                    (path(p), format!("agent settings {}: {how}", p.display()))
                }
                FsAction::RemoveLink { link, target } => (
                    path(link),
                    format!("removed link {} -> {}", link.display(), target.display()),
                ),
                FsAction::EndDaemons {
                    account, daemons, ..
                } => (
                    vec![ObjectRef::Account(account.clone())],
                    format!("ended {} Codex daemon(s) left running", daemons.len()),
                ),
            },
            Action::Session(s) => match s {
                SessionAction::CreateSession {
                    session: spec,
                    resume,
                } => (
                    session(&spec.name),
                    format!(
                        "created under account {} in {}{}",
                        spec.account,
                        spec.workdir.display(),
                        resumed(resume.as_deref())
                    ),
                ),
                SessionAction::RestartSession {
                    session: spec,
                    reason,
                    resume,
                    ..
                } => (
                    session(&spec.name),
                    format!(
                        "agent restarted under account {}: {reason}{}",
                        spec.account,
                        resumed(resume.as_deref())
                    ),
                ),
                SessionAction::RecycleSession {
                    session: spec,
                    reason,
                    ..
                } => (session(&spec.name), format!("agent restarted: {reason}")),
                SessionAction::DeleteSession { name, reason } => {
                    (session(name), format!("deleted: {reason}"))
                }
                SessionAction::MoveSession {
                    session: spec,
                    from,
                    conversation,
                    ..
                } => {
                    let resuming = match (fresh, conversation) {
                        (Some(_), _) => String::new(),
                        (None, Some((id, _))) => format!(", resuming conversation {id}"),
                        (None, None) => ", fresh (no conversation to resume)".to_owned(),
                    };
                    let fresh =
                        fresh.map_or(String::new(), |why| format!("; started afresh: {why}"));
                    let cause = self
                        .cause
                        .as_ref()
                        .map_or(String::new(), |c| format!(" because {c}"));
                    let from = from.as_deref().unwrap_or("(none)");
                    (
                        vec![
                            ObjectRef::Session(spec.name.clone()),
                            ObjectRef::Account(from.to_owned()),
                            ObjectRef::Account(spec.account.clone()),
                        ],
                        format!(
                            "moved from account {from} to {}{resuming}{cause}{fresh}",
                            spec.account
                        ),
                    )
                }
            },
            Action::Task(t) => task_told(t, acted.event),
        }
    }

    fn event(&mut self, e: &Event) -> (Vec<ObjectRef>, String) {
        let account = |a: &str| vec![ObjectRef::Account(a.to_owned())];
        let message = e.to_string();
        let objects = match e {
            Event::QuotaDetected {
                account, session, ..
            } => {
                self.reading = Some(format!("account {account}: {message}"));
                vec![
                    ObjectRef::Account(account.clone()),
                    ObjectRef::Session(session.clone()),
                ]
            }
            Event::Swap {
                from,
                to,
                reason,
                used,
            } => {
                let reading = self
                    .reading
                    .as_ref()
                    .map_or(String::new(), |r| format!(" ({r})"));
                self.cause = Some(format!(
                    "account {from} {reason}{}{reading}",
                    crate::plan::at_used(*used)
                ));
                vec![
                    ObjectRef::Account(from.clone()),
                    ObjectRef::Account(to.clone()),
                ]
            }
            Event::Recovered { account: a }
            | Event::Resumed { account: a, .. }
            | Event::AllOverThreshold { account: a, .. }
            | Event::IntakeHeld { account: a, .. }
            | Event::FleetLedger { account: a, .. } => account(a),
            Event::AllExhausted { .. } => vec![ObjectRef::Controller],
            Event::UsageCrossed {
                account, session, ..
            } => vec![
                ObjectRef::Account(account.clone()),
                ObjectRef::Session(session.clone()),
            ],
            Event::HandedOff { session, task, .. } => {
                // By its name alone too, as `describe task NAME` asks.
                let by_name = ObjectRef::Task {
                    inbox: None,
                    name: task
                        .split_once('/')
                        .map_or(task.as_str(), |(_, n)| n)
                        .to_owned(),
                };
                vec![ObjectRef::Session(session.clone()), task_ref(task), by_name]
            }
            Event::FamilyChanged {
                session, account, ..
            } => vec![
                ObjectRef::Session(session.clone()),
                ObjectRef::Account(account.clone()),
            ],
            Event::SessionWaits { sessions, .. } => {
                sessions.iter().cloned().map(ObjectRef::Session).collect()
            }
            Event::SessionFailed { session, task, .. }
            | Event::SessionExited { session, task, .. }
            | Event::ResumeFailed { session, task, .. } => {
                let mut objects = vec![ObjectRef::Session(session.clone())];
                if let Some(task) = task {
                    objects.push(task_ref(task));
                }
                objects
            }
        };
        (objects, message)
    }
}

/// A task named as the planner's events name it (`inbox/name`).
fn task_ref(task: &str) -> ObjectRef {
    match task.split_once('/') {
        Some((inbox, name)) => ObjectRef::task(inbox, name),
        None => ObjectRef::Task {
            inbox: None,
            name: task.to_owned(),
        },
    }
}

/// A task action journaled as `event`, in words, with the objects it concerns.
fn task_told(action: &TaskAction, event: super::Kind) -> (Vec<ObjectRef>, String) {
    let claimed = |t: &TaskRef| {
        vec![
            ObjectRef::Task {
                inbox: None,
                name: t.name.clone(),
            },
            ObjectRef::Session(t.session.clone()),
            ObjectRef::Inbox(t.inbox.clone()),
            ObjectRef::task(&t.inbox, &t.name),
        ]
    };
    let waiting = |inbox: &str, name: &str| {
        vec![
            ObjectRef::Task {
                inbox: None,
                name: name.to_owned(),
            },
            ObjectRef::Inbox(inbox.to_owned()),
            ObjectRef::task(inbox, name),
        ]
    };
    match action {
        // A claim journaled as a failure: the task must not reach an agent.
        TaskAction::DispatchTask { task: t, .. } if event == super::Kind::TaskFailed => (
            claimed(t),
            format!(
                "task {} failed before it was sent: it must not reach an agent (its record in failed/ says why)",
                t.name
            ),
        ),
        TaskAction::DispatchTask { task: t, .. } => (
            claimed(t),
            format!(
                "task {} claimed for session {} (try {})",
                t.name, t.session, t.attempt
            ),
        ),
        TaskAction::PasteTask { task: t, .. } => (
            claimed(t),
            format!("task {} pasted into session {}", t.name, t.session),
        ),
        TaskAction::SubmitTask { task: t, .. } => (
            claimed(t),
            format!("task {} submitted in session {}", t.name, t.session),
        ),
        TaskAction::ContinueTask { task: t, text, .. } => (
            claimed(t),
            format!(
                "task {} carries on in session {}: {text}",
                t.name, t.session
            ),
        ),
        TaskAction::CompleteTask {
            task: t,
            how,
            reply,
            ..
        } => (
            claimed(t),
            format!(
                "task {} done in session {} ({how}){}",
                t.name,
                t.session,
                reply
                    .as_deref()
                    .map_or(String::new(), |r| format!(": \"{}\"", first_line(r, 80)))
            ),
        ),
        TaskAction::RequeueTask {
            task: t,
            reason,
            failed,
            ..
        } => (
            claimed(t),
            format!(
                "task {} {} ({reason})",
                t.name,
                if *failed {
                    "failed"
                } else {
                    "back to its inbox"
                }
            ),
        ),
        TaskAction::StallTask { task: t } => (
            claimed(t),
            format!(
                "task {} stalled in session {}: its screen stopped changing",
                t.name, t.session
            ),
        ),
        TaskAction::RejectTask {
            inbox,
            name,
            reason,
            ..
        } => (
            waiting(inbox, name),
            format!("task {name} failed: {reason}"),
        ),
        TaskAction::ReturnTask { inbox, name, .. } => (
            waiting(inbox, name),
            format!("task {name} back to its inbox (failover delete)"),
        ),
    }
}

/// The controller's life in words.
fn life_of(life: &Life) -> (Vec<ObjectRef>, String) {
    let controller = |m: String| (vec![ObjectRef::Controller], m);
    match life {
        Life::Started { pid, adopted, .. } => controller(format!(
            "controller started (pid {pid}, {adopted} sessions adopted)"
        )),
        Life::Stopped { pid } => controller(format!(
            "controller stopped (pid {})",
            pid.map_or("?".to_owned(), |p| p.to_string())
        )),
        Life::TmuxUnreachable { error, .. } => {
            controller(format!("tmux unreachable ({error}), trying again"))
        }
        Life::RefusedToStart { problems } => {
            let each: Vec<String> = problems
                .iter()
                .map(|r| format!("{}: {}", r.object.spoken(), r.reason))
                .collect();
            controller(format!("refused to start: {}", each.join("; ")))
        }
        Life::Manifests { origin, .. } => controller(format!("manifests adopted ({origin})")),
        Life::InvalidManifests { origin, .. } => controller(format!(
            "manifests refused ({origin}); the last good ones keep running"
        )),
        Life::Error { message } => controller(message.clone()),
        Life::Pruned { inbox, files } => (
            vec![ObjectRef::Inbox(inbox.clone())],
            format!("old records deleted: {files}"),
        ),
        Life::ActiveAccount { account } => (
            vec![
                account
                    .as_ref()
                    .map_or(ObjectRef::Accounts, |a| ObjectRef::Account(a.clone())),
            ],
            "sessions now run under this account".to_owned(),
        ),
        Life::FleetDegraded { error } => controller(format!(
            "fleet: etcd unreachable ({error}); running on the local state"
        )),
        Life::FleetRestored => controller("fleet: etcd answers again; merged".to_owned()),
        Life::StateDamaged(damage) => controller(damage.to_string()),
        Life::StateUnwritable {
            since,
            error,
            dropped,
        } => {
            let lost = if *dropped > 0 {
                format!("; {dropped} journal lines dropped")
            } else {
                String::new()
            };
            controller(format!(
                "the state folder could not be written from {since} ({error}): no task \
                 claimed meanwhile; the journal lines held are written above{lost}"
            ))
        }
        Life::ClockJumped { seconds } => {
            let (way, by) = if *seconds < 0 {
                ("back", seconds.unsigned_abs())
            } else {
                ("forward", seconds.unsigned_abs())
            };
            let by = jiff::SignedDuration::from_secs(i64::try_from(by).unwrap_or(i64::MAX));
            controller(format!(
                "the wall clock jumped {way} by {by:#}: timers kept their spans (cooldown, \
                 stall, start); account resets are times of day and follow the clock"
            ))
        }
    }
}

/// ", resuming conversation <id>", when a dead agent's task is resumed.
fn resumed(resume: Option<&str>) -> String {
    resume.map_or(String::new(), |id| format!(", resuming conversation {id}"))
}

/// The first line of `text`, cut to `max` characters (the last one `…` when cut).
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let kept: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn move_line() -> Line {
        line(
            r#"{"time":"2026-12-01T23:00:03Z","event":"action","action":{"action":"moveSession","session":{"name":"w-5","role":{"kind":"dedicated"},"account":"b","workdir":"/w","command":["claude"],"env":[]},"pane":"%1","from":"a","fromHome":"/h/a","pid":4,"resume":["--resume","{sessionId}"],"conversation":["c-1","/h/a/projects/x/c-1.jsonl"]},"ok":true,"error":null}"#,
        )
    }

    #[test]
    fn a_move_should_say_the_reading_and_the_swap_behind_it() {
        let lines = [
            line(
                r#"{"time":"2026-12-01T23:00:01Z","event":"quotaDetected","account":"a","session":"w-2","class":"quota-exhausted","pattern":"p","line":"You've hit your limit","resetsAt":"2026-12-01T23:00:00Z","confirmed":true,"source":"report"}"#,
            ),
            line(
                r#"{"time":"2026-12-01T23:00:02Z","event":"swap","from":"a","to":"b","reason":"quota exhausted"}"#,
            ),
            move_line(),
        ];
        let told = Teller::tell_all(&lines);
        let moved = &told[2];
        assert_eq!(
            moved.object().map(ToString::to_string).as_deref(),
            Some("session/w-5")
        );
        assert!(moved.concerns(&ObjectRef::Account("a".into())));
        assert!(moved.concerns(&ObjectRef::Account("b".into())));
        assert!(
            moved.message.contains("from account a to b"),
            "{}",
            moved.message
        );
        assert!(
            moved.message.contains("resuming conversation c-1"),
            "{}",
            moved.message
        );
        assert!(
            moved
                .message
                .contains("reported by the agent of session w-2")
                && moved.message.contains("You've hit your limit"),
            "{}",
            moved.message
        );
    }

    #[test]
    fn a_move_without_a_swap_before_it_should_say_no_cause() {
        let told = Teller::tell_all(&[move_line()]);
        assert!(!told[0].message.contains("because"), "{}", told[0].message);
    }

    #[test]
    fn a_task_action_should_concern_its_task_session_and_inbox() {
        let l = line(
            r#"{"time":"2026-12-01T23:00:00Z","event":"taskDone","action":{"action":"completeTask","task":{"inbox":"i","path":"/i","name":"t.md","file":"w-1.1.t.md","session":"w-1","account":"a","attempt":1,"started":null},"pane":"%1","pid":4,"how":"Stop report","reply":"Done.\nmore","exit":null},"ok":true,"error":null}"#,
        );
        let told = Teller::default().tell(&l);
        for o in ["task/t.md", "session/w-1", "inbox/i", "task/i/t.md"] {
            assert!(told.concerns(&o.parse().unwrap()), "{o}");
        }
        assert_eq!(
            told.message,
            "task t.md done in session w-1 (Stop report): \"Done.\""
        );
    }

    #[test]
    fn a_failed_action_should_say_so_with_its_error() {
        let l = line(
            r#"{"time":"2026-12-01T23:00:00Z","event":"action","action":{"action":"deleteSession","name":"w-1","reason":"not wanted"},"ok":false,"error":"pane is dead"}"#,
        );
        let told = Teller::default().tell(&l);
        assert!(told.failed);
        assert_eq!(told.message, "FAILED: deleted: not wanted: pane is dead");
    }

    #[test]
    fn a_clock_jump_should_say_which_way_and_by_how_much_in_words() {
        let told = Teller::default().tell(&line(
            r#"{"time":"2026-12-01T23:00:00Z","event":"clockJumped","seconds":-600}"#,
        ));
        assert!(
            told.message
                .starts_with("the wall clock jumped back by 10m:"),
            "{}",
            told.message
        );
        let told = Teller::default().tell(&line(
            r#"{"time":"2026-12-01T23:00:00Z","event":"clockJumped","seconds":7200}"#,
        ));
        assert!(
            told.message
                .starts_with("the wall clock jumped forward by 2h:"),
            "{}",
            told.message
        );
    }

    #[test]
    fn every_line_of_every_kind_should_be_told_in_words() {
        let text = include_str!("testdata/every-kind-d0c5e61.jsonl");
        let lines: Vec<Line> = text.lines().map(line).collect();
        for told in Teller::tell_all(&lines) {
            assert!(!told.message.is_empty(), "{told:?}");
            assert!(!told.objects.is_empty(), "{told:?}");
            assert!(!told.message.contains('{'), "JSON in words: {told:?}");
        }
    }

    #[test]
    fn a_claim_that_failed_should_be_told_as_a_failure_not_a_claim() {
        let text = include_str!("testdata/recorded-f944075.jsonl");
        let lines: Vec<Line> = text.lines().map(line).collect();
        let told = Teller::tell_all(&lines);
        let failed: Vec<&Told> = told.iter().filter(|t| t.event == "taskFailed").collect();
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert_eq!(
            failed[0].message,
            "task empty.md failed before it was sent: it must not reach an agent (its record in failed/ says why)"
        );
    }

    #[test]
    fn a_refused_path_with_a_space_should_stay_one_path() {
        let l = line(
            r#"{"time":"2026-12-01T23:00:00Z","event":"refused","object":"/h/my dir","reason":"not a folder"}"#,
        );
        let told = Teller::default().tell(&l);
        assert_eq!(told.objects, [ObjectRef::Path("/h/my dir".into())]);
    }

    #[test]
    fn an_unknown_event_should_be_told_as_unknown() {
        let l = line(r#"{"time":"2027-01-01T00:00:00Z","event":"quotaForecast","account":"a"}"#);
        let told = Teller::default().tell(&l);
        assert_eq!(told.event, "quotaForecast");
        assert!(told.message.contains("does not know"), "{}", told.message);
    }
}
