//! The actions a plan is made of, in three closed groups — the filesystem, sessions,
//! tasks — each carried out by its own executor in `act` that matches it in full, so a
//! new action does not compile until every site (executor, order, text, journal event,
//! bookkeeping) handles it. Beside them: how each is shown, where it goes in a plan and
//! which journal event it is written as.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One change to the world. It serializes as its group's action, flat:
/// `{"action": "createSession", …}`, and reads back the same way: the action's name
/// says its group. Read back from the journal, an action is for telling: the journal
/// keeps no environment values (secrets) and no file contents.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Action {
    /// A folder, a link or an account home's agent settings.
    Fs(FsAction),
    /// A tmux session or its agent.
    Session(SessionAction),
    /// A task and its turns.
    Task(TaskAction),
}

/// A change to the filesystem.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "action", rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum FsAction {
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
    /// Put failover's hooks and status line into an account home's agent settings
    /// (Codex: its `notify` and what it needs to run unattended, in `config.toml`), or
    /// take them out, leaving the operator's entries as they are.
    ConfigureAgent {
        /// The account.
        account: String,
        /// Its `settings.json` (Codex: `config.toml`).
        path: PathBuf,
        /// The failover binary the hooks run; `None` takes failover's entries out.
        exe: Option<PathBuf>,
        /// What changes, in words.
        changes: Vec<String>,
        /// Codex: the folders its sessions run in, trusted; empty for Claude Code.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        projects: Vec<PathBuf>,
    },
    /// Take failover's entries out of an account home's agent settings for `failover
    /// delete`: the file put back as it was before failover when nothing else changed,
    /// removed when there was none.
    RestoreSettings {
        /// The settings file.
        path: PathBuf,
        /// Whether the file goes (there was none before failover).
        removed: bool,
        /// Whether it is put back as it was before failover's first write.
        original: bool,
        /// Its text afterwards; `None`: no file. Not journaled.
        #[serde(skip)]
        text: Option<String>,
        /// The file's JSON when it was looked at: changed since, only our entries go.
        /// Not journaled.
        #[serde(skip)]
        seen: serde_json::Value,
    },
    /// Remove a link failover created, if it still points where failover made it point.
    RemoveLink {
        /// The link.
        link: PathBuf,
        /// Where failover made it point.
        target: PathBuf,
    },
    /// End the app-server daemons failover's Codex agents left running from a home,
    /// once none of its sessions runs there (each checked again before it is ended).
    EndDaemons {
        /// The account.
        account: String,
        /// Its Codex home.
        home: PathBuf,
        /// The daemons: pid and start ticks.
        daemons: Vec<(u32, u64)>,
    },
}

/// A change to a session or its agent.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "action", rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum SessionAction {
    /// Start a session.
    CreateSession {
        /// What it runs.
        session: SessionSpec,
        /// The conversation its task is resumed in (the agent died mid-turn), if any.
        resume: Option<String>,
    },
    /// Start the agent of an existing session again: its process exited, or the
    /// operator asked (then it runs, and is stopped first).
    RestartSession {
        /// What it runs.
        session: SessionSpec,
        /// The agent's pane (`%N`).
        pane: String,
        /// Why.
        reason: String,
        /// The conversation resumed (its task's, when the agent died mid-turn; the one
        /// it held, for the operator's restart), if any.
        resume: Option<String>,
        /// The agent runs and is stopped first (the operator's restart); a crash
        /// restart finds it dead, and a pane whose agent came back is left alone.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        live: bool,
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
        /// The new account's home: the conversation is resumed only when its transcript
        /// is found there too (the homes share the agent's conversation folder).
        #[serde(skip_serializing_if = "Option::is_none")]
        to_home: Option<PathBuf>,
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
}

