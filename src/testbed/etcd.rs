//! Real etcd servers for the fleet tests: a cluster of members on loopback ports, each
//! with its data in a temp folder, killed when dropped (panics included). When the
//! `etcd` binary is missing, [`Cluster::start`] says SKIPPED loudly and gives `None`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One member.
#[derive(Debug)]
struct Member {
    name: String,
    client: String,
    peer: String,
    data: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster.
#[derive(Debug)]
pub struct Cluster {
    members: Vec<Member>,
    initial: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Whether the `etcd` binary runs here.
pub fn available() -> bool {
    Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Cluster {
    /// Starts `n` members and waits until the cluster answers; `None`, said loudly,
    /// when etcd is not installed.
    pub fn start(n: usize) -> Option<Self> {
        if !available() {
            eprintln!(
                "SKIPPED: etcd is not installed (Debian: apt-get install etcd-server); \
                 the fleet tests need a real etcd"
            );
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("failover-etcd-")
            .tempdir()
            .unwrap_or_else(|e| panic!("temp folder: {e}"));
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("e{i}"),
                client: format!("http://127.0.0.1:{}", free_port()),
                peer: format!("http://127.0.0.1:{}", free_port()),
                data: dir.path().join(format!("e{i}")),
                child: None,
            })
            .collect();
        let initial = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            members,
            initial,
            _dir: dir,
        };
        for i in 0..n {
            cluster.run(i);
        }
        cluster.wait_healthy(Duration::from_secs(30));
        Some(cluster)
    }

    /// Starts member `i` (again, on its data).
    fn run(&mut self, i: usize) {
        let m = &mut self.members[i];
        let log = std::fs::File::create(m.data.with_extension("log"))
            .unwrap_or_else(|e| panic!("etcd log: {e}"));
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data)
            .args(["--listen-client-urls", &m.client])
            .args(["--advertise-client-urls", &m.client])
            .args(["--listen-peer-urls", &m.peer])
            .args(["--initial-advertise-peer-urls", &m.peer])
            .args(["--initial-cluster", &self.initial])
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
        m.child = Some(child);
    }

    /// The client URLs of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client.clone()).collect()
    }

    /// Turns etcd's authentication on, with the user `root` and `password`.
    pub fn enable_auth(&self, password: &str) {
        let address = self.members[0]
            .client
            .trim_start_matches("http://")
            .to_owned();
        for (path, body) in [
            (
                "/v3/auth/user/add",
                format!("{{\"name\":\"root\",\"password\":\"{password}\"}}"),
            ),
            ("/v3/auth/role/add", "{\"name\":\"root\"}".to_owned()),
            (
                "/v3/auth/user/grant",
                "{\"user\":\"root\",\"role\":\"root\"}".to_owned(),
            ),
            ("/v3/auth/enable", "{}".to_owned()),
        ] {
            let answer = post(&address, path, &body);
            assert!(answer.contains("header"), "{path}: {answer}");
        }
    }

    /// Kills member `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts member `i` again, and waits until the cluster answers.
    pub fn restart(&mut self, i: usize) {
        self.run(i);
    }

    /// Waits until every running member answers a read.
    pub fn wait_healthy(&self, timeout: Duration) {
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let address = m.client.trim_start_matches("http://").to_owned();
            super::wait_for(timeout, &format!("etcd member {} healthy", m.name), || {
                health(&address).then_some(())
            });
        }
    }
}

/// POSTs `body` to `path` on `address`: the answer's body.
fn post(address: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(address).unwrap_or_else(|e| panic!("etcd at {address}: {e}"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut answer = String::new();
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.read_to_string(&mut answer))
        .unwrap_or_else(|e| panic!("etcd at {address}: {e}"));
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// Whether `GET /health` on `address` says the member is healthy.
fn health(address: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET /health HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.contains("\"health\":\"true\"")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
