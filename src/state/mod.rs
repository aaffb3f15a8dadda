//! The state folder: persisted facts (what the controller knows that neither tmux nor
//! the manifests say: each family's active account and last swap (`families`), when
//! exhausted accounts reset, which session runs what, conversations to resume), written atomically (temp file,
//! fsync, rename; mode 0600). The journal beside them is [`crate::journal`].

mod clock;
pub(crate) mod damage;
pub(crate) mod families;
pub(crate) mod hash;
pub(crate) mod originals;
pub(crate) mod paths;
pub(crate) mod usage;

use paths::FACTS_FILE;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Facts that outlive a reconcile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// Each family's ledger: its active account, last swap and wait for a reset (the
    /// default family's at the top, as before there were families).
    #[serde(flatten)]
    pub families: families::Families,
    /// Accounts that ran out of quota, and when they are available again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exhausted_until: BTreeMap<String, jiff::Timestamp>,
    /// What each of our sessions runs, by session name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sessions: BTreeMap<String, SessionFacts>,
    /// Tries so far of tasks that went back to their inbox, by `inbox/task`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tries: BTreeMap<String, u32>,
    /// Why each try so far of those tasks ended, oldest first, by `inbox/task`: their
    /// record in `done/` or `failed/` lists them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub try_reasons: BTreeMap<String, Vec<String>>,
    /// Hand-offs of tasks that went back to their inbox, by `inbox/task`: the next
    /// claim carries them on (the inbox's note before the text, the record's list).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hand_offs: BTreeMap<String, Vec<HandOff>>,
    /// Per pool, the inbox whose turn it is next (fair sharing).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub turn: BTreeMap<String, usize>,
    /// Polls in a row that read an account's quota used up without a reset time, and
    /// when the last one counted, by account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quota_polls: BTreeMap<String, (u32, jiff::Timestamp)>,
    /// Each account's use as its agents' status line last reported it, by account.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usage: BTreeMap<String, UsageReading>,
    /// Starts of each session's agent after it died, for crash-loop backoff, by session.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub restarts: BTreeMap<String, Restarts>,
}

/// How often a session's agent was started again after it died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restarts {
    /// Starts in a row, each within the memory of the last.
    pub count: u32,
    /// The last one.
    pub last: jiff::Timestamp,
}

/// An account's use, as one of its agents reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReading {
    /// The windows.
    #[serde(flatten)]
    pub usage: usage::Usage,
    /// When it was reported.
    pub at: jiff::Timestamp,
    /// By which session.
    pub session: String,
}

/// The agent a session runs, as its `SessionStart` report named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentFacts {
    /// Its pid (the pane's): reports of other pids are an earlier agent's.
    pub pid: u32,
    /// The conversation it holds.
    pub conversation: String,
    /// That conversation's transcript.
    pub transcript: PathBuf,
    /// Its reports may have been lost: the state folder could not be written while it
    /// ran. Its turns are read from the transcript and the screen, as for an agent
    /// that does not report, until the next agent's `SessionStart`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unheard: bool,
}

impl AgentFacts {
    /// Whether the agent of pane pid `pid` is this one and its reports are heard.
    pub fn reports(&self, pid: u32) -> bool {
        self.pid == pid && !self.unheard
    }
}

/// How the last turn of a session ended, as its agent reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LastTurn {
    /// When it ended.
    pub at: jiff::Timestamp,
    /// Its prompt id.
    pub prompt_id: String,
    /// The API error it ended on (`rate_limit`, `server_error`, …), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The agent's last message, cut to 200 characters.
    pub message: String,
}

/// Whether a session's screen shows an old turn, redrawn: after a move resuming its
/// conversation (or its account's limit spent), and no new turn since, a usage limit on
/// it is the old turn's and counts for nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RedrawFields", into = "RedrawFields")]
pub enum Redraw {
    /// No old turn on screen: a limit there is real.
    #[default]
    Off,
    /// An old turn on screen.
    On {
        /// The quota mark (turn prompt and deciding line) of the redrawn limit, once
        /// read: a different one is a new turn's.
        mark: Option<String>,
        /// We submitted a turn during the redraw: from then on a limit other than the
        /// redrawn one is our turn's.
        submitted: bool,
    },
}

