//! `failover get nodes` and `get … --fleet`: the whole fleet, read from etcd.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::table::{Row, Table, What, WindowCell};
use crate::api::FleetSpec;
use crate::fleet::etcd::Etcd;
use crate::fleet::{Keys, NodeStatus, Seen, ledger::Entry};

/// The keys under one prefix, by name, each with its value read as a `T` (`None` when
/// it is not one).
type Read<T> = Vec<(String, Option<T>)>;

/// The rows (and footer lines) of `what` across the fleet `spec` names.
pub(super) fn collect(spec: &FleetSpec, what: What) -> Result<(Table, Vec<String>), String> {
    if spec.endpoints.is_empty() {
        return Err(
            "no fleet: the ControllerConfig has no fleet section (fleet.endpoints)".to_owned(),
        );
    }
    let etcd = Etcd::for_fleet(spec).map_err(|e| e.to_string())?;
    let keys = Keys::new(&spec.prefix);
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let nodes: Read<NodeStatus> = read(&etcd, keys.nodes()).await?;
        let footer = vec![format!(
            "fleet: {} node(s) up, etcd at {}",
            nodes.len(),
            spec.endpoints.join(", ")
        )];
        let rows = match what {
            What::Nodes => Table::of(&node_rows(&nodes, &read(&etcd, keys.seen()).await?)),
            What::Sessions => Table::of(&per_node(&nodes, |r| &r.sessions)),
            What::Inboxes => Table::of(&per_node(&nodes, |r| &r.inboxes)),
            What::Accounts => {
                let accounts: Vec<AccountRow> = read::<Entry>(&etcd, keys.accounts())
                    .await?
                    .into_iter()
                    .map(|(name, entry)| AccountRow::of(name, entry.unwrap_or_default()))
                    .collect();
                Table::of(&accounts)
            }
            What::Events => {
                return Err("events are each node's own: run get events on the node".to_owned());
            }
        };
        Ok((rows, footer))
    })
}

/// Every key under `prefix`, by the name after it, its value read as a `T`.
async fn read<T: DeserializeOwned>(etcd: &Etcd, prefix: String) -> Result<Read<T>, String> {
    let (kvs, _) = etcd.range(&prefix).await.map_err(|e| e.to_string())?;
    Ok(kvs
        .into_iter()
        .map(|kv| {
            let name = kv.key.strip_prefix(&prefix).unwrap_or(&kv.key).to_owned();
            (name, serde_json::from_str(&kv.value).ok())
        })
        .collect())
}

/// A row of `get accounts --fleet`: what the fleet's ledger says of an account.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountRow {
    name: String,
    exhausted_until: Option<String>,
    seen_by: Option<String>,
    reading: Option<String>,
    five_hour: Option<WindowCell>,
    seven_day: Option<WindowCell>,
}

impl AccountRow {
    fn of(name: String, entry: Entry) -> Self {
        let exhausted = entry.exhausted.as_ref();
        let usage = entry.usage.as_ref().map(|u| u.usage);
        Self {
            name,
            exhausted_until: exhausted.map(|e| e.until.to_string()),
            seen_by: exhausted.map(|e| e.node.clone()),
            reading: exhausted.and_then(|e| e.reading.clone()),
            five_hour: usage.and_then(|u| u.five_hour).map(WindowCell::from),
            seven_day: usage.and_then(|u| u.seven_day).map(WindowCell::from),
        }
    }
}

impl Row for AccountRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "name",
            "exhaustedUntil",
            "seenBy",
            "reading",
            "fiveHour",
            "sevenDay",
        ]
    }
}

impl Row for crate::fleet::NodeSession {
    fn columns() -> Vec<&'static str> {
        vec!["name", "account", "state", "pid", "task"]
    }
}

impl Row for crate::fleet::NodeInbox {
    fn columns() -> Vec<&'static str> {
        vec!["name", "waiting", "active"]
    }
}

/// A row of `get nodes`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeRow {
    node: String,
    /// `up` while its lease holds, else `gone`.
    state: &'static str,
    sessions: Option<usize>,
    accounts: Option<Vec<String>>,
    version: Option<String>,
    /// Its last swap in words: `a -> b at TIME`.
    last_swap: Option<String>,
    last_seen: Option<jiff::Timestamp>,
}

impl Row for NodeRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "node", "state", "sessions", "accounts", "version", "lastSwap", "lastSeen",
        ]
    }
}

