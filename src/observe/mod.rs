//! Building the [`Observed`] snapshot one reconcile plans against: every tmux session
//! with its marks and pane, the filesystem entries the shared state is made of, the
//! inboxes' task files, the agents' own reports and the account homes' agent settings,
//! and the persisted facts; for a controller joined in a fleet, what the fleet's ledger
//! told since the last round (filled in by the controller, not read here).
//!
//! tmux costs two round trips on the open connection however many sessions there are
//! (`list-panes -a`, then one pipelined batch of `capture-pane` for the wanted agent
//! panes); no process is started.

mod fleet;
mod fs;
mod inbox;
mod threads;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::api::Manifests;
use crate::state::Facts;
use crate::tmux::{self, Tmux};

pub(crate) use fleet::Fleet;
pub(crate) use fs::{Entry, glob_match, observe_entry};
#[cfg(test)]
pub(crate) use inbox::Waiting;
pub(crate) use inbox::{ActiveTask, Evidence, InboxState, TaskTurn};
pub(crate) use threads::CodexThread;

pub(crate) use crate::tmux::{ACCOUNT_OPTION, OWNER_OPTION, PANE_OPTION};

/// The world as one reconcile sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    /// Whether a tmux server runs at all.
    pub server_running: bool,
    /// Every session but the controller's control session, by name.
    pub sessions: BTreeMap<String, Session>,
    /// Filesystem entries the shared state involves (homes, links, targets), by path.
    pub entries: BTreeMap<PathBuf, Entry>,
    /// Each inbox's waiting and claimed tasks, by inbox name.
    pub inboxes: BTreeMap<String, InboxState>,
    /// The visible screen of each live agent pane of a wanted session, by session.
    pub screens: BTreeMap<String, String>,
    /// The agents' own reports (hooks and status line) not yet folded into the facts,
    /// by session, oldest first.
    #[serde(skip)]
    pub reports: BTreeMap<String, Vec<crate::report::Report>>,
    /// Each account home's agent settings file, by home.
    #[serde(skip)]
    pub agent_settings: BTreeMap<PathBuf, crate::agent_settings::Observed>,
    /// Each Codex account home's `config.toml`, by home.
    #[serde(skip)]
    pub codex_configs: BTreeMap<PathBuf, crate::codex_config::Observed>,
    /// The app-server daemons failover's Codex agents left running from each Codex
    /// account home (pid, start ticks), by home: read from their pid files and
    /// `/proc`, no process started.
    #[serde(skip)]
    pub codex_daemons: BTreeMap<PathBuf, Vec<(u32, u64)>>,
    /// The failover binary the agents' hooks are to run.
    pub exe: Option<PathBuf>,
    /// For claimed tasks the facts do not account for (a crash between claim and
    /// record): the proof that the task's text reached its session's conversation, by
    /// file name in `active/`.
    pub evidence: BTreeMap<String, Evidence>,
    /// For tasks in flight in agents that do not report: their turn as the
    /// conversation's transcript shows it, by file name in `active/`.
    pub turns: BTreeMap<String, TaskTurn>,
    /// The threads the live dedicated Codex sessions hold, by session (Codex reports
    /// none when it starts): what their move resumes.
    pub codex_threads: BTreeMap<String, CodexThread>,
    /// The transcripts that exist of claimed tasks' conversations and of the agents
    /// that hold them: where a task whose agent died or moves can be resumed.
    pub transcripts: BTreeSet<PathBuf>,
    /// The operator's requests waiting in the state folder (`requests/`), oldest first:
    /// the controller's planner carries them out.
    #[serde(skip)]
    pub requests: Vec<crate::request::Found>,
    /// Persisted facts.
    pub facts: Facts,
    /// What the fleet's ledger told since the last round, for the planner to take into
    /// the facts: empty without a fleet, and for `apply` and `diff`.
    #[serde(skip)]
    pub fleet: Fleet,
}

/// One tmux session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// The session name.
    pub name: String,
    /// `@failover-owner`, when set.
    pub owner: Option<String>,
    /// `@failover-account`, when set.
    pub account: Option<String>,
    /// The agent's pane: the one `@failover-pane` names, else the first.
    pub pane: Pane,
    /// How many panes it has in all.
    pub panes: usize,
}

impl Session {
    /// Whether it carries `owner`'s mark: only such a session is ever respawned, moved
    /// or removed.
    pub fn is_ours(&self, owner: &str) -> bool {
        self.owner.as_deref() == Some(owner)
    }

    /// Whether it is ours and its agent is alive: a session whose screen is read and
    /// that may be given text.
    pub fn is_live_ours(&self, owner: &str) -> bool {
        self.is_ours(owner) && !self.pane.dead
    }

    /// Its state, for `owner`: not ours, or ours with its agent running or exited.
    pub fn state(&self, owner: &str) -> SessionState {
        match (self.is_ours(owner), self.pane.dead) {
            (false, _) => SessionState::NotOurs,
            (true, true) => SessionState::Exited,
            (true, false) => SessionState::Running,
        }
    }
}