impl Redraw {
    /// Whether an old turn is on screen.
    pub fn is_on(&self) -> bool {
        matches!(self, Redraw::On { .. })
    }
}

/// [`Redraw`] as the facts file has always kept it: three fields of the session.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedrawFields {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    redraw: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redraw_mark: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    redraw_submitted: bool,
}

impl From<RedrawFields> for Redraw {
    fn from(f: RedrawFields) -> Self {
        if f.redraw {
            Redraw::On {
                mark: f.redraw_mark,
                submitted: f.redraw_submitted,
            }
        } else {
            Redraw::Off
        }
    }
}

impl From<Redraw> for RedrawFields {
    fn from(r: Redraw) -> Self {
        match r {
            Redraw::Off => RedrawFields::default(),
            Redraw::On { mark, submitted } => RedrawFields {
                redraw: true,
                redraw_mark: mark,
                redraw_submitted: submitted,
            },
        }
    }
}

/// What the controller remembers of one session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionFacts {
    /// The task it works on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskFacts>,
    /// The pid of an agent that already ran a task: it is not a fresh context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_pid: Option<u32>,
    /// A hash of the last screen read, and when it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<(u64, jiff::Timestamp)>,
    /// Since when it has been idle without a task (for scaling down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<jiff::Timestamp>,
    /// Whether its screen shows an old turn, redrawn after a move or a recovery.
    #[serde(flatten)]
    pub redraw: Redraw,
    /// The last quota mark counted, with the account it counted against: a limit still
    /// on screen is not counted twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_quota: Option<(String, String)>,
    /// The agent, as its own report named it (absent for agents that do not report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentFacts>,
    /// The prompt id of a turn under way: submitted, not yet ended (reports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<String>,
    /// How its last turn ended (reports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_turn: Option<LastTurn>,
    /// When its agent last drew the status line (reports only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_at: Option<jiff::Timestamp>,
    /// The conversation its agent was last started resuming, and when: an agent that
    /// dies at once after it could not resume it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed: Option<(String, jiff::Timestamp)>,
    /// The family it ran when last seen, for a session of a pool over several families:
    /// gone with its tmux server while its task ran, it comes back in that family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::agents::AgentKind>,
}

impl SessionFacts {
    /// The person's new turn is on screen: a limit there is not the redrawn one.
    pub fn end_redraw(&mut self) {
        self.redraw = Redraw::Off;
    }

    /// A new turn is on screen, or a fresh agent: no limit there is redrawn or already
    /// counted.
    pub fn new_turn(&mut self) {
        self.end_redraw();
        self.counted_quota = None;
    }

    /// The agent now shows an old conversation (resumed, or its limit spent): its limit
    /// on screen, `mark` when already known, counts for nothing until a new turn.
    pub fn start_redraw(&mut self, mark: Option<String>) {
        self.new_turn();
        self.redraw = Redraw::On {
            mark,
            submitted: false,
        };
    }
}

/// A task a session works on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFacts {
    /// The inbox, by name.
    pub inbox: String,
    /// Its file name in `active/`.
    pub file: String,
    /// Its file name as dropped.
    pub task: String,
    /// Which try this is (1 for the first).
    pub attempt: u32,
    /// How far sending it got.
    pub stage: Stage,
    /// When it entered that stage.
    pub since: jiff::Timestamp,
    /// When its text was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<jiff::Timestamp>,
    /// Since when the agent has been idle after working on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<jiff::Timestamp>,
    /// Marked stalled (no screen change for `idleTimeout`).
    #[serde(default)]
    pub stalled: bool,
    /// [`crate::report::text_hash`] of the last text sent for it (the task, or a
    /// `continue`): the submit report carrying it is this task's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<u64>,
    /// When the last text for it was pasted: the first prompt the agent reports after
    /// that is its, whatever Claude Code made of the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pasted: Option<jiff::Timestamp>,
    /// The prompt id of its turn under way, once the agent reported taking it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// The conversation it runs in, and its transcript: where it is resumed after its
    /// agent died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<(String, PathBuf)>,
    /// The busy marker was seen during its turn (what lets a screen end it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seen_busy: bool,
    /// Its turn met the account's usage limit (the agent's report): it waits for a
    /// move or the reset.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub at_limit: bool,
    /// Its turn ended, and how; proof the next plan acts on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    /// Times its conversation was resumed after its agent died.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resumes: u32,
    /// Its conversation could not be resumed: its agent starts afresh and its text is
    /// sent again from the start, the claim kept and no try used.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resend: bool,
    /// Its hand-offs to another family of its pool, oldest first: the last one's
    /// family runs it (a fresh conversation, its text after the inbox's note).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hand_offs: Vec<HandOff>,
}