/// A step of a task's life.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr, strum::VariantNames,
)]
#[serde(tag = "action", rename_all = "camelCase")]
#[strum(serialize_all = "camelCase")]
pub enum TaskAction {
    /// Claim a waiting task for an idle session and paste its text (or start the agent
    /// in the task's folder first).
    DispatchTask {
        /// Which task.
        task: TaskRef,
        /// The agent's pane.
        pane: String,
        /// Start the agent afresh in the inbox's folder before pasting.
        restart: Option<SessionSpec>,
        /// A line put before the text when it is pasted at once: the inbox's
        /// `handOffNote`, for a task handed to another family's agent before it went
        /// back to its inbox.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// Paste a claimed task's text into the agent, now idle in the task's folder.
    PasteTask {
        /// Which task.
        task: TaskRef,
        /// The agent's pane.
        pane: String,
        /// A line put before the text: the inbox's `handOffNote`, for a task handed
        /// to another family's agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
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
        /// The agent's pane (empty for an ending replayed from the task's record).
        #[serde(default)]
        pane: String,
        /// The agent's pid: after the task, no longer a fresh context.
        #[serde(default)]
        pid: u32,
        /// How the end was seen (`Stop report`, `transcript`, `idle screen after the
        /// turn ran`).
        how: String,
        /// The agent's last reply, when its report or transcript gave it.
        #[serde(skip_serializing_if = "Option::is_none")]
        reply: Option<String>,
        /// The exit command to type, for pool sessions.
        #[serde(default)]
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
        #[serde(default)]
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
    /// Put a claimed task back in its inbox for `failover delete`, once the session
    /// that held it is gone.
    ReturnTask {
        /// The session that held it.
        session: String,
        /// The inbox, by name.
        inbox: String,
        /// The task's name as dropped.
        name: String,
        /// Its file in `active/`.
        from: PathBuf,
        /// Where it goes.
        to: PathBuf,
    },
}

/// What a successful action came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did what it says.
    Done,
    /// It pasted a prompt into the agent: [`crate::report::text_hash`] of the text, by
    /// which the agent's submit report is known to be this task's.
    Sent(u64),
    /// The task it was to send went to `failed/` instead, or the move was not made,
    /// for this reason.
    Rejected(String),
    /// The agent was restarted resuming this conversation.
    Resumed(String),
    /// The agent was started afresh, not resuming its conversation, for this reason
    /// (the conversation is not to be found under the new account's home).
    Fresh(String),
}

impl<'de> Deserialize<'de> for Action {
    /// The action's name says its group; an unknown name is an error.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(d)?;
        let name = value
            .get("action")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| D::Error::missing_field("action"))?;
        let group = Group::of(name).ok_or_else(|| D::Error::unknown_variant(name, &[]))?;
        let action = match group {
            Group::Fs => FsAction::deserialize(value).map(Action::Fs),
            Group::Session => SessionAction::deserialize(value).map(Action::Session),
            Group::Task => TaskAction::deserialize(value).map(Action::Task),
        };
        action.map_err(D::Error::custom)
    }
}

/// The three groups of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Fs,
    Session,
    Task,
}

impl Group {
    /// The group of the action named `name`: each group's verbs are its variants'
    /// names, as serde tags them.
    fn of(name: &str) -> Option<Self> {
        use strum::VariantNames;
        [
            (Group::Fs, FsAction::VARIANTS),
            (Group::Session, SessionAction::VARIANTS),
            (Group::Task, TaskAction::VARIANTS),
        ]
        .into_iter()
        .find_map(|(group, verbs)| verbs.contains(&name).then_some(group))
    }
}

impl From<FsAction> for Action {
    fn from(a: FsAction) -> Self {
        Action::Fs(a)
    }
}

impl From<SessionAction> for Action {
    fn from(a: SessionAction) -> Self {
        Action::Session(a)
    }
}

impl From<TaskAction> for Action {
    fn from(a: TaskAction) -> Self {
        Action::Task(a)
    }
}

/// A task by inbox and file name, as dropped: `inbox/name`, the key of its tries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskKey {
    /// The inbox, by name.
    pub inbox: String,
    /// The file name as dropped.
    pub name: String,
}

impl TaskKey {
    /// The key of `name` in `inbox`.
    pub fn new(inbox: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            inbox: inbox.into(),
            name: name.into(),
        }
    }
}

impl TaskKey {
    /// Reads `inbox/name` back (inbox names hold no `/`).
    pub fn parse(key: &str) -> Option<Self> {
        let (inbox, name) = key.split_once('/')?;
        Some(Self::new(inbox, name))
    }
}

impl fmt::Display for TaskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.inbox, self.name)
    }
}

/// A claimed (or about to be claimed) task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    /// The inbox, by name.
    pub inbox: String,
    /// The inbox folder (not in a journal line replayed by an older controller).
    #[serde(default)]
    pub path: PathBuf,
    /// Its file name as dropped.
    pub name: String,
    /// Its file name in `active/` (not in a journal line replayed by an older
    /// controller).
    #[serde(default)]
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
    /// Its hand-offs from one family's agent to another's, oldest first, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hand_offs: Vec<String>,
}

