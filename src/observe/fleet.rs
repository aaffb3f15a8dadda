//! What the fleet's ledger told a node between two of its rounds (a controller joined
//! in a fleet, `docs/fleet.md`): the exhaustion and use of accounts that other nodes
//! saw and this one did not. The controller gathers it as it comes; the planner takes it
//! into the facts as if this node's own agents had said it.

use std::collections::BTreeMap;

use crate::fleet::ledger::Local;

/// What the fleet's ledger told since the last round, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fleet {
    /// Each telling: the accounts whose exhaustion or use the ledger knew and this node
    /// did not, by account.
    pub told: Vec<BTreeMap<String, Local>>,
}

impl Fleet {
    /// Adds what the ledger tells now, after what it told before.
    pub fn tell(&mut self, accounts: BTreeMap<String, Local>) {
        if !accounts.is_empty() {
            self.told.push(accounts);
        }
    }

    /// Whether the ledger told nothing.
    pub fn is_empty(&self) -> bool {
        self.told.is_empty()
    }
}
