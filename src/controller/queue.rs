//! The work queue: triggers coalesced by key, one run at a time per key, a key that is
//! triggered while it runs runs exactly once more afterwards, and failures back off
//! exponentially per key until a success resets them. Runs of a key follow each other
//! at once, unless streaming triggers (file events) keep coming between them: then a
//! gap opens and doubles (a thousand file events give a handful of runs) and closes
//! again after a quiet run; timers and tmux notifications never open it. A key can be
//! scheduled for later ([`WorkQueue::add_after`]): one timer per key, the earliest time
//! winning, with no task of its own. The controller's keys are [`Key`]s.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// What a reconcile is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// Read the manifests again (files edited, or handed over by `apply`).
    Manifests,
    /// Observe, plan and act.
    World,
    /// Prune `done/` and `failed/` past their retention.
    Janitor,
}

/// The first retry delay after a failure; doubled per further failure.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// The longest retry delay.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// The first gap between two runs of a key once streaming triggers press on it. A
/// lone trigger after a quiet spell runs at once.
pub(crate) const MIN_GAP: Duration = Duration::from_millis(25);
/// The longest time between two runs of a key while triggers stream in.
pub(crate) const MAX_GAP: Duration = Duration::from_millis(400);
/// Streaming triggers within [`MIN_GAP`] that make a stream (a task dropped and
/// claimed makes two or three file events; a thousand files make many more).
pub(crate) const STREAM: usize = 8;

#[derive(Debug)]
struct State<K> {
    queued: VecDeque<K>,
    running: Vec<K>,
    dirty: Vec<K>,
    failures: HashMap<K, u32>,
    not_before: HashMap<K, Instant>,
    finished: HashMap<K, Instant>,
    gap: HashMap<K, Duration>,
    /// The times of the key's last streaming triggers (at most [`STREAM`]).
    streamed: HashMap<K, VecDeque<Instant>>,
    /// Keys to add at a later time, the earliest asked for.
    scheduled: HashMap<K, Instant>,
}

impl<K: Eq + Hash> State<K> {
    /// When `key` may run next: after its backoff, and `MIN_GAP` after its last run;
    /// `None` when nothing holds it back.
    fn earliest(&self, key: &K) -> Option<Instant> {
        let spacing = self.gap.get(key).copied().unwrap_or(Duration::ZERO);
        let gap = self.finished.get(key).map(|t| *t + spacing);
        let backoff = self.not_before.get(key).copied();
        gap.max(backoff)
    }

    /// Queues `key`, or marks it to run once more if it runs now.
    fn enqueue(&mut self, key: K) {
        if self.running.contains(&key) {
            if !self.dirty.contains(&key) {
                self.dirty.push(key);
            }
        } else if !self.queued.contains(&key) {
            self.queued.push_back(key);
        }
    }
}

/// A queue of keys to reconcile.
#[derive(Debug)]
pub(crate) struct WorkQueue<K> {
    state: Mutex<State<K>>,
    wake: Notify,
}

