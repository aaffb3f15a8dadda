//! Building the [`Observed`] snapshot one reconcile plans against: every tmux session
//! with its marks and pane, the filesystem entries the shared state is made of, the
//! inboxes' task files, and the persisted facts.
//!
//! tmux costs one round trip (`list-panes -a`) on the open connection, however many
//! sessions there are; no process is started.

mod fs;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::api::Manifests;
use crate::state::Facts;
use crate::tmux::{self, Cmd, Tmux};

pub use fs::{Entry, observe_entry};

/// The tmux user option that marks a session as the controller's.
pub const OWNER_OPTION: &str = "@failover-owner";
/// The tmux user option naming the account a session runs under.
pub const ACCOUNT_OPTION: &str = "@failover-account";

/// The world as one reconcile sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observed {
    /// Whether a tmux server runs at all.
    pub server_running: bool,
    /// Every session but the controller's control session, by name.
    pub sessions: BTreeMap<String, Session>,
    /// Filesystem entries the shared state involves (homes, links, targets), by path.
    pub entries: BTreeMap<PathBuf, Entry>,
    /// Task files waiting in each inbox, by inbox name, oldest first.
    pub inboxes: BTreeMap<String, Vec<String>>,
    /// Persisted facts.
    pub facts: Facts,
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
    /// Its first pane (ours have one).
    pub pane: Pane,
    /// How many panes it has in all.
    pub panes: usize,
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
    /// The foreground command.
    pub command: String,
    /// The foreground process's working folder.
    pub path: PathBuf,
}

/// Observation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tmux did not answer.
    #[error(transparent)]
    Tmux(#[from] tmux::Error),
}

const SEP: char = '\u{1f}';

/// The `list-panes -a` format: one line per pane, fields separated by U+001F.
fn pane_format() -> String {
    let fields = [
        "#{session_name}",
        "#{pane_id}",
        "#{pane_pid}",
        "#{pane_dead}",
        "#{pane_dead_status}",
        "#{pane_current_command}",
        "#{pane_current_path}",
        &format!("#{{{OWNER_OPTION}}}"),
        &format!("#{{{ACCOUNT_OPTION}}}"),
    ];
    fields.join(&SEP.to_string())
}

/// Takes one snapshot. `tmux` is `None` when no server runs.
pub async fn observe(
    tmux: Option<&Tmux>,
    manifests: &Manifests,
    facts: Facts,
) -> Result<Observed, Error> {
    let sessions = match tmux {
        Some(tmux) => {
            let lines = tmux
                .run(Cmd::new("list-panes").args(["-a", "-F", &pane_format()]))
                .await?;
            parse_panes(&lines, &tmux.control_session())
        }
        None => BTreeMap::new(),
    };
    Ok(Observed {
        server_running: tmux.is_some(),
        sessions,
        entries: fs::observe_entries(manifests),
        inboxes: fs::observe_inboxes(manifests),
        facts,
    })
}

/// Reads `list-panes -a` lines into sessions, skipping the control session.
pub fn parse_panes(lines: &[String], control: &str) -> BTreeMap<String, Session> {
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(SEP).collect();
        let [name, id, pid, dead, status, command, path, owner, account] = f[..] else {
            continue;
        };
        if name == control {
            continue;
        }
        if let Some(session) = sessions.get_mut(name) {
            session.panes += 1;
            continue;
        }
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        sessions.insert(
            name.to_owned(),
            Session {
                name: name.to_owned(),
                owner: some(owner),
                account: some(account),
                pane: Pane {
                    id: id.to_owned(),
                    pid: pid.parse().unwrap_or(0),
                    dead: dead == "1",
                    dead_status: status.parse().ok(),
                    command: command.to_owned(),
                    path: PathBuf::from(path),
                },
                panes: 1,
            },
        );
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(fields: &[&str]) -> String {
        fields.join("\u{1f}")
    }

    #[test]
    fn parse_panes_should_group_panes_by_session_and_skip_the_control_session() {
        let lines = vec![
            line(&[
                "_failover-control",
                "%0",
                "10",
                "0",
                "",
                "sleep",
                "/",
                "",
                "",
            ]),
            line(&[
                "ccl-auto-11",
                "%1",
                "11",
                "0",
                "",
                "claude",
                "/srv",
                "failover",
                "main",
            ]),
            line(&["mine", "%2", "12", "0", "", "bash", "/home", "", ""]),
            line(&["mine", "%3", "13", "1", "1", "vim", "/home", "", ""]),
            "garbage".to_owned(),
        ];
        let s = parse_panes(&lines, "_failover-control");
        assert_eq!(s.keys().collect::<Vec<_>>(), ["ccl-auto-11", "mine"]);
        let ours = &s["ccl-auto-11"];
        assert_eq!(ours.owner.as_deref(), Some("failover"));
        assert_eq!(ours.account.as_deref(), Some("main"));
        assert_eq!((ours.pane.pid, ours.pane.dead, ours.panes), (11, false, 1));
        assert_eq!(s["mine"].owner, None);
        assert_eq!(s["mine"].panes, 2);
        assert_eq!(s["mine"].pane.id, "%2");
    }
}
