//! Facts rebuilt from observation, after the facts file was found damaged and kept
//! aside. Most of what the facts hold comes back by itself, as at a first start: each
//! claimed task from its file in `active/` (named for its session and try) and the
//! evidence that its text reached the agent, the agents from their reports, the screens
//! from the next look. What would not is the account each family's sessions run under:
//! with no active account the first by priority would be chosen, and every session
//! moved back to it (perhaps exhausted, its reset forgotten). So each family's active
//! account is taken from the account marks of our live sessions. Nor would what each
//! pool agent ran: an agent idle at its prompt after a task (a kill between the task's
//! move to `done/` and its exit command) would look fresh and take the next task into
//! the last one's conversation. So every live pool agent counts as used, and is started
//! afresh before it takes a task.

use std::collections::BTreeMap;

use crate::api::Manifests;
use crate::observe::Session;
use crate::state::Facts;

/// Sets each family's active account, where the facts name none, to the account most
/// of our live sessions of that family are marked with (ties: the first by priority).
pub(super) fn active_accounts<'s>(
    m: &Manifests,
    sessions: impl IntoIterator<Item = &'s Session>,
    owner: &str,
    facts: &mut Facts,
) {
    let mut marks: BTreeMap<&str, usize> = BTreeMap::new();
    for s in sessions.into_iter().filter(|s| s.is_live_ours(owner)) {
        if let Some(account) = s.account.as_deref() {
            *marks.entry(account).or_default() += 1;
        }
    }
    for kind in m.families() {
        if facts.family(kind).active_account.is_some() {
            continue;
        }
        let ranked = m.family_by_priority(kind);
        let most = ranked
            .iter()
            .filter_map(|a| Some((marks.get(a.name.as_str()).copied()?, &a.name)))
            .fold(None::<(usize, &String)>, |best, (n, name)| match best {
                Some((b, _)) if b >= n => best,
                _ => Some((n, name)),
            });
        if let Some((_, name)) = most {
            facts.family_mut(kind).active_account = Some(name.clone());
        }
    }
}

/// Marks the agent of every live pool session of ours as one that already ran a task
/// (its history is not known): it is started afresh before it takes one. A task it
/// holds, its claim found again with proof, runs on.
pub(super) fn used_agents<'s>(
    m: &Manifests,
    sessions: impl IntoIterator<Item = &'s Session>,
    owner: &str,
    facts: &mut Facts,
) {
    let pooled: std::collections::BTreeSet<String> = m
        .pools
        .iter()
        .flat_map(|p| p.spec.session_names())
        .collect();
    for s in sessions
        .into_iter()
        .filter(|s| s.is_live_ours(owner) && pooled.contains(&s.name))
    {
        facts.sessions.entry(s.name.clone()).or_default().used_pid = Some(s.pane.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{CLAUDE, POOL_AND_DEDICATED, manifests, session};

    #[test]
    fn rebuilt_facts_should_take_the_account_most_of_our_sessions_run_under() {
        let m = manifests(POOL_AND_DEDICATED);
        let sessions = [
            session("ccl-auto-11", "failover", "alt", 11),
            session("ccl-auto-12", "failover", "alt", 12),
            session("ccl-1-x", "failover", "main", 13),
            // A person's sessions count for nothing.
            session("mine", "", "main", 14),
            session("theirs", "someone", "main", 15),
        ];
        let mut facts = Facts::default();
        active_accounts(&m, &sessions, "failover", &mut facts);
        assert_eq!(facts.family(CLAUDE).active_account.as_deref(), Some("alt"));
    }

    #[test]
    fn rebuilt_facts_should_count_every_live_pool_agent_of_ours_as_used_and_no_other() {
        let m = manifests(POOL_AND_DEDICATED);
        let sessions = [
            session("ccl-auto-11", "failover", "main", 11),
            session("ccl-1-x", "failover", "main", 13),
            session("ccl-auto-12", "someone", "main", 14),
        ];
        let mut facts = Facts::default();
        used_agents(&m, &sessions, "failover", &mut facts);
        let used: Vec<(&str, Option<u32>)> = facts
            .sessions
            .iter()
            .map(|(n, f)| (n.as_str(), f.used_pid))
            .collect();
        assert_eq!(
            used,
            [("ccl-auto-11", Some(11))],
            "the pool's own, by its pane"
        );
    }

    #[test]
    fn rebuilt_facts_should_keep_an_active_account_already_known_or_none_without_sessions() {
        let m = manifests(POOL_AND_DEDICATED);
        let mut facts = Facts::default();
        active_accounts(&m, &[], "failover", &mut facts);
        assert_eq!(facts.family(CLAUDE).active_account, None);
        facts.family_mut(CLAUDE).active_account = Some("main".into());
        let alt = [session("ccl-auto-11", "failover", "alt", 11)];
        active_accounts(&m, &alt, "failover", &mut facts);
        assert_eq!(facts.family(CLAUDE).active_account.as_deref(), Some("main"));
    }
}
