//! Beyond one machine: a controller that joins a fleet (a `fleet` section in its
//! ControllerConfig) holds an etcd lease while it runs, publishes its status under
//! `<prefix>nodes/<node>` (and when it was last seen under `<prefix>seen/<node>`), and
//! shares one ledger of the accounts (`<prefix>accounts/<name>`): an exhaustion or a
//! use reading one node learns is written there with a compare-and-swap, and every node
//! watches the ledger and takes what it learns as if its own agents had said it, so its
//! sessions move before their turns meet the limit. When etcd cannot be reached the
//! node runs on its own state folder, says so, and merges what it learned once etcd
//! answers again. Without a `fleet` section none of this runs.
//!
//! What the ledger tells reaches the controller as [`News`]; the controller hands it to
//! its next round (`Observed::fleet`), where the planner takes it into the facts. A
//! node's status is a [`NodeStatus`] (`node`), written here and read by `failover get`.

pub(crate) mod etcd;
pub(crate) mod ledger;
pub(crate) mod node;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use self::etcd::{Change, Etcd};
use self::ledger::{Entry, Local};
pub(crate) use self::node::{NodeInbox, NodeSession, NodeStatus, RoundStatus, Seen};
use crate::api::FleetSpec;

/// How often a node that lost etcd tries again.
const RETRY: Duration = Duration::from_secs(1);

/// How many times a ledger write is tried against concurrent writers.
const CAS_TRIES: usize = 8;

/// What the fleet tells the controller.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum News {
    /// What the ledger knows that this node did not, by account.
    Ledger(BTreeMap<String, Local>),
    /// etcd cannot be reached: why. The node keeps running on its own.
    Degraded(String),
    /// etcd answers again; what the node learned meanwhile is merged.
    Restored,
}

/// What the controller tells the fleet after a round.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Report {
    /// What it knows of each account.
    pub accounts: BTreeMap<String, Local>,
    /// What its last round saw, as `failover get nodes` and `--fleet` show it; none
    /// before its first round.
    pub status: Option<RoundStatus>,
}

/// The controller's end of its fleet membership.
#[derive(Debug)]
pub(crate) struct Handle {
    /// What the fleet says.
    pub news: mpsc::Receiver<News>,
    /// Where the controller's reports go.
    pub report: watch::Sender<Report>,
    /// The node's name.
    pub node: String,
}

/// The keys of a fleet.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys under `prefix` (ending in `/`).
    pub(crate) fn new(prefix: &str) -> Self {
        let mut prefix = prefix.to_owned();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { prefix }
    }

    /// Where the accounts' entries live.
    pub(crate) fn accounts(&self) -> String {
        format!("{}accounts/", self.prefix)
    }

    /// Where the nodes' statuses live (with their lease).
    pub(crate) fn nodes(&self) -> String {
        format!("{}nodes/", self.prefix)
    }

    /// Where the time each node was last seen lives (without a lease).
    pub(crate) fn seen(&self) -> String {
        format!("{}seen/", self.prefix)
    }
}

