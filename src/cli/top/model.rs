//! What `top` draws: a [`Snapshot`] of the pool (a board, the controller's published
//! one or one of `top`'s own looks, and the controller's line), and the [`History`] the
//! journal tells (its entries in words, each account's use over time, each inbox's
//! finished tasks).

use std::collections::{BTreeMap, VecDeque};

use jiff::Timestamp;

use super::super::table::Table;
pub(super) use crate::board::{AccountView, Activity, Board, InboxView, SessionView};
use crate::journal::story::{Teller, Told};
use crate::journal::{Entry, Line};
use crate::plan::{Action, Event, TaskAction};

/// How many told entries the dashboard keeps.
const EVENTS_KEPT: usize = 500;
/// How long the use of an account and the finished tasks are remembered.
const HISTORY_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Everything one look shows.
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshot {
    /// `controller: running (pid N), converged at …`.
    pub controller: String,
    /// `last swap: …`.
    pub last_swap: String,
    /// The accounts, by priority.
    pub accounts: Vec<AccountView>,
    /// The sessions, by name.
    pub sessions: Vec<SessionView>,
    /// The inboxes.
    pub inboxes: Vec<InboxView>,
    /// With every account exhausted: when the first resets and the queues resume.
    pub resumes: Option<Timestamp>,
    /// The fleet's nodes (with `--fleet`), as `get nodes` reads them.
    pub nodes: Option<Table>,
    /// This node's name in the fleet, when there is one.
    pub node: Option<String>,
    /// Why the last look failed, if it did (the rows are the last good ones).
    pub error: Option<String>,
}

impl Snapshot {
    /// What `board` shows, under the `controller` line, on the fleet's `node` if any.
    pub(super) fn of(board: Board, controller: String, node: Option<String>) -> Self {
        let Board {
            sessions,
            accounts,
            inboxes,
            last_swaps,
            resumes,
        } = board;
        Self {
            controller,
            last_swap: last_swaps.join(" · "),
            accounts,
            sessions,
            inboxes,
            resumes,
            nodes: None,
            node,
            error: None,
        }
    }
}

/// What the journal told so far: its newest entries in words, each account's use and
/// each inbox's finished tasks over the last day.
#[derive(Debug, Default)]
pub(super) struct History {
    /// The newest entries, told, oldest first.
    pub events: VecDeque<Told>,
    /// Each account's use of its 5-hour window over time, by account.
    pub usage: BTreeMap<String, Vec<(Timestamp, f64)>>,
    /// When each inbox's tasks were done, by inbox.
    pub done: BTreeMap<String, Vec<Timestamp>>,
    teller: Teller,
}

impl History {
    /// Takes in journal lines, oldest first.
    pub(super) fn fold(&mut self, lines: &[Line]) {
        for line in lines {
            self.events.push_back(self.teller.tell(line));
            match &line.entry {
                Entry::Event(Event::UsageCrossed {
                    account,
                    window,
                    used,
                    ..
                }) if window == "5h" => {
                    self.note_use(account, line.time, *used);
                }
                Entry::Acted(a) if a.ok() => {
                    if let Action::Task(TaskAction::CompleteTask { task, .. }) = &a.action {
                        self.done
                            .entry(task.inbox.clone())
                            .or_default()
                            .push(line.time);
                    }
                }
                _ => {}
            }
        }
        while self.events.len() > EVENTS_KEPT {
            self.events.pop_front();
        }
        if let Some(last) = lines.last() {
            self.forget_before(last.time - HISTORY_KEPT);
        }
    }

    /// Takes in the use a look read (the status lines' last report).
    pub(super) fn note(&mut self, snapshot: &Snapshot, now: Timestamp) {
        for a in &snapshot.accounts {
            if let Some(w) = a.row.five_hour {
                self.note_use(&a.row.name, now, w.used);
            }
        }
    }

    fn note_use(&mut self, account: &str, at: Timestamp, used: f64) {
        let series = self.usage.entry(account.to_owned()).or_default();
        if series
            .last()
            .is_none_or(|(_, u)| (u - used).abs() > f64::EPSILON)
        {
            series.push((at, used));
        }
    }

    fn forget_before(&mut self, t: Timestamp) {
        for series in self.usage.values_mut() {
            // The last reading before `t` still says the level at `t`.
            let keep = series.iter().rposition(|(at, _)| *at < t).unwrap_or(0);
            series.drain(..keep);
        }
        for times in self.done.values_mut() {
            times.retain(|at| *at >= t);
        }
    }
}

/// A sparkline of `values` (0 to `max`), one cell each.
pub(super) fn sparkline(values: &[f64], max: f64) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| {
            if max <= 0.0 || *v <= 0.0 {
                ' '
            } else {
                let i = ((v / max) * 7.0).round().clamp(0.0, 7.0);
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                BARS[i as usize]
            }
        })
        .collect()
}

