//! A journal line, typed: its time and an [`Entry`] tagged by its `event` — an action
//! carried out, a decision of the planner, a refusal, the controller's life — or
//! [`Unknown`] for a line a newer failover wrote, kept whole so that it is told, not
//! dropped. Each reads back from the line it writes, byte for byte.

use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::plan::{Action, Event, FsAction, Outcome, Refusal, SessionAction, TaskAction};

/// One line of the journal: when it was written and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// When it was written.
    pub time: Timestamp,
    /// What it says.
    pub entry: Entry,
}

/// What a journal line says, by its `event`.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Something in the controller's life: started, stopped, new manifests, the fleet.
    Controller(Life),
    /// An action carried out, with what it came to.
    Acted(Box<Acted>),
    /// A decision of the planner.
    Event(Event),
    /// Something the planner will not do.
    Refused(Refusal),
    /// A line of an event this failover does not know (a newer one wrote it), or whose
    /// fields it cannot read.
    Unknown(Unknown),
}

/// The controller's life, tagged by `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Life {
    /// A controller started.
    Started {
        /// Its pid.
        pid: u32,
        /// The manifests' generation.
        generation: String,
        /// How many of our sessions it found running.
        adopted: usize,
        /// The manifest files it runs.
        #[serde(default)]
        files: Vec<PathBuf>,
    },
    /// A controller stopped.
    Stopped {
        /// Its pid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// tmux could not be reached at start; tried again.
    TmuxUnreachable {
        /// The server.
        server: String,
        /// Which try failed.
        attempt: u32,
        /// Why.
        error: String,
        /// When the next try comes.
        retry_in_ms: u64,
    },
    /// The shared state was broken: the controller did not start.
    RefusedToStart {
        /// What is broken.
        problems: Vec<Refusal>,
    },
    /// New manifests were adopted.
    Manifests {
        /// Where they came from (`apply`, a file).
        origin: String,
        /// Their generation.
        generation: String,
    },
    /// Manifests were refused; the last good ones keep running.
    InvalidManifests {
        /// Where they came from.
        origin: String,
        /// Each problem, a line each.
        problems: Vec<String>,
    },
    /// Something failed (observe, a reload).
    Error {
        /// What.
        message: String,
    },
    /// The account sessions run under changed.
    ActiveAccount {
        /// The account; none while every one is exhausted.
        account: Option<String>,
    },
    /// The janitor deleted old records.
    Pruned {
        /// The inbox.
        inbox: String,
        /// How many files.
        files: usize,
    },
    /// etcd could not be reached: the node runs on its own.
    FleetDegraded {
        /// Why.
        error: String,
    },
    /// etcd answers again.
    FleetRestored,
    /// A state file was found damaged: kept aside, and what was done instead.
    StateDamaged(crate::state::damage::Damage),
    /// The state folder could not be written for a while; written once it can be
    /// again, after the lines held meanwhile.
    StateUnwritable {
        /// When the first write failed.
        since: Timestamp,
        /// The last error.
        error: String,
        /// Journal lines dropped, beyond those memory held.
        #[serde(default, skip_serializing_if = "is_zero")]
        dropped: usize,
    },
    /// The wall clock jumped between two rounds (NTP stepping it, a VM restored, a
    /// machine waking from sleep): the facts' instants moved with it.
    ClockJumped {
        /// By how much, in seconds: forward when positive.
        seconds: i64,
    },
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Who carried an action out, when not the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// `failover apply` without a running controller.
    Apply,
    /// `failover delete`.
    Delete,
    /// `failover restart` or `failover return` without a running controller.
    Operator,
}

/// An action carried out, and what it came to.
#[derive(Debug, Clone, PartialEq)]
pub struct Acted {
    /// Its journal event, as [`Acted::new`] derives it from the action and its result.
    pub event: Kind,
    /// Who carried it out; `None` for the controller.
    pub origin: Option<Origin>,
    /// The action.
    pub action: Action,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Why a move started the agent afresh instead of resuming its conversation.
    pub fresh: Option<String>,
    /// Written at a controller's start for a task that ended without its line (the
    /// controller was killed in between).
    pub replayed: bool,
}

