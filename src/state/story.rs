//! The journal told in words: each entry as the objects it concerns (`session/w-5`,
//! `account/a`, `task/t.md`, `inbox/i`, `controller`), its event and one sentence
//! saying what happened and why. A move carries the reading behind it: the swap and the
//! quota report or screen line that caused it, told before it in the same story.

use serde::Serialize;
use serde_json::Value;

/// One journal entry in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Told {
    /// When it was written (RFC 3339, as journaled).
    pub time: String,
    /// What it concerns, first the main one: `session/NAME`, `account/NAME`,
    /// `task/NAME`, `inbox/NAME`, `path/PATH` or `controller`.
    pub objects: Vec<String>,
    /// The journal event (`taskDone`, `swap`), or for an action what it did
    /// (`moveSession`, `createSession`).
    pub event: String,
    /// What happened and why.
    pub message: String,
    /// Whether it went wrong (an action that failed).
    pub failed: bool,
}

impl Told {
    /// Whether it concerns `object` (`session/w-5`; `task/INBOX/NAME` also matches).
    pub fn concerns(&self, object: &str) -> bool {
        self.objects.iter().any(|o| o == object)
    }

    /// The main object it concerns.
    pub fn object(&self) -> &str {
        self.objects.first().map_or("", String::as_str)
    }
}

/// Tells entries in order, remembering the last swap and quota reading so that a move
/// says what caused it.
#[derive(Debug, Default)]
pub struct Teller {
    /// `account: reason` of the last swap, with the reading behind it.
    cause: Option<String>,
    /// The last quota reading, in words.
    reading: Option<String>,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn task_name(a: &Value) -> &str {
    if a["task"].is_object() {
        s(&a["task"]["name"])
    } else {
        s(&a["name"])
    }
}

impl Teller {
    /// Tells every entry of `entries`, oldest first.
    pub fn tell_all(entries: &[Value]) -> Vec<Told> {
        let mut teller = Self::default();
        entries.iter().map(|e| teller.tell(e)).collect()
    }

    /// Tells one entry; entries must come oldest first.
    pub fn tell(&mut self, e: &Value) -> Told {
        // An action is named by what it did (`moveSession`), not the journal's `action`.
        let event = match s(&e["event"]) {
            "action" => s(&e["action"]["action"]).to_owned(),
            other => other.to_owned(),
        };
        let (objects, mut message) = match s(&e["event"]) {
            "action" | "taskClaimed" | "taskDone" | "taskFailed" | "taskRequeued"
            | "taskStalled" => self.action(&e["action"], e["fresh"].as_str()),
            other => self.other(other, e),
        };
        let failed = e["ok"] == false;
        if failed {
            message = format!("FAILED: {message}: {}", s(&e["error"]));
        }
        if e["replayed"] == true {
            message.push_str(" (finished after a restart of the controller)");
        }
        Told {
            time: s(&e["time"]).to_owned(),
            objects,
            event,
            message,
            failed,
        }
    }

