//! The checks of agent families: every pool and dedicated session has an account of
//! each of its profiles' kinds, and a pool names one profile per family.

use std::collections::BTreeSet;

use super::{Doc, Kind};
use crate::api::problem::Problem;
use crate::api::{AgentKind, BUILTIN_AGENT};

/// Every pool and dedicated session must have an account of its profile's kind: its
/// sessions run under those only. A profile or kind that does not exist is another
/// problem, told once by the checks above.
pub(super) fn check_families(docs: &[Doc], out: &mut Vec<Problem>) {
    let kind_at = |doc: &Doc, pointer: &str| match doc.value.pointer(pointer) {
        None => Some(AgentKind::default()),
        Some(v) => v.as_str().and_then(AgentKind::parse),
    };
    let families: BTreeSet<AgentKind> = docs
        .iter()
        .filter(|d| d.of(Kind::Account))
        .filter_map(|d| kind_at(d, "/spec/agent"))
        .collect();
    let profile_kind = |name: &str| {
        let declared = docs
            .iter()
            .find(|d| d.of(Kind::AgentProfile) && d.name.as_deref() == Some(name));
        match declared {
            Some(d) => kind_at(d, "/spec/kind"),
            None => crate::agents::BUILTIN
                .iter()
                .find(|b| b.name == name)
                .map(|b| b.kind),
        }
    };
    for doc in docs {
        let Some(kind @ (Kind::Pool | Kind::DedicatedSession)) = doc.kind else {
            continue;
        };
        let mut seen: Vec<(AgentKind, &str)> = Vec::new();
        for pointer in doc.profile_pointers() {
            let profile = doc.str(&pointer).unwrap_or(BUILTIN_AGENT);
            let Some(agent) = profile_kind(profile) else {
                continue;
            };
            if let Some((_, other)) = seen.iter().find(|(k, _)| *k == agent) {
                out.push(doc.problem(
                    &pointer,
                    format!(
                        "`agents` names two profiles of kind {agent} (`{other}`, `{profile}`): \
                         a pool runs one profile per family"
                    ),
                ));
            }
            seen.push((agent, profile));
            if !families.contains(&agent) {
                let known: Vec<&str> = families.iter().map(|k| k.as_str()).collect();
                let known = if known.is_empty() {
                    String::new()
                } else {
                    format!("; the accounts are for {}", known.join(", "))
                };
                out.push(doc.problem(
                    &pointer,
                    format!(
                        "{kind} `{}` runs AgentProfile `{profile}` of kind {agent}, but no Account \
                         is for {agent} (set an Account's spec.agent to {agent}{known})",
                        doc.name.as_deref().unwrap_or_default(),
                    ),
                ));
            }
        }
    }
}
