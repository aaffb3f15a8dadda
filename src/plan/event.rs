//! The planner's decisions worth journaling — quota seen, swaps, every account used up —
//! as one closed enum, tagged by its journal event: each serializes to the journal
//! entry's fields as they always were and reads back from them. Beside it, whether it
//! is written again when it repeats, whether the operator is notified, and its one
//! sentence ([`fmt::Display`]).

use std::borrow::Cow;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A decision of the planner, to journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// A used-up quota was seen on a screen or reported by an agent.
    QuotaDetected {
        /// The account.
        account: String,
        /// The session it was seen on.
        session: String,
        /// Always `quota-exhausted`.
        class: Cow<'static, str>,
        /// The pattern that read it (`StopFailure rate_limit` for a report).
        pattern: String,
        /// The line or message, cut at 120 characters.
        line: String,
        /// When it resets, if said.
        #[serde(default)]
        resets_at: Option<Timestamp>,
        /// Whether the account is exhausted now (a screen reading may need confirming).
        confirmed: bool,
        /// Where it was read.
        source: Source,
        /// When the agent reported it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        used: Option<f64>,
    },
    /// Every account is exhausted: sessions wait.
    AllExhausted {
        /// The earliest reset.
        first_reset: Option<Timestamp>,
        /// Each account's reset, by account.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
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
        reason: Cow<'static, str>,
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
    /// Another node of the fleet saw an account exhausted, until later than this one
    /// knew: it counts as if this node's agents had said it.
    FleetLedger {
        /// The account.
        account: String,
        /// Until when it is exhausted, as the fleet's ledger says.
        exhausted_until: Timestamp,
        /// The node that saw it, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// A task whose turn met the usage limit, with no usable account of its family
    /// left, goes to another family of its pool as a fresh task.
    HandedOff {
        /// The session that runs it.
        session: String,
        /// The task, `inbox/name`.
        task: String,
        /// The family that started it.
        from: crate::agents::AgentKind,
        /// The account its turn met the limit under.
        account: String,
        /// The family it goes on in.
        to: crate::agents::AgentKind,
        /// Its hand-offs so far, this one included.
        count: usize,
    },
    /// A pool session over several families restarts under another family: its own
    /// has no usable account, or the pool's preferred one is usable again.
    FamilyChanged {
        /// The session.
        session: String,
        /// The family it ran.
        from: crate::agents::AgentKind,
        /// The family it runs now.
        to: crate::agents::AgentKind,
        /// The account it runs under now.
        account: String,
        /// Back to a family the pool prefers (a return), rather than away from one
        /// used up.
        #[serde(rename = "return")]
        back: bool,
    },
    /// The dedicated sessions of a family without a usable account wait (they never
    /// change family).
    SessionWaits {
        /// The sessions, by name.
        sessions: Vec<String>,
        /// Its family.
        kind: crate::agents::AgentKind,
        /// When the family's first account resets, if known.
        #[serde(default)]
        until: Option<Timestamp>,
    },
    /// An account's use of a window crossed a level (`quota.moveAt`, or a notify level).
    UsageCrossed {
        /// The account.
        account: String,
        /// The window (`5h`, `7d`).
        window: Cow<'static, str>,
        /// Its use now, in percent.
        used: f64,
        /// The level crossed.
        level: f64,
        /// Which way.
        direction: Direction,
        /// When the window resets.
        resets_at: Timestamp,
        /// The session whose status line said so.
        session: String,
    },
}

impl Event {
    /// Its journal event (`swap`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::QuotaDetected { .. } => "quotaDetected",
            Event::Recovered { .. } => "recovered",
            Event::Swap { .. } => "swap",
            Event::AllExhausted { .. } => "allExhausted",
            Event::Resumed { .. } => "resumed",
            Event::AllOverThreshold { .. } => "allOverThreshold",
            Event::IntakeHeld { .. } => "intakeHeld",
            Event::SessionFailed { .. } => "sessionFailed",
            Event::SessionExited { .. } => "sessionExited",
            Event::ResumeFailed { .. } => "resumeFailed",
            Event::UsageCrossed { .. } => "usageCrossed",
            Event::FleetLedger { .. } => "fleetLedger",
            Event::HandedOff { .. } => "handedOff",
            Event::FamilyChanged { .. } => "familyChanged",
            Event::SessionWaits { .. } => "sessionWaits",
        }
    }

    /// Whether the planner says it again every round while it holds: then it is
    /// journaled only when it differs from the last of its kind.
    pub fn repeats(&self) -> bool {
        match self {
            Event::QuotaDetected { .. }
            | Event::AllExhausted { .. }
            | Event::AllOverThreshold { .. }
            | Event::IntakeHeld { .. }
            | Event::SessionWaits { .. } => true,
            Event::HandedOff { .. } | Event::FamilyChanged { .. } => false,
            Event::Recovered { .. }
            | Event::Resumed { .. }
            | Event::Swap { .. }
            | Event::UsageCrossed { .. }
            | Event::SessionFailed { .. }
            | Event::SessionExited { .. }
            | Event::ResumeFailed { .. }
            | Event::FleetLedger { .. } => false,
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
            | Event::ResumeFailed { .. }
            | Event::FleetLedger { .. }
            | Event::HandedOff { .. }
            | Event::FamilyChanged { .. }
            | Event::SessionWaits { .. } => false,
        }
    }

    /// Its fields, as journaled, without its `event` tag.
    pub fn detail(&self) -> serde_json::Value {
        let mut detail = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = detail.as_object_mut() {
            fields.shift_remove("event");
        }
        detail
    }
}