/// A task handed from one family's agent, stopped at a usage limit with no usable
/// account of its family left, to another family's, as a fresh task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandOff {
    /// The family that started it.
    pub from: crate::agents::AgentKind,
    /// The account its turn met the limit under.
    pub account: String,
    /// The family it goes on in.
    pub to: crate::agents::AgentKind,
    /// When it was decided.
    pub at: jiff::Timestamp,
}

impl TaskFacts {
    /// Its hand-offs in words, oldest first, as its record keeps them.
    pub fn hand_offs_told(&self) -> Vec<String> {
        self.hand_offs.iter().map(HandOff::told).collect()
    }
}

impl HandOff {
    /// The hand-off in words, as the task's record keeps it.
    pub fn told(&self) -> String {
        format!(
            "handed off at {}: {} stopped at the usage limit of account {} (no {} account \
             usable); {} carried it on as a fresh task",
            self.at, self.from, self.account, self.from, self.to
        )
    }
}

impl TaskFacts {
    /// Its agent starts afresh: its text goes out again from the start, in a new
    /// conversation. A turn that ended stays ended (the task completes, never runs
    /// again).
    pub fn start_over(&mut self, now: jiff::Timestamp) {
        self.stage = Stage::Starting;
        self.since = now;
        self.idle_since = None;
        self.prompt_id = None;
        self.at_limit = false;
        self.seen_busy = false;
        self.conversation = None;
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How a task's turn ended, with the proof's source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Ended {
    /// A complete reply.
    Reply {
        /// The agent's last message.
        reply: String,
        /// Where the end was read: `Stop report`, `transcript`.
        how: String,
        /// When the turn ended.
        at: jiff::Timestamp,
    },
    /// An API error other than the usage limit.
    Failed {
        /// Claude Code's error kind.
        error: String,
        /// The message it showed.
        message: String,
    },
}

/// How far a task's sending got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// The agent is being started in the task's folder.
    #[default]
    Starting,
    /// The text is in the input box; Enter follows after `submitDelay`.
    Pasted,
    /// Enter was sent this many times; waiting to see it taken.
    Submitted(u8),
    /// The agent took it: its report named the prompt, the busy marker showed, or the
    /// transcript holds it.
    Running,
    /// The agent was moved to another account and resumed its conversation; a short
    /// prompt carries the task on once it is idle.
    Resuming,
}

/// One account swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Swap {
    /// When.
    pub at: jiff::Timestamp,
    /// From which account.
    pub from: String,
    /// To which account.
    pub to: String,
    /// Why, in a few words.
    pub reason: String,
}

/// The state folder could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("state file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds something else than what it should.
    #[error("state file {}: not valid: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A damaged file could not be moved aside (a read-only folder): it stays, and is
    /// not replaced.
    #[error("state file {}: damaged, and cannot be kept aside: {source}", path.display())]
    KeepAside {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// What was to be written cannot be written as JSON (a path that is not UTF-8).
    #[error("state file {}: cannot be written as JSON: {source}", path.display())]
    Unencodable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
}

impl Facts {
    /// Family `kind`'s ledger.
    pub fn family(&self, kind: crate::agents::AgentKind) -> &families::Ledger {
        self.families.get(kind)
    }

    /// Family `kind`'s ledger, to change.
    pub fn family_mut(&mut self, kind: crate::agents::AgentKind) -> &mut families::Ledger {
        self.families.get_mut(kind)
    }

    /// Reads the facts in `dir`; a folder or file that does not exist yet holds none.
    pub fn load(dir: &Path) -> Result<Self, Error> {
        Ok(read_json(&dir.join(FACTS_FILE))?.unwrap_or_default())
    }

