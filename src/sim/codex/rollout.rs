//! The Codex stand-in's rollout: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<ts>-<thread>.jsonl`,
//! one JSON line each `{"timestamp","ordinal","type","payload"}` shaped as Codex 0.171
//! writes them (tests/fixtures/codex/rollout-*.jsonl): `session_meta`, then per turn
//! `event_msg` `task_started`, the user's `response_item` message and its `event_msg`
//! `item_completed` (a `UserMessage` with the turn id: what failover reads, see
//! `crate::conversation::codex`), the assistant's (`item_completed` `AgentMessage`,
//! then the `response_item`), `event_msg` `token_count` with `rate_limits`, and
//! `event_msg` `task_complete` (with `error` and its `codex_error_info` when the turn
//! failed). Only the lines failover or a resume reads are written; Codex writes more.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::sim::SimUsage;

/// One message of a thread read back for a resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Said {
    /// The user's prompt.
    User(String),
    /// The assistant's answer.
    Assistant(String),
    /// A turn that failed, with the message Codex showed.
    Failed(String),
}

/// A thread's rollout file.
#[derive(Debug)]
pub(super) struct Rollout {
    path: PathBuf,
    thread: String,
    ordinal: u64,
}

impl Rollout {
    /// The rollout of a new thread `thread` in `home` for `cwd`, with its
    /// `session_meta` written.
    pub(super) fn create(home: &Path, thread: &str, cwd: &Path) -> std::io::Result<Self> {
        let now = jiff::Zoned::now();
        let dir = home
            .join("sessions")
            .join(now.strftime("%Y/%m/%d").to_string());
        std::fs::create_dir_all(&dir)?;
        let name = format!(
            "rollout-{}-{thread}.jsonl",
            now.strftime("%Y-%m-%dT%H-%M-%S")
        );
        let mut rollout = Self {
            path: dir.join(name),
            thread: thread.to_owned(),
            ordinal: 0,
        };
        rollout.append(
            "session_meta",
            json!({
                "session_id": thread, "id": thread, "timestamp": stamp(),
                "cwd": cwd, "originator": "codex-tui", "cli_version": super::screen::VERSION,
                "source": "cli", "model_provider": "openai",
            }),
        )?;
        Ok(rollout)
    }

    /// The rollout of thread `thread` under `home`'s `sessions/`, to go on with.
    pub(super) fn find(home: &Path, thread: &str) -> Option<Self> {
        let path = find_file(&home.join("sessions"), &format!("-{thread}.jsonl"))?;
        let ordinal = read_lines(&path)
            .iter()
            .filter_map(|l| l["ordinal"].as_u64())
            .max()
            .map_or(0, |o| o + 1);
        Some(Self {
            path,
            thread: thread.to_owned(),
            ordinal,
        })
    }

