//! The planner's decisions worth journaling — quota seen, swaps, every account used up —
//! as one closed enum. Each serializes to the journal entry's fields as they always
//! were; beside it, its journal kind, whether it is written again when it repeats, and
//! whether the operator is notified.

use jiff::Timestamp;
use serde::Serialize;

use crate::state::journal::Kind;

/// A decision of the planner, to journal.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged, rename_all_fields = "camelCase")]
pub enum Event {
    /// A used-up quota was seen on a screen or reported by an agent.
    QuotaDetected {
        /// The account.
        account: String,
        /// The session it was seen on.
        session: String,
        /// Always `quota-exhausted`.
        class: &'static str,
        /// The pattern that read it (`StopFailure rate_limit` for a report).
        pattern: String,
        /// The line or message, cut at 120 characters.
        line: String,
        /// When it resets, if said.
        resets_at: Option<Timestamp>,
        /// Whether the account is exhausted now (a screen reading may need confirming).
        confirmed: bool,
        /// `report` or `screen`.
        source: &'static str,
        /// When the agent reported it.
        #[serde(skip_serializing_if = "Option::is_none")]
        reported_at: Option<Timestamp>,
    },
    /// An exhausted account's limit reset.
    Recovered {
        /// The account.
        account: String,
    },
    /// Sessions move from one account to another.
    Swap {
        /// The account they leave.
        from: String,
        /// The account they move to.
        to: String,
        /// Why.
        reason: String,
        /// The use of `from`, in percent, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        used: Option<f64>,
    },
    /// Every account is exhausted: sessions wait.
    AllExhausted {
        /// The earliest reset.
        first_reset: Option<Timestamp>,
        /// Each account's reset, by account.
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        until: std::collections::BTreeMap<String, Timestamp>,
    },
    /// An account can take sessions again after every one was exhausted: work resumes.
    Resumed {
        /// The account sessions run under now.
        account: String,
        /// Since when work waited.
        since: Timestamp,
    },
    /// The active account is over `quota.moveAt` and no other is under it.
    AllOverThreshold {
        /// The active account.
        account: String,
        /// The threshold.
        move_at: u32,
    },
    /// Waiting tasks do not start: the active account is over `quota.moveAt`.
    IntakeHeld {
        /// The active account.
        account: String,
        /// The threshold.
        move_at: u32,
        /// Why, in words.
        reason: &'static str,
    },
    /// The agent of a session died while it worked on a task; it is started again.
    SessionFailed {
        /// The session.
        session: String,
        /// How it ended.
        reason: String,
        /// Its pane's pid.
        pid: Option<u32>,
        /// The task it worked on.
        task: Option<String>,
    },
    /// The agent of a session without a task exited; it is started again.
    SessionExited {
        /// The session.
        session: String,
        /// How it ended.
        reason: String,
        /// Its pane's pid.
        pid: Option<u32>,
        /// Always none.
        task: Option<String>,
    },
    /// An agent started resuming a conversation died at once: the conversation is not
    /// tried again, the session starts afresh and a task it held is sent again.
    ResumeFailed {
        /// The session.
        session: String,
        /// The account it runs under.
        account: Option<String>,
        /// The conversation that could not be resumed.
        conversation: String,
        /// How the failure showed.
        reason: String,
        /// The task sent again, if it held one.
        task: Option<String>,
    },
    /// An account's use of a window crossed a level (`quota.moveAt`, or a notify level).
    UsageCrossed {
        /// The account.
        account: String,
        /// The window (`5h`, `7d`).
        window: &'static str,
        /// Its use now, in percent.
        used: f64,
        /// The level crossed.
        level: f64,
        /// `up` or `down`.
        direction: &'static str,
        /// When the window resets.
        resets_at: Timestamp,
        /// The session whose status line said so.
        session: String,
    },
}

impl Event {
    /// The journal event it is written as.
    pub fn kind(&self) -> Kind {
        match self {
            Event::QuotaDetected { .. } => Kind::QuotaDetected,
            Event::Recovered { .. } => Kind::Recovered,
            Event::Swap { .. } => Kind::Swap,
            Event::AllExhausted { .. } => Kind::AllExhausted,
            Event::Resumed { .. } => Kind::Resumed,
            Event::AllOverThreshold { .. } => Kind::AllOverThreshold,
            Event::IntakeHeld { .. } => Kind::IntakeHeld,
            Event::UsageCrossed { .. } => Kind::UsageCrossed,
            Event::SessionFailed { .. } => Kind::SessionFailed,
            Event::SessionExited { .. } => Kind::SessionExited,
            Event::ResumeFailed { .. } => Kind::ResumeFailed,
        }
    }

    /// Whether the planner says it again every round while it holds: then it is
    /// journaled only when it differs from the last of its kind.
    pub fn repeats(&self) -> bool {
        match self {
            Event::QuotaDetected { .. }
            | Event::AllExhausted { .. }
            | Event::AllOverThreshold { .. }
            | Event::IntakeHeld { .. } => true,
            Event::Recovered { .. }
            | Event::Resumed { .. }
            | Event::Swap { .. }
            | Event::UsageCrossed { .. }
            | Event::SessionFailed { .. }
            | Event::SessionExited { .. }
            | Event::ResumeFailed { .. } => false,
        }
    }

    /// Whether the operator's notifications are told.
    pub fn notifies(&self) -> bool {
        match self {
            Event::Swap { .. }
            | Event::AllExhausted { .. }
            | Event::Resumed { .. }
            | Event::Recovered { .. }
            | Event::AllOverThreshold { .. } => true,
            Event::QuotaDetected { .. }
            | Event::IntakeHeld { .. }
            | Event::UsageCrossed { .. }
            | Event::SessionFailed { .. }
            | Event::SessionExited { .. }
            | Event::ResumeFailed { .. } => false,
        }
    }

    /// Its fields, as journaled.
    pub fn detail(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_should_serialize_to_the_journal_fields_they_always_had() {
        let swap = Event::Swap {
            from: "a".into(),
            to: "b".into(),
            reason: "quota exhausted".into(),
            used: None,
        };
        assert_eq!(
            swap.detail(),
            json!({"from": "a", "to": "b", "reason": "quota exhausted"})
        );
        let held = Event::AllOverThreshold {
            account: "a".into(),
            move_at: 95,
        };
        assert_eq!(held.detail(), json!({"account": "a", "moveAt": 95}));
        assert_eq!(
            Event::AllExhausted {
                first_reset: None,
                until: Default::default()
            }
            .detail(),
            json!({"firstReset": null})
        );
    }
}