impl Acted {
    /// `action`, which came to `result`, carried out by `origin` (`None`: the
    /// controller).
    pub fn new(action: &Action, result: &Result<Outcome, String>, origin: Option<Origin>) -> Self {
        let fresh = match result {
            Ok(Outcome::Fresh(why)) => Some(why.clone()),
            _ => None,
        };
        Self {
            event: event_of(action, result),
            origin,
            action: action.clone(),
            error: result.as_ref().err().cloned(),
            fresh,
            replayed: false,
        }
    }

    /// Whether it succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The task it is about, if it is a task's action.
    pub fn task(&self) -> Option<crate::plan::TaskKey> {
        match &self.action {
            Action::Task(t) => Some(t.key()),
            Action::Fs(_) | Action::Session(_) => None,
        }
    }
}

/// The journal event of `action` given what it came to: a task's claim and ending
/// have their own, every other action is `action`.
fn event_of(action: &Action, result: &Result<Outcome, String>) -> Kind {
    match action {
        Action::Fs(
            FsAction::CreateDir { .. }
            | FsAction::CreateLink { .. }
            | FsAction::ConfigureAgent { .. }
            | FsAction::RestoreSettings { .. }
            | FsAction::RemoveLink { .. }
            | FsAction::EndDaemons { .. },
        )
        | Action::Session(
            SessionAction::CreateSession { .. }
            | SessionAction::RestartSession { .. }
            | SessionAction::MoveSession { .. }
            | SessionAction::DeleteSession { .. }
            | SessionAction::RecycleSession { .. },
        ) => Kind::Action,
        Action::Task(task) => match task {
            // A task that must not be sent went to `failed/` instead.
            TaskAction::DispatchTask { .. } if matches!(result, Ok(Outcome::Rejected(_))) => {
                Kind::TaskFailed
            }
            TaskAction::DispatchTask { .. } => Kind::TaskClaimed,
            TaskAction::CompleteTask { .. } => Kind::TaskDone,
            TaskAction::RequeueTask { failed: true, .. } | TaskAction::RejectTask { .. } => {
                Kind::TaskFailed
            }
            TaskAction::RequeueTask { .. } => Kind::TaskRequeued,
            TaskAction::StallTask { .. } => Kind::TaskStalled,
            TaskAction::PasteTask { .. }
            | TaskAction::ContinueTask { .. }
            | TaskAction::SubmitTask { .. }
            | TaskAction::ReturnTask { .. } => Kind::Action,
        },
    }
}

/// [`Acted`]'s fields as a line writes them: `error` is there (null when it went well)
/// except on a replayed line, which never had one.
#[derive(Serialize, Deserialize)]
struct ActedFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    origin: Option<Origin>,
    action: Action,
    ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fresh: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    replayed: bool,
}

/// A line this failover cannot read as anything it knows: its event and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Unknown {
    /// Its `event` (empty when it has none).
    pub event: String,
    /// Its other fields, as written.
    pub fields: Map<String, Value>,
}

