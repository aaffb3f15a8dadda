//! A mock of Anthropic's Messages API on 127.0.0.1, for running the real Claude Code CLI
//! offline in tests.
//!
//! It answers `POST /v1/messages` with server-sent events (or one JSON message when the
//! request does not stream) and `POST /v1/messages/count_tokens` with a token count.
//! What it answers depends on the caller's credential (`Authorization: Bearer …` or
//! `x-api-key`), so two account homes with two tokens are two accounts: one can be
//! answered normally while the other hits its usage limit. Every request is recorded
//! for the test to read. One thread per connection, `Connection: close` on every
//! answer: simple, and plenty for a handful of agents.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// How the mock answers a credential's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A short answer: `Done: <first line of the prompt>` (a long paste unwrapped).
    Answer,
    /// The same answer, after holding the stream open this long (the agent looks busy).
    Slow(Duration),
    /// HTTP 429 with the unified rate-limit headers a subscription's used-up 5-hour
    /// window carries, resetting at this Unix time.
    UsageLimit {
        /// When the window resets, in seconds since the epoch.
        resets_at: i64,
    },
    /// HTTP 429 without those headers: the server limiting requests, not a quota.
    RateLimited,
    /// HTTP 500 with an `api_error` body.
    ServerError,
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Request {
    /// The path with its query, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// The bearer token or API key that came with it.
    pub credential: String,
    /// The JSON body (`Null` when there was none or it did not parse).
    pub body: Value,
    /// When it came in.
    pub received: jiff::Timestamp,
    /// When its answer was written whole, once it was.
    pub answered: Option<jiff::Timestamp>,
    /// The HTTP status of the answer.
    pub status: Option<u16>,
}

impl Request {
    /// The text of the newest user message, without `<system-reminder>` blocks.
    pub fn prompt(&self) -> Option<String> {
        let message = self.body["messages"]
            .as_array()?
            .iter()
            .rev()
            .find(|m| m["role"] == "user")?;
        match &message["content"] {
            Value::String(text) => Some(text.clone()),
            Value::Array(blocks) => blocks
                .iter()
                .rev()
                .filter_map(|b| b["text"].as_str())
                .find(|t| !t.trim_start().starts_with("<system-reminder>"))
                .map(str::to_owned),
            _ => None,
        }
    }

    /// Whether this is a streamed `/v1/messages` call, the kind a conversation turn
    /// makes.
    pub fn is_turn(&self) -> bool {
        self.path.starts_with("/v1/messages")
            && !self.path.starts_with("/v1/messages/count_tokens")
            && self.body["stream"] == true
    }
}

/// A subscription's use as the API reports it on every answer
/// (`anthropic-ratelimit-unified-5h-utilization` and friends), which Claude Code passes
/// to its status line as `rate_limits`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// The 5-hour window: used fraction (0.42 for 42 %) and reset, in epoch seconds.
    pub five_hour: (f64, i64),
    /// The 7-day window: used fraction and reset, in epoch seconds.
    pub seven_day: (f64, i64),
}

#[derive(Debug, Default)]
struct State {
    replies: HashMap<String, Reply>,
    usage: HashMap<String, Usage>,
    requests: Vec<Request>,
}