impl TaskRef {
    /// `inbox/name`.
    pub fn key(&self) -> TaskKey {
        TaskKey::new(&self.inbox, &self.name)
    }
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
            Action::Fs(a) => a.change(),
            Action::Session(a) => a.change(),
            Action::Task(a) => a.change(),
        }
    }

    /// Its sign in a plan: `+`, `~` or `-`.
    pub fn sign(&self) -> char {
        match self.change() {
            Change::Add => '+',
            Change::Change => '~',
            Change::Delete => '-',
        }
    }

    /// Where it goes in a plan: folders before the links into them, agent settings
    /// before the agents that read them, deletions to free names for creations, the
    /// sessions before the tasks they run.
    pub(super) fn order(&self) -> u8 {
        match self {
            Action::Fs(a) => a.order(),
            Action::Session(a) => a.order(),
            Action::Task(a) => a.order(),
        }
    }

    /// Its verb, as journaled (`createSession`).
    pub fn verb(&self) -> &'static str {
        match self {
            Action::Fs(a) => a.verb(),
            Action::Session(a) => a.verb(),
            Action::Task(a) => a.verb(),
        }
    }
}

impl FsAction {
    fn change(&self) -> Change {
        match self {
            FsAction::CreateDir { .. } | FsAction::CreateLink { .. } => Change::Add,
            FsAction::ConfigureAgent { .. } | FsAction::RestoreSettings { removed: false, .. } => {
                Change::Change
            }
            FsAction::RestoreSettings { removed: true, .. }
            | FsAction::RemoveLink { .. }
            | FsAction::EndDaemons { .. } => Change::Delete,
        }
    }

    fn order(&self) -> u8 {
        match self {
            FsAction::CreateDir { .. } => 0,
            FsAction::CreateLink { .. } => 1,
            FsAction::ConfigureAgent { .. } => 2,
            // Taken down last, once the sessions that read them are gone.
            FsAction::RestoreSettings { .. } => 8,
            FsAction::RemoveLink { .. } => 9,
            // After the sessions whose agents they served.
            FsAction::EndDaemons { .. } => 10,
        }
    }

    /// Its verb, as journaled (its serde tag).
    pub fn verb(&self) -> &'static str {
        self.into()
    }
}

impl SessionAction {
    fn change(&self) -> Change {
        match self {
            SessionAction::CreateSession { .. } => Change::Add,
            SessionAction::DeleteSession { .. } => Change::Delete,
            SessionAction::RestartSession { .. }
            | SessionAction::MoveSession { .. }
            | SessionAction::RecycleSession { .. } => Change::Change,
        }
    }

    fn order(&self) -> u8 {
        match self {
            SessionAction::DeleteSession { .. } => 3,
            SessionAction::CreateSession { .. } => 4,
            SessionAction::RestartSession { .. } => 5,
            SessionAction::MoveSession { .. } => 6,
            SessionAction::RecycleSession { .. } => 7,
        }
    }

    /// Its verb, as journaled (its serde tag).
    pub fn verb(&self) -> &'static str {
        self.into()
    }
}

impl TaskAction {
    fn change(&self) -> Change {
        match self {
            TaskAction::DispatchTask { .. }
            | TaskAction::PasteTask { .. }
            | TaskAction::ContinueTask { .. }
            | TaskAction::SubmitTask { .. }
            | TaskAction::CompleteTask { .. }
            | TaskAction::RequeueTask { .. }
            | TaskAction::RejectTask { .. }
            | TaskAction::StallTask { .. }
            | TaskAction::ReturnTask { .. } => Change::Change,
        }
    }

    fn order(&self) -> u8 {
        match self {
            TaskAction::DispatchTask { .. }
            | TaskAction::PasteTask { .. }
            | TaskAction::ContinueTask { .. }
            | TaskAction::SubmitTask { .. }
            | TaskAction::CompleteTask { .. }
            | TaskAction::RequeueTask { .. }
            | TaskAction::RejectTask { .. }
            | TaskAction::StallTask { .. }
            | TaskAction::ReturnTask { .. } => 7,
        }
    }

    /// Its verb, as journaled (its serde tag).
    pub fn verb(&self) -> &'static str {
        self.into()
    }
}

impl SessionAction {
    /// The session it acts on.
    pub fn name(&self) -> &str {
        match self {
            SessionAction::CreateSession { session, .. }
            | SessionAction::RestartSession { session, .. }
            | SessionAction::MoveSession { session, .. }
            | SessionAction::RecycleSession { session, .. } => &session.name,
            SessionAction::DeleteSession { name, .. } => name,
        }
    }
}