/// What a journal entry records: its `event` field.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    /// A controller started (pid, manifest generation, sessions adopted).
    Started,
    /// A controller stopped.
    Stopped,
    /// tmux could not be reached at start; tried again.
    TmuxUnreachable,
    /// The shared state was broken: the controller did not start.
    RefusedToStart,
    /// New manifests were adopted.
    Manifests,
    /// Manifests were refused; the last good ones keep running.
    InvalidManifests,
    /// Something failed (observe, a reload).
    Error,
    /// The account sessions run under changed.
    ActiveAccount,
    /// An action other than a task's claim or ending.
    Action,
    /// A task was claimed for a session.
    TaskClaimed,
    /// A task ended done.
    TaskDone,
    /// A task ended failed.
    TaskFailed,
    /// A task went back to its inbox.
    TaskRequeued,
    /// A task's screen stopped changing.
    TaskStalled,
    /// An agent died while working on a task.
    SessionFailed,
    /// An agent without a task exited.
    SessionExited,
    /// A conversation could not be resumed: the session starts afresh.
    ResumeFailed,
    /// The planner refused something.
    Refused,
    /// The janitor deleted old records.
    Pruned,
    /// A quota limit was seen or reported.
    QuotaDetected,
    /// Sessions moved to another account.
    Swap,
    /// Every account is exhausted: sessions wait.
    AllExhausted,
    /// No account under `quota.moveAt` to move to.
    AllOverThreshold,
    /// New tasks wait: the active account is over `quota.moveAt`.
    IntakeHeld,
    /// An exhausted account's limit reset.
    Recovered,
    /// Work resumes after every account was exhausted.
    Resumed,
    /// An account's use crossed a level.
    UsageCrossed,
    /// The fleet's ledger told an account's exhaustion or use.
    FleetLedger,
    /// A task cut by a usage limit went to another family of its pool.
    HandedOff,
    /// A pool session restarted under another family.
    FamilyChanged,
    /// A dedicated session waits for an account of its family.
    SessionWaits,
    /// etcd could not be reached: the node runs on its own.
    FleetDegraded,
    /// etcd answers again.
    FleetRestored,
    /// A state file was found damaged and kept aside.
    StateDamaged,
    /// The state folder could not be written for a while.
    StateUnwritable,
    /// The wall clock jumped.
    ClockJumped,
}