    /// `fresh`: why a move started the agent afresh instead of resuming.
    fn action(&self, a: &Value, fresh: Option<&str>) -> (Vec<String>, String) {
        let session = |a: &Value| {
            if a["session"].is_object() {
                s(&a["session"]["name"]).to_owned()
            } else if a["task"].is_object() {
                s(&a["task"]["session"]).to_owned()
            } else {
                s(&a["name"]).to_owned()
            }
        };
        let task_objects = |a: &Value| {
            let t = &a["task"];
            vec![
                format!("task/{}", s(&t["name"])),
                format!("session/{}", s(&t["session"])),
                format!("inbox/{}", s(&t["inbox"])),
                format!("task/{}/{}", s(&t["inbox"]), s(&t["name"])),
            ]
        };
        let name = s(&a["action"]);
        let message = match name {
            "createDir" => {
                return (
                    vec![format!("path/{}", s(&a["path"]))],
                    format!("created folder {}", s(&a["path"])),
                );
            }
            "createLink" => {
                return (
                    vec![format!("path/{}", s(&a["link"]))],
                    format!("linked {} -> {}", s(&a["link"]), s(&a["target"])),
                );
            }
            "configureAgent" => {
                let changes: Vec<&str> = a["changes"]
                    .as_array()
                    .map(|c| c.iter().map(s).collect())
                    .unwrap_or_default();
                return (
                    vec![format!("account/{}", s(&a["account"]))],
                    format!("agent settings {}: {}", s(&a["path"]), changes.join("; ")),
                );
            }
            "createSession" => format!(
                "created under account {} in {}{}",
                s(&a["session"]["account"]),
                s(&a["session"]["workdir"]),
                resumed(&a["resume"])
            ),
            "restartSession" => format!(
                "agent restarted under account {}: {}{}",
                s(&a["session"]["account"]),
                s(&a["reason"]),
                resumed(&a["resume"])
            ),
            "recycleSession" => format!("agent restarted: {}", s(&a["reason"])),
            "deleteSession" => format!("deleted: {}", s(&a["reason"])),
            "moveSession" => {
                let conversation = match (fresh, a["conversation"][0].as_str()) {
                    (Some(_), _) => String::new(),
                    (None, Some(id)) => format!(", resuming conversation {id}"),
                    (None, None) => ", fresh (no conversation to resume)".to_owned(),
                };
                let fresh = fresh.map_or(String::new(), |why| format!("; started afresh: {why}"));
                let cause = self
                    .cause
                    .as_ref()
                    .map_or(String::new(), |c| format!(" because {c}"));
                let from = a["from"].as_str().unwrap_or("(none)");
                let to = s(&a["session"]["account"]);
                let message =
                    format!("moved from account {from} to {to}{conversation}{cause}{fresh}");
                return (
                    vec![
                        format!("session/{}", session(a)),
                        format!("account/{from}"),
                        format!("account/{to}"),
                    ],
                    message,
                );
            }
            "dispatchTask" => format!(
                "task {} claimed for session {} (try {})",
                task_name(a),
                s(&a["task"]["session"]),
                a["task"]["attempt"]
            ),
            "pasteTask" => format!(
                "task {} pasted into session {}",
                task_name(a),
                s(&a["task"]["session"])
            ),
            "submitTask" => format!(
                "task {} submitted in session {}",
                task_name(a),
                s(&a["task"]["session"])
            ),
            "continueTask" => format!(
                "task {} carries on in session {}: {}",
                task_name(a),
                s(&a["task"]["session"]),
                s(&a["text"])
            ),
            "completeTask" => format!(
                "task {} done in session {} ({}){}",
                task_name(a),
                s(&a["task"]["session"]),
                s(&a["how"]),
                a["reply"]
                    .as_str()
                    .map_or(String::new(), |r| format!(": \"{}\"", first_line(r, 80)))
            ),
            "requeueTask" => format!(
                "task {} {} ({})",
                task_name(a),
                if a["failed"] == true {
                    "failed"
                } else {
                    "back to its inbox"
                },
                s(&a["reason"])
            ),
            "rejectTask" => {
                return (
                    inbox_task(a),
                    format!("task {} failed: {}", s(&a["name"]), s(&a["reason"])),
                );
            }
            "returnTask" => {
                return (
                    inbox_task(a),
                    format!("task {} back to its inbox (failover delete)", s(&a["name"])),
                );
            }
            "restoreSettings" => {
                let how = if a["removed"] == true {
                    "removed (there was none before failover)"
                } else if a["original"] == true {
                    "put back as they were before failover"
                } else {
                    "failover's entries taken out"
                };
                return (
                    vec![format!("path/{}", s(&a["path"]))],
                    format!("agent settings {}: {how}", s(&a["path"])),
                );
            }
            "removeLink" => {
                return (
                    vec![format!("path/{}", s(&a["link"]))],
                    format!("removed link {} -> {}", s(&a["link"]), s(&a["target"])),
                );
            }
            "stallTask" => format!(
                "task {} stalled in session {}: its screen stopped changing",
                task_name(a),
                s(&a["task"]["session"])
            ),
            other => other.to_owned(),
        };
        let objects = if a["task"].is_object() {
            task_objects(a)
        } else {
            vec![format!("session/{}", session(a))]
        };
        (objects, message)
    }

