//! The fleet's news taken into the facts (a controller joined in a fleet): an account's
//! exhaustion or use another node saw counts as if this node's agents had said it, so
//! the ledger's rules (an exhaustion moves sessions at once, the cooldown holds
//! fail-back and `moveAt`) decide on it as on anything else. Taken before anything else
//! of the round, as the controller took it between rounds before the planner did.

use jiff::Timestamp;
use serde::Serialize;

use crate::api::Manifests;
use crate::observe::Observed;
use crate::plan::Plan;

/// An account's exhaustion a plan took from the fleet's ledger: journaled as
/// `fleetLedger`, with these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FleetLedger {
    /// The account.
    pub account: String,
    /// Until when it is exhausted, as the ledger says.
    pub exhausted_until: Timestamp,
}

impl FleetLedger {
    /// Its fields, as journaled.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Takes what the fleet's ledger told since the last round into `plan.facts`, each
/// telling in turn: an account's exhaustion when it resets later than the facts say
/// (or they say none), noted in `plan.fleet_ledger`; its use when the reading is newer.
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
                plan.fleet_ledger.push(FleetLedger {
                    account: account.clone(),
                    exhausted_until: until,
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
