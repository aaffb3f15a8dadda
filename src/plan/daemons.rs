//! Codex daemons rule: a Codex home's app-server daemons that failover's agents left
//! running (observed in `Observed::codex_daemons`, each checked) are ended once no
//! session of ours runs under that home's account and none is started or moved there
//! by this plan: never while another session of that home still uses them.

use super::{Action, FsAction, Plan, SessionAction};
use crate::api::Manifests;
use crate::observe::Observed;

/// Adds an `EndDaemons` for each Codex home whose daemons no session of ours needs.
pub(super) fn plan_daemons(m: &Manifests, o: &Observed, owner: &str, plan: &mut Plan) {
    for account in &m.accounts {
        let Some(daemons) = o.codex_daemons.get(&account.spec.home) else {
            continue;
        };
        if daemons.is_empty() {
            continue;
        }
        let name = account.name.as_str();
        let running = o
            .sessions
            .values()
            .any(|s| s.is_live_ours(owner) && s.account.as_deref() == Some(name));
        let starting = plan.actions.iter().any(|a| match a {
            Action::Session(
                SessionAction::CreateSession { session, .. }
                | SessionAction::RestartSession { session, .. }
                | SessionAction::MoveSession { session, .. }
                | SessionAction::RecycleSession { session, .. },
            ) => session.account == name,
            _ => false,
        });
        if !running && !starting {
            plan.act(FsAction::EndDaemons {
                account: name.to_owned(),
                home: account.spec.home.clone(),
                daemons: daemons.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    fn ended(p: &Plan) -> Vec<String> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::Fs(FsAction::EndDaemons { account, .. }) => Some(account.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn daemons_should_end_once_no_session_of_ours_runs_under_their_home() {
        let m = manifests(CODEX_POOL);
        let mut o = observed();
        home_dirs(&mut o, &m);
        o.codex_daemons.insert("/h/x".into(), vec![(4242, 99)]);
        o.codex_daemons.insert("/h/x2".into(), vec![(4343, 98)]);
        // cx-0 moved to x2 (its agent runs there now): x's daemons go, x2's stay.
        add(&mut o, session("cx-0", "failover", "x2", 100));
        o.facts
            .family_mut(crate::api::AgentKind::Codex)
            .active_account = Some("x2".into());
        let p = plan(&m, &o, "failover", now());
        assert_eq!(ended(&p), ["x"], "{:?}", p.actions);
        // While a session of ours runs under x, never.
        add(&mut o, session("cx-0", "failover", "x", 100));
        o.facts
            .family_mut(crate::api::AgentKind::Codex)
            .active_account = Some("x".into());
        let p = plan(&m, &o, "failover", now());
        assert_eq!(ended(&p), ["x2"], "{:?}", p.actions);
    }
}