    /// Reads the facts in `dir` as [`load`](Self::load) does, except that a file that
    /// cannot be read, or is not the facts (truncated, garbage, another shape), is kept
    /// aside (see [`damage`]) and the facts start empty, to be rebuilt from what is
    /// observed, as at a first start. Fails only when a damaged file cannot be moved
    /// aside: it is never replaced.
    pub fn load_or_keep_aside(
        dir: &Path,
        now: jiff::Timestamp,
    ) -> Result<(Self, Option<damage::Damage>), Error> {
        let path = dir.join(FACTS_FILE);
        let problem = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(facts) => return Ok((facts, None)),
                Err(e) => damage::problem_of(&e),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Self::default(), None));
            }
            Err(e) => format!("unreadable: {e}"),
        };
        let kept = damage::keep_aside(&path, now)?;
        let done = "facts rebuilt from tmux's sessions and the inboxes' folders".to_owned();
        Ok((
            Self::default(),
            Some(damage::Damage {
                file: path,
                problem,
                kept,
                done,
            }),
        ))
    }

    /// Writes the facts to `dir` atomically, creating the folder (mode 0700) if needed.
    pub fn save(&self, dir: &Path) -> Result<(), Error> {
        write_json(&dir.join(FACTS_FILE), self)
    }
}

/// Reads the JSON file at `path`; `None` when it does not exist.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| Error::Corrupt {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes `value` as pretty JSON to `path`, atomically, mode 0600.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Corrupt {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` so that readers see the old or the new content, never a
/// part: a private temp file beside it, fsync, rename, fsync of the folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// What a probe of the state folder writes: room for a save of the facts and a round's
/// journal lines. An empty file would pass on a full disk (it takes an inode, no
/// block), and a few freed bytes would end an outage that goes on.
const PROBE_BYTES: usize = 64 * 1024;

/// Whether the state folder `dir` takes a write now: a private file of
/// [`PROBE_BYTES`] made there and removed (a folder that does not exist yet is made
/// when first written, and passes).
pub(crate) fn probe_writable(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut probe = tempfile::Builder::new()
        .prefix(".probe-")
        .tempfile_in(dir)
        .map_err(io)?;
    probe.write_all(&[0u8; PROBE_BYTES]).map_err(io)
}

/// Whether the state folder `dir` looks as if it would not take a write, by two cheap
/// questions that write nothing: may this process write in it (`access`: a read-only
/// mount, an immutable flag, its mode), and has its disk [`PROBE_BYTES`] free for this
/// process. Asked every round, when nothing else would write there: a yes is confirmed
/// by [`probe_writable`] (a disk's reserve may still take root's writes).
pub(crate) fn seems_unwritable(dir: &Path) -> bool {
    if !dir.exists() {
        return false;
    }
    let denied = rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_err();
    let full = rustix::fs::statvfs(dir)
        .is_ok_and(|s| s.f_bavail.saturating_mul(s.f_frsize) < PROBE_BYTES as u64);
    denied || full
}

