//! The controller's Prometheus metrics: counted from what it journals (tasks by
//! outcome, swaps, quota readings, journal write errors, dispatch latency) and from each
//! round (reconciles and their duration, queue depth, sessions by role, state and
//! account, the accounts' use), served as text on `GET /metrics` when
//! `metrics.enabled` is set. Counting from the journal's own entries keeps the counters
//! and the journal in step.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::Manifests;
use crate::journal::{Acted, Entry, Kind};
use crate::observe::Observed;
use crate::plan::Plan;
use crate::plan::{Action, Event, Role, TaskAction, TaskKey};

/// A session's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SessionLabels {
    role: String,
    state: String,
    account: String,
}

/// A task outcome's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// An account's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

/// An account's usage window.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UsageLabels {
    account: String,
    window: String,
}

/// The metrics of one controller.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    reconciles: Counter,
    reconcile_seconds: Histogram,
    queue_depth: Gauge,
    sessions: Family<SessionLabels, Gauge>,
    tasks: Family<OutcomeLabels, Counter>,
    dispatch_seconds: Histogram,
    swaps: Counter,
    quota_readings: Family<AccountLabels, Counter>,
    usage: Family<UsageLabels, Gauge<f64, AtomicU64>>,
    journal_errors: Counter,
    /// When each task in flight was claimed (`inbox/name`), for the dispatch latency.
    claimed: Mutex<HashMap<TaskKey, Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under `failover_`.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("failover");
        let m = Self {
            reconciles: Counter::default(),
            reconcile_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            queue_depth: Gauge::default(),
            sessions: Family::default(),
            tasks: Family::default(),
            dispatch_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            swaps: Counter::default(),
            quota_readings: Family::default(),
            usage: Family::default(),
            journal_errors: Counter::default(),
            claimed: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "reconciles",
            "Rounds of observe, plan and act",
            m.reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long a round took",
            m.reconcile_seconds.clone(),
        );
        registry.register(
            "queue_depth",
            "Keys waiting in the work queue",
            m.queue_depth.clone(),
        );
        registry.register(
            "sessions",
            "Sessions the manifests want or failover owns, by role, state and account",
            m.sessions.clone(),
        );
        registry.register("tasks", "Tasks by outcome, as journaled", m.tasks.clone());
        registry.register(
            "dispatch_latency_seconds",
            "From a task's claim to its text submitted to the agent",
            m.dispatch_seconds.clone(),
        );
        registry.register(
            "swaps",
            "Moves of the sessions to another account",
            m.swaps.clone(),
        );
        registry.register(
            "quota_readings",
            "Quota limits seen on a screen or reported by an agent, by account",
            m.quota_readings.clone(),
        );
        registry.register(
            "usage_percent",
            "Each account's use of its rate-limit windows, as its agents' status lines say",
            m.usage.clone(),
        );
        registry.register(
            "journal_write_errors",
            "Journal entries that could not be written",
            m.journal_errors.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts a journal entry, and whether writing it failed.
    pub(crate) fn journaled(&self, entry: &Entry, write_failed: bool) {
        if write_failed {
            self.journal_errors.inc();
        }
        match entry {
            Entry::Acted(acted) => self.acted(acted),
            Entry::Event(Event::Swap { .. }) => {
                self.swaps.inc();
            }
            Entry::Event(Event::QuotaDetected { account, .. }) => {
                self.quota_readings
                    .get_or_create(&AccountLabels {
                        account: account.clone(),
                    })
                    .inc();
            }
            Entry::Event(_) | Entry::Controller(_) | Entry::Refused(_) | Entry::Unknown(_) => {}
        }
    }

    /// Counts a task's claim, submission and ending: tasks by outcome, and the time from
    /// claim to submission.
    fn acted(&self, acted: &Acted) {
        let ok = acted.ok();
        let outcome = match acted.event {
            Kind::TaskClaimed => Some("claimed"),
            Kind::TaskDone => Some("done"),
            Kind::TaskFailed => Some("failed"),
            Kind::TaskRequeued => Some("requeued"),
            Kind::TaskStalled => Some("stalled"),
            _ => None,
        };
        if let Some(outcome) = outcome.filter(|_| ok) {
            self.tasks
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.to_owned(),
                })
                .inc();
        }
        let Some(key) = acted.task() else { return };
        let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        match (&acted.action, acted.event) {
            (_, Kind::TaskClaimed) if ok => {
                claimed.insert(key, Instant::now());
            }
            (Action::Task(TaskAction::SubmitTask { .. }), _) if ok => {
                if let Some(at) = claimed.remove(&key) {
                    self.dispatch_seconds.observe(at.elapsed().as_secs_f64());
                }
            }
            (_, Kind::TaskDone | Kind::TaskFailed | Kind::TaskRequeued) => {
                claimed.remove(&key);
            }
            _ => {}
        }
    }

    /// Counts a round that took `took`, with what it saw and planned.
    pub(crate) fn reconciled(
        &self,
        took: Duration,
        m: &Manifests,
        observed: &Observed,
        plan: &Plan,
        owner: &str,
    ) {
        self.reconciles.inc();
        self.reconcile_seconds.observe(took.as_secs_f64());
        self.sessions.clear();
        for s in observed.sessions.values() {
            let ours = s.is_ours(owner);
            // A label: `pool/P`, not the role's words.
            let role = match m.session_owner(&s.name).map(Role::from) {
                Some(Role::Dedicated) => "dedicated".to_owned(),
                Some(Role::Pool { pool, .. }) => format!("pool/{pool}"),
                None if ours => "orphan".to_owned(),
                None => continue,
            };
            let state = s.state(owner).to_string();
            self.sessions
                .get_or_create(&SessionLabels {
                    role,
                    state,
                    account: s.account.clone().unwrap_or_default(),
                })
                .inc();
        }
        self.usage.clear();
        for (account, reading) in &plan.facts.usage {
            for (window, w) in [
                ("5h", reading.usage.five_hour),
                ("7d", reading.usage.seven_day),
            ] {
                if let Some(w) = w {
                    self.usage
                        .get_or_create(&UsageLabels {
                            account: account.clone(),
                            window: window.to_owned(),
                        })
                        .set(w.used);
                }
            }
        }
    }

    /// Sets how many keys wait in the work queue.
    pub(crate) fn queued(&self, depth: usize) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The metrics in Prometheus text format.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Why the metrics cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The address could not be listened on.
    #[error("metrics: cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Listens on `address`; the address bound (its port chosen when `address` gave 0).
