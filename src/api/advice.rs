//! Advice on valid manifests: what works but costs the operator something they may not
//! expect. Today one thing: sessions that move between accounts whose homes do not
//! share the agent's conversation folder (`projects`) cannot resume their conversation
//! there, and start afresh. Each piece of advice is a [`Problem`] at the object it is
//! about; `validate` prints them as warnings and still exits 0.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Manifests, Problem};

use crate::conversation::PROJECTS as CONVERSATIONS;

/// Advice on `m`, by file and position.
pub fn advise(m: &Manifests) -> Vec<Problem> {
    let moves = !m.pools.is_empty() || m.dedicated.iter().any(|d| d.spec.resume);
    if m.accounts.len() < 2 || !moves {
        return Vec::new();
    }
    // Where each account's conversations live: its SharedState's folder, else the
    // folder its own `projects` resolves to on this machine, else its own.
    let folder = |name: &str, home: &std::path::Path| -> PathBuf {
        let shared = m.shared_states.iter().find(|s| {
            s.spec.links.iter().any(|l| l == CONVERSATIONS)
                && s.spec
                    .accounts
                    .as_ref()
                    .is_none_or(|names| names.iter().any(|n| n == name))
        });
        let folder = match shared {
            Some(s) => s.spec.target.join(CONVERSATIONS),
            None => home.join(CONVERSATIONS),
        };
        std::fs::canonicalize(&folder).unwrap_or(folder)
    };
    let folders: BTreeMap<&str, PathBuf> = m
        .accounts
        .iter()
        .map(|a| (a.name.as_str(), folder(&a.name, &a.spec.home)))
        .collect();
    let mut advice = Vec::new();
    for a in &m.accounts {
        let mine = &folders[a.name.as_str()];
        let apart: Vec<&str> = m
            .accounts
            .iter()
            .filter(|b| folders[b.name.as_str()] != *mine)
            .map(|b| b.name.as_str())
            .collect();
        if apart.is_empty() {
            continue;
        }
        advice.push(Problem {
            file: a.source.file.to_string(),
            pos: Some(a.source.positions.value("/metadata/name")),
            field: "metadata.name".to_owned(),
            message: format!(
                "account {} shares no conversation folder ({CONVERSATIONS}) with {} {}: \
                 a session that moves between them cannot resume its conversation and starts \
                 afresh (a task it held is sent again). A SharedState whose links include \
                 {CONVERSATIONS} lets conversations follow the move",
                a.name,
                if apart.len() == 1 {
                    "account"
                } else {
                    "accounts"
                },
                apart.join(", ")
            ),
        });
    }
    advice
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: a}
spec: {home: /nonexistent/a}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: b}
spec: {home: /nonexistent/b, priority: 1}
---
apiVersion: failover/v1alpha1
kind: Pool
metadata: {name: auto}
spec: {prefix: w-, min: 1, max: 1, workdir: /w}
";

    #[test]
    fn advise_should_name_each_account_whose_conversations_stay_behind() {
        let m = crate::api::load_str("pool.yaml", TWO).expect("valid");
        let advice = advise(&m);
        assert_eq!(advice.len(), 2, "{advice:?}");
        assert_eq!(
            advice[0].to_string().split(": account").next(),
            Some("pool.yaml:4:18: metadata.name")
        );
        assert!(advice[0].message.contains("with account b"), "{advice:?}");
        assert!(
            advice[1].message.contains("account b shares no"),
            "{advice:?}"
        );
    }

    #[test]
    fn advise_should_say_nothing_when_a_shared_state_links_the_conversations() {
        let shared = format!(
            "{TWO}---\napiVersion: failover/v1alpha1\nkind: SharedState\nmetadata: {{name: s}}\nspec: {{target: /s}}\n"
        );
        let m = crate::api::load_str("pool.yaml", &shared).expect("valid");
        assert!(advise(&m).is_empty());
        // A SharedState without projects among its links does not share them.
        let partial = shared.replace("{target: /s}", "{target: /s, links: [file-history]}");
        let m = crate::api::load_str("pool.yaml", &partial).expect("valid");
        assert_eq!(advise(&m).len(), 2);
    }

    #[test]
    fn advise_should_say_nothing_for_one_account() {
        let one = TWO.replace(
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {name: b}\nspec: {home: /nonexistent/b, priority: 1}\n---\n",
            "",
        );
        let m = crate::api::load_str("pool.yaml", &one).expect("valid");
        assert_eq!(m.accounts.len(), 1);
        assert!(advise(&m).is_empty());
    }
}
