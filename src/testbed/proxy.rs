//! A TCP proxy the test controls, to cut one fleet node off from etcd while the others
//! keep it (issue 28, item 4): a network partition, not a dead member. While cut, what
//! either side sends is dropped and new connections are accepted but go nowhere, as
//! packets lost on the way: the node's calls hang until their own timeouts, which is
//! what a partition does (a killed member refuses at once instead). When healed, every
//! connection that lived through the cut is closed (as TCP gives up on it in time) and
//! new ones are forwarded again.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

/// What the proxy's threads share.
#[derive(Debug, Default)]
struct Shared {
    /// Whether the link is cut.
    cut: AtomicBool,
    /// Whether the proxy is dropped.
    stopped: AtomicBool,
    /// Bumped at each heal: a connection of an earlier generation is closed.
    generation: AtomicU64,
    /// Every open socket (both ends), with the generation it belongs to.
    sockets: Mutex<Vec<(u64, TcpStream)>>,
}

impl Shared {
    fn keep(&self, generation: u64, socket: &TcpStream) {
        if let Ok(clone) = socket.try_clone() {
            self.sockets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((generation, clone));
        }
    }

    /// Closes the sockets of generations before `generation` (all, with `u64::MAX`).
    fn close_before(&self, generation: u64) {
        self.sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(g, s)| {
                if *g < generation {
                    let _ = s.shutdown(Shutdown::Both);
                    false
                } else {
                    true
                }
            });
    }
}

/// A proxy on a loopback port of its own to one upstream address, ended when dropped.
#[derive(Debug)]
pub struct Proxy {
    local: SocketAddr,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy to `upstream` (`host:port`, or an `http://host:port` endpoint).
    pub fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("proxy to {upstream}: no loopback port: {e}"));
        let local = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("proxy to {upstream}: {e}"));
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if s.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let generation = s.generation.load(Ordering::SeqCst);
                s.keep(generation, &client);
                let server = if s.cut.load(Ordering::SeqCst) {
                    None
                } else {
                    TcpStream::connect(&upstream).ok()
                };
                match server {
                    Some(server) => {
                        s.keep(generation, &server);
                        pipe(&s, &client, &server);
                        pipe(&s, &server, &client);
                    }
                    // Accepted, and what comes is dropped: a link that goes nowhere.
                    None => drain(client),
                }
            }
        });
        Self { local, shared }
    }

    /// The endpoint to give a node instead of the upstream's: `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.local)
    }

    /// Cuts the link: from now on nothing gets through, either way.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
    }

    /// Heals the link: the connections that lived through the cut are closed, new ones
    /// get through.
    pub fn heal(&self) {
        let next = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.close_before(next);
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.close_before(u64::MAX);
        // Wakes the accepting thread, which sees it is stopped.
        let _ = TcpStream::connect(self.local);
    }
}

/// Copies `from` to `to` on a thread of its own, dropping what comes while the link is
/// cut; ends with either side.
fn pipe(shared: &Arc<Shared>, from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let shared = shared.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if shared.cut.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Reads and drops what `socket` sends until it is closed.
fn drain(mut socket: TcpStream) {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while matches!(socket.read(&mut buf), Ok(n) if n > 0) {}
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// An echo server on a loopback port.
    fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for s in listener.incoming().flatten() {
                thread::spawn(move || {
                    let mut s = s;
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    fn ask(stream: &mut TcpStream, text: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.set_read_timeout(Some(Duration::from_millis(300)))?;
        stream.write_all(text)?;
        let mut buf = vec![0u8; text.len()];
        stream.read_exact(&mut buf)?;
        Ok(buf)
    }

    #[test]
    fn a_cut_proxy_should_pass_nothing_and_a_healed_one_should_close_what_lived_through() {
        let proxy = Proxy::start(&echo().to_string());
        let addr = proxy.endpoint().trim_start_matches("http://").to_owned();
        let mut before = TcpStream::connect(&addr).unwrap();
        assert_eq!(ask(&mut before, b"one").unwrap(), b"one");
        proxy.cut();
        assert!(ask(&mut before, b"two").is_err(), "nothing through a cut");
        let mut during = TcpStream::connect(&addr).expect("accepted while cut");
        assert!(
            ask(&mut during, b"three").is_err(),
            "a new link goes nowhere"
        );
        proxy.heal();
        let mut after = TcpStream::connect(&addr).unwrap();
        assert_eq!(ask(&mut after, b"four").unwrap(), b"four");
        for mut old in [before, during] {
            old.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 8];
            assert!(
                matches!(old.read(&mut buf), Ok(0) | Err(_)),
                "a link from before the heal is closed"
            );
        }
    }
}