pub(crate) async fn listen(address: &str) -> Result<tokio::net::TcpListener, Error> {
    let fail = |source| Error::Listen {
        address: address.to_owned(),
        source,
    };
    let address: SocketAddr = address
        .parse()
        .map_err(|e| fail(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    tokio::net::TcpListener::bind(address).await.map_err(fail)
}

/// Serves `GET /metrics` on `listener` until the task is dropped: HTTP/1.1, one small
/// task per connection; any other path is 404.
pub(crate) async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, most often: a breath, not a busy loop.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let metrics = metrics.clone();
                    async move {
                        if request.uri().path() == "/metrics" {
                            Response::builder()
                                .header(
                                    "content-type",
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )
                                .body(Full::new(Bytes::from(metrics.encode())))
                        } else {
                            Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Full::new(Bytes::from_static(b"not found: try /metrics\n")))
                        }
                    }
                },
            );
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_and_swap_counters_should_follow_the_journal_entries() {
        let m = Metrics::new();
        let task = r#"{"inbox":"i","name":"t.md","session":"w-1","account":"a","attempt":1,"started":null}"#;
        let line = |event: &str, action: &str, ok: bool| {
            let error = if ok { "null" } else { "\"lost\"" };
            let text = format!(
                r#"{{"time":"2026-12-01T00:00:00Z","event":"{event}","action":{action},"ok":{ok},"error":{error}}}"#
            );
            serde_json::from_str::<crate::journal::Line>(&text)
                .unwrap_or_else(|e| panic!("{e}: {text}"))
                .entry
        };
        let claim =
            format!(r#"{{"action":"dispatchTask","task":{task},"pane":"%1","restart":null}}"#);
        let submit = format!(r#"{{"action":"submitTask","task":{task},"pane":"%1"}}"#);
        let done = format!(
            r#"{{"action":"completeTask","task":{task},"pane":"%1","pid":4,"how":"Stop report","exit":null}}"#
        );
        m.journaled(&line("taskClaimed", &claim, true), false);
        m.journaled(&line("action", &submit, true), false);
        m.journaled(&line("taskDone", &done, true), false);
        m.journaled(&line("taskDone", &done, false), false);
        let swap = Event::Swap {
            from: "a".into(),
            to: "b".into(),
            reason: "quota exhausted".into(),
            used: None,
        };
        m.journaled(&Entry::Event(swap), true);
        let quota: crate::journal::Line = serde_json::from_str(
            r#"{"time":"2026-12-01T00:00:00Z","event":"quotaDetected","account":"a","session":"w-1","class":"quota-exhausted","pattern":"p","line":"l","resetsAt":null,"confirmed":true,"source":"screen"}"#,
        )
        .unwrap();
        m.journaled(&quota.entry, false);
        let text = m.encode();
        for line in [
            "failover_tasks_total{outcome=\"done\"} 1",
            "failover_tasks_total{outcome=\"claimed\"} 1",
            "failover_swaps_total 1",
            "failover_journal_write_errors_total 1",
            "failover_quota_readings_total{account=\"a\"} 1",
            "failover_dispatch_latency_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