/// This machine's name in the fleet: the spec's, else the host name.
pub(crate) fn node_name(spec: &FleetSpec) -> String {
    if !spec.node.is_empty() {
        return spec.node.clone();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Joins the fleet `spec` names, in the background; `None` without a fleet section.
pub(crate) fn join(spec: &FleetSpec) -> Result<Option<Handle>, etcd::Error> {
    if spec.endpoints.is_empty() {
        return Ok(None);
    }
    let etcd = Arc::new(Etcd::for_fleet(spec)?);
    let (news_tx, news) = mpsc::channel(64);
    let (report, report_rx) = watch::channel(Report::default());
    let node = node_name(spec);
    let member = Member {
        etcd,
        keys: Keys::new(&spec.prefix),
        node: node.clone(),
        ttl: spec.lease_ttl.0.as_secs().max(2),
        news: news_tx,
        reports: report_rx,
        lease: None,
        ledger: BTreeMap::new(),
        degraded: None,
    };
    tokio::spawn(member.run());
    Ok(Some(Handle { news, report, node }))
}

/// The node's side of the fleet, run as a task.
struct Member {
    etcd: Arc<Etcd>,
    keys: Keys,
    node: String,
    ttl: u64,
    news: mpsc::Sender<News>,
    reports: watch::Receiver<Report>,
    lease: Option<i64>,
    /// The ledger as last read or watched: account → (entry, its revision).
    ledger: BTreeMap<String, (Entry, i64)>,
    degraded: Option<String>,
}

impl Member {
    async fn run(mut self) {
        let mut changes: Option<mpsc::Receiver<Change>> = None;
        // A degraded node tries again every RETRY; a joined one keeps its lease alive
        // every third of its time to live.
        let mut tick = tokio::time::interval(RETRY);
        let keep_every = Duration::from_secs(self.ttl / 3).max(RETRY);
        let mut kept = tokio::time::Instant::now();
        loop {
            tokio::select! {
                changed = self.reports.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if self.lease.is_some()
                        && let Err(e) = self.publish().await
                    {
                        self.lost(e.to_string(), &mut changes).await;
                    }
                }
                change = next(&mut changes) => {
                    let result = match change {
                        Some(Change::Put(kv)) => {
                            self.learn(&kv.key, &kv.value, kv.mod_revision);
                            self.tell().await;
                            Ok(())
                        }
                        Some(Change::Delete(key)) => {
                            if let Some(account) = key.strip_prefix(&self.keys.accounts()) {
                                self.ledger.remove(account);
                            }
                            Ok(())
                        }
                        Some(Change::Restarted) => self.sync().await,
                        None => Err(etcd::Error::Unreachable("the watch ended".to_owned())),
                    };
                    if let Err(e) = result {
                        self.lost(e.to_string(), &mut changes).await;
                    }
                }
                _ = tick.tick() => {
                    if self.lease.is_some() && kept.elapsed() < keep_every {
                        continue;
                    }
                    kept = tokio::time::Instant::now();
                    let result = match self.lease {
                        Some(lease) => match self.etcd.keepalive(lease).await {
                            Ok(true) => self.status().await,
                            Ok(false) => Err(etcd::Error::Answer("the lease expired".to_owned())),
                            Err(e) => Err(e),
                        },
                        None => self.connect(&mut changes).await,
                    };
                    if let Err(e) = result {
                        self.lost(e.to_string(), &mut changes).await;
                    }
                }
            }
        }
    }

    /// Takes a lease, reads the ledger, watches it, and merges what this node knows.
    async fn connect(
        &mut self,
        changes: &mut Option<mpsc::Receiver<Change>>,
    ) -> Result<(), etcd::Error> {
        let lease = self.etcd.grant(self.ttl).await?;
        self.lease = Some(lease);
        let revision = self.read_ledger().await?;
        *changes = Some(self.etcd.watch(&self.keys.accounts(), revision + 1));
        self.status().await?;
        if let Some(why) = self.degraded.take() {
            info!(node = %self.node, was = %why, "fleet: etcd answers again; merging");
            let _ = self.news.send(News::Restored).await;
        } else {
            info!(node = %self.node, "fleet: joined");
        }
        self.tell().await;
        self.publish().await
    }

    /// Reads the whole ledger; the revision read at.
    async fn read_ledger(&mut self) -> Result<i64, etcd::Error> {
        let (kvs, revision) = self.etcd.range(&self.keys.accounts()).await?;
        self.ledger.clear();
        for kv in kvs {
            self.learn(&kv.key, &kv.value, kv.mod_revision);
        }
        Ok(revision)
    }

    /// After a broken watch: the ledger read again, and told.
    async fn sync(&mut self) -> Result<(), etcd::Error> {
        self.read_ledger().await?;
        self.tell().await;
        Ok(())
    }

    fn learn(&mut self, key: &str, value: &str, revision: i64) {
        let Some(account) = key.strip_prefix(&self.keys.accounts()) else {
            return;
        };
        match serde_json::from_str::<Entry>(value) {
            Ok(entry) => {
                self.ledger.insert(account.to_owned(), (entry, revision));
            }
            Err(e) => {
                // Kept with its revision, empty: our next write replaces it.
                warn!(key, error = %e, "fleet: a ledger entry that is not one; it will be replaced");
                self.ledger
                    .insert(account.to_owned(), (Entry::default(), revision));
            }
        }
    }

    /// Tells the controller what the ledger knows that it did not.
    async fn tell(&mut self) {
        let now = jiff::Timestamp::now();
        let report = self.reports.borrow().clone();
        let mut news = BTreeMap::new();
        for (account, (entry, _)) in &self.ledger {
            let local = report.accounts.get(account).cloned().unwrap_or_default();
            let merged = ledger::merge(Some(entry), &local, &self.node, now);
            if merged.adopt != Local::default() {
                news.insert(account.clone(), merged.adopt);
            }
        }
        if !news.is_empty() {
            let _ = self.news.send(News::Ledger(news)).await;
        }
    }

    /// Writes what this node knows that the ledger does not, account by account, with
    /// a compare-and-swap on each entry's revision.
    async fn publish(&mut self) -> Result<(), etcd::Error> {
        let report = self.reports.borrow_and_update().clone();
        for (account, local) in &report.accounts {
            let key = format!("{}{account}", self.keys.accounts());
            let mut settled = false;
            for _ in 0..CAS_TRIES {
                let now = jiff::Timestamp::now();
                let (remote, revision) = match self.ledger.get(account) {
                    Some((e, r)) => (Some(e.clone()), *r),
                    None => (None, 0),
                };
                let merged = ledger::merge(remote.as_ref(), local, &self.node, now);
                let Some(entry) = merged.write else {
                    settled = true;
                    break;
                };
                let text = serde_json::to_string(&entry).unwrap_or_default();
                if let Some(written) = self.etcd.put_if(&key, &text, revision).await? {
                    self.ledger.insert(account.clone(), (entry, written));
                    settled = true;
                    break;
                }
                // Another node wrote first: read its entry and merge again.
                let (kvs, _) = self.etcd.range(&key).await?;
                self.ledger.remove(account);
                for kv in kvs.iter().filter(|kv| kv.key == key) {
                    self.learn(&kv.key, &kv.value, kv.mod_revision);
                }
            }
            if !settled {
                // Written over by others every time: tried again on the next change.
                warn!(
                    account,
                    tries = CAS_TRIES,
                    "fleet: the ledger entry kept changing; not written this time"
                );
            }
        }
        self.status().await
    }

    /// Writes the node's status with its lease, and when it was last seen.
    async fn status(&self) -> Result<(), etcd::Error> {
        let Some(lease) = self.lease else {
            return Ok(());
        };
        let now = jiff::Timestamp::now();
        let status = NodeStatus {
            round: self.reports.borrow().status.clone(),
            node: self.node.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            updated: now,
        };
        // Strings, numbers and times only: their JSON cannot fail.
        let text = serde_json::to_string(&status).unwrap_or_default();
        let node_key = format!("{}{}", self.keys.nodes(), self.node);
        self.etcd.put(&node_key, &text, Some(lease)).await?;
        let seen = Seen {
            node: self.node.clone(),
            at: now,
        };
        let seen_key = format!("{}{}", self.keys.seen(), self.node);
        let text = serde_json::to_string(&seen).unwrap_or_default();
        self.etcd.put(&seen_key, &text, None).await
    }

    /// etcd is lost: the node runs on its own until it answers again.
    async fn lost(&mut self, why: String, changes: &mut Option<mpsc::Receiver<Change>>) {
        self.lease = None;
        *changes = None;
        if self.degraded.is_none() {
            warn!(node = %self.node, error = %why, "fleet: degraded, running on the local state");
            let _ = self.news.send(News::Degraded(why.clone())).await;
        }
        self.degraded = Some(why);
    }
}

/// The next change of a watch, or never without one.
async fn next(changes: &mut Option<mpsc::Receiver<Change>>) -> Option<Change> {
    match changes {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
