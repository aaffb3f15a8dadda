//! A subscription's use of its rate-limit windows, as the agents' status lines report
//! it: kept in the facts, read by the ledger.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A subscription's use, as the status line reports it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// The 5-hour window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub five_hour: Option<Window>,
    /// The 7-day window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seven_day: Option<Window>,
}

/// One rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// Percent used, 0 to 100.
    pub used: f64,
    /// When the window resets.
    pub resets_at: Timestamp,
}

impl Usage {
    /// The windows that are known, with their names.
    pub fn windows(&self) -> impl Iterator<Item = (&'static str, Window)> {
        [("5h", self.five_hour), ("7d", self.seven_day)]
            .into_iter()
            .filter_map(|(name, w)| Some((name, w?)))
    }

    /// The highest use of a window that has not reset by `now`, in percent.
    pub fn used_at(&self, now: Timestamp) -> Option<f64> {
        self.windows()
            .filter(|(_, w)| w.resets_at > now)
            .map(|(_, w)| w.used)
            .reduce(f64::max)
    }
}
