//! A mock of OpenAI's Responses API on 127.0.0.1, for running the real Codex CLI offline
//! in tests (`base_url` of a custom `model_providers` entry in its `config.toml`, see
//! [`super::codex`]).
//!
//! It answers `POST /v1/responses` with server-sent events (`response.created`,
//! `response.output_item.done` carrying one assistant message, `response.completed`
//! with `usage`), the `x-codex-*` usage headers of the caller's account on a 200, and
//! the 429 `usage_limit_reached` body when that account is used up. The account is the
//! `Authorization: Bearer` token (`OPENAI_API_KEY` of the home's environment), as in
//! [`super::mock_api`], whose [`Reply`] it takes and whose HTTP plumbing it shares.
//! Every request is logged; [`Request::kind`] tells the title request Codex makes after
//! a thread's first prompt from the tasks' own.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

pub use super::mock_api::Reply;
use super::mock_http::{self, Incoming, Server, event, lock, respond};

/// What Codex asks for a thread's title with, at the start of its instructions.
pub const TITLE_REQUEST: &str = "Generate a concise, single-line task title";

/// One usage window as the `x-codex-<slot>-*` headers report it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Used share in percent (42.0 for 42 %).
    pub used_percent: f64,
    /// The window's length: 300 for 5 hours, 10080 for 7 days.
    pub window_minutes: u32,
    /// When it resets, in seconds since the epoch.
    pub resets_at: i64,
}

/// An account's use as the headers of every 200 report it. Codex names the windows by
/// slot; which window a slot holds is told by its minutes only.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// The `x-codex-primary-*` headers.
    pub primary: Option<Window>,
    /// The `x-codex-secondary-*` headers.
    pub secondary: Option<Window>,
}

/// What a logged request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A turn of a task: the prompt a person or failover typed, and the earlier turns.
    Task,
    /// Codex's own request for a thread's title, after the thread's first prompt.
    Title,
    /// Anything else (another path, a request that is not streamed).
    Other,
}

/// One request the mock received.
#[derive(Debug, Clone)]
pub struct Request {
    /// The path with its query, e.g. `/v1/responses`.
    pub path: String,
    /// The bearer token that came with it: the account.
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
    /// What it was for.
    pub fn kind(&self) -> Kind {
        if !self.path.starts_with("/v1/responses") || self.body["stream"] != true {
            return Kind::Other;
        }
        let instructions = self.body["instructions"].as_str().unwrap_or_default();
        let asks_title = instructions.contains(TITLE_REQUEST)
            || self.texts("user").iter().any(|t| t.contains(TITLE_REQUEST));
        if asks_title { Kind::Title } else { Kind::Task }
    }

    /// The newest prompt: the last user message that is not context Codex adds itself
    /// (`<environment_context>`, `<user_instructions>`, and the like).
    pub fn prompt(&self) -> Option<String> {
        self.texts("user").pop()
    }

    /// The texts of every message of `role` (`user`, `assistant`) in the input, oldest
    /// first, without the context Codex adds in angle-bracketed blocks: a resumed
    /// thread's request carries its earlier turns here.
    pub fn texts(&self, role: &str) -> Vec<String> {
        let Some(input) = self.body["input"].as_array() else {
            return Vec::new();
        };
        input
            .iter()
            .filter(|item| item["role"] == role)
            .flat_map(|item| match &item["content"] {
                Value::String(text) => vec![text.clone()],
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            })
            .filter(|text| !text.trim_start().starts_with('<'))
            .collect()
    }
}

#[derive(Debug, Default)]
struct State {
    replies: HashMap<String, Reply>,
    usage: HashMap<String, Usage>,
    requests: Vec<Request>,
}

/// The running mock; it stops when dropped.
#[derive(Debug)]
pub struct MockResponses {
    state: Arc<Mutex<State>>,
    server: Server,
}

