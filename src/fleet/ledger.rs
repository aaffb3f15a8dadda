//! The fleet's account ledger, one etcd key per account: until when it is exhausted
//! (and which node saw it), and its use as the agents' status lines last said. Merging
//! is pure: the later reset wins for exhaustion, the newer reading for use, so two
//! nodes writing at once, or a node back from a partition, converge on one entry.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::state::UsageReading;

/// An account's exhaustion, as the fleet knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Exhaustion {
    /// When its limit resets.
    pub until: Timestamp,
    /// The node that read this reset (the later reset wins with its node).
    pub node: String,
    /// What that node's agent said (`session: line`), when it was told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<String>,
}

/// One account's entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entry {
    /// Until when it is exhausted, if it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhausted: Option<Exhaustion>,
    /// Its use, as a status line last said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageReading>,
}

/// What one node knows of an account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Local {
    /// Until when it is exhausted, if it is.
    pub exhausted_until: Option<Timestamp>,
    /// Its use.
    pub usage: Option<UsageReading>,
    /// The reading behind its exhaustion (`session: line`), when known.
    pub reading: Option<String>,
}

/// The outcome of merging a node's knowledge with the ledger's.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Merged {
    /// The entry to write, when the node knows something the ledger does not.
    pub write: Option<Entry>,
    /// What the node is to take from the ledger.
    pub adopt: Local,
}

/// Merges `local` (known by `node`) with the ledger's `remote` entry at `now`: the
/// later reset wins, a reset already past counts for nothing, the newer use wins.
pub(crate) fn merge(remote: Option<&Entry>, local: &Local, node: &str, now: Timestamp) -> Merged {
    let remote = remote.cloned().unwrap_or_default();
    let theirs = remote.exhausted.as_ref().filter(|e| e.until > now);
    let ours = local.exhausted_until.filter(|u| *u > now);
    let mut entry = remote.clone();
    let mut adopt = Local::default();
    match (ours, theirs) {
        (Some(u), None) => {
            entry.exhausted = Some(Exhaustion {
                until: u,
                node: node.to_owned(),
                reading: local.reading.clone(),
            });
        }
        // The later reset wins with what set it: the node that read it and its line,
        // so that the reading shown explains the time shown.
        (Some(u), Some(t)) if u > t.until => {
            entry.exhausted = Some(Exhaustion {
                until: u,
                node: node.to_owned(),
                reading: local.reading.clone(),
            });
        }
        (None, Some(t)) => adopt.exhausted_until = Some(t.until),
        (Some(u), Some(t)) if u < t.until => adopt.exhausted_until = Some(t.until),
        _ => {}
    }
    match (&local.usage, &remote.usage) {
        (Some(l), None) => entry.usage = Some(l.clone()),
        (Some(l), Some(r)) if l.at > r.at => entry.usage = Some(l.clone()),
        (None, Some(r)) => adopt.usage = Some(r.clone()),
        (Some(l), Some(r)) if l.at < r.at => adopt.usage = Some(r.clone()),
        _ => {}
    }
    Merged {
        write: (entry != remote).then_some(entry),
        adopt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + h * 3600).unwrap()
    }

    fn exhausted(h: i64, node: &str) -> Entry {
        Entry {
            exhausted: Some(Exhaustion {
                until: at(h),
                node: node.to_owned(),
                reading: None,
            }),
            usage: None,
        }
    }

    fn local(h: i64) -> Local {
        Local {
            exhausted_until: Some(at(h)),
            ..Local::default()
        }
    }

    #[test]
    fn an_exhaustion_seen_here_should_be_written_with_this_node() {
        let m = merge(None, &local(5), "n1", at(0));
        assert_eq!(m.write, Some(exhausted(5, "n1")));
        assert_eq!(m.adopt, Local::default());
    }

    #[test]
    fn an_exhaustion_in_the_ledger_should_be_adopted() {
        let m = merge(Some(&exhausted(5, "n1")), &Local::default(), "n2", at(0));
        assert_eq!(m.write, None);
        assert_eq!(m.adopt.exhausted_until, Some(at(5)));
    }

    #[test]
    fn the_later_reset_should_win_both_ways() {
        let m = merge(Some(&exhausted(5, "n1")), &local(7), "n2", at(0));
        assert_eq!(
            m.write,
            Some(exhausted(7, "n2")),
            "with the node that read it"
        );
        let m = merge(Some(&exhausted(7, "n1")), &local(5), "n2", at(0));
        assert_eq!((m.write, m.adopt.exhausted_until), (None, Some(at(7))));
    }

    #[test]
    fn the_same_reading_twice_should_write_nothing() {
        let m = merge(Some(&exhausted(5, "n1")), &local(5), "n2", at(0));
        assert_eq!(m, Merged::default());
    }

    #[test]
    fn a_reset_already_past_should_count_for_nothing() {
        let m = merge(Some(&exhausted(1, "n1")), &Local::default(), "n2", at(2));
        assert_eq!(m, Merged::default());
        let m = merge(Some(&exhausted(1, "n1")), &local(5), "n2", at(2));
        assert_eq!(m.write, Some(exhausted(5, "n2")));
    }
}