/// The `n` buckets of `width` ending at `now`, oldest first: whether each holds `t`
/// (the last one holds its end too).
fn buckets(
    now: Timestamp,
    width: jiff::SignedDuration,
    n: usize,
) -> impl Iterator<Item = (Timestamp, impl Fn(Timestamp) -> bool)> {
    let start = now - width * i32::try_from(n).unwrap_or(i32::MAX);
    (0..n).map(move |i| {
        let from = start + width * i32::try_from(i).unwrap_or(i32::MAX);
        let to = from + width;
        let last = i + 1 == n;
        (from, move |t: Timestamp| {
            t >= from && (t < to || (last && t <= to))
        })
    })
}

/// The level of `series` (time, value; oldest first) in each of `n` buckets of `width`
/// ending at `now`: the highest value in the bucket, else the last one before it.
pub(super) fn levels(
    series: &[(Timestamp, f64)],
    now: Timestamp,
    width: jiff::SignedDuration,
    n: usize,
) -> Vec<f64> {
    buckets(now, width, n)
        .map(|(from, holds)| {
            let inside = series
                .iter()
                .filter(|(t, _)| holds(*t))
                .map(|(_, v)| *v)
                .reduce(f64::max);
            inside
                .or_else(|| {
                    series
                        .iter()
                        .rev()
                        .find(|(t, _)| *t < from)
                        .map(|(_, v)| *v)
                })
                .unwrap_or(0.0)
        })
        .collect()
}

/// How many of `times` fall in each of `n` buckets of `width` ending at `now`.
pub(super) fn counts(
    times: &[Timestamp],
    now: Timestamp,
    width: jiff::SignedDuration,
    n: usize,
) -> Vec<f64> {
    buckets(now, width, n)
        .map(|(_, holds)| {
            let c = times.iter().filter(|t| holds(**t)).count();
            // A count of tasks: far below 2^52.
            #[allow(clippy::cast_precision_loss)]
            let c = c as f64;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn levels_should_carry_the_last_reading_into_quiet_buckets() {
        let series = [
            (at("2026-12-01T10:05:00Z"), 20.0),
            (at("2026-12-01T11:10:00Z"), 60.0),
            (at("2026-12-01T11:20:00Z"), 40.0),
        ];
        let now = at("2026-12-01T12:00:00Z");
        let l = levels(&series, now, jiff::SignedDuration::from_mins(30), 4);
        // 10:00-10:30, 10:30-11:00, 11:00-11:30, 11:30-12:00.
        assert_eq!(l, [20.0, 20.0, 60.0, 40.0]);
        assert_eq!(sparkline(&l, 100.0), "▂▂▅▄");
    }

    #[test]
    fn counts_should_bucket_finished_tasks_by_ten_minutes() {
        let now = at("2026-12-01T12:00:00Z");
        let times = [
            at("2026-12-01T11:41:00Z"),
            at("2026-12-01T11:52:00Z"),
            at("2026-12-01T11:59:59Z"),
            at("2026-12-01T10:00:00Z"),
        ];
        let c = counts(&times, now, jiff::SignedDuration::from_mins(10), 3);
        assert_eq!(c, [0.0, 1.0, 2.0]);
        assert_eq!(sparkline(&c, 2.0), " ▅█");
    }

    #[test]
    fn history_should_keep_the_use_and_the_tasks_done_the_journal_tells() {
        let crossed = |t: &str, window: &'static str, used: f64| Line {
            time: at(t),
            entry: Entry::Event(Event::UsageCrossed {
                account: "a".into(),
                window: window.into(),
                used,
                level: 80.0,
                direction: crate::plan::Direction::Up,
                resets_at: at("2026-12-05T20:00:00Z"),
                session: "w-0".into(),
            }),
        };
        let done: Line = serde_json::from_str(
            r#"{"time":"2026-12-05T16:15:46Z","event":"taskDone","action":{"action":"completeTask","task":{"inbox":"q","path":"/p","name":"t.md","file":"w-1.1.t.md","session":"w-1","account":"b","attempt":1},"pane":"%3","pid":42,"how":"Stop report","exit":null},"ok":true,"error":null}"#,
        )
        .unwrap();
        let lines = [
            crossed("2026-12-05T16:00:00Z", "5h", 81.0),
            crossed("2026-12-05T16:01:00Z", "7d", 50.0),
            done,
        ];
        let mut h = History::default();
        h.fold(&lines);
        assert_eq!(h.events.len(), 3);
        assert_eq!(
            h.usage["a"],
            [(at("2026-12-05T16:00:00Z"), 81.0)],
            "5h only"
        );
        assert_eq!(h.done["q"], [at("2026-12-05T16:15:46Z")]);
        assert!(h.events[2].message.contains("t.md"), "{:?}", h.events[2]);
    }
}