impl MockResponses {
    /// Listens on a free port of 127.0.0.1 and answers every account with
    /// [`Reply::Answer`] until told otherwise.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let server = {
            let state = state.clone();
            Server::start("mock responses api", move |incoming, stream| {
                serve(incoming, stream, &state)
            })
        };
        Self { state, server }
    }

    /// The provider's `base_url`: `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.server.addr())
    }

    /// Answers `credential`'s requests with `reply` from now on.
    pub fn set_reply(&self, credential: &str, reply: Reply) {
        lock(&self.state)
            .replies
            .insert(credential.to_owned(), reply);
    }

    /// Reports `usage` in the headers of every 200 to `credential` from now on.
    pub fn set_usage(&self, credential: &str, usage: Usage) {
        lock(&self.state).usage.insert(credential.to_owned(), usage);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// The task requests received so far (title requests left out), oldest first.
    pub fn tasks(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.kind() == Kind::Task)
            .collect()
    }

    /// The task requests whose prompt is `prompt` (trimmed), oldest first: one per
    /// time the prompt reached the API.
    pub fn tasks_of(&self, prompt: &str) -> Vec<Request> {
        self.tasks()
            .into_iter()
            .filter(|r| r.prompt().is_some_and(|p| p.trim() == prompt.trim()))
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
        let usage = state
            .usage
            .get(&request.credential)
            .copied()
            .unwrap_or_default();
        (index, reply, usage)
    };
    let status = answer(stream, &request, &reply, usage).ok();
    if let Some(r) = lock(state).requests.get_mut(index) {
        r.answered = Some(jiff::Timestamp::now());
        r.status = status;
    }
}

/// The `x-codex-*` headers that report `usage`.
fn usage_headers(usage: Usage) -> Vec<(String, String)> {
    let slots = [("primary", usage.primary), ("secondary", usage.secondary)];
    slots
        .into_iter()
        .filter_map(|(slot, w)| w.map(|w| (slot, w)))
        .flat_map(|(slot, w)| {
            [
                ("used-percent", w.used_percent.to_string()),
                ("window-minutes", w.window_minutes.to_string()),
                ("reset-at", w.resets_at.to_string()),
            ]
            .map(|(name, value)| (format!("x-codex-{slot}-{name}"), value))
        })
        .collect()
}

/// The answer's text: `Done: <first line of the prompt>`, or a title.
fn reply_text(request: &Request) -> String {
    let prompt = request.prompt().unwrap_or_default();
    let first: String = prompt
        .trim()
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect();
    match request.kind() {
        Kind::Title => format!("Mock title {}", first.chars().take(20).collect::<String>()),
        _ => format!("Done: {first}"),
    }
}

/// Writes the answer; the HTTP status it had.
fn answer(
    mut out: TcpStream,
    request: &Request,
    reply: &Reply,
    usage: Usage,
) -> std::io::Result<u16> {
    if request.kind() == Kind::Other {
        let body = error("not_found", "not found");
        return respond(&mut out, 404, &[], &body).map(|()| 404);
    }
    let delay = match reply {
        Reply::Answer => Duration::ZERO,
        Reply::Slow(delay) => *delay,
        Reply::UsageLimit { resets_at } => {
            let body = json!({"error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": "plus",
                "resets_at": resets_at,
            }});
            return respond(&mut out, 429, &[], &body).map(|()| 429);
        }
        Reply::RateLimited => {
            let body = error("rate_limit_exceeded", "Rate limit reached");
            return respond(&mut out, 429, &[], &body).map(|()| 429);
        }
        Reply::ServerError => {
            let body = error("server_error", "Internal server error");
            return respond(&mut out, 500, &[], &body).map(|()| 500);
        }
    };
    let headers = usage_headers(usage);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    mock_http::start_events(&mut out, &headers)?;
    let id = format!("resp_{}", uuid::Uuid::new_v4().simple());
    let created = json!({"type": "response.created", "response": {"id": id}});
    event(&mut out, "response.created", &created)?;
    std::thread::sleep(delay);
    let item = json!({"type": "response.output_item.done", "output_index": 0, "item": {
        "type": "message", "role": "assistant", "id": format!("msg_{}", uuid::Uuid::new_v4().simple()),
        "content": [{"type": "output_text", "text": reply_text(request), "annotations": []}],
    }});
    event(&mut out, "response.output_item.done", &item)?;
    let completed = json!({"type": "response.completed", "response": {"id": id, "usage": {
        "input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 15,
    }}});
    event(&mut out, "response.completed", &completed)?;
    Ok(200)
}

fn error(kind: &str, message: &str) -> Value {
    json!({"error": {"type": kind, "message": message}})
}

#[cfg(test)]
#[path = "mock_responses_tests.rs"]
mod tests;
