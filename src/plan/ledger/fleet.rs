//! The fleet's news taken into the facts (a controller joined in a fleet): an account's
//! exhaustion or use another node saw counts as if this node's agents had said it, so
//! the ledger's rules (an exhaustion moves sessions at once, the cooldown holds
//! fail-back and `moveAt`) decide on it as on anything else. Taken before anything else
//! of the round, as the controller took it between rounds before the planner did.

use crate::api::Manifests;
use crate::observe::Observed;
use crate::plan::{Event, Plan};

/// Takes what the fleet's ledger told since the last round into `plan.facts`, each
/// telling in turn: an account's exhaustion when it resets later than the facts say
/// (or they say none), told in a `fleetLedger` event; its use when the reading is newer.
/// Accounts `m` does not name are other nodes' business.
pub(in crate::plan) fn take(m: &Manifests, o: &Observed, plan: &mut Plan) {
    for told in &o.fleet.told {
        for (account, local) in told.iter().filter(|(a, _)| m.account(a).is_some()) {
            let facts = &mut plan.facts;
            if let Some(until) = local.exhausted_until
                && facts
                    .exhausted_until
                    .get(account)
                    .is_none_or(|t| *t < until)
            {
                facts.exhausted_until.insert(account.clone(), until);
                plan.events.push(Event::FleetLedger {
                    account: account.clone(),
                    exhausted_until: until,
                    node: None,
                });
            }
            if let Some(usage) = &local.usage
                && facts.usage.get(account).is_none_or(|u| u.at < usage.at)
            {
                facts.usage.insert(account.clone(), usage.clone());
            }
        }
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