impl TaskAction {
    /// The claimed task it is about; `None` for a waiting task being rejected.
    pub fn task(&self) -> Option<&TaskRef> {
        match self {
            TaskAction::DispatchTask { task, .. }
            | TaskAction::PasteTask { task, .. }
            | TaskAction::ContinueTask { task, .. }
            | TaskAction::SubmitTask { task, .. }
            | TaskAction::CompleteTask { task, .. }
            | TaskAction::RequeueTask { task, .. }
            | TaskAction::StallTask { task } => Some(task),
            TaskAction::RejectTask { .. } | TaskAction::ReturnTask { .. } => None,
        }
    }

    /// The task it is about, by inbox and name.
    pub fn key(&self) -> TaskKey {
        match self {
            TaskAction::RejectTask { inbox, name, .. }
            | TaskAction::ReturnTask { inbox, name, .. } => TaskKey::new(inbox, name),
            TaskAction::DispatchTask { task, .. }
            | TaskAction::PasteTask { task, .. }
            | TaskAction::ContinueTask { task, .. }
            | TaskAction::SubmitTask { task, .. }
            | TaskAction::CompleteTask { task, .. }
            | TaskAction::RequeueTask { task, .. }
            | TaskAction::StallTask { task } => task.key(),
        }
    }

    /// Whether it types into the agent's pane (a session being moved gets none).
    pub fn types(&self) -> bool {
        match self {
            TaskAction::PasteTask { .. }
            | TaskAction::ContinueTask { .. }
            | TaskAction::SubmitTask { .. }
            | TaskAction::CompleteTask { .. } => true,
            TaskAction::DispatchTask { .. }
            | TaskAction::RequeueTask { .. }
            | TaskAction::RejectTask { .. }
            | TaskAction::StallTask { .. }
            | TaskAction::ReturnTask { .. } => false,
        }
    }
}

/// One line for an action, without its sign: what changes and why.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Fs(a) => a.fmt(f),
            Action::Session(a) => a.fmt(f),
            Action::Task(a) => a.fmt(f),
        }
    }
}

impl fmt::Display for FsAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsAction::CreateDir { path } => write!(f, "folder {}", path.display()),
            FsAction::CreateLink { link, target } => {
                write!(f, "link {} -> {}", link.display(), target.display())
            }
            FsAction::ConfigureAgent {
                account,
                path,
                changes,
                ..
            } => write!(
                f,
                "agent settings {} (account {account}): {}",
                path.display(),
                changes.join("; ")
            ),
            FsAction::RestoreSettings {
                path,
                removed,
                original,
                ..
            } => match (removed, original) {
                (true, _) => write!(
                    f,
                    "agent settings {} (there was none before failover)",
                    path.display()
                ),
                (false, true) => write!(
                    f,
                    "agent settings {}: put back as they were before failover",
                    path.display()
                ),
                (false, false) => write!(
                    f,
                    "agent settings {}: failover's {} taken out",
                    path.display(),
                    if path.ends_with(crate::codex_config::CONFIG_FILE) {
                        "notify"
                    } else {
                        "hooks and status line"
                    }
                ),
            },
            FsAction::RemoveLink { link, target } => {
                write!(f, "link {} -> {}", link.display(), target.display())
            }
            FsAction::EndDaemons {
                account,
                home,
                daemons,
            } => {
                let pids: Vec<String> = daemons.iter().map(|(pid, _)| pid.to_string()).collect();
                write!(
                    f,
                    "Codex daemons of {} (account {account}): pid {}",
                    home.display(),
                    pids.join(", ")
                )
            }
        }
    }
}

impl fmt::Display for SessionAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionAction::CreateSession { session, resume } => {
                write!(f, "session {session}{}", resumed(resume.as_deref()))
            }
            SessionAction::RestartSession {
                session,
                reason,
                resume,
                live: false,
                ..
            } => write!(
                f,
                "session {}: {reason}; restart under account {}{}",
                session.name,
                session.account,
                resumed(resume.as_deref())
            ),
            SessionAction::RestartSession {
                session,
                reason,
                resume,
                live: true,
                ..
            } => write!(
                f,
                "session {}: {reason}, under account {}{}",
                session.name,
                session.account,
                resume
                    .as_ref()
                    .map_or(String::new(), |id| format!(", resuming conversation {id}"))
            ),
            SessionAction::MoveSession {
                session,
                from,
                resume,
                ..
            } => write!(
                f,
                "session {}: account {} -> {}{}",
                session.name,
                from.as_deref().unwrap_or("(none)"),
                session.account,
                if resume.is_some() {
                    ", resuming its conversation"
                } else {
                    ""
                }
            ),
            SessionAction::DeleteSession { name, reason } => write!(f, "session {name}: {reason}"),
            SessionAction::RecycleSession {
                session, reason, ..
            } => write!(f, "session {}: restart the agent ({reason})", session.name),
        }
    }
}