/// Creates `dir` and its parents, the last one with mode 0700.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_redraw_should_keep_the_three_fields_the_facts_file_always_had() {
        let on = SessionFacts {
            redraw: Redraw::On {
                mark: Some("m".into()),
                submitted: true,
            },
            ..SessionFacts::default()
        };
        let json = serde_json::to_value(&on).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"redraw": true, "redrawMark": "m", "redrawSubmitted": true})
        );
        assert_eq!(serde_json::from_value::<SessionFacts>(json).unwrap(), on);
        let off = serde_json::to_value(SessionFacts::default()).unwrap();
        assert_eq!(off, serde_json::json!({}));
        let old: SessionFacts = serde_json::from_str(r#"{"redrawMark": "stale"}"#).unwrap();
        assert_eq!(old.redraw, Redraw::Off, "a mark without a redraw is none");
    }

    #[test]
    fn facts_should_round_trip_through_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(Facts::load(&state).unwrap(), Facts::default());
        let mut facts = Facts::default();
        facts
            .family_mut(crate::agents::AgentKind::ClaudeCode)
            .active_account = Some("main".into());
        facts
            .exhausted_until
            .insert("alt".into(), "2026-11-21T07:00:00Z".parse().unwrap());
        facts.save(&state).unwrap();
        assert_eq!(Facts::load(&state).unwrap(), facts);
        let mode = std::fs::metadata(state.join(FACTS_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers = std::fs::read_dir(&state).unwrap().count();
        assert_eq!(leftovers, 1, "no temp file may stay behind");
    }

    fn kept_aside_and_rebuilt(content: &[u8]) -> (tempfile::TempDir, damage::Damage) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FACTS_FILE), content).unwrap();
        let now = "2026-12-06T03:15:00Z".parse().unwrap();
        let (facts, damage) = Facts::load_or_keep_aside(dir.path(), now).unwrap();
        assert_eq!(
            facts,
            Facts::default(),
            "the facts start empty, to be rebuilt"
        );
        let damage = damage.expect("the damage is said");
        assert_eq!(
            damage.kept,
            dir.path().join("facts.json.damaged-20261206T031500Z")
        );
        assert_eq!(
            std::fs::read(&damage.kept).unwrap(),
            content,
            "never deleted"
        );
        assert!(!dir.path().join(FACTS_FILE).exists());
        let said = damage.to_string();
        assert!(said.contains("facts.json: "), "{said}");
        assert!(said.contains("kept aside as "), "{said}");
        (dir, damage)
    }

    #[test]
    fn facts_should_be_kept_aside_and_rebuilt_when_truncated() {
        let mut facts = Facts::default();
        facts
            .exhausted_until
            .insert("alt".into(), "2026-11-21T07:00:00Z".parse().unwrap());
        let whole = serde_json::to_vec_pretty(&facts).unwrap();
        let (_dir, damage) = kept_aside_and_rebuilt(&whole[..whole.len() / 2]);
        assert!(
            damage.problem.starts_with("cut short"),
            "{}",
            damage.problem
        );
        let (_dir, damage) = kept_aside_and_rebuilt(b"");
        assert!(
            damage.problem.starts_with("cut short"),
            "{}",
            damage.problem
        );
    }

    #[test]
    fn facts_should_be_kept_aside_and_rebuilt_when_garbage() {
        let (_dir, damage) = kept_aside_and_rebuilt(b"\x00\xff garbage \x01");
        assert!(damage.problem.starts_with("not JSON"), "{}", damage.problem);
        let (_dir, damage) = kept_aside_and_rebuilt(b"[1, 2, 3]");
        assert!(damage.problem.starts_with("not what failover writes"));
    }

    #[test]
    fn facts_should_be_kept_aside_and_rebuilt_when_unreadable() {
        // A folder where the file should be: unreadable as a file, as root too.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(FACTS_FILE)).unwrap();
        let now = "2026-12-06T03:15:00Z".parse().unwrap();
        let (facts, damage) = Facts::load_or_keep_aside(dir.path(), now).unwrap();
        assert_eq!(facts, Facts::default());
        let damage = damage.unwrap();
        assert!(
            damage.problem.starts_with("unreadable"),
            "{}",
            damage.problem
        );
        assert!(damage.kept.is_dir());
    }

    #[test]
    fn facts_that_read_should_not_be_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let now = jiff::Timestamp::now();
        assert_eq!(
            Facts::load_or_keep_aside(dir.path(), now).unwrap(),
            (Facts::default(), None)
        );
        let mut facts = Facts::default();
        facts.turn.insert("p".into(), 1);
        facts.save(dir.path()).unwrap();
        assert_eq!(
            Facts::load_or_keep_aside(dir.path(), now).unwrap(),
            (facts, None)
        );
        assert!(damage::kept_aside(dir.path()).is_empty());
    }

    #[test]
    fn a_state_folder_should_be_found_writable_or_not_by_a_probe() {
        let dir = tempfile::tempdir().unwrap();
        probe_writable(dir.path()).unwrap();
        probe_writable(&dir.path().join("not-yet")).unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let err = probe_writable(&file).unwrap_err();
        assert!(err.to_string().contains("a-file"), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no probe left"
        );
        assert!(!seems_unwritable(dir.path()), "a folder of ours with room");
        assert!(
            !seems_unwritable(&dir.path().join("not-yet")),
            "made when written"
        );
        assert!(
            seems_unwritable(Path::new("/proc/self")),
            "no write there, even as root"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing written"
        );
    }

    #[test]
    fn facts_should_report_a_corrupt_file_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FACTS_FILE), "{not json").unwrap();
        let err = Facts::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(FACTS_FILE), "{err}");
    }
}