/// The running mock; it stops when dropped.
#[derive(Debug)]
pub struct MockApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockApi {
    /// Listens on a free port of 127.0.0.1 and answers every credential with
    /// [`Reply::Answer`] until told otherwise.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("mock api: cannot listen on 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("mock api: no local address: {e}"));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
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
                    let state = state.clone();
                    std::thread::spawn(move || serve(stream, &state));
                }
            })
        };
        Self {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The base URL for `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers `credential`'s requests with `reply` from now on.
    pub fn set_reply(&self, credential: &str, reply: Reply) {
        self.lock().replies.insert(credential.to_owned(), reply);
    }

    /// Reports `usage` in the headers of every answer to `credential` from now on.
    pub fn set_usage(&self, credential: &str, usage: Usage) {
        self.lock().usage.insert(credential.to_owned(), usage);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// The conversation turns received so far, oldest first.
    pub fn turns(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::is_turn)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for MockApi {
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

fn serve(stream: TcpStream, state: &Mutex<State>) {
    // A client that never finishes its request does not hold a thread forever.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(peer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(peer);
    let Some((path, headers, body)) = read_request(&mut reader) else {
        return;
    };
    let credential = headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or(headers.get("x-api-key").map(String::as_str))
        .unwrap_or_default()
        .to_owned();
    let request = Request {
        path,
        credential,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        received: jiff::Timestamp::now(),
        answered: None,
        status: None,
    };
    let (index, reply, usage) = {
        let mut state = state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.requests.push(request.clone());
        let index = state.requests.len() - 1;
        let reply = state
            .replies
            .get(&request.credential)
            .cloned()
            .unwrap_or(Reply::Answer);
        (index, reply, state.usage.get(&request.credential).copied())
    };
    let status = answer(stream, &request, &reply, usage).ok();
    let mut state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(r) = state.requests.get_mut(index) {
        r.answered = Some(jiff::Timestamp::now());
        r.status = status;
    }
}

type Headers = HashMap<String, String>;

/// Reads one HTTP/1.1 request: its path, lowercased headers and body.
fn read_request(reader: &mut impl BufRead) -> Option<(String, Headers, Vec<u8>)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut headers = Headers::new();
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
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
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
    Some((path, headers, body))
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

/// The unified rate-limit headers that report `usage`.
fn usage_headers(usage: Option<Usage>) -> Vec<(&'static str, String)> {
    let Some(u) = usage else { return Vec::new() };
    vec![
        (
            "anthropic-ratelimit-unified-5h-utilization",
            u.five_hour.0.to_string(),
        ),
        (
            "anthropic-ratelimit-unified-5h-reset",
            u.five_hour.1.to_string(),
        ),
        (
            "anthropic-ratelimit-unified-7d-utilization",
            u.seven_day.0.to_string(),
        ),
        (
            "anthropic-ratelimit-unified-7d-reset",
            u.seven_day.1.to_string(),
        ),
    ]
}

/// Writes the answer; the HTTP status it had.
fn answer(
    mut out: TcpStream,
    request: &Request,
    reply: &Reply,
    usage: Option<Usage>,
) -> std::io::Result<u16> {
    let usage = usage_headers(usage);
    if request.path.starts_with("/v1/messages/count_tokens") {
        return respond(&mut out, 200, &[], &json!({"input_tokens": 42})).map(|()| 200);
    }
    if !request.path.starts_with("/v1/messages") {
        let body =
            json!({"type": "error", "error": {"type": "not_found_error", "message": "not found"}});
        return respond(&mut out, 404, &[], &body).map(|()| 404);
    }
    let delay = match reply {
        Reply::Answer => Duration::ZERO,
        Reply::Slow(delay) => *delay,
        Reply::UsageLimit { resets_at } => {
            let reset = resets_at.to_string();
            let headers = [
                ("anthropic-ratelimit-unified-status", "rejected"),
                ("anthropic-ratelimit-unified-reset", reset.as_str()),
                (
                    "anthropic-ratelimit-unified-representative-claim",
                    "five_hour",
                ),
            ];
            return respond(
                &mut out,
                429,
                &headers,
                &error("rate_limit_error", "Rate limited"),
            )
            .map(|()| 429);
        }
        Reply::RateLimited => {
            return respond(
                &mut out,
                429,
                &[],
                &error("rate_limit_error", "Rate limited"),
            )
            .map(|()| 429);
        }
        Reply::ServerError => {
            return respond(
                &mut out,
                500,
                &[],
                &error("api_error", "Internal server error"),
            )
            .map(|()| 500);
        }
    };
    // The first line of the prompt (a long paste unwrapped from Claude Code's
    // `<pasted_content>` tags).
    let prompt = crate::report::unwrap_pasted(&request.prompt().unwrap_or_default());
    let first: String = prompt
        .trim()
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect();
    let text = format!("Done: {first}");
    let model = request.body["model"].as_str().unwrap_or("claude-mock");
    if request.body["stream"] != true {
        let message = json!({
            "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5},
        });
        let headers: Vec<(&str, &str)> = usage.iter().map(|(k, v)| (*k, v.as_str())).collect();
        return respond(&mut out, 200, &headers, &message).map(|()| 200);
    }
    let mut head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         anthropic-ratelimit-unified-status: allowed\r\nconnection: close\r\n"
            .to_owned();
    for (name, value) in &usage {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    let start = json!({"type": "message_start", "message": {
        "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 1}}});
    event(&mut out, "message_start", &start)?;
    let block = json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}});
    event(&mut out, "content_block_start", &block)?;
    std::thread::sleep(delay);
    let delta = json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": text}});
    event(&mut out, "content_block_delta", &delta)?;
    event(
        &mut out,
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    )?;
    let end = json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": 5}});
    event(&mut out, "message_delta", &end)?;
    event(&mut out, "message_stop", &json!({"type": "message_stop"}))?;
    Ok(200)
}

fn error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

fn respond(
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

fn event(out: &mut TcpStream, name: &str, data: &Value) -> std::io::Result<()> {
    write!(out, "event: {name}\ndata: {data}\n\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn post(api: &MockApi, credential: &str, body: &Value) -> String {
        let mut s = TcpStream::connect(api.addr).unwrap();
        let body = body.to_string();
        write!(
            s,
            "POST /v1/messages?beta=true HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {credential}\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn mock_should_answer_each_credential_as_told_and_record_the_prompt() {
        let api = MockApi::start();
        api.set_reply(
            "tok-b",
            Reply::UsageLimit {
                resets_at: 1749924000,
            },
        );
        let body = json!({"stream": true, "model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x</system-reminder>"},
                                         {"type": "text", "text": "fix $(the) bug\nplease"}]}]});
        let a = post(&api, "tok-a", &body);
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
        assert!(a.contains(r#""text":"Done: fix $(the) bug""#), "{a}");
        assert!(a.contains("event: message_stop"), "{a}");
        let b = post(&api, "tok-b", &body);
        assert!(b.starts_with("HTTP/1.1 429"), "{b}");
        assert!(
            b.contains("anthropic-ratelimit-unified-reset: 1749924000"),
            "{b}"
        );
        let turns = api.turns();
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[1].credential, "tok-b");
        assert_eq!(turns[0].prompt().as_deref(), Some("fix $(the) bug\nplease"));
    }

    #[test]
    fn mock_should_read_a_chunked_body() {
        let api = MockApi::start();
        let mut s = TcpStream::connect(api.addr).unwrap();
        let body = r#"{"stream":false,"messages":[{"role":"user","content":"hi"}]}"#;
        let (a, b) = body.split_at(10);
        write!(
            s,
            "POST /v1/messages HTTP/1.1\r\ntransfer-encoding: chunked\r\nx-api-key: k\r\n\r\n\
             {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert!(text.contains(r#""text":"Done: hi""#), "{text}");
        assert_eq!(api.requests()[0].credential, "k");
    }
}
