//! A mock of Anthropic's Messages API on 127.0.0.1, for running the real Claude Code CLI
//! offline in tests.
//!
//! It answers `POST /v1/messages` with server-sent events (or one JSON message when the
//! request does not stream) and `POST /v1/messages/count_tokens` with a token count.
//! What it answers depends on the caller's credential (`Authorization: Bearer …` or
//! `x-api-key`), so two account homes with two tokens are two accounts: one can be
//! answered normally while the other hits its usage limit. Every request is recorded
//! for the test to read. The HTTP plumbing is [`super::mock_http`]'s.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::mock_http::{self, Incoming, Server, event, lock, respond};

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
    state: Arc<Mutex<State>>,
    server: Server,
}

impl MockApi {
    /// Listens on a free port of 127.0.0.1 and answers every credential with
    /// [`Reply::Answer`] until told otherwise.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let server = {
            let state = state.clone();
            Server::start("mock api", move |incoming, stream| {
                serve(incoming, stream, &state)
            })
        };
        Self { state, server }
    }

    /// The base URL for `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Answers `credential`'s requests with `reply` from now on.
    pub fn set_reply(&self, credential: &str, reply: Reply) {
        lock(&self.state)
            .replies
            .insert(credential.to_owned(), reply);
    }

    /// Reports `usage` in the headers of every answer to `credential` from now on.
    pub fn set_usage(&self, credential: &str, usage: Usage) {
        lock(&self.state).usage.insert(credential.to_owned(), usage);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// The conversation turns received so far, oldest first.
    pub fn turns(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::is_turn)
            .collect()
    }
}

fn serve(incoming: Incoming, stream: TcpStream, state: &Mutex<State>) {
    let request = Request {
        credential: incoming.credential(),
        body: incoming.json(),
        path: incoming.path,
        received: jiff::Timestamp::now(),
        answered: None,
        status: None,
    };
    let (index, reply, usage) = {
        let mut state = lock(state);
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
    if let Some(r) = lock(state).requests.get_mut(index) {
        r.answered = Some(jiff::Timestamp::now());
        r.status = status;
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
    let mut headers: Vec<(&str, &str)> = vec![("anthropic-ratelimit-unified-status", "allowed")];
    headers.extend(usage.iter().map(|(k, v)| (*k, v.as_str())));
    mock_http::start_events(&mut out, &headers)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn post(api: &MockApi, credential: &str, body: &Value) -> String {
        let mut s = TcpStream::connect(api.server.addr()).unwrap();
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
        let mut s = TcpStream::connect(api.server.addr()).unwrap();
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
