//! A node's status as the fleet shows it: written by the node under
//! `<prefix>nodes/<node>` (with its lease) and `<prefix>seen/<node>` (without), read by
//! `failover get nodes` and `get … --fleet` on any machine. One type each for the writer
//! and the reader, so the JSON in etcd is whatever these serialize to.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::{AgentKind, Manifests};
use crate::observe::Observed;
use crate::plan::Plan;
use crate::state::Swap;

/// A node's status (`<prefix>nodes/<node>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeStatus {
    /// What its last round saw: none before its first round (its keys are then absent).
    #[serde(flatten)]
    pub round: Option<RoundStatus>,
    /// The node's name.
    pub node: String,
    /// The failover version it runs.
    pub version: String,
    /// When it was written.
    pub updated: Timestamp,
}

/// What a node's last round saw: its sessions, its inboxes, the accounts in use and its
/// last swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RoundStatus {
    /// The controller's pid.
    pub pid: u32,
    /// The account its sessions run under now; none while it is exhausted. The default
    /// family's (Claude Code's) only: a node's status tells one family until `get`
    /// tells families (issue 25). The fleet's ledger itself is per account, so per
    /// family already.
    pub active_account: Option<String>,
    /// The accounts its sessions run under, sorted.
    pub accounts_in_use: Vec<String>,
    /// Its wanted sessions.
    pub sessions: Vec<NodeSession>,
    /// Its inboxes.
    pub inboxes: Vec<NodeInbox>,
    /// Its last swap of the active account (the default family's, as above).
    #[serde(default)]
    pub last_swap: Option<Swap>,
}

/// One of a node's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeSession {
    /// The session's name.
    pub name: String,
    /// The account it runs under, by its mark.
    pub account: Option<String>,
    /// Whether its agent runs.
    pub state: PaneState,
    /// Its pane's pid.
    pub pid: u32,
    /// The task it works on.
    pub task: Option<String>,
}

/// Whether a session's agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PaneState {
    /// Its process runs.
    Running,
    /// Its process exited (the pane stays).
    Exited,
}

/// One of a node's inboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeInbox {
    /// The inbox's name.
    pub name: String,
    /// How many tasks wait in it.
    pub waiting: usize,
    /// How many are claimed.
    pub active: usize,
}

/// When a node was last heard from (`<prefix>seen/<node>`): it outlives the node's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Seen {
    /// The node's name.
    pub node: String,
    /// When.
    pub at: Timestamp,
}

impl RoundStatus {
    /// What a round saw, as the fleet shows it: the sessions of `owner` that `m` wants
    /// (name, account, state, task), the inboxes' counts, the accounts `owner`'s
    /// sessions run under, the active account and the last swap.
    pub(crate) fn of(m: &Manifests, observed: &Observed, plan: &Plan, owner: &str) -> Self {
        let sessions = observed
            .sessions
            .values()
            .filter(|s| s.is_ours(owner) && m.wants_session(&s.name))
            .map(|s| NodeSession {
                name: s.name.clone(),
                account: s.account.clone(),
                state: if s.pane.dead {
                    PaneState::Exited
                } else {
                    PaneState::Running
                },
                pid: s.pane.pid,
                task: plan
                    .facts
                    .sessions
                    .get(&s.name)
                    .and_then(|f| f.task.as_ref())
                    .map(|t| t.task.clone()),
            })
            .collect();
        let inboxes = observed
            .inboxes
            .iter()
            .map(|(name, i)| NodeInbox {
                name: name.clone(),
                waiting: i.waiting.len(),
                active: i.active.len(),
            })
            .collect();
        let mut accounts_in_use: Vec<String> = observed
            .sessions
            .values()
            .filter(|s| s.is_ours(owner))
            .filter_map(|s| s.account.clone())
            .collect();
        accounts_in_use.sort_unstable();
        accounts_in_use.dedup();
        Self {
            pid: std::process::id(),
            active_account: plan.account(AgentKind::default()).map(str::to_owned),
            accounts_in_use,
            sessions,
            inboxes,
            last_swap: plan.facts.family(AgentKind::default()).last_swap.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's status as the code before `NodeStatus` wrote it (`json!` built, keys
    /// patched in), recorded from etcd.
    const RECORDED: &str = r#"{"pid":4242,"activeAccount":"b","accountsInUse":["a","b"],"sessions":[{"name":"w-1","account":"b","state":"running","pid":4300,"task":"t0.md"},{"name":"w-2","account":null,"state":"exited","pid":4301,"task":null}],"inboxes":[{"name":"work","waiting":2,"active":1}],"lastSwap":{"at":"2026-12-05T16:15:46.760621898Z","from":"a","to":"b","reason":"quota exhausted"},"node":"n2","version":"0.9.0","updated":"2026-12-05T16:15:47.1Z"}"#;

    /// The same, from a node that never swapped.
    const NEVER_SWAPPED: &str = r#"{"pid":7,"activeAccount":null,"accountsInUse":[],"sessions":[],"inboxes":[],"lastSwap":null,"node":"n1","version":"0.9.0","updated":"2026-12-05T16:15:47Z"}"#;

    /// Written as the node joins, before its first round.
    const JOINED: &str =
        r#"{"node":"n3","version":"0.9.0","updated":"2026-12-05T16:15:40.000000001Z"}"#;

    fn read(text: &str) -> NodeStatus {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    #[test]
    fn a_status_written_by_the_old_code_should_be_read() {
        let status = read(RECORDED);
        assert_eq!(status.node, "n2");
        assert_eq!(status.version, "0.9.0");
        assert_eq!(status.updated.to_string(), "2026-12-05T16:15:47.1Z");
        let round = status.round.expect("a round's status");
        assert_eq!(round.pid, 4242);
        assert_eq!(round.active_account.as_deref(), Some("b"));
        assert_eq!(round.accounts_in_use, ["a", "b"]);
        assert_eq!(
            round.sessions[0],
            NodeSession {
                name: "w-1".into(),
                account: Some("b".into()),
                state: PaneState::Running,
                pid: 4300,
                task: Some("t0.md".into()),
            }
        );
        assert_eq!(round.sessions[1].state, PaneState::Exited);
        assert_eq!(
            (
                round.sessions[1].account.as_ref(),
                round.sessions[1].task.as_ref()
            ),
            (None, None)
        );
        assert_eq!(
            round.inboxes,
            [NodeInbox {
                name: "work".into(),
                waiting: 2,
                active: 1
            }]
        );
        let swap = round.last_swap.expect("its last swap");
        assert_eq!((swap.from.as_str(), swap.to.as_str()), ("a", "b"));
        assert_eq!(swap.at.to_string(), "2026-12-05T16:15:46.760621898Z");
    }

    #[test]
    fn a_status_should_be_written_byte_for_byte_as_the_old_code_wrote_it() {
        for text in [RECORDED, NEVER_SWAPPED, JOINED] {
            assert_eq!(serde_json::to_string(&read(text)).unwrap(), text);
        }
    }

    #[test]
    fn a_node_that_has_not_run_a_round_yet_should_show_no_round() {
        let status = read(JOINED);
        assert_eq!(status.round, None);
        assert_eq!(status.node, "n3");
    }

    #[test]
    fn when_a_node_was_last_seen_should_read_and_write_as_before() {
        let text = r#"{"node":"n3","at":"2026-12-05T16:15:40.5Z"}"#;
        let seen: Seen = serde_json::from_str(text).unwrap();
        assert_eq!(seen.node, "n3");
        assert_eq!(serde_json::to_string(&seen).unwrap(), text);
    }
}
