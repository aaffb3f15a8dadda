//! The task part of a snapshot: each inbox's waiting and claimed tasks, the evidence that
//! decides claimed tasks a crash left unaccounted for, and the transcript's word on the
//! turns of agents that do not report.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::Session;
use super::fs::glob_match;
use crate::api::Manifests;
use crate::state::Facts;
use crate::tasks::{self, Folders};

/// One inbox's tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InboxState {
    /// Tasks waiting, oldest first.
    pub waiting: Vec<Waiting>,
    /// Tasks claimed by a session, in `active/`.
    pub active: Vec<ActiveTask>,
    /// `inbox/` or `active/` exists but could not be read this time (permissions, too
    /// many open files): what they hold is unknown, not empty.
    pub unread: bool,
}

/// A task file waiting in an inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Waiting {
    /// Its file name.
    pub name: String,
    /// It is a symbolic link (never followed; it goes to `failed/`).
    pub link: bool,
}

/// A claimed task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveTask {
    /// Its file name in `active/`.
    pub file: String,
    /// The session that claimed it.
    pub session: String,
    /// Which try.
    pub attempt: u32,
    /// Its file name as dropped.
    pub task: String,
}

/// Every inbox's waiting tasks (regular files and links matching its glob, oldest
/// first by modification time, then name) and claimed tasks.
pub(super) fn observe_inboxes(m: &Manifests) -> BTreeMap<String, InboxState> {
    m.inboxes
        .iter()
        .map(|inbox| {
            let folders = Folders::of(&inbox.spec.path);
            let mut unread = false;
            let mut read = |dir: &std::path::Path| match std::fs::read_dir(dir) {
                Ok(entries) => Some(entries),
                Err(e) => {
                    unread |= e.kind() != std::io::ErrorKind::NotFound;
                    None
                }
            };
            let (inbox_dir, active_dir) = (read(&folders.inbox), read(&folders.active));
            let mut waiting: Vec<(std::time::SystemTime, Waiting)> = inbox_dir
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    let name = e.file_name().into_string().ok()?;
                    let link = meta.file_type().is_symlink();
                    ((meta.is_file() || link) && glob_match(&inbox.spec.glob, &name)).then(|| {
                        let at = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                        (at, Waiting { name, link })
                    })
                })
                .collect();
            waiting.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
            let mut active: Vec<ActiveTask> = active_dir
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let file = e.file_name().into_string().ok()?;
                    let (session, attempt, task) = tasks::parse_active(&file)?;
                    Some(ActiveTask {
                        session: session.to_owned(),
                        attempt,
                        task: task.to_owned(),
                        file,
                    })
                })
                .collect();
            active.sort_by(|a, b| a.file.cmp(&b.file));
            let state = InboxState {
                waiting: waiting.into_iter().map(|(_, w)| w).collect(),
                active,
                unread,
            };
            (inbox.name.clone(), state)
        })
        .collect()
}

/// The proof that a claimed task's text reached its session's agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// [`crate::report::text_hash`] of the task's text.
    pub hash: u64,
    /// The prompt id it was submitted as, when a report or the transcript names it.
    pub prompt_id: Option<String>,
}

/// A task's turn as the conversation's transcript (Codex: its rollout) shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskTurn {
    /// The conversation and its transcript.
    pub conversation: (String, std::path::PathBuf),
    /// The task's message and what followed, once it is there.
    #[serde(skip)]
    pub turn: Option<crate::conversation::Turn>,
    /// The account's use the rollout reported since the prompt was sent, and when
    /// (Codex, whose use comes from its rollout, not a status line).
    #[serde(skip)]
    pub usage: Option<(jiff::Timestamp, crate::state::usage::Usage)>,
}

/// The account home of session `s`, from its account mark.
fn home_of<'m>(m: &'m Manifests, s: &Session) -> Option<&'m Path> {
    m.account(s.account.as_deref()?)
        .map(|a| a.spec.home.as_path())
}

/// Every claimed task with its inbox and the inbox's folders.
fn claimed<'a>(
    m: &'a Manifests,
    inboxes: &'a BTreeMap<String, InboxState>,
) -> impl Iterator<
    Item = (
        &'a crate::api::Object<crate::api::InboxSpec>,
        Folders,
        &'a ActiveTask,
    ),
> {
    m.inboxes.iter().flat_map(move |inbox| {
        let folders = Folders::of(&inbox.spec.path);
        inboxes
            .get(&inbox.name)
            .into_iter()
            .flat_map(|state| &state.active)
            .map(move |task| (inbox, folders.clone(), task))
    })
}