/// Which part of [`Entry`] a kind is read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Controller,
    Acted,
    Event,
    Refused,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 36] = [
        Kind::Started,
        Kind::Stopped,
        Kind::TmuxUnreachable,
        Kind::RefusedToStart,
        Kind::Manifests,
        Kind::InvalidManifests,
        Kind::Error,
        Kind::ActiveAccount,
        Kind::Action,
        Kind::TaskClaimed,
        Kind::TaskDone,
        Kind::TaskFailed,
        Kind::TaskRequeued,
        Kind::TaskStalled,
        Kind::SessionFailed,
        Kind::SessionExited,
        Kind::ResumeFailed,
        Kind::Refused,
        Kind::Pruned,
        Kind::QuotaDetected,
        Kind::Swap,
        Kind::AllExhausted,
        Kind::AllOverThreshold,
        Kind::IntakeHeld,
        Kind::Recovered,
        Kind::Resumed,
        Kind::UsageCrossed,
        Kind::FleetLedger,
        Kind::FleetDegraded,
        Kind::FleetRestored,
        Kind::HandedOff,
        Kind::FamilyChanged,
        Kind::SessionWaits,
        Kind::StateDamaged,
        Kind::StateUnwritable,
        Kind::ClockJumped,
    ];

    /// The name in the journal (`taskDone`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Started => "started",
            Kind::Stopped => "stopped",
            Kind::TmuxUnreachable => "tmuxUnreachable",
            Kind::RefusedToStart => "refusedToStart",
            Kind::Manifests => "manifests",
            Kind::InvalidManifests => "invalidManifests",
            Kind::Error => "error",
            Kind::ActiveAccount => "activeAccount",
            Kind::Action => "action",
            Kind::TaskClaimed => "taskClaimed",
            Kind::TaskDone => "taskDone",
            Kind::TaskFailed => "taskFailed",
            Kind::TaskRequeued => "taskRequeued",
            Kind::TaskStalled => "taskStalled",
            Kind::SessionFailed => "sessionFailed",
            Kind::SessionExited => "sessionExited",
            Kind::ResumeFailed => "resumeFailed",
            Kind::Refused => "refused",
            Kind::Pruned => "pruned",
            Kind::QuotaDetected => "quotaDetected",
            Kind::Swap => "swap",
            Kind::AllExhausted => "allExhausted",
            Kind::AllOverThreshold => "allOverThreshold",
            Kind::IntakeHeld => "intakeHeld",
            Kind::Recovered => "recovered",
            Kind::Resumed => "resumed",
            Kind::UsageCrossed => "usageCrossed",
            Kind::FleetLedger => "fleetLedger",
            Kind::HandedOff => "handedOff",
            Kind::FamilyChanged => "familyChanged",
            Kind::SessionWaits => "sessionWaits",
            Kind::FleetDegraded => "fleetDegraded",
            Kind::FleetRestored => "fleetRestored",
            Kind::StateDamaged => "stateDamaged",
            Kind::StateUnwritable => "stateUnwritable",
            Kind::ClockJumped => "clockJumped",
        }
    }

    /// The kind named `name` in the journal.
    pub fn named(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn part(self) -> Part {
        match self {
            Kind::Started
            | Kind::Stopped
            | Kind::TmuxUnreachable
            | Kind::RefusedToStart
            | Kind::Manifests
            | Kind::InvalidManifests
            | Kind::Error
            | Kind::ActiveAccount
            | Kind::Pruned
            | Kind::FleetDegraded
            | Kind::FleetRestored
            | Kind::StateDamaged
            | Kind::StateUnwritable
            | Kind::ClockJumped => Part::Controller,
            Kind::Action
            | Kind::TaskClaimed
            | Kind::TaskDone
            | Kind::TaskFailed
            | Kind::TaskRequeued
            | Kind::TaskStalled => Part::Acted,
            Kind::SessionFailed
            | Kind::SessionExited
            | Kind::ResumeFailed
            | Kind::QuotaDetected
            | Kind::Swap
            | Kind::AllExhausted
            | Kind::AllOverThreshold
            | Kind::IntakeHeld
            | Kind::Recovered
            | Kind::Resumed
            | Kind::UsageCrossed
            | Kind::FleetLedger
            | Kind::HandedOff
            | Kind::FamilyChanged
            | Kind::SessionWaits => Part::Event,
            Kind::Refused => Part::Refused,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Entry {
    /// Its kind; `None` for an unknown line.
    pub fn kind(&self) -> Option<Kind> {
        Some(match self {
            Entry::Controller(life) => match life {
                Life::Started { .. } => Kind::Started,
                Life::Stopped { .. } => Kind::Stopped,
                Life::TmuxUnreachable { .. } => Kind::TmuxUnreachable,
                Life::RefusedToStart { .. } => Kind::RefusedToStart,
                Life::Manifests { .. } => Kind::Manifests,
                Life::InvalidManifests { .. } => Kind::InvalidManifests,
                Life::Error { .. } => Kind::Error,
                Life::ActiveAccount { .. } => Kind::ActiveAccount,
                Life::Pruned { .. } => Kind::Pruned,
                Life::FleetDegraded { .. } => Kind::FleetDegraded,
                Life::FleetRestored => Kind::FleetRestored,
                Life::StateDamaged(_) => Kind::StateDamaged,
                Life::StateUnwritable { .. } => Kind::StateUnwritable,
                Life::ClockJumped { .. } => Kind::ClockJumped,
            },
            Entry::Acted(a) => a.event,
            Entry::Event(e) => match e {
                Event::QuotaDetected { .. } => Kind::QuotaDetected,
                Event::Recovered { .. } => Kind::Recovered,
                Event::Swap { .. } => Kind::Swap,
                Event::AllExhausted { .. } => Kind::AllExhausted,
                Event::Resumed { .. } => Kind::Resumed,
                Event::AllOverThreshold { .. } => Kind::AllOverThreshold,
                Event::IntakeHeld { .. } => Kind::IntakeHeld,
                Event::UsageCrossed { .. } => Kind::UsageCrossed,
                Event::SessionFailed { .. } => Kind::SessionFailed,
                Event::SessionExited { .. } => Kind::SessionExited,
                Event::ResumeFailed { .. } => Kind::ResumeFailed,
                Event::FleetLedger { .. } => Kind::FleetLedger,
                Event::HandedOff { .. } => Kind::HandedOff,
                Event::FamilyChanged { .. } => Kind::FamilyChanged,
                Event::SessionWaits { .. } => Kind::SessionWaits,
            },
            Entry::Refused(_) => Kind::Refused,
            Entry::Unknown(_) => return None,
        })
    }

    /// Its `event` as written (`taskDone`; an unknown line's own).
    pub fn event(&self) -> &str {
        match (self.kind(), self) {
            (Some(kind), _) => kind.as_str(),
            (None, Entry::Unknown(u)) => &u.event,
            (None, _) => "",
        }
    }

    /// Its fields as a line writes them, `event` first; an error when they cannot be
    /// written as JSON (a path that is not UTF-8).
    pub fn fields(&self) -> Result<Map<String, Value>, serde_json::Error> {
        let mut fields = Map::new();
        fields.insert("event".into(), Value::String(self.event().to_owned()));
        let rest = match self {
            Entry::Controller(life) => serde_json::to_value(life),
            Entry::Acted(a) => serde_json::to_value(ActedFields {
                origin: a.origin,
                action: a.action.clone(),
                ok: a.ok(),
                error: (!a.replayed).then(|| a.error.clone()),
                fresh: a.fresh.clone(),
                replayed: a.replayed,
            }),
            Entry::Event(e) => serde_json::to_value(e),
            Entry::Refused(r) => serde_json::to_value(r),
            Entry::Unknown(u) => Ok(Value::Object(u.fields.clone())),
        };
        if let Value::Object(rest) = rest? {
            fields.extend(rest.into_iter().filter(|(k, _)| k != "event"));
        }
        Ok(fields)
    }

    /// Reads the fields of a line of `event` (without `time`); a line it cannot read
    /// is [`Entry::Unknown`].
    pub fn read(event: &str, fields: Map<String, Value>) -> Entry {
        let unknown = |fields: Map<String, Value>| {
            Entry::Unknown(Unknown {
                event: event.to_owned(),
                fields: fields.into_iter().filter(|(k, _)| k != "event").collect(),
            })
        };
        let Some(kind) = Kind::named(event) else {
            return unknown(fields);
        };
        let value = Value::Object(fields.clone());
        let read = match kind.part() {
            Part::Controller => Life::deserialize(value).map(Entry::Controller),
            Part::Event => Event::deserialize(value).map(Entry::Event),
            Part::Refused => Refusal::deserialize(value).map(Entry::Refused),
            Part::Acted => ActedFields::deserialize(value).map(|a| {
                Entry::Acted(Box::new(Acted {
                    event: kind,
                    origin: a.origin,
                    action: a.action,
                    error: a.error.flatten().or_else(|| (!a.ok).then(String::new)),
                    fresh: a.fresh,
                    replayed: a.replayed,
                }))
            }),
        };
        read.unwrap_or_else(|_| unknown(fields))
    }
}

impl From<Life> for Entry {
    fn from(life: Life) -> Self {
        Entry::Controller(life)
    }
}

impl From<Event> for Entry {
    fn from(event: Event) -> Self {
        Entry::Event(event)
    }
}

impl From<Acted> for Entry {
    fn from(acted: Acted) -> Self {
        Entry::Acted(Box::new(acted))
    }
}

impl From<Refusal> for Entry {
    fn from(refusal: Refusal) -> Self {
        Entry::Refused(refusal)
    }
}

/// `{"time": …, "event": …, …fields}`.
impl Serialize for Line {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut line = Map::new();
        line.insert("time".into(), Value::String(self.time.to_string()));
        line.extend(self.entry.fields().map_err(serde::ser::Error::custom)?);
        line.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut fields = Map::<String, Value>::deserialize(d)?;
        let time = fields
            .shift_remove("time")
            .and_then(|t| t.as_str()?.parse::<Timestamp>().ok())
            .ok_or_else(|| D::Error::missing_field("time"))?;
        let event = fields
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Line {
            time,
            entry: Entry::read(&event, fields),
        })
    }
}

#[cfg(test)]
#[path = "entry_tests.rs"]
mod tests;