    fn other(&mut self, event: &str, e: &Value) -> (Vec<String>, String) {
        let account = || vec![format!("account/{}", s(&e["account"]))];
        let controller = || vec!["controller".to_owned()];
        match event {
            "started" => (
                controller(),
                format!(
                    "controller started (pid {}, {} sessions adopted)",
                    e["pid"], e["adopted"]
                ),
            ),
            "stopped" => (
                controller(),
                format!("controller stopped (pid {})", e["pid"]),
            ),
            "tmuxUnreachable" => (
                controller(),
                format!("tmux unreachable ({}), trying again", s(&e["error"])),
            ),
            "refusedToStart" => (controller(), format!("refused to start: {}", e["problems"])),
            "manifests" => (
                controller(),
                format!("manifests adopted ({})", s(&e["origin"])),
            ),
            "invalidManifests" => (
                controller(),
                format!(
                    "manifests refused ({}); the last good ones keep running",
                    s(&e["origin"])
                ),
            ),
            "error" => (controller(), s(&e["message"]).to_owned()),
            "pruned" => (
                vec![format!("inbox/{}", s(&e["inbox"]))],
                format!("old records deleted: {}", e["files"]),
            ),
            "activeAccount" => (account(), "sessions now run under this account".to_owned()),
            "refused" => (
                vec![object_of(s(&e["object"]))],
                format!("refused: {}", s(&e["reason"])),
            ),
            "quotaDetected" => {
                let how = if e["source"] == "report" {
                    "reported by the agent of"
                } else {
                    "read on the screen of"
                };
                let until = e["resetsAt"]
                    .as_str()
                    .map_or(String::new(), |t| format!(" until {t}"));
                let confirmed = if e["confirmed"] == true {
                    ""
                } else {
                    " (to be confirmed)"
                };
                let message = format!(
                    "{} {how} session {}: \"{}\"{until}{confirmed}",
                    s(&e["class"]),
                    s(&e["session"]),
                    s(&e["line"])
                );
                self.reading = Some(format!("account {}: {message}", s(&e["account"])));
                (
                    vec![
                        format!("account/{}", s(&e["account"])),
                        format!("session/{}", s(&e["session"])),
                    ],
                    message,
                )
            }
            "swap" => {
                let used = e["used"]
                    .as_f64()
                    .map_or(String::new(), |u| format!(" at {u:.0}% used"));
                let reading = self
                    .reading
                    .as_ref()
                    .map_or(String::new(), |r| format!(" ({r})"));
                self.cause = Some(format!(
                    "account {} {}{used}{reading}",
                    s(&e["from"]),
                    s(&e["reason"])
                ));
                (
                    vec![
                        format!("account/{}", s(&e["from"])),
                        format!("account/{}", s(&e["to"])),
                    ],
                    format!(
                        "sessions move from account {} to {}: {}{used}",
                        s(&e["from"]),
                        s(&e["to"]),
                        s(&e["reason"])
                    ),
                )
            }
            "recovered" => (account(), "its limit reset: usable again".to_owned()),
            "allExhausted" => {
                let each: Vec<String> = e["until"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(a, t)| format!("{a} until {}", s(t)))
                    .collect();
                (
                    controller(),
                    format!(
                        "every account is used up; work waits{}{}",
                        e["firstReset"]
                            .as_str()
                            .map_or(String::new(), |t| format!(" until {t}")),
                        if each.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", each.join(", "))
                        }
                    ),
                )
            }
            "resumeFailed" => {
                let mut objects = vec![format!("session/{}", s(&e["session"]))];
                let task = e["task"].as_str().map_or(String::new(), |t| {
                    objects.push(format!("task/{t}"));
                    format!("; task {t} is sent again from its own text, no try used")
                });
                (
                    objects,
                    format!(
                        "conversation {} could not be resumed under account {} ({}): started afresh{task}",
                        s(&e["conversation"]),
                        s(&e["account"]),
                        s(&e["reason"])
                    ),
                )
            }
            "resumed" => (
                account(),
                format!(
                    "work resumes under this account after waiting since {} for a reset",
                    s(&e["since"])
                ),
            ),
            "allOverThreshold" => (
                account(),
                format!("over {}% and no account under it to move to", e["moveAt"]),
            ),
            "intakeHeld" => (
                account(),
                format!(
                    "new tasks wait: {} (move at {}%)",
                    s(&e["reason"]),
                    e["moveAt"]
                ),
            ),
            "usageCrossed" => (
                vec![
                    format!("account/{}", s(&e["account"])),
                    format!("session/{}", s(&e["session"])),
                ],
                format!(
                    "{} window {} {}%: {:.0}% used, resets {}",
                    s(&e["window"]),
                    s(&e["direction"]),
                    e["level"],
                    e["used"].as_f64().unwrap_or(0.0),
                    s(&e["resetsAt"])
                ),
            ),
            "fleetLedger" => (
                account(),
                match e["exhaustedUntil"].as_str() {
                    Some(until) => format!(
                        "exhausted until {until}, as the fleet's ledger says (node {})",
                        s(&e["node"])
                    ),
                    None => "its use, as the fleet's ledger says".to_owned(),
                },
            ),
            "fleetDegraded" => (
                controller(),
                format!(
                    "fleet: etcd unreachable ({}); running on the local state",
                    s(&e["error"])
                ),
            ),
            "fleetRestored" => (controller(), "fleet: etcd answers again; merged".to_owned()),
            "sessionFailed" | "sessionExited" => {
                let mut objects = vec![format!("session/{}", s(&e["session"]))];
                if let Some(task) = e["task"].as_str() {
                    objects.push(format!("task/{task}"));
                }
                let verb = if event == "sessionFailed" {
                    "agent died during a task"
                } else {
                    "agent exited"
                };
                (objects, format!("{verb}: {}", s(&e["reason"])))
            }
            other => (controller(), other.to_owned()),
        }
    }
}