impl<K: Clone + Eq + Hash> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Clone + Eq + Hash> WorkQueue<K> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State {
                queued: VecDeque::new(),
                running: Vec::new(),
                dirty: Vec::new(),
                failures: HashMap::new(),
                not_before: HashMap::new(),
                finished: HashMap::new(),
                gap: HashMap::new(),
                streamed: HashMap::new(),
                scheduled: HashMap::new(),
            }),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K>> {
        // A poisoned lock means a panic elsewhere mid-update; the sets stay valid sets.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many keys wait to be taken (not those running).
    pub(crate) fn len(&self) -> usize {
        self.lock().queued.len()
    }

    /// Asks for `key` to be reconciled: queued once however often it is added; while
    /// it runs, it is marked to run once more afterwards.
    pub(crate) fn add(&self, key: K) {
        self.push(key, false);
    }

    /// Like [`WorkQueue::add`], for triggers that can come in streams (file events):
    /// one arriving while the key waits out its gap widens the gap.
    pub(crate) fn add_streaming(&self, key: K) {
        self.push(key, true);
    }

    fn push(&self, key: K, streaming: bool) {
        {
            let mut s = self.lock();
            if streaming {
                let times = s.streamed.entry(key.clone()).or_default();
                if times.len() == STREAM {
                    times.pop_front();
                }
                times.push_back(Instant::now());
            }
            s.enqueue(key);
        }
        self.wake.notify_one();
    }

    /// Asks for `key` to be reconciled `after` from now, whatever else happens. Of
    /// several such requests for one key, the earliest wins.
    pub(crate) fn add_after(&self, key: K, after: Duration) {
        {
            let mut s = self.lock();
            let at = Instant::now() + after;
            let slot = s.scheduled.entry(key).or_insert(at);
            *slot = (*slot).min(at);
        }
        self.wake.notify_one();
    }

    /// Waits for the next key whose backoff has passed and marks it running.
    pub(crate) async fn next(&self) -> K {
        loop {
            let notified = self.wake.notified();
            let wait = {
                let mut s = self.lock();
                let now = Instant::now();
                let due: Vec<K> = s
                    .scheduled
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in due {
                    s.scheduled.remove(&key);
                    s.enqueue(key);
                }
                let ready = s
                    .queued
                    .iter()
                    .position(|k| s.earliest(k).is_none_or(|t| t <= now));
                if let Some(i) = ready
                    && let Some(key) = s.queued.remove(i)
                {
                    s.running.push(key.clone());
                    return key;
                }
                let queued = s.queued.iter().filter_map(|k| s.earliest(k)).min();
                let scheduled = s.scheduled.values().min().copied();
                match (queued, scheduled) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            };
            match wait {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` finished. A failure delays its next run (200 ms, doubling, at most
    /// 60 s); a success resets that. A key added while it ran is queued again.
    pub(crate) fn done(&self, key: &K, ok: bool) {
        {
            let mut s = self.lock();
            s.running.retain(|k| k != key);
            s.finished.insert(key.clone(), Instant::now());
            // STREAM streaming triggers within the last MIN_GAP: a stream; the gap widens.
            let now = Instant::now();
            let pressed = s.streamed.get(key).is_some_and(|times| {
                times.len() == STREAM
                    && times
                        .front()
                        .is_some_and(|t| now.duration_since(*t) <= MIN_GAP)
            });
            let gap = s.gap.get(key).copied().unwrap_or(Duration::ZERO);
            let gap = if pressed {
                gap.saturating_mul(2).clamp(MIN_GAP, MAX_GAP)
            } else {
                Duration::ZERO
            };
            s.gap.insert(key.clone(), gap);
            if ok {
                s.failures.remove(key);
                s.not_before.remove(key);
            } else {
                let failures = s.failures.entry(key.clone()).or_insert(0);
                *failures += 1;
                let delay = backoff(*failures);
                s.not_before.insert(key.clone(), Instant::now() + delay);
                if !s.queued.contains(key) {
                    s.queued.push_back(key.clone());
                }
            }
            if let Some(i) = s.dirty.iter().position(|k| k == key) {
                s.dirty.remove(i);
                if !s.queued.contains(key) {
                    s.queued.push_back(key.clone());
                }
            }
        }
        self.wake.notify_one();
    }

    /// The delay before `key` may run again, if it is backing off.
    #[cfg(test)]
    pub(crate) fn backoff_of(&self, key: &K) -> Option<Duration> {
        let s = self.lock();
        let at = s.not_before.get(key)?;
        Some(at.saturating_duration_since(Instant::now()))
    }
}

/// The delay after `failures` consecutive failures.
pub(crate) fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_scheduled_key_should_run_once_at_the_earliest_time_asked() {
        let q = WorkQueue::new();
        let start = Instant::now();
        q.add_after("world", Duration::from_secs(5));
        q.add_after("world", Duration::from_secs(2));
        q.add_after("world", Duration::from_secs(9));
        assert_eq!(q.next().await, "world");
        assert_eq!(start.elapsed(), Duration::from_secs(2), "the earliest wins");
        q.done(&"world", true);
        let nothing = tokio::time::timeout(Duration::from_secs(30), q.next()).await;
        assert!(nothing.is_err(), "one run for all three requests");
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_due_while_it_runs_should_run_once_more_afterwards() {
        let q = WorkQueue::new();
        q.add("world");
        let key = q.next().await;
        q.add_after("world", Duration::from_millis(10));
        let blocked = tokio::time::timeout(Duration::from_millis(50), q.next()).await;
        assert!(blocked.is_err(), "never two runs of a key at once");
        q.done(&key, true);
        assert_eq!(q.next().await, "world");
    }

    #[tokio::test(start_paused = true)]
    async fn queue_should_coalesce_a_burst_into_one_run() {
        let q = WorkQueue::new();
        for _ in 0..1000 {
            q.add("world");
        }
        assert_eq!(q.next().await, "world");
        q.done(&"world", true);
        let nothing = tokio::time::timeout(Duration::from_secs(1), q.next()).await;
        assert!(nothing.is_err(), "a burst must give one run");
    }

    #[tokio::test(start_paused = true)]
    async fn queue_should_run_a_key_once_more_when_added_while_running() {
        let q = WorkQueue::new();
        q.add("world");
        let key = q.next().await;
        q.add("world");
        q.add("world");
        let blocked = tokio::time::timeout(Duration::from_millis(10), q.next()).await;
        assert!(blocked.is_err(), "never two runs of a key at once");
        q.done(&key, true);
        assert_eq!(q.next().await, "world");
        q.done(&"world", true);
        assert!(
            tokio::time::timeout(Duration::from_secs(1), q.next())
                .await
                .is_err()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn queue_should_back_off_exponentially_and_reset_on_success() {
        let q = WorkQueue::new();
        q.add("k");
        let mut runs = Vec::new();
        let start = Instant::now();
        for _ in 0..4 {
            let key = q.next().await;
            runs.push(start.elapsed());
            q.done(&key, false);
        }
        let ms: Vec<u128> = runs.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [0, 200, 600, 1400], "retries after 200, 400, 800 ms");
        let key = q.next().await;
        q.done(&key, true);
        assert_eq!(q.backoff_of(&"k"), None);
        q.add("k");
        let t = Instant::now();
        q.next().await;
        assert_eq!(t.elapsed(), Duration::ZERO, "success resets the backoff");
    }

    #[tokio::test(start_paused = true)]
    async fn queue_should_gather_a_stream_of_triggers_into_runs_at_most_every_gap() {
        let q = std::sync::Arc::new(WorkQueue::new());
        let feeder = {
            let q = q.clone();
            tokio::spawn(async move {
                for _ in 0..1000 {
                    q.add_streaming("world");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };
        let start = Instant::now();
        let mut runs = 0;
        while start.elapsed() < Duration::from_millis(1100) {
            if let Ok(key) = tokio::time::timeout(Duration::from_millis(50), q.next()).await {
                runs += 1;
                q.done(&key, true);
            }
        }
        feeder.await.unwrap();
        // Runs at once until eight triggers within 25 ms show a stream, then gaps of
        // 25, 50, 100, 200, 400 ms: a dozen runs for a second of triggers, not a thousand.
        assert!(
            (6..=16).contains(&runs),
            "{runs} runs for 1000 triggers over 1 s"
        );
        tokio::time::sleep(MAX_GAP).await;
        q.add("world");
        let t = Instant::now();
        q.next().await;
        assert_eq!(
            t.elapsed(),
            Duration::ZERO,
            "a lone trigger after a quiet spell runs at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn plain_triggers_should_never_widen_the_gap() {
        let q = WorkQueue::new();
        for _ in 0..20 {
            q.add("world");
            let t = Instant::now();
            let key = q.next().await;
            assert!(t.elapsed() <= MIN_GAP, "{:?}", t.elapsed());
            q.add("world");
            q.done(&key, true);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn queue_should_serve_other_keys_while_one_backs_off() {
        let q = WorkQueue::new();
        q.add("bad");
        let key = q.next().await;
        q.done(&key, false);
        q.add("good");
        assert_eq!(q.next().await, "good");
    }

    #[test]
    fn backoff_should_cap_at_a_minute() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(30), BACKOFF_MAX);
    }
}