/// The rows of `get nodes`: each node up (with its status), then each node seen before
/// and gone since.
fn node_rows(nodes: &Read<NodeStatus>, seen: &Read<Seen>) -> Vec<NodeRow> {
    let up = nodes.iter().map(|(name, status)| {
        let round = status.as_ref().and_then(|s| s.round.as_ref());
        NodeRow {
            node: name.clone(),
            state: "up",
            sessions: Some(round.map_or(0, |r| r.sessions.len())),
            accounts: round.map(|r| r.accounts_in_use.clone()),
            version: status.as_ref().map(|s| s.version.clone()),
            last_swap: round
                .and_then(|r| r.last_swap.as_ref())
                .map(|s| format!("{} -> {} at {}", s.from, s.to, s.at)),
            last_seen: status.as_ref().map(|s| s.updated),
        }
    });
    let gone = seen
        .iter()
        .filter(|(name, _)| !nodes.iter().any(|(n, _)| n == name))
        .map(|(name, seen)| NodeRow {
            node: name.clone(),
            state: "gone",
            sessions: None,
            accounts: None,
            version: None,
            last_swap: None,
            last_seen: seen.as_ref().map(|s| s.at),
        });
    up.chain(gone).collect()
}

/// A row of one node's sessions or inboxes, its node first.
#[derive(Debug, Serialize)]
struct OnNode<'a, T> {
    node: &'a str,
    #[serde(flatten)]
    row: &'a T,
}

impl<T: Row> Row for OnNode<'_, T> {
    fn columns() -> Vec<&'static str> {
        std::iter::once("node").chain(T::columns()).collect()
    }
}

/// The rows `field` picks out of every node's status, each with its node first.
fn per_node<'a, T: Row>(
    nodes: &'a Read<NodeStatus>,
    field: impl Fn(&'a crate::fleet::RoundStatus) -> &'a [T],
) -> Vec<OnNode<'a, T>> {
    nodes
        .iter()
        .filter_map(|(node, status)| Some((node, status.as_ref()?.round.as_ref()?)))
        .flat_map(|(node, round)| field(round).iter().map(move |row| OnNode { node, row }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node statuses as the code before `NodeStatus` wrote them: n1 with a round and a
    /// swap, n2 joined and not through its first round yet, n3 not a status at all.
    const N1: &str = r#"{"pid":4242,"activeAccount":"b","accountsInUse":["a","b"],"sessions":[{"name":"w-1","account":"b","state":"running","pid":4300,"task":"t0.md"},{"name":"w-2","account":null,"state":"exited","pid":4301,"task":null}],"inboxes":[{"name":"work","waiting":2,"active":1}],"lastSwap":{"at":"2026-12-05T16:15:46.760621898Z","from":"a","to":"b","reason":"quota exhausted"},"node":"n1","version":"0.9.0","updated":"2026-12-05T16:15:47.1Z"}"#;
    const N2: &str = r#"{"node":"n2","version":"0.9.0","updated":"2026-12-05T16:15:40Z"}"#;

    fn nodes() -> Read<NodeStatus> {
        [("n1", N1), ("n2", N2), ("n3", "[]")]
            .into_iter()
            .map(|(n, text)| (n.to_owned(), serde_json::from_str(text).ok()))
            .collect()
    }

    #[test]
    fn get_nodes_should_show_the_rows_it_showed_before() {
        let seen = [
            ("n1", "2026-12-05T16:15:47.1Z"),
            ("n4", "2026-12-04T08:00:00Z"),
        ]
        .into_iter()
        .map(|(n, at)| {
            let text = format!(r#"{{"node":"{n}","at":"{at}"}}"#);
            (n.to_owned(), serde_json::from_str(&text).ok())
        })
        .collect();
        let rows = node_rows(&nodes(), &seen);
        super::super::table::assert_columns(&rows[0]);
        let text: Vec<String> = Table::of(&rows)
            .rows
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                r#"{"node":"n1","state":"up","sessions":2,"accounts":["a","b"],"version":"0.9.0","lastSwap":"a -> b at 2026-12-05T16:15:46.760621898Z","lastSeen":"2026-12-05T16:15:47.1Z"}"#,
                r#"{"node":"n2","state":"up","sessions":0,"accounts":null,"version":"0.9.0","lastSwap":null,"lastSeen":"2026-12-05T16:15:40Z"}"#,
                r#"{"node":"n3","state":"up","sessions":0,"accounts":null,"version":null,"lastSwap":null,"lastSeen":null}"#,
                r#"{"node":"n4","state":"gone","sessions":null,"accounts":null,"version":null,"lastSwap":null,"lastSeen":"2026-12-04T08:00:00Z"}"#,
            ]
        );
    }

    #[test]
    fn get_sessions_and_inboxes_across_the_fleet_should_show_each_row_with_its_node_first() {
        let nodes = nodes();
        let sessions = per_node(&nodes, |r| &r.sessions);
        super::super::table::assert_columns(&sessions[0]);
        let sessions: Vec<String> = Table::of(&sessions)
            .rows
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            sessions,
            [
                r#"{"node":"n1","name":"w-1","account":"b","state":"running","pid":4300,"task":"t0.md"}"#,
                r#"{"node":"n1","name":"w-2","account":null,"state":"exited","pid":4301,"task":null}"#,
            ]
        );
        let inboxes = per_node(&nodes, |r| &r.inboxes);
        super::super::table::assert_columns(&inboxes[0]);
        assert_eq!(
            Table::of(&inboxes).rows,
            [serde_json::json!({"node": "n1", "name": "work", "waiting": 2, "active": 1})]
        );
    }
}
