//! What the API mocks share: a listener on 127.0.0.1 with one thread per connection,
//! the reading of one HTTP/1.1 request, the caller's credential, and the writing of a
//! JSON answer or of server-sent events. Each mock ([`super::mock_api`] for Anthropic's
//! Messages API, [`super::mock_responses`] for OpenAI's Responses API) owns what it
//! answers and the log of what it saw. `Connection: close` on every answer: simple, and
//! plenty for a handful of agents.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

/// One request as it came in: path, lowercased headers, body.
#[derive(Debug)]
pub(crate) struct Incoming {
    /// The path with its query, e.g. `/v1/messages?beta=true`.
    pub(crate) path: String,
    /// The headers, names lowercased.
    pub(crate) headers: HashMap<String, String>,
    /// The raw body.
    pub(crate) body: Vec<u8>,
}

impl Incoming {
    /// The bearer token or API key that came with it (empty for none): what names the
    /// account in both mocks.
    pub(crate) fn credential(&self) -> String {
        self.headers
            .get("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or(self.headers.get("x-api-key").map(String::as_str))
            .unwrap_or_default()
            .to_owned()
    }

    /// The body as JSON (`Null` when there was none or it did not parse).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A listener answering each connection on a thread of its own; it stops when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Listens on a free port of 127.0.0.1 and hands every request read whole to
    /// `handle` with the stream to answer on.
    pub(crate) fn start(
        name: &str,
        handle: impl Fn(Incoming, TcpStream) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{name}: cannot listen on 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name}: no local address: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = Arc::new(handle);
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else {
                        // Out of descriptors, say: do not spin.
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let handle = handle.clone();
                    std::thread::spawn(move || {
                        if let Some((incoming, stream)) = read(stream) {
                            handle(incoming, stream);
                        }
                    });
                }
            })
        };
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag; without that, leave the thread
        // rather than wait for it forever.
        let woken = TcpStream::connect(self.addr).is_ok();
        if let Some(thread) = self.thread.take()
            && woken
        {
            let _ = thread.join();
        }
    }
}

/// Locks `state`, a poisoned lock included (a test that panicked still reads the log).
pub(crate) fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read(stream: TcpStream) -> Option<(Incoming, TcpStream)> {
    // A client that never finishes its request does not hold a thread forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let peer = stream.try_clone().ok()?;
    let mut reader = BufReader::new(peer);
    let incoming = read_request(&mut reader)?;
    Some((incoming, stream))
}

/// Reads one HTTP/1.1 request.
fn read_request(reader: &mut impl BufRead) -> Option<Incoming> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v: &String| v.eq_ignore_ascii_case("chunked"))
    {
        read_chunked(reader)?
    } else {
        let length: usize = match headers.get("content-length") {
            Some(v) => v.parse().ok()?,
            None => 0,
        };
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        body
    };
    Some(Incoming {
        path,
        headers,
        body,
    })
}

fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let size = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// Writes a whole JSON answer with `status` and the extra `headers`.
pub(crate) fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &Value,
) -> std::io::Result<()> {
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

/// Writes the head of a 200 whose body is a stream of server-sent events, with the
/// extra `headers`.
pub(crate) fn start_events(out: &mut TcpStream, headers: &[(&str, &str)]) -> std::io::Result<()> {
    let mut head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                    cache-control: no-cache\r\nconnection: close\r\n"
        .to_owned();
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())
}

/// Writes one server-sent event `name` carrying `data`.
pub(crate) fn event(out: &mut TcpStream, name: &str, data: &Value) -> std::io::Result<()> {
    write!(out, "event: {name}\ndata: {data}\n\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_should_be_read_whole_from_a_chunked_body() {
        let body = r#"{"stream":false}"#;
        let (a, b) = body.split_at(5);
        let text = format!(
            "POST /v1/x HTTP/1.1\r\ntransfer-encoding: chunked\r\nX-Api-Key: k\r\n\r\n\
             {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        );
        let incoming = read_request(&mut text.as_bytes()).unwrap();
        assert_eq!(incoming.path, "/v1/x");
        assert_eq!(incoming.credential(), "k");
        assert_eq!(incoming.json()["stream"], false);
    }
}
