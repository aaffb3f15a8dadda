//! What failover talks to over the network, asked without changing anything: each etcd
//! endpoint of the fleet (one read of this node's key, whose lease keeps it alive, and
//! the answer's `Date` for the clock), the metrics endpoint, and the notification
//! targets (an HTTP HEAD to the webhook, never a message; the command found).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::{Check, Fixes};
use crate::api::{ControllerConfigSpec, FleetSpec};
use crate::fleet::etcd::Etcd;

/// How long one HTTP request may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The largest difference from etcd's clock taken as agreement: a second, plus the half
/// second a `Date` header (whole seconds) may hide.
const SKEW: SignedDuration = SignedDuration::from_millis(1500);

/// What answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Facts {
    /// The fleet, with one.
    pub fleet: Option<Fleet>,
    /// The metrics address and what `GET /metrics` answered, when they are enabled.
    pub metrics: Option<(String, Result<u16, String>)>,
    /// The webhook's host and what a HEAD answered, with one.
    pub webhook: Option<(String, Result<u16, String>)>,
    /// The notification command's program and whether it was found, with one.
    pub command: Option<(String, bool)>,
}

/// The fleet's endpoints as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fleet {
    /// This node's name.
    pub node: String,
    /// Each endpoint and its answer.
    pub endpoints: Vec<(String, Result<Answer, String>)>,
}

/// One endpoint's answer to the read of this node's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Answer {
    /// Whether the node's key is there (it lives as long as the node's lease).
    pub lease_live: bool,
    /// etcd's clock, from the answer's `Date` header.
    pub date: Option<Timestamp>,
    /// This clock when the request left and when the answer came.
    pub sent: Timestamp,
    /// See `sent`.
    pub received: Timestamp,
}

/// Asks each target the ControllerConfig names.
pub(super) async fn gather(spec: &ControllerConfigSpec) -> Facts {
    let mut facts = Facts::default();
    if !spec.fleet.endpoints.is_empty() {
        facts.fleet = Some(gather_fleet(&spec.fleet).await);
    }
    let http = crate::https::builder(&spec.notifications.ca_file)
        .ok()
        .and_then(|b| b.timeout(TIMEOUT).connect_timeout(TIMEOUT).build().ok());
    if let Some(address) = spec.metrics.address() {
        let answer = match &http {
            Some(http) => {
                let url = format!("http://{}/metrics", loopback(address));
                http.get(&url)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(crate::https::why)
            }
            None => Err("no HTTP client".to_owned()),
        };
        facts.metrics = Some((address.to_owned(), answer));
    }
    if !spec.notifications.webhook.is_empty() {
        let url = &spec.notifications.webhook;
        let answer = match &http {
            Some(http) => http
                .head(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(crate::https::why),
            None => Err(format!(
                "its CA file {} cannot be read",
                spec.notifications.ca_file.display()
            )),
        };
        facts.webhook = Some((crate::notifications::host_of(url), answer));
    }
    if let Some(program) = spec.notifications.command.first() {
        facts.command = Some((program.clone(), super::machine::find(program).is_some()));
    }
    facts
}

/// An address to connect to for one listened on: the wildcard is reached on loopback.
fn loopback(address: &str) -> String {
    if let Some(port) = address.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = address.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        address.to_owned()
    }
}

async fn gather_fleet(spec: &FleetSpec) -> Fleet {
    let node = crate::fleet::node_name(spec);
    let key = format!("{}{node}", crate::fleet::Keys::new(&spec.prefix).nodes());
    let mut endpoints = Vec::new();
    for endpoint in &spec.endpoints {
        let one = FleetSpec {
            endpoints: vec![endpoint.clone()],
            ..spec.clone()
        };
        let answer = match Etcd::for_fleet(&one) {
            Err(e) => Err(e.to_string()),
            Ok(etcd) => {
                let sent = Timestamp::now();
                let read = etcd.range_dated(&key).await;
                let received = Timestamp::now();
                read.map(|(kvs, date)| Answer {
                    lease_live: kvs.iter().any(|kv| kv.key == key),
                    date: date.and_then(|d| {
                        jiff::fmt::rfc2822::DateTimeParser::new()
                            .parse_timestamp(&d)
                            .ok()
                    }),
                    sent,
                    received,
                })
                .map_err(|e| e.to_string())
            }
        };
        endpoints.push((endpoint.clone(), answer));
    }
    Fleet { node, endpoints }
}