impl fmt::Display for TaskAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskAction::DispatchTask { task, restart, .. } => {
                let start = if restart.is_some() {
                    " (agent started in the task's folder first)"
                } else {
                    ""
                };
                write!(
                    f,
                    "task {} -> session {} (try {}){start}",
                    task.key(),
                    task.session,
                    task.attempt
                )
            }
            TaskAction::ContinueTask { task, .. } => write!(
                f,
                "task {}: carry on in the resumed conversation of session {}",
                task.key(),
                task.session
            ),
            TaskAction::PasteTask { task, .. } => {
                write!(
                    f,
                    "task {}: paste into session {}",
                    task.key(),
                    task.session
                )
            }
            TaskAction::SubmitTask { task, .. } => {
                write!(f, "task {}: submit in session {}", task.key(), task.session)
            }
            TaskAction::CompleteTask {
                task, how, exit, ..
            } => {
                // The reply goes to the task's record, not to this line.
                let recycle = exit
                    .as_ref()
                    .map_or(String::new(), |e| format!("; {e} to end the context"));
                write!(
                    f,
                    "task {}: done ({how}) in session {}{recycle}",
                    task.key(),
                    task.session
                )
            }
            TaskAction::RequeueTask {
                task,
                reason,
                failed,
                ..
            } => {
                let to = if *failed {
                    "failed/"
                } else {
                    "back to the inbox"
                };
                write!(f, "task {}: {to} ({reason})", task.key())
            }
            TaskAction::RejectTask {
                inbox,
                name,
                reason,
                ..
            } => write!(f, "task {inbox}/{name}: failed/ ({reason})"),
            TaskAction::StallTask { task } => {
                write!(
                    f,
                    "task {}: stalled in session {}",
                    task.key(),
                    task.session
                )
            }
            TaskAction::ReturnTask {
                inbox, name, from, ..
            } => write!(
                f,
                "task {inbox}/{name}: {} back to the inbox",
                from.display()
            ),
        }
    }
}

/// ", resuming conversation <id> for its task", when a dead agent's task is resumed.
fn resumed(conversation: Option<&str>) -> String {
    conversation.map_or(String::new(), |id| {
        format!(", resuming conversation {id} for its task")
    })
}

/// Everything needed to start a session's agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(serialize_with = "names_only", deserialize_with = "names_read")]
    pub env: BTreeMap<String, String>,
    /// Variables another account sets and this one does not: cleared from the tmux
    /// session's environment before its agent is started again, so that nothing of the
    /// previous account leaks into the next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

/// `name (pool p, account a) in /folder: command`.
impl fmt::Display for SessionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, account {}) in {}: {}",
            self.name,
            self.role,
            self.account,
            self.workdir.display(),
            self.command.join(" ")
        )
    }
}

fn names_only<S: Serializer>(env: &BTreeMap<String, String>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(env.keys())
}

/// The environment's names as journaled, each with an empty value (values are never
/// written).
fn names_read<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    Ok(names.into_iter().map(|n| (n, String::new())).collect())
}

/// Why a session exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// `pool P` or `dedicated`.
impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Pool { pool, .. } => write!(f, "pool {pool}"),
            Role::Dedicated => f.write_str("dedicated"),
        }
    }
}

/// The role a manifest gives the session it wants.
impl From<crate::api::SessionOwner<'_>> for Role {
    fn from(owner: crate::api::SessionOwner<'_>) -> Self {
        match owner {
            crate::api::SessionOwner::Pool { pool, index } => Role::Pool {
                pool: pool.name.clone(),
                index,
            },
            crate::api::SessionOwner::Dedicated(_) => Role::Dedicated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_should_serialize_flat_with_their_name() {
        let a = Action::from(SessionAction::DeleteSession {
            name: "s".into(),
            reason: "surplus".into(),
        });
        assert_eq!(
            serde_json::to_value(&a).unwrap_or_default(),
            serde_json::json!({"action": "deleteSession", "name": "s", "reason": "surplus"})
        );
        let a = Action::from(FsAction::CreateDir { path: "/x".into() });
        assert_eq!(
            serde_json::to_value(&a).unwrap_or_default(),
            serde_json::json!({"action": "createDir", "path": "/x"})
        );
    }

    #[test]
    fn task_keys_should_read_inbox_slash_name() {
        assert_eq!(TaskKey::new("in", "a.md").to_string(), "in/a.md");
    }
}