/// A session's state, as `get`, `describe`, `diff` and the metrics say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// It does not carry our mark: failover never touches it.
    NotOurs,
    /// Ours, its agent exited.
    Exited,
    /// Ours, its agent running.
    Running,
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionState::NotOurs => "not ours",
            SessionState::Exited => "exited",
            SessionState::Running => "running",
        })
    }
}

/// A pane: the agent's terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pane {
    /// `%N`, usable as a target.
    pub id: String,
    /// The pid of the process tmux started in it.
    pub pid: u32,
    /// Its process has exited (the pane stays with remain-on-exit).
    pub dead: bool,
    /// The exit status, when tmux knows it.
    pub dead_status: Option<i32>,
    /// The folder its process was started in (`-c`), as tmux keeps it: where the
    /// agent's conversation lives. tmux reads it from memory, not from `/proc` as it
    /// does the foreground process's folder.
    pub path: PathBuf,
    /// The second of its window's last output (`#{window_activity}`): a screen is
    /// captured again only after it.
    #[serde(skip)]
    pub activity: u64,
}

/// Observation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tmux did not answer.
    #[error(transparent)]
    Tmux(#[from] tmux::Error),
}

/// Takes one snapshot. `tmux` is `None` when no server runs; `state_dir`, when given,
/// is where the agents' reports and the operator's requests are read from.
pub async fn observe(
    tmux: Option<&Tmux>,
    manifests: &Manifests,
    facts: Facts,
    state_dir: Option<&Path>,
) -> Result<Observed, Error> {
    let sessions = match tmux {
        Some(tmux) => group(tmux.panes().await?, &tmux.control_session()),
        None => BTreeMap::new(),
    };
    let screens = match tmux {
        Some(tmux) => capture(tmux, manifests, &sessions).await?,
        None => BTreeMap::new(),
    };
    let inboxes = inbox::observe_inboxes(manifests);
    let reports = state_dir
        .map(|d| crate::report::read_all(&d.join(crate::state::paths::REPORTS_DIR)))
        .unwrap_or_default();
    let evidence = inbox::evidence(manifests, &sessions, &inboxes, &facts, &reports);
    let turns = inbox::turns(manifests, &sessions, &inboxes, &facts);
    let codex_threads = threads::codex_threads(manifests, &sessions);
    let requests = state_dir.map(crate::request::read).unwrap_or_default();
    // A session the operator asks to restart resumes its agent's conversation when its
    // transcript is there.
    let restarting: BTreeSet<&str> = requests
        .iter()
        .filter_map(|f| match f.request.as_ref().ok()? {
            crate::request::Request {
                verb: crate::request::Verb::Restart,
                object: crate::object::ObjectRef::Session(name),
                ..
            } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let transcripts = transcripts(&facts, &restarting);
    let agent_settings = manifests
        .accounts
        .iter()
        .filter_map(|a| Some((a, a.spec.agent.settings_file()?)))
        .map(|(a, file)| {
            let path = a.spec.home.join(file);
            (
                a.spec.home.clone(),
                crate::agent_settings::Observed::read(&path),
            )
        })
        .collect();
    let codex_configs = manifests
        .accounts
        .iter()
        .filter_map(|a| Some((a, a.spec.agent.config_file()?)))
        .map(|(a, file)| {
            let path = a.spec.home.join(file);
            (
                a.spec.home.clone(),
                crate::codex_config::Observed::read(&path),
            )
        })
        .collect();
    let codex_daemons = manifests
        .accounts
        .iter()
        .filter(|a| a.spec.agent.config_file().is_some())
        .map(|a| {
            let home = a.spec.home.clone();
            let daemons = crate::codex_daemons::running(&home);
            (home, daemons)
        })
        .filter(|(_, d)| !d.is_empty())
        .collect();
    Ok(Observed {
        server_running: tmux.is_some(),
        sessions,
        entries: fs::observe_entries(manifests),
        inboxes,
        screens,
        reports,
        agent_settings,
        codex_configs,
        codex_daemons,
        exe: failover_exe(),
        evidence,
        turns,
        codex_threads,
        transcripts,
        requests,
        facts,
        fleet: Fleet::default(),
    })
}

/// The transcripts on disk of the conversations that sessions with a task, and the
/// sessions in `restarting`, hold (their task's and their agent's): where they can be
/// resumed.
pub(crate) fn transcripts(facts: &Facts, restarting: &BTreeSet<&str>) -> BTreeSet<PathBuf> {
    facts
        .sessions
        .iter()
        .filter(|(name, f)| f.task.is_some() || restarting.contains(name.as_str()))
        .flat_map(|(_, f)| {
            let task = f.task.as_ref().and_then(|t| t.conversation.as_ref());
            let agent = f.agent.as_ref().map(|a| &a.transcript);
            task.map(|(_, path)| path).into_iter().chain(agent)
        })
        .filter(|path| path.is_file())
        .cloned()
        .collect()
}

/// The failover binary the agents' hooks are to run: this process's executable. Once
/// an upgrade replaced the file, Linux names it `… (deleted)`: the new file at the same
/// path is the one to run.
fn failover_exe() -> Option<PathBuf> {
    upgraded(std::env::current_exe().ok()?)
}

/// `exe` without the ` (deleted)` Linux adds once the file was replaced, if a file is
/// there.
fn upgraded(exe: PathBuf) -> Option<PathBuf> {
    let text = exe.to_string_lossy();
    let exe = match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    };
    exe.is_file().then_some(exe)
}

/// The visible screen of every live agent pane of a wanted session (a pool's or a
/// dedicated one): those that changed since their last capture are captured, all in one
/// round trip; the others are as last captured.
async fn capture(
    tmux: &Tmux,
    m: &Manifests,
    sessions: &BTreeMap<String, Session>,
) -> Result<BTreeMap<String, String>, Error> {
    let wanted: Vec<&Session> = sessions
        .values()
        .filter(|s| !s.pane.dead && m.wants_session(&s.name))
        .collect();
    let panes: Vec<tmux::PaneRef> = wanted
        .iter()
        .map(|s| tmux::PaneRef {
            id: &s.pane.id,
            pid: s.pane.pid,
            activity: s.pane.activity,
        })
        .collect();
    let screens = tmux.screens(&panes).await?;
    Ok(wanted
        .into_iter()
        .zip(screens)
        .filter_map(|(s, text)| Some((s.name.clone(), text?)))
        .collect())
}

/// Groups listed panes into sessions, skipping the control session.
pub(crate) fn group(panes: Vec<tmux::Listed>, control: &str) -> BTreeMap<String, Session> {
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    for listed in panes {
        if listed.session == control {
            continue;
        }
        let agent = listed.agent_pane.as_deref() == Some(listed.id.as_str());
        let pane = Pane {
            id: listed.id,
            pid: listed.pid,
            dead: listed.dead,
            dead_status: listed.dead_status,
            path: listed.path,
            activity: listed.activity,
        };
        if let Some(session) = sessions.get_mut(&listed.session) {
            session.panes += 1;
            if agent {
                session.pane = pane;
            }
            continue;
        }
        sessions.insert(
            listed.session.clone(),
            Session {
                name: listed.session,
                owner: listed.owner,
                account: listed.account,
                pane,
                panes: 1,
            },
        );
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hooks_should_run_the_binary_at_its_path_after_an_upgrade_replaced_it() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("failover");
        std::fs::write(&exe, "").unwrap();
        let replaced = PathBuf::from(format!("{} (deleted)", exe.display()));
        assert_eq!(upgraded(replaced), Some(exe.clone()));
        assert_eq!(upgraded(exe.clone()), Some(exe));
        assert_eq!(upgraded(dir.path().join("gone (deleted)")), None);
    }

    /// A full listing line: `fields` with the panes of its window (1, as grouping does
    /// not read it) and the activity stamp put before the path.
    fn line(fields: &[&str]) -> String {
        let (path, rest) = fields.split_last().unwrap();
        [rest, &["1", "1796068204", path]].concat().join("\u{1f}")
    }

    #[test]
    fn panes_should_be_grouped_by_session_without_the_control_session() {
        let ctl = ["_failover-control", "%0", "10", "0", "", "", "", "", "/"];
        let ours = [
            "ccl-auto-11",
            "%1",
            "11",
            "0",
            "",
            "failover",
            "main",
            "%1",
            "/srv/a\u{1f}b",
        ];
        let mine1 = ["mine", "%2", "12", "0", "", "", "", "", "/home"];
        let mine2 = ["mine", "%3", "13", "1", "1", "", "", "", "/home"];
        let two1 = [
            "ours-2", "%4", "14", "0", "", "failover", "main", "%5", "/w",
        ];
        let two2 = [
            "ours-2", "%5", "15", "0", "", "failover", "main", "%5", "/w",
        ];
        let panes = [ctl, ours, mine1, mine2, two1, two2]
            .iter()
            .filter_map(|f| tmux::listing_line(&line(f)))
            .collect();
        let s = group(panes, "_failover-control");
        assert_eq!(
            s.keys().collect::<Vec<_>>(),
            ["ccl-auto-11", "mine", "ours-2"]
        );
        assert_eq!(s["ccl-auto-11"].pane.path, PathBuf::from("/srv/a\u{1f}b"));
        assert_eq!(s["ours-2"].pane.id, "%5", "the agent pane, not the first");
        assert_eq!(s["ours-2"].pane.activity, 1_796_068_204);
        let ours = &s["ccl-auto-11"];
        assert_eq!(ours.owner.as_deref(), Some("failover"));
        assert_eq!(ours.account.as_deref(), Some("main"));
        assert_eq!((ours.pane.pid, ours.pane.dead, ours.panes), (11, false, 1));
        assert_eq!(s["mine"].owner, None);
        assert_eq!(s["mine"].panes, 2);
        assert_eq!(s["mine"].pane.id, "%2");
    }
}
