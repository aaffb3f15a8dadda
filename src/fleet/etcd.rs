//! A small etcd v3 client over etcd's own JSON gateway (`/v3/kv/range`, `/v3/kv/txn`,
//! `/v3/lease/*`, `/v3/watch`): the few calls the fleet needs, each endpoint tried in
//! turn, keys and values base64 as the gateway wants them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why etcd could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No endpoint answered.
    #[error("etcd unreachable ({0})")]
    Unreachable(String),
    /// An endpoint answered with an error.
    #[error("etcd: {0}")]
    Answer(String),
    /// The client could not be set up.
    #[error("etcd client: {0}")]
    Client(String),
}

/// One key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    /// The key.
    pub key: String,
    /// The value (UTF-8).
    pub value: String,
    /// The revision it was last written at.
    pub mod_revision: i64,
}

/// A change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key written.
    Put(Kv),
    /// A key deleted (or its lease expired).
    Delete(String),
    /// The watch broke and started again: what it holds may have been missed.
    Restarted,
}

/// A user and password for etcd's authentication.
#[derive(Clone)]
pub struct Credentials {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// A client of one etcd cluster.
#[derive(Debug)]
pub struct Etcd {
    endpoints: Vec<String>,
    http: reqwest::Client,
    /// The endpoint that answered last, tried first.
    current: AtomicUsize,
    credentials: Option<Credentials>,
    /// The token of the last authentication.
    token: std::sync::Mutex<Option<String>>,
}

fn b64(text: &str) -> String {
    B64.encode(text.as_bytes())
}

fn unb64(v: &Value) -> String {
    v.as_str()
        .and_then(|s| B64.decode(s).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// An int64 as the gateway writes it (a string), or 0.
fn int(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_i64())
        .unwrap_or(0)
}

/// The end of the range of keys starting with `prefix`.
fn range_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0xff {
            bytes.push(last + 1);
            return B64.encode(&bytes);
        }
    }
    B64.encode([0u8])
}

fn kv(v: &Value) -> Kv {
    Kv {
        key: unb64(&v["key"]),
        value: unb64(&v["value"]),
        mod_revision: int(&v["mod_revision"]),
    }
}

