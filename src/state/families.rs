//! The ledger kept per family of accounts (the accounts of one agent kind): the active
//! account, the last swap and the wait for a reset. The facts file keeps the default
//! family's (Claude Code's) where it always had them, at the top (`activeAccount`,
//! `lastSwap`, `waitingSince`), so that a single-family setup writes what it always
//! wrote and an older failover reads it; the other families go under `families`, by kind.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Swap;
use crate::agents::AgentKind;

/// One family's ledger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    /// The account the family's sessions run under, once one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_account: Option<String>,
    /// The family's last account swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_swap: Option<Swap>,
    /// Since when every account of the family has been exhausted: its work waits for
    /// the first reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<jiff::Timestamp>,
}

/// A family's ledger before anything was decided.
const EMPTY: Ledger = Ledger {
    active_account: None,
    last_swap: None,
    waiting_since: None,
};

impl Ledger {
    /// Whether nothing was decided yet.
    fn is_empty(&self) -> bool {
        *self == EMPTY
    }
}

/// Every family's ledger, by kind. Families with nothing decided are not kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Fields", into = "Fields")]
pub struct Families(BTreeMap<AgentKind, Ledger>);

impl Families {
    /// Family `kind`'s ledger (empty when nothing was decided).
    pub fn get(&self, kind: AgentKind) -> &Ledger {
        self.0.get(&kind).unwrap_or(&EMPTY)
    }

    /// Family `kind`'s ledger, to change.
    pub fn get_mut(&mut self, kind: AgentKind) -> &mut Ledger {
        self.0.entry(kind).or_default()
    }

    /// Every family's ledger, to change.
    pub fn ledgers_mut(&mut self) -> impl Iterator<Item = &mut Ledger> {
        self.0.values_mut()
    }

    /// The families with something decided, by kind.
    pub fn iter(&self) -> impl Iterator<Item = (AgentKind, &Ledger)> {
        self.0
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(k, l)| (*k, l))
    }
}

impl PartialEq for Families {
    /// Equal when every family's decisions are: an empty ledger is none.
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

/// [`Families`] as the facts file keeps them: the default family's fields at the top,
/// as before there were families; the others under `families`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields {
    #[serde(flatten)]
    first: Ledger,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    families: BTreeMap<AgentKind, Ledger>,
}

impl From<Fields> for Families {
    fn from(f: Fields) -> Self {
        let mut all = f.families;
        // The top-level fields are the default family's, as they always were.
        all.insert(AgentKind::default(), f.first);
        all.retain(|_, l| !l.is_empty());
        Families(all)
    }
}

impl From<Families> for Fields {
    fn from(mut f: Families) -> Self {
        let first = f.0.remove(&AgentKind::default()).unwrap_or_default();
        f.0.retain(|_, l| !l.is_empty());
        Fields {
            first,
            families: f.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Facts;

    /// What a controller before families wrote: the active account, the last swap and
    /// the wait at the top of the facts.
    const BEFORE_FAMILIES: &str = r#"{
  "activeAccount": "b",
  "exhaustedUntil": {
    "a": "2026-12-05T21:00:00Z"
  },
  "lastSwap": {
    "at": "2026-12-05T16:15:46.760621898Z",
    "from": "a",
    "to": "b",
    "reason": "quota exhausted"
  },
  "waitingSince": "2026-12-05T16:20:00Z",
  "tries": {
    "work/t1.md": 1
  }
}"#;

    #[test]
    fn facts_written_before_families_should_read_as_claude_codes_ledger() {
        let facts: Facts = serde_json::from_str(BEFORE_FAMILIES).unwrap();
        let ledger = facts.family(AgentKind::ClaudeCode);
        assert_eq!(ledger.active_account.as_deref(), Some("b"));
        let swap = ledger.last_swap.as_ref().expect("the last swap");
        assert_eq!((swap.from.as_str(), swap.to.as_str()), ("a", "b"));
        assert_eq!(
            ledger.waiting_since,
            Some("2026-12-05T16:20:00Z".parse().unwrap())
        );
        assert_eq!(facts.tries["work/t1.md"], 1);
    }

    #[test]
    fn a_single_family_should_write_the_same_fields_as_before_families() {
        let facts: Facts = serde_json::from_str(BEFORE_FAMILIES).unwrap();
        let written = serde_json::to_value(&facts).unwrap();
        let before: serde_json::Value = serde_json::from_str(BEFORE_FAMILIES).unwrap();
        assert_eq!(written, before, "same keys, same values");
        assert!(!serde_json::to_string(&facts).unwrap().contains("families"));
    }

    #[test]
    fn an_untouched_family_should_not_be_written_nor_make_facts_differ() {
        let mut touched = Facts::default();
        let _ = touched.family_mut(AgentKind::ClaudeCode);
        assert_eq!(touched, Facts::default());
        assert_eq!(
            serde_json::to_value(&touched).unwrap(),
            serde_json::json!({})
        );
    }
}