/// The lines of the fleet, the metrics and the notifications.
pub(super) fn judge(f: &Facts, controller_running: bool, fixes: &Fixes) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(fleet) = &f.fleet {
        checks.extend(judge_fleet(fleet, controller_running, fixes));
    }
    if let Some((address, answer)) = &f.metrics {
        checks.push(match answer {
            Ok(200) => Check::ok("metrics", address.clone(), "GET /metrics answers"),
            Ok(code) => Check::fail(
                "metrics",
                address.clone(),
                format!("GET /metrics answers HTTP {code}: something else listens there"),
                "give ControllerConfig spec.metrics.listen a free address, then restart the controller",
            ),
            Err(why) => Check::fail(
                "metrics",
                address.clone(),
                format!("nothing answers: {why}"),
                if controller_running {
                    "see the controller's log: it could not listen there (address taken?)".to_owned()
                } else {
                    format!("start the controller, which serves them: {}", fixes.start_controller())
                },
            ),
        });
    }
    if let Some((host, answer)) = &f.webhook {
        checks.push(match answer {
            Ok(code) => Check::ok(
                "notify",
                "webhook",
                format!("{host} answers a HEAD (HTTP {code})"),
            ),
            Err(why) => Check::fail(
                "notify",
                "webhook",
                format!("{host} does not answer: {why}"),
                "check ControllerConfig spec.notifications.webhook (and caFile), and the network",
            ),
        });
    }
    if let Some((program, found)) = &f.command {
        checks.push(if *found {
            Check::ok("notify", "command", format!("{program} is there"))
        } else {
            Check::fail(
                "notify",
                "command",
                format!("{program} is not on PATH (nor an executable file)"),
                "install it, or fix ControllerConfig spec.notifications.command",
            )
        });
    }
    checks
}

fn judge_fleet(fleet: &Fleet, controller_running: bool, fixes: &Fixes) -> Vec<Check> {
    let mut checks: Vec<Check> = fleet
        .endpoints
        .iter()
        .map(|(endpoint, answer)| match answer {
            Ok(a) => {
                let ms = a.received.duration_since(a.sent).as_millis();
                Check::ok("etcd", endpoint.clone(), format!("answers ({ms} ms)"))
            }
            Err(why) => Check::fail(
                "etcd",
                endpoint.clone(),
                format!("does not answer: {why}"),
                "start etcd there, or remove the endpoint from ControllerConfig spec.fleet.endpoints (then restart the controller)",
            ),
        })
        .collect();
    // The lease and the clock, from the first endpoint that answered.
    let Some(a) = fleet.endpoints.iter().find_map(|(_, a)| a.as_ref().ok()) else {
        return checks;
    };
    let object = format!("node/{}", fleet.node);
    checks.push(match (a.lease_live, controller_running) {
        (true, _) => Check::ok("lease", object.clone(), "its lease is live"),
        (false, true) => Check::fail(
            "lease",
            object.clone(),
            "no live lease: the running controller is not in the fleet",
            "failover get events --for controller says why (a fleet section added since it started needs a restart)",
        ),
        (false, false) => Check::fail(
            "lease",
            object.clone(),
            "no live lease: no controller runs",
            fixes.start_controller(),
        ),
    });
    if let Some(date) = a.date {
        let half = a.received.duration_since(a.sent) / 2;
        let mid = a.sent + half;
        // The header says whole seconds: etcd's clock was within [date, date + 1 s).
        let skew = mid.duration_since(date + SignedDuration::from_millis(500));
        checks.push(if skew.abs() <= SKEW {
            Check::ok("clock", object, "agrees with etcd's within a second")
        } else {
            let way = if skew.is_positive() { "ahead of" } else { "behind" };
            Check::fail(
                "clock",
                object,
                format!(
                    "this clock is {:.1}s {way} etcd's: the ledger's reset times are compared across nodes",
                    skew.abs().as_secs_f64()
                ),
                "sync it: timedatectl set-ntp true (or run chrony), here and on the etcd hosts",
            )
        });
    }
    checks
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