/// The objects of an action on a task not (or no longer) claimed: `name` in `inbox`.
fn inbox_task(a: &Value) -> Vec<String> {
    vec![
        format!("task/{}", s(&a["name"])),
        format!("inbox/{}", s(&a["inbox"])),
        format!("task/{}/{}", s(&a["inbox"]), s(&a["name"])),
    ]
}

/// `session/NAME` for a refusal's object `session NAME`, and the like.
fn object_of(object: &str) -> String {
    match object.split_once(' ') {
        Some((kind, name)) => format!("{kind}/{name}"),
        None => object.to_owned(),
    }
}

fn resumed(resume: &Value) -> String {
    resume
        .as_str()
        .map_or(String::new(), |id| format!(", resuming conversation {id}"))
}

/// The first line of `text`, cut to `max` characters (the last one `…` when cut).
pub fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let kept: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{kept}…")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn move_entry() -> Value {
        json!({"time": "t3", "event": "action", "ok": true, "action": {
            "action": "moveSession", "session": {"name": "w-5", "account": "b"},
            "from": "a", "resume": ["--resume", "{sessionId}"],
            "conversation": ["c-1", "/h/a/projects/x/c-1.jsonl"]}})
    }

    #[test]
    fn a_move_should_say_the_reading_and_the_swap_behind_it() {
        let entries = [
            json!({"time": "t1", "event": "quotaDetected", "account": "a", "session": "w-2",
                   "class": "quota-exhausted", "line": "You've hit your limit", "confirmed": true,
                   "source": "report", "resetsAt": "2026-12-01T23:00:00Z"}),
            json!({"time": "t2", "event": "swap", "from": "a", "to": "b", "reason": "quota exhausted"}),
            move_entry(),
        ];
        let told = Teller::tell_all(&entries);
        let moved = &told[2];
        assert_eq!(moved.object(), "session/w-5");
        assert!(moved.concerns("account/a") && moved.concerns("account/b"));
        assert!(
            moved.message.contains("from account a to b"),
            "{}",
            moved.message
        );
        assert!(
            moved.message.contains("resuming conversation c-1"),
            "{}",
            moved.message
        );
        assert!(
            moved
                .message
                .contains("reported by the agent of session w-2")
                && moved.message.contains("You've hit your limit"),
            "{}",
            moved.message
        );
    }

    #[test]
    fn a_move_without_a_swap_before_it_should_say_no_cause() {
        let told = Teller::tell_all(&[move_entry()]);
        assert!(!told[0].message.contains("because"), "{}", told[0].message);
    }

    #[test]
    fn a_task_action_should_concern_its_task_session_and_inbox() {
        let e = json!({"time": "t", "event": "taskDone", "ok": true, "action": {
            "action": "completeTask", "how": "Stop report", "reply": "Done.\nmore",
            "task": {"inbox": "i", "name": "t.md", "session": "w-1"}}});
        let told = Teller::default().tell(&e);
        for o in ["task/t.md", "session/w-1", "inbox/i", "task/i/t.md"] {
            assert!(told.concerns(o), "{o}");
        }
        assert_eq!(
            told.message,
            "task t.md done in session w-1 (Stop report): \"Done.\""
        );
    }

    #[test]
    fn a_failed_action_should_say_so_with_its_error() {
        let e = json!({"time": "t", "event": "action", "ok": false, "error": "pane is dead",
            "action": {"action": "deleteSession", "name": "w-1", "reason": "not wanted"}});
        let told = Teller::default().tell(&e);
        assert!(told.failed);
        assert_eq!(told.message, "FAILED: deleted: not wanted: pane is dead");
    }

    #[test]
    fn every_journal_kind_should_be_told_in_words() {
        use crate::state::journal::Kind;
        for kind in Kind::ALL {
            let e = json!({"time": "t", "event": kind.as_str(), "action": {"action": "x"}});
            let told = Teller::default().tell(&e);
            assert!(!told.message.is_empty(), "{kind}");
            assert!(!told.objects.is_empty(), "{kind}");
        }
    }
}