/// What happened and why, in one sentence, as `get events` and `describe` tell it.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::QuotaDetected {
                session,
                class,
                line,
                resets_at,
                confirmed,
                source,
                ..
            } => {
                let how = match source {
                    Source::Report => "reported by the agent of",
                    Source::Screen => "read on the screen of",
                };
                write!(f, "{class} {how} session {session}: \"{line}\"")?;
                if let Some(t) = resets_at {
                    write!(f, " until {t}")?;
                }
                if !confirmed {
                    f.write_str(" (to be confirmed)")?;
                }
                Ok(())
            }
            Event::Recovered { .. } => f.write_str("its limit reset: usable again"),
            Event::Swap {
                from,
                to,
                reason,
                used,
            } => write!(
                f,
                "sessions move from account {from} to {to}: {reason}{}",
                at_used(*used)
            ),
            Event::AllExhausted { first_reset, until } => {
                f.write_str("every account is used up; work waits")?;
                if let Some(t) = first_reset {
                    write!(f, " until {t}")?;
                }
                if !until.is_empty() {
                    let each: Vec<String> = until
                        .iter()
                        .map(|(a, t)| format!("{a} until {t}"))
                        .collect();
                    write!(f, " ({})", each.join(", "))?;
                }
                Ok(())
            }
            Event::Resumed { since, .. } => write!(
                f,
                "work resumes under this account after waiting since {since} for a reset"
            ),
            Event::AllOverThreshold { move_at, .. } => {
                write!(f, "over {move_at}% and no account under it to move to")
            }
            Event::IntakeHeld {
                move_at, reason, ..
            } => write!(f, "new tasks wait: {reason} (move at {move_at}%)"),
            Event::SessionFailed { reason, .. } => {
                write!(f, "agent died during a task: {reason}")
            }
            Event::SessionExited { reason, .. } => write!(f, "agent exited: {reason}"),
            Event::ResumeFailed {
                account,
                conversation,
                reason,
                task,
                ..
            } => {
                write!(
                    f,
                    "conversation {conversation} could not be resumed under account {} \
                     ({reason}): started afresh",
                    account.as_deref().unwrap_or("?")
                )?;
                if let Some(task) = task {
                    write!(
                        f,
                        "; task {task} is sent again from its own text, no try used"
                    )?;
                }
                Ok(())
            }
            Event::FleetLedger {
                exhausted_until,
                node,
                ..
            } => {
                write!(
                    f,
                    "exhausted until {exhausted_until}, as the fleet's ledger says"
                )?;
                if let Some(node) = node {
                    write!(f, " (node {node})")?;
                }
                Ok(())
            }
            Event::HandedOff {
                task,
                from,
                account,
                to,
                count,
                ..
            } => {
                write!(
                    f,
                    "task {task} handed off from {from} to {to}: its turn met the usage limit \
                     of account {account} and no {from} account is usable; {to} runs it as a \
                     fresh task"
                )?;
                if *count > 1 {
                    write!(f, " (hand-off {count})")?;
                }
                Ok(())
            }
            Event::FamilyChanged {
                from,
                to,
                account,
                back,
                ..
            } => {
                if *back {
                    write!(
                        f,
                        "returns from {from} to {to} (usable again), under account {account}, \
                         in a fresh conversation"
                    )
                } else {
                    write!(
                        f,
                        "no {from} account is usable: runs {to} under account {account}, in a \
                         fresh conversation"
                    )
                }
            }
            Event::SessionWaits { kind, until, .. } => {
                write!(f, "waits for a {kind} account")?;
                if let Some(t) = until {
                    write!(f, " until {} UTC", t.strftime("%H:%M"))?;
                }
                write!(f, " (a dedicated session never changes family)")
            }
            Event::UsageCrossed {
                window,
                used,
                level,
                direction,
                resets_at,
                ..
            } => write!(
                f,
                // A level as the journal writes it (`90.0`).
                "{window} window {direction} {level:?}%: {used:.0}% used, resets {resets_at}"
            ),
        }
    }
}

/// ` at 96% used`, when the use is known.
pub(crate) fn at_used(used: Option<f64>) -> String {
    used.map_or(String::new(), |u| format!(" at {u:.0}% used"))
}

/// Where a quota limit was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The agent reported it (`StopFailure rate_limit`).
    Report,
    /// It was read on the agent's screen.
    Screen,
}

/// Which way an account's use crossed a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    /// From under the level to at or over it.
    Up,
    /// From at or over the level to under it.
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Up => "up",
            Direction::Down => "down",
        })
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
