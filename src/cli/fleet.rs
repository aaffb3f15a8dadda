//! `failover get nodes` and `get … --fleet`: the whole fleet, read from etcd.

use serde_json::{Value, json};

use super::get::What;
use crate::api::FleetSpec;
use crate::fleet::etcd::Etcd;
use crate::fleet::{Keys, ledger::Entry};

/// The rows (and footer lines) of `what` across the fleet `spec` names.
pub fn collect(spec: &FleetSpec, what: What) -> Result<(Vec<Value>, Vec<String>), String> {
    if spec.endpoints.is_empty() {
        return Err(
            "no fleet: the ControllerConfig has no fleet section (fleet.endpoints)".to_owned(),
        );
    }
    let etcd = Etcd::for_fleet(spec).map_err(|e| e.to_string())?;
    let keys = Keys::new(&spec.prefix);
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let read = |prefix: String| {
            let etcd = &etcd;
            async move {
                let (kvs, _) = etcd.range(&prefix).await.map_err(|e| e.to_string())?;
                Ok::<Vec<(String, Value)>, String>(
                    kvs.into_iter()
                        .map(|kv| {
                            let name = kv.key.strip_prefix(&prefix).unwrap_or(&kv.key).to_owned();
                            (name, serde_json::from_str(&kv.value).unwrap_or(Value::Null))
                        })
                        .collect(),
                )
            }
        };
        let nodes = read(keys.nodes()).await?;
        let footer = vec![format!("fleet: {} node(s) up, etcd at {}", nodes.len(), spec.endpoints.join(", "))];
        let rows = match what {
            What::Nodes => {
                let seen = read(keys.seen()).await?;
                let mut rows: Vec<Value> = nodes
                    .iter()
                    .map(|(name, s)| {
                        json!({"node": name, "state": "up",
                               "sessions": s["sessions"].as_array().map_or(0, Vec::len),
                               "accounts": s["accountsInUse"], "version": s["version"],
                               "lastSwap": last_swap(&s["lastSwap"]),
                               "lastSeen": s["updated"]})
                    })
                    .collect();
                for (name, s) in &seen {
                    if !nodes.iter().any(|(n, _)| n == name) {
                        rows.push(json!({"node": name, "state": "gone", "sessions": null,
                                         "accounts": null, "version": null, "lastSwap": null,
                                         "lastSeen": s["at"]}));
                    }
                }
                rows
            }
            What::Sessions => per_node(&nodes, "sessions"),
            What::Inboxes => per_node(&nodes, "inboxes"),
            What::Accounts => read(keys.accounts())
                .await?
                .into_iter()
                .map(|(name, v)| {
                    let entry: Entry = serde_json::from_value(v).unwrap_or_default();
                    let exhausted = entry.exhausted.as_ref();
                    json!({"name": name,
                           "exhaustedUntil": exhausted.map(|e| e.until.to_string()),
                           "seenBy": exhausted.map(|e| e.node.clone()),
                           "reading": exhausted.and_then(|e| e.reading.clone()),
                           "fiveHour": entry.usage.as_ref().and_then(|u| u.usage.five_hour).map(|w| json!({"used": w.used, "resetsAt": w.resets_at})),
                           "sevenDay": entry.usage.as_ref().and_then(|u| u.usage.seven_day).map(|w| json!({"used": w.used, "resetsAt": w.resets_at}))})
                })
                .collect(),
            What::Events => return Err("events are each node's own: run get events on the node".to_owned()),
        };
        Ok((rows, footer))
    })
}

/// A node's last swap in words: `a -> b at TIME`.
fn last_swap(swap: &Value) -> Option<String> {
    Some(format!(
        "{} -> {} at {}",
        swap["from"].as_str()?,
        swap["to"].as_str()?,
        swap["at"].as_str()?
    ))
}

/// The `field` rows of every node's status, each with its node first.
fn per_node(nodes: &[(String, Value)], field: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    for (node, status) in nodes {
        for row in status[field].as_array().into_iter().flatten() {
            let mut with = serde_json::Map::new();
            with.insert("node".to_owned(), Value::String(node.clone()));
            if let Value::Object(fields) = row {
                with.extend(fields.clone());
            }
            rows.push(Value::Object(with));
        }
    }
    rows
}