impl Etcd {
    /// A client of the cluster at `endpoints`, trusting `ca_file` besides the system's
    /// authorities when it is not empty.
    pub fn new(endpoints: &[String], ca_file: &std::path::Path) -> Result<Self, Error> {
        let builder = crate::https::builder(ca_file)
            .map_err(|e| Error::Client(format!("{}: {e}", ca_file.display())))?
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_millis(500));
        Ok(Self {
            endpoints: endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_owned())
                .collect(),
            http: builder.build().map_err(|e| Error::Client(e.to_string()))?,
            current: AtomicUsize::new(0),
            credentials: None,
            token: std::sync::Mutex::new(None),
        })
    }

    /// The same client, authenticating as `credentials`.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// A client for the fleet `spec` names: its endpoints, CA and user.
    pub fn for_fleet(spec: &crate::api::FleetSpec) -> Result<Self, Error> {
        let credentials = if spec.username.is_empty() {
            None
        } else {
            let text = std::fs::read_to_string(&spec.password_file).map_err(|e| {
                Error::Client(format!(
                    "password file {}: {e}",
                    spec.password_file.display()
                ))
            })?;
            Some(Credentials {
                user: spec.username.clone(),
                password: text.lines().next().unwrap_or("").to_owned(),
            })
        };
        Ok(Self::new(&spec.endpoints, &spec.ca_file)?.with_credentials(credentials))
    }

    fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_token(&self, token: Option<String>) {
        *self.token.lock().unwrap_or_else(|p| p.into_inner()) = token;
    }

    /// Authenticates, when credentials are set and no token is held.
    async fn authenticate(&self, endpoint: &str) -> Result<(), Error> {
        let Some(c) = &self.credentials else {
            return Ok(());
        };
        if self.token().is_some() {
            return Ok(());
        }
        let unreachable =
            |e: reqwest::Error| Error::Unreachable(format!("{endpoint}: {}", crate::https::why(e)));
        let answer = self
            .http
            .post(format!("{endpoint}/v3/auth/authenticate"))
            .header("content-type", "application/json")
            .body(json!({"name": c.user, "password": c.password}).to_string())
            .send()
            .await
            .map_err(unreachable)?;
        let bytes = answer.bytes().await.map_err(unreachable)?;
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        match v["token"].as_str() {
            Some(token) => {
                self.set_token(Some(token.to_owned()));
                Ok(())
            }
            None => Err(Error::Answer(format!(
                "authentication of user {} refused: {}",
                c.user,
                v["message"].as_str().unwrap_or("no token")
            ))),
        }
    }

    /// A POST of `body` to `url`, with the token when one is held.
    fn post(&self, url: String, body: &Value) -> reqwest::RequestBuilder {
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(token) = self.token() {
            request = request.header("authorization", token);
        }
        request
    }

    /// POSTs `body` to `path` on the first endpoint that answers.
    async fn call(&self, path: &str, body: &Value) -> Result<Value, Error> {
        Ok(self.call_dated(path, body).await?.0)
    }

    /// [`Etcd::call`], with the HTTP `Date` header of the answer, when it has one.
    async fn call_dated(&self, path: &str, body: &Value) -> Result<(Value, Option<String>), Error> {
        let n = self.endpoints.len();
        let first = self.current.load(Ordering::Relaxed);
        let mut last = String::from("no endpoint");
        // An endpoint is tried again once when it said the token had expired.
        let mut tries: Vec<usize> = (0..n).map(|i| (first + i) % n).collect();
        let mut renewed = false;
        while let Some(at) = (!tries.is_empty()).then(|| tries.remove(0)) {
            let url = format!("{}{path}", self.endpoints[at]);
            match self.authenticate(&self.endpoints[at]).await {
                Err(Error::Unreachable(why)) => {
                    last = why;
                    continue;
                }
                Err(other) => return Err(other),
                Ok(()) => {}
            }
            let sent = self.post(url, body).send().await;
            match sent {
                Ok(answer) => {
                    let status = answer.status();
                    let date = answer
                        .headers()
                        .get(reqwest::header::DATE)
                        .and_then(|d| d.to_str().ok())
                        .map(str::to_owned);
                    let bytes = answer
                        .bytes()
                        .await
                        .map_err(|e| Error::Answer(format!("{path}: {}", e.without_url())))?;
                    let v: Value = serde_json::from_slice(&bytes)
                        .map_err(|e| Error::Answer(format!("{path}: {e}")))?;
                    if !status.is_success() {
                        let message = v["message"].as_str().unwrap_or("error");
                        // A member without quorum answers 503: the next one may have it.
                        last = format!("{}: {message}", self.endpoints[at]);
                        // An expired token: authenticate again, and try once more.
                        if message.contains("token") && self.credentials.is_some() {
                            self.set_token(None);
                            if !renewed {
                                renewed = true;
                                tries.insert(0, at);
                            }
                            continue;
                        }
                        if status.is_server_error() {
                            continue;
                        }
                        return Err(Error::Answer(last));
                    }
                    self.current.store(at, Ordering::Relaxed);
                    return Ok((v, date));
                }
                Err(e) => last = format!("{}: {}", self.endpoints[at], crate::https::why(e)),
            }
        }
        Err(Error::Unreachable(last))
    }

    /// Every key under `prefix`, and the cluster's revision.
    pub async fn range(&self, prefix: &str) -> Result<(Vec<Kv>, i64), Error> {
        let (kvs, revision, _) = self.range_with_date(prefix).await?;
        Ok((kvs, revision))
    }

    /// Every key under `prefix`, with the answer's HTTP `Date` (etcd's clock, to the
    /// second), for `failover doctor`.
    pub(crate) async fn range_dated(
        &self,
        prefix: &str,
    ) -> Result<(Vec<Kv>, Option<String>), Error> {
        let (kvs, _, date) = self.range_with_date(prefix).await?;
        Ok((kvs, date))
    }

    /// Every key under `prefix`, the cluster's revision and the answer's `Date`.
    async fn range_with_date(&self, prefix: &str) -> Result<(Vec<Kv>, i64, Option<String>), Error> {
        let (v, date) = self
            .call_dated(
                "/v3/kv/range",
                &json!({"key": b64(prefix), "range_end": range_end(prefix)}),
            )
            .await?;
        let kvs = v["kvs"]
            .as_array()
            .map(|a| a.iter().map(kv).collect())
            .unwrap_or_default();
        Ok((kvs, int(&v["header"]["revision"]), date))
    }

    /// Writes `key`, attached to `lease` when given.
    pub async fn put(&self, key: &str, value: &str, lease: Option<i64>) -> Result<(), Error> {
        let mut body = json!({"key": b64(key), "value": b64(value)});
        if let Some(lease) = lease {
            body["lease"] = Value::String(lease.to_string());
        }
        self.call("/v3/kv/put", &body).await.map(|_| ())
    }

    /// Writes `key` only if it was last written at `mod_revision` (0: it does not
    /// exist): the revision it was written at, or `None` when it was not.
    pub async fn put_if(
        &self,
        key: &str,
        value: &str,
        mod_revision: i64,
    ) -> Result<Option<i64>, Error> {
        let body = json!({
            "compare": [{"key": b64(key), "result": "EQUAL", "target": "MOD",
                         "mod_revision": mod_revision.to_string()}],
            "success": [{"request_put": {"key": b64(key), "value": b64(value)}}],
        });
        let v = self.call("/v3/kv/txn", &body).await?;
        Ok((v["succeeded"] == true).then(|| int(&v["header"]["revision"])))
    }

    /// A lease of `ttl` seconds: its id.
    pub async fn grant(&self, ttl: u64) -> Result<i64, Error> {
        let v = self
            .call("/v3/lease/grant", &json!({"TTL": ttl.to_string()}))
            .await?;
        match int(&v["ID"]) {
            0 => Err(Error::Answer("no lease granted".to_owned())),
            id => Ok(id),
        }
    }

    /// Keeps `lease` alive: false when it has expired.
    pub async fn keepalive(&self, lease: i64) -> Result<bool, Error> {
        let v = self
            .call("/v3/lease/keepalive", &json!({"ID": lease.to_string()}))
            .await?;
        Ok(int(&v["result"]["TTL"]) > 0)
    }

    /// Watches every key under `prefix` from `revision` on, until the receiver is
    /// dropped; a broken watch is started again (on any endpoint) from the revision
    /// after the last it saw, and says [`Change::Restarted`] when it could not be.
    pub fn watch(
        self: &std::sync::Arc<Self>,
        prefix: &str,
        revision: i64,
    ) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel(256);
        let etcd = self.clone();
        let prefix = prefix.to_owned();
        tokio::spawn(async move {
            let mut next = revision;
            loop {
                match etcd.watch_once(&prefix, &mut next, &tx).await {
                    Ok(()) | Err(_) if tx.is_closed() => return,
                    _ => {}
                }
                if tx.send(Change::Restarted).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        rx
    }

    /// One watch stream, until it breaks.
    async fn watch_once(
        &self,
        prefix: &str,
        next: &mut i64,
        tx: &mpsc::Sender<Change>,
    ) -> Result<(), Error> {
        let n = self.endpoints.len();
        let at = self.current.load(Ordering::Relaxed) % n.max(1);
        let mut last = String::new();
        for i in 0..n {
            let endpoint = &self.endpoints[(at + i) % n];
            let body = json!({"create_request": {"key": b64(prefix), "range_end": range_end(prefix),
                "start_revision": next.to_string()}});
            if let Err(e) = self.authenticate(endpoint).await {
                last = e.to_string();
                continue;
            }
            // A watch lives long: no overall timeout, only for the connection.
            let sent = self
                .post(format!("{endpoint}/v3/watch"), &body)
                .timeout(Duration::from_secs(24 * 3600))
                .send()
                .await;
            let mut answer = match sent {
                Ok(a) if a.status().is_success() => a,
                Ok(a) => {
                    last = format!("{endpoint}: {}", a.status());
                    continue;
                }
                Err(e) => {
                    last = format!("{endpoint}: {}", crate::https::why(e));
                    continue;
                }
            };
            let mut buffer = Vec::new();
            loop {
                // Ends with the stream, or as soon as nobody listens any more.
                let chunk = tokio::select! {
                    chunk = answer.chunk() => chunk,
                    () = tx.closed() => return Ok(()),
                };
                let Ok(Some(chunk)) = chunk else { break };
                buffer.extend_from_slice(&chunk);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                        continue;
                    };
                    // A revision compacted away: etcd cancels the watch and says no more.
                    // Start again from now; the reader reads everything again.
                    if v["result"]["canceled"] == true {
                        *next = int(&v["result"]["compact_revision"]);
                        return Err(Error::Answer(format!(
                            "{endpoint}: the watch was cancelled ({})",
                            v["result"]["cancel_reason"].as_str().unwrap_or("compacted")
                        )));
                    }
                    for e in v["result"]["events"].as_array().into_iter().flatten() {
                        let kv = kv(&e["kv"]);
                        *next = (*next).max(kv.mod_revision + 1);
                        let change = if e["type"] == "DELETE" {
                            Change::Delete(kv.key)
                        } else {
                            Change::Put(kv)
                        };
                        if tx.send(change).await.is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            return Err(Error::Unreachable(format!("{endpoint}: the watch ended")));
        }
        Err(Error::Unreachable(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_should_end_after_its_last_key() {
        assert_eq!(B64.decode(range_end("/f/")).unwrap(), b"/f0");
        assert_eq!(B64.decode(range_end("a\u{7f}")).unwrap(), b"a\x80");
    }
}