    /// Its path.
    #[cfg(test)]
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// What was said in the thread so far, oldest first.
    pub(super) fn said(&self) -> Vec<Said> {
        read_lines(&self.path)
            .iter()
            .filter_map(|l| {
                let p = &l["payload"];
                match (l["type"].as_str()?, p["type"].as_str()?) {
                    ("response_item", "message") => {
                        let text = p["content"][0]["text"].as_str()?.to_owned();
                        match p["role"].as_str()? {
                            "user" if !text.starts_with('<') => Some(Said::User(text)),
                            "assistant" => Some(Said::Assistant(text)),
                            _ => None,
                        }
                    }
                    ("event_msg", "task_complete") => {
                        Some(Said::Failed(p["error"]["message"].as_str()?.to_owned()))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// A turn begins: `task_started` and the user's message (after the environment
    /// context on a thread's first turn).
    pub(super) fn start_turn(
        &mut self,
        turn: &str,
        prompt: &str,
        first: Option<&Path>,
    ) -> std::io::Result<()> {
        let started = jiff::Timestamp::now().as_second();
        self.append(
            "event_msg",
            json!({
                "type": "task_started", "turn_id": turn, "root_turn_id": turn,
                "started_at": started, "model_context_window": 258_400,
                "collaboration_mode_kind": "default",
            }),
        )?;
        if let Some(cwd) = first {
            let context = format!(
                "<environment_context>\n  <cwd>{}</cwd>\n</environment_context>",
                cwd.display()
            );
            self.append("response_item", message("user", "input_text", &context))?;
        }
        self.append("response_item", message("user", "input_text", prompt))?;
        let item = json!({
            "type": "UserMessage", "id": uuid::Uuid::new_v4().to_string(),
            "client_id": uuid::Uuid::new_v4().to_string(),
            "content": [{"type": "text", "text": prompt, "text_elements": []}],
        });
        self.item_completed(turn, item)
    }

    /// An `item_completed` event of this thread's turn `turn`.
    fn item_completed(&mut self, turn: &str, item: Value) -> std::io::Result<()> {
        let ms = jiff::Timestamp::now().as_millisecond();
        let payload = json!({
            "type": "item_completed", "thread_id": self.thread, "turn_id": turn,
            "item": item, "started_at_ms": ms, "completed_at_ms": ms,
        });
        self.append("event_msg", payload)
    }

    /// A turn ends: the answer (when there is one), the token count with the
    /// account's use, and `task_complete` (with `error` when `failed` holds Codex's
    /// message and its `codex_error_info`).
    pub(super) fn end_turn(
        &mut self,
        turn: &str,
        started_at: i64,
        answer: Option<&str>,
        failed: Option<(&str, &str)>,
        usage: Option<SimUsage>,
    ) -> std::io::Result<()> {
        if let Some(text) = answer {
            let id = format!("msg_{}", uuid::Uuid::new_v4());
            let item = json!({
                "type": "AgentMessage", "id": id, "content": [{"type": "Text", "text": text}],
            });
            self.item_completed(turn, item)?;
            let mut said = message("assistant", "output_text", text);
            said["id"] = json!(id);
            self.append("response_item", said)?;
        }
        self.append("event_msg", token_count(usage))?;
        let completed = jiff::Timestamp::now();
        let mut done = json!({
            "type": "task_complete", "root_turn_id": turn, "turn_id": turn,
            "last_agent_message": answer, "started_at": started_at,
            "completed_at": completed.as_second(),
            "duration_ms": (completed.as_second() - started_at) * 1000,
        });
        if let Some((message, info)) = failed {
            done["error"] = json!({"message": message, "codex_error_info": info});
        }
        self.append("event_msg", done)
    }

    /// A turn interrupted by the person: `turn_aborted`.
    pub(super) fn abort_turn(&mut self, turn: &str) -> std::io::Result<()> {
        self.append(
            "event_msg",
            json!({"type": "turn_aborted", "turn_id": turn, "reason": "interrupted"}),
        )
    }

    fn append(&mut self, kind: &str, payload: Value) -> std::io::Result<()> {
        let line = json!({
            "timestamp": stamp(), "ordinal": self.ordinal, "type": kind, "payload": payload,
        });
        self.ordinal += 1;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        writeln!(file, "{line}")
    }
}

/// The `token_count` payload: fixed token figures, and the account's use as the
/// `x-codex-*` headers would have reported it (`null` windows without one).
fn token_count(usage: Option<SimUsage>) -> Value {
    let tokens = json!({
        "input_tokens": 10, "cached_input_tokens": 0, "cache_write_input_tokens": 0,
        "output_tokens": 5, "reasoning_output_tokens": 0, "total_tokens": 15,
    });
    let window = |(used, resets): (f64, i64), minutes: u32| json!({"used_percent": used, "window_minutes": minutes, "resets_at": resets});
    let (primary, secondary) = match usage {
        Some(u) => (window(u.five_hour, 300), window(u.seven_day, 10_080)),
        None => (Value::Null, Value::Null),
    };
    json!({
        "type": "token_count",
        "info": {
            "total_token_usage": tokens, "last_token_usage": tokens,
            "last_usage_includes_reasoning": false, "model_context_window": 258_400,
        },
        "rate_limits": {
            "limit_id": "codex", "limit_name": null, "primary": primary,
            "secondary": secondary, "credits": null, "individual_limit": null,
            "spend_control_reached": null, "plan_type": null, "rate_limit_reached_type": null,
        },
    })
}

fn message(role: &str, kind: &str, text: &str) -> Value {
    let id = format!("msg_{}", uuid::Uuid::new_v4());
    let mut content = json!({"type": kind, "text": text});
    if kind == "output_text" {
        content["annotations"] = json!([]);
    }
    json!({"type": "message", "id": id, "role": role, "content": [content]})
}

/// Now as Codex stamps its lines: UTC, milliseconds, `Z`.
fn stamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The first file under `dir` (any depth) whose name ends with `suffix`.
fn find_file(dir: &Path, suffix: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, suffix) {
                return Some(found);
            }
        } else if entry.file_name().to_string_lossy().ends_with(suffix) {
            return Some(path);
        }
    }
    None
}
