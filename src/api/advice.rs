//! Advice on valid manifests: what works but costs the operator something they may not
//! expect. Today one thing: sessions that move between accounts of one family whose
//! homes do not share that agent's conversation folder (Claude Code's `projects`,
//! Codex's `sessions`) cannot resume their conversation there, and start afresh. Each piece of advice is a [`Problem`] at the object it is
//! about; `validate` prints them as warnings and still exits 0.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Manifests, Problem};

/// Advice on `m`, by file and position.
pub fn advise(m: &Manifests) -> Vec<Problem> {
    let moves = !m.pools.is_empty() || m.dedicated.iter().any(|d| d.spec.resume);
    if m.accounts.len() < 2 || !moves {
        return Vec::new();
    }
    // Where each account's conversations live: its SharedState's folder, else the
    // folder its own (`projects`, `sessions`) resolves to on this machine, else its own.
    let folder = |conversations: &str, name: &str, home: &std::path::Path| -> PathBuf {
        let shared = m.shared_states.iter().find(|s| {
            s.spec.links.iter().any(|l| l == conversations)
                && s.spec
                    .accounts
                    .as_ref()
                    .is_none_or(|names| names.iter().any(|n| n == name))
        });
        let folder = match shared {
            Some(s) => s.spec.target.join(conversations),
            None => home.join(conversations),
        };
        std::fs::canonicalize(&folder).unwrap_or(folder)
    };
    let folders: BTreeMap<&str, PathBuf> = m
        .accounts
        .iter()
        .map(|a| {
            let conversations = a.spec.agent.conversations();
            (
                a.name.as_str(),
                folder(conversations, &a.name, &a.spec.home),
            )
        })
        .collect();
    let mut advice = Vec::new();
    for a in &m.accounts {
        let mine = &folders[a.name.as_str()];
        // A conversation never leaves its family: only its accounts count.
        let apart: Vec<&str> = m
            .accounts
            .iter()
            .filter(|b| b.spec.agent == a.spec.agent && folders[b.name.as_str()] != *mine)
            .map(|b| b.name.as_str())
            .collect();
        if apart.is_empty() {
            continue;
        }
        let conversations = a.spec.agent.conversations();
        advice.push(Problem {
            file: a.source.file.to_string(),
            pos: Some(a.source.positions.value("/metadata/name")),
            field: "metadata.name".to_owned(),
            message: format!(
                "account {} shares no conversation folder ({conversations}) with {} {}: \
                 a session that moves between them cannot resume its conversation and starts \
                 afresh (a task it held is sent again). A SharedState whose links include \
                 {conversations} lets conversations follow the move",
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
    fn advise_should_judge_each_family_by_its_own_conversation_folder() {
        let codex = "
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: x}
spec: {home: /nonexistent/x, agent: codex}
---
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: x2}
spec: {home: /nonexistent/x2, agent: codex, priority: 1}
---
apiVersion: failover/v1alpha1
kind: Pool
metadata: {name: auto}
spec: {prefix: w-, min: 1, max: 1, workdir: /w, agent: codex}
";
        let shared = format!(
            "{TWO}---\napiVersion: failover/v1alpha1\nkind: SharedState\nmetadata: {{name: s}}\n\
             spec: {{target: /nonexistent/s, accounts: [a, b]}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: SharedState\nmetadata: {{name: t}}\n\
             spec: {{target: /nonexistent/t, links: [sessions], accounts: [x, x2]}}\n---{}",
            codex
                .replace("metadata: {name: auto}", "metadata: {name: cx}")
                .replace("prefix: w-", "prefix: c-")
        );
        let m = crate::api::load_str("pool.yaml", &shared).expect("valid");
        assert_eq!(advise(&m), Vec::new(), "each family shares its own folder");
        let m = crate::api::load_str("pool.yaml", codex).expect("valid");
        let advice = advise(&m);
        assert_eq!(advice.len(), 2, "{advice:?}");
        assert!(
            advice[0]
                .message
                .contains("folder (sessions) with account x2"),
            "{advice:?}"
        );
    }

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
