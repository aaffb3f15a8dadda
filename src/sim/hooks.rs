//! The stand-in's hooks and status line, run as Claude Code runs them: the commands of
//! `$CLAUDE_CONFIG_DIR/settings.json`, read once at start, each given one JSON object on
//! its standard input and waited for. A command line is split into words (Claude Code
//! hands it to `sh -c`; the stand-in runs no shell). The payloads carry the keys Claude
//! Code 2.1.329 sends (`shared/reference/claude-code-hooks.md`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// The commands of one settings file.
#[derive(Debug, Default)]
pub(super) struct Hooks {
    events: BTreeMap<String, Vec<Vec<String>>>,
    status_line: Option<Vec<String>>,
}

impl Hooks {
    /// The hooks and status line of `home/settings.json`; none when it is missing or
    /// unreadable.
    pub(super) fn load(home: &Path) -> Self {
        let Ok(bytes) = std::fs::read(home.join(crate::agent_settings::SETTINGS_FILE)) else {
            return Self::default();
        };
        let Ok(settings) = serde_json::from_slice::<Value>(&bytes) else {
            return Self::default();
        };
        // The words before a `||`: what runs first (the stand-in ignores exit codes, so
        // `A || true` is `A`).
        let argv = |v: &Value| {
            let command = v.get("command")?.as_str()?;
            let words = shell_words::split(command).ok()?;
            let first: Vec<String> = words.split(|w| w == "||").next()?.to_vec();
            (!first.is_empty()).then_some(first)
        };
        let mut events: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        if let Some(Value::Object(hooks)) = settings.get("hooks") {
            for (event, groups) in hooks {
                let commands = groups
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g.get("hooks")?.as_array())
                    .flatten()
                    .filter_map(argv);
                events.entry(event.clone()).or_default().extend(commands);
            }
        }
        Self {
            events,
            status_line: settings.get("statusLine").and_then(argv),
        }
    }

    /// Runs every command of `event` with `payload` (to which `hook_event_name` is
    /// added), one after the other, waiting for each.
    pub(super) fn fire(&self, event: &str, mut payload: Value) {
        payload["hook_event_name"] = json!(event);
        for argv in self.events.get(event).into_iter().flatten() {
            let _ = run(argv, &payload);
        }
    }

    /// Runs the status line command with `payload`; the first line it printed.
    pub(super) fn status_line(&self, payload: &Value) -> Option<String> {
        let out = run(self.status_line.as_ref()?, payload)?;
        out.lines().next().map(str::to_owned)
    }
}

/// Runs `argv` with `payload` on its stdin; what it printed.
fn run(argv: &[String], payload: &Value) -> Option<String> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(payload.to_string().as_bytes());
    }
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let _ = child.wait();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_should_run_each_command_of_an_event_with_the_payload() {
        let home = tempfile::tempdir().unwrap();
        let out = home.path().join("out");
        let settings = json!({
            "hooks": {"Stop": [{"hooks": [
                {"type": "command", "command": format!("tee {}", out.display())}]}]},
            "statusLine": {"type": "command", "command": "echo 'line one'"},
        });
        std::fs::write(home.path().join("settings.json"), settings.to_string()).unwrap();
        let hooks = Hooks::load(home.path());
        hooks.fire("Stop", json!({"prompt_id": "p"}));
        let sent: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(sent, json!({"prompt_id": "p", "hook_event_name": "Stop"}));
        assert_eq!(hooks.status_line(&json!({})).as_deref(), Some("line one"));
        hooks.fire("SessionStart", json!({}));
        assert!(
            Hooks::load(&home.path().join("none"))
                .status_line(&json!({}))
                .is_none()
        );
    }
}
