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
use serde_json::Value;

use crate::api::{Manifests, SessionOwner};
use crate::observe::Observed;
use crate::plan::Plan;
use crate::state::journal::Kind;

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
pub struct Metrics {
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
    claimed: Mutex<HashMap<String, Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under `failover_`.
    pub fn new() -> Self {
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

    /// Counts a journal entry of `kind` with its `fields`, and whether writing it
    /// failed.
    pub fn journaled(&self, kind: Kind, fields: &Value, write_failed: bool) {
        if write_failed {
            self.journal_errors.inc();
        }
        let ok = fields["ok"] != false;
        let outcome = match kind {
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
        let task = &fields["action"]["task"];
        let key = format!(
            "{}/{}",
            task["inbox"].as_str().unwrap_or(""),
            task["name"].as_str().unwrap_or("")
        );
        let mut claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        match kind {
            Kind::TaskClaimed if ok => {
                claimed.insert(key, Instant::now());
            }
            Kind::Action if ok && fields["action"]["action"] == "submitTask" => {
                if let Some(at) = claimed.remove(&key) {
                    self.dispatch_seconds.observe(at.elapsed().as_secs_f64());
                }
            }
            Kind::TaskDone | Kind::TaskFailed | Kind::TaskRequeued => {
                claimed.remove(&key);
            }
            Kind::Swap => {
                self.swaps.inc();
            }
            Kind::QuotaDetected => {
                self.quota_readings
                    .get_or_create(&AccountLabels {
                        account: fields["account"].as_str().unwrap_or("").to_owned(),
                    })
                    .inc();
            }
            _ => {}
        }
    }

    /// Counts a round that took `took`, with what it saw and planned.
    pub fn reconciled(
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
            let role = match m.session_owner(&s.name) {
                Some(SessionOwner::Dedicated(_)) => "dedicated".to_owned(),
                Some(SessionOwner::Pool { pool, .. }) => format!("pool/{}", pool.name),
                None if ours => "orphan".to_owned(),
                None => continue,
            };
            let state = match (ours, s.pane.dead) {
                (false, _) => "not ours",
                (true, true) => "exited",
                (true, false) => "running",
            };
            self.sessions
                .get_or_create(&SessionLabels {
                    role,
                    state: state.to_owned(),
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
    pub fn queued(&self, depth: usize) {
        self.queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Why the metrics cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
pub async fn listen(address: &str) -> Result<tokio::net::TcpListener, Error> {
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
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
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
    use serde_json::json;

    #[test]
    fn task_and_swap_counters_should_follow_the_journal_entries() {
        let m = Metrics::new();
        let task = json!({"inbox": "i", "name": "t.md"});
        m.journaled(
            Kind::TaskClaimed,
            &json!({"ok": true, "action": {"task": task}}),
            false,
        );
        m.journaled(
            Kind::Action,
            &json!({"ok": true, "action": {"action": "submitTask", "task": task}}),
            false,
        );
        m.journaled(
            Kind::TaskDone,
            &json!({"ok": true, "action": {"task": task}}),
            false,
        );
        m.journaled(
            Kind::TaskDone,
            &json!({"ok": false, "action": {"task": task}}),
            false,
        );
        m.journaled(Kind::Swap, &json!({"from": "a", "to": "b"}), true);
        m.journaled(Kind::QuotaDetected, &json!({"account": "a"}), false);
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