/// For each claimed task the facts do not record, the proof that its text reached its
/// session: a submit report carrying it, else a user message in the transcript named by
/// the agent's `sessions/<pid>.json`.
pub(super) fn evidence(
    m: &Manifests,
    sessions: &BTreeMap<String, Session>,
    inboxes: &BTreeMap<String, InboxState>,
    facts: &Facts,
    reports: &BTreeMap<String, Vec<crate::report::Report>>,
) -> BTreeMap<String, Evidence> {
    let mut out = BTreeMap::new();
    for (inbox, folders, task) in claimed(m, inboxes) {
        let known = facts
            .sessions
            .get(&task.session)
            .and_then(|f| f.task.as_ref())
            .is_some_and(|t| t.file == task.file && t.inbox == inbox.name);
        if known {
            continue;
        }
        let Ok(text) = tasks::read_task(&folders.active.join(&task.file)) else {
            continue;
        };
        let hash = crate::report::text_hash(&text);
        let reported = reports
            .get(&task.session)
            .into_iter()
            .flatten()
            .find_map(|r| match &r.event {
                crate::report::Event::Submitted {
                    prompt_id,
                    prompt_hash,
                } if *prompt_hash == hash => Some(prompt_id.clone()),
                _ => None,
            });
        let transcript = || {
            let s = sessions.get(&task.session)?;
            let turn = transcript_turn(m, home_of(m, s)?, s, hash, Sent::default())?;
            turn.turn
        };
        let prompt_id = match reported {
            Some(id) => Some(Some(id)),
            None => transcript().map(|t| t.prompt_id),
        };
        if let Some(prompt_id) = prompt_id {
            out.insert(task.file.clone(), Evidence { hash, prompt_id });
        }
    }
    out
}

/// What the facts know of a prompt sent: the conversation it went to, and when.
#[derive(Debug, Clone, Copy, Default)]
struct Sent<'f> {
    conversation: Option<&'f (String, std::path::PathBuf)>,
    at: Option<jiff::Timestamp>,
}

/// The conversation of the agent of `s` under `home`, and the turn in it of the prompt
/// whose [`crate::report::text_hash`] is `hash`.
fn transcript_turn(
    m: &Manifests,
    home: &Path,
    s: &Session,
    hash: u64,
    sent: Sent<'_>,
) -> Option<TaskTurn> {
    use crate::conversation::{messages, of_agent, transcript, turn};
    let sought = |text: &str| crate::report::text_hash(text) == hash;
    match m.kind_under(&s.name, s.account.as_deref()) {
        crate::api::AgentKind::ClaudeCode => {
            let id = of_agent(home, s.pane.pid)?;
            let path = transcript(home, &s.pane.path, &id);
            let turn = messages(&path).ok().and_then(|all| turn(&all, sought));
            Some(TaskTurn {
                conversation: (id, path),
                turn,
                usage: None,
            })
        }
        crate::api::AgentKind::Codex => rollout_turn(home, s, sought, sent),
    }
}

/// A Codex agent's turn: in the rollout the task's conversation is known by, else in
/// the newest rollout of the session's folder written to since the prompt was sent
/// that holds it (a pool's sessions share their folder: the prompt tells their threads
/// apart).
fn rollout_turn(
    home: &Path,
    s: &Session,
    sought: impl Fn(&str) -> bool,
    sent: Sent<'_>,
) -> Option<TaskTurn> {
    use crate::conversation::{codex, turn};
    let since = sent.at.map_or(std::time::SystemTime::UNIX_EPOCH, |at| {
        std::time::SystemTime::from(at) - std::time::Duration::from_secs(5)
    });
    let known = sent
        .conversation
        .filter(|(_, path)| path.is_file())
        .map(|(thread, path)| codex::Rollout {
            thread: thread.clone(),
            path: path.clone(),
        });
    // The known rollout is the task's even before its prompt is in it (a `continue`).
    let only = known.is_some();
    let candidates = match known {
        Some(rollout) => vec![rollout],
        None => codex::recent(home, &s.pane.path, since),
    };
    candidates.into_iter().find_map(|rollout| {
        let read = codex::read(&rollout.path).ok()?;
        let turn = turn(&read.messages, &sought);
        (turn.is_some() || only).then(|| TaskTurn {
            conversation: (rollout.thread, rollout.path),
            turn,
            usage: read
                .usage
                .filter(|(at, _)| sent.at.is_some_and(|sent| *at >= sent)),
        })
    })
}

/// For each task in flight (submitted or running) in a live agent that does not report
/// (no `SessionStart` report from its pid), its turn as the transcript shows it.
pub(super) fn turns(
    m: &Manifests,
    sessions: &BTreeMap<String, Session>,
    inboxes: &BTreeMap<String, InboxState>,
    facts: &Facts,
) -> BTreeMap<String, TaskTurn> {
    use crate::state::Stage;
    let mut out = BTreeMap::new();
    for (_, folders, task) in claimed(m, inboxes) {
        let Some(s) = sessions.get(&task.session).filter(|s| !s.pane.dead) else {
            continue;
        };
        let Some(f) = facts.sessions.get(&task.session) else {
            continue;
        };
        let sent = f.task.as_ref().filter(|t| {
            t.file == task.file
                && t.ended.is_none()
                && matches!(t.stage, Stage::Submitted(_) | Stage::Running)
        });
        let reports = f.agent.as_ref().is_some_and(|a| a.reports(s.pane.pid));
        let Some(t) = sent.filter(|_| !reports) else {
            continue;
        };
        // The prompt last sent for it: the task, or a `continue`.
        let hash = match t.expect {
            Some(hash) => hash,
            None => match tasks::read_task(&folders.active.join(&task.file)) {
                Ok(text) => crate::report::text_hash(&text),
                Err(_) => continue,
            },
        };
        let sent = Sent {
            conversation: t.conversation.as_ref(),
            at: t.pasted,
        };
        if let Some(turn) = home_of(m, s).and_then(|home| transcript_turn(m, home, s, hash, sent)) {
            out.insert(task.file.clone(), turn);
        }
    }
    out
}
