//! The entries failover owns in an account home's Claude Code `settings.json`: the hooks
//! that run `failover hook` (`SessionStart`, `UserPromptSubmit`, `Stop`, `StopFailure`)
//! and the status line that runs `failover hook status-line`.
//!
//! They are merged into the operator's settings, never replacing them: every other key
//! keeps its value and its place, the operator's own hooks stay beside ours, and an
//! operator's own status line is left as it is (there is one per file; failover then
//! reads no usage figures for that account). A file that is not valid JSON is never
//! written. [`merge`] is pure: the planner uses it to show what would change and the
//! executor to write it.

use std::path::Path;

use serde_json::{Map, Value, json};

/// The settings file's name in a Claude Code account home.
pub(crate) use crate::agents::claude_code::SETTINGS_FILE;

/// The hook events failover listens to.
pub(crate) const EVENTS: [&str; 4] = ["SessionStart", "UserPromptSubmit", "Stop", "StopFailure"];

/// Why failover's entries cannot be merged into a settings file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    /// A part of the file has another JSON type than Claude Code's settings give it.
    #[error("its {0} is not a JSON {1}")]
    Shape(String, &'static str),
    /// The merged settings could not be written out.
    #[error("cannot render the merged settings: {0}")]
    Render(String),
}

/// The commands Claude Code is to run: shell text, since Claude Code runs them through
/// `sh -c`; only the path of the failover binary goes in, quoted, and `|| true` after
/// it, so that no failure of failover (a binary rolled back to a version without `hook`
/// exits 2, which would make Claude Code block the prompt) ever reaches the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Commands {
    /// For every hook event.
    pub hook: String,
    /// For the status line.
    pub status_line: String,
}

impl Commands {
    /// The commands that run the failover binary at `exe`.
    pub(crate) fn for_exe(exe: &Path) -> Self {
        let exe = shell_words::quote(&exe.to_string_lossy()).into_owned();
        Self {
            hook: format!("{exe} hook || true"),
            status_line: format!("{exe} hook status-line || true"),
        }
    }
}

/// A settings file as observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// There is none.
    Missing,
    /// Its JSON.
    Json(Value),
    /// It is not valid JSON: why, with the line and column.
    Invalid(String),
    /// It cannot be read: why.
    Unreadable(String),
}

impl Observed {
    /// Reads the settings file at `path`.
    pub fn read(path: &Path) -> Self {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(v) => Observed::Json(v),
                Err(e) => Observed::Invalid(e.to_string()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::fs::symlink_metadata(path).is_ok() {
                    Observed::Unreadable("a symbolic link to a file that does not exist".into())
                } else {
                    Observed::Missing
                }
            }
            Err(e) => Observed::Unreadable(e.to_string()),
        }
    }
}

/// Settings with failover's entries merged in (or taken out).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Merged {
    /// The whole settings.
    pub value: Value,
    /// What changed, in words; empty when nothing did.
    pub changes: Vec<String>,
    /// The status line is the operator's own and was left as it is.
    pub foreign_status_line: bool,
}

/// Whether `command` is one failover wrote: `…/failover hook [status-line] [|| true]`.
pub(crate) fn is_ours(command: &str, status_line: bool) -> bool {
    let Ok(argv) = shell_words::split(command) else {
        return false;
    };
    let program = argv
        .first()
        .and_then(|p| Path::new(p).file_name())
        .is_some_and(|n| n == "failover");
    let mut rest: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    if rest.ends_with(&["||", "true"]) {
        rest.truncate(rest.len() - 2);
    }
    let shape: &[&str] = if status_line {
        &["hook", "status-line"]
    } else {
        &["hook"]
    };
    program && rest == shape
}

/// Merges failover's entries (`want`) into `existing` settings (`None`: no file), or
/// takes them out (`want` is `None`). An error says why the file cannot take them
/// (its top level, `hooks` or an event's list has another type).
pub(crate) fn merge(existing: Option<&Value>, want: Option<&Commands>) -> Result<Merged, Error> {
    let mut root = match existing {
        None => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(Error::Shape("top level".into(), "object")),
    };
    let mut changes = Vec::new();
    merge_hooks(&mut root, want, &mut changes)?;
    let foreign_status_line = merge_status_line(&mut root, want, &mut changes);
    Ok(Merged {
        value: Value::Object(root),
        changes,
        foreign_status_line,
    })
}

fn merge_hooks(
    root: &mut Map<String, Value>,
    want: Option<&Commands>,
    changes: &mut Vec<String>,
) -> Result<(), Error> {
    if want.is_none() && !root.contains_key("hooks") {
        return Ok(());
    }
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(hooks) = hooks else {
        return Err(Error::Shape("\"hooks\"".into(), "object"));
    };
    let (mut added, mut updated, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for event in EVENTS {
        if want.is_none() && !hooks.contains_key(event) {
            continue;
        }
        let list = hooks
            .entry(event)
            .or_insert_with(|| Value::Array(Vec::new()));
        let Value::Array(groups) = list else {
            return Err(Error::Shape(format!("\"hooks\".\"{event}\""), "list"));
        };
        let mut found = false;
        let mut emptied = Vec::new();
        for (i, group) in groups.iter_mut().enumerate() {
            let Some(Value::Array(entries)) = group.get_mut("hooks") else {
                continue;
            };
            let before = entries.len();
            entries.retain_mut(|entry| {
                let Some(Value::String(command)) = entry.get_mut("command") else {
                    return true;
                };
                let exact = want.is_some_and(|w| *command == w.hook);
                if !exact && !is_ours(command, false) {
                    return true;
                }
                match want {
                    Some(w) if !found => {
                        found = true;
                        if *command != w.hook {
                            command.clone_from(&w.hook);
                            updated.push(event);
                        }
                        true
                    }
                    _ => {
                        removed.push(event);
                        false
                    }
                }
            });
            if entries.is_empty() && before > 0 {
                emptied.push(i);
            }
        }
        // Groups we emptied go; the operator's stay as they were.
        for i in emptied.iter().rev() {
            groups.remove(*i);
        }
        let emptied = !emptied.is_empty();
        match want {
            Some(w) if !found => {
                groups.push(json!({"hooks": [{"type": "command", "command": w.hook}]}));
                added.push(event);
            }
            None if emptied && groups.is_empty() => {
                hooks.shift_remove(event);
            }
            _ => {}
        }
    }
    if want.is_none() && hooks.is_empty() && !removed.is_empty() {
        root.shift_remove("hooks");
    }
    for (verb, events) in [("add", added), ("update", updated), ("remove", removed)] {
        if !events.is_empty() {
            changes.push(format!("{verb} hooks {}", events.join(", ")));
        }
    }
    Ok(())
}

/// Adds, updates or removes our status line; true when the operator has one of their
/// own (left as it is).
fn merge_status_line(
    root: &mut Map<String, Value>,
    want: Option<&Commands>,
    changes: &mut Vec<String>,
) -> bool {
    let current = root
        .get("statusLine")
        .map(|s| s.get("command").and_then(Value::as_str).map(str::to_owned));
    match (current, want) {
        (None, Some(w)) => {
            root.insert(
                "statusLine".into(),
                json!({"type": "command", "command": w.status_line}),
            );
            changes.push("add the status line".into());
            false
        }
        (None, None) => false,
        (Some(Some(c)), want) if is_ours(&c, true) || want.is_some_and(|w| c == w.status_line) => {
            match want {
                Some(w) if c != w.status_line => {
                    if let Some(Value::Object(s)) = root.get_mut("statusLine") {
                        s.insert("command".into(), Value::String(w.status_line.clone()));
                    }
                    changes.push("update the status line".into());
                }
                Some(_) => {}
                None => {
                    root.shift_remove("statusLine");
                    changes.push("remove the status line".into());
                }
            }
            false
        }
        (Some(_), _) => want.is_some(),
    }
}

/// The bytes of `value` as a settings file: two-space indents like Claude Code's own, a
/// final newline.
pub(crate) fn render(value: &Value) -> Result<String, Error> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Render(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Commands {
        Commands::for_exe(Path::new("/usr/local/bin/failover"))
    }

    #[test]
    fn merge_should_add_every_hook_and_the_status_line_to_a_missing_file() {
        let m = merge(None, Some(&ours())).unwrap();
        assert_eq!(
            m.changes,
            [
                "add hooks SessionStart, UserPromptSubmit, Stop, StopFailure",
                "add the status line"
            ]
        );
        assert_eq!(
            m.value["hooks"]["Stop"][0]["hooks"][0]["command"],
            "/usr/local/bin/failover hook || true"
        );
        assert_eq!(
            m.value["statusLine"]["command"],
            "/usr/local/bin/failover hook status-line || true"
        );
        let again = merge(Some(&m.value), Some(&ours())).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert_eq!(again.value, m.value);
    }

    #[test]
    fn merge_should_keep_every_key_of_the_operators_byte_for_byte() {
        // As Claude Code writes it: two-space indents, no final newline.
        let text = "{\n  \"model\": \"opus\",\n  \"permissions\": {\n    \"allow\": [\n      \"Bash(ls:*)\"\n    ]\n  },\n  \"hooks\": {\n    \"Stop\": [\n      {\n        \"matcher\": \"\",\n        \"hooks\": [\n          {\n            \"type\": \"command\",\n            \"command\": \"notify-send done\"\n          }\n        ]\n      }\n    ]\n  },\n  \"statusLine\": {\n    \"type\": \"command\",\n    \"command\": \"~/bin/my-line\"\n  }\n}";
        let existing: Value = serde_json::from_str(text).unwrap();
        let m = merge(Some(&existing), Some(&ours())).unwrap();
        assert!(m.foreign_status_line);
        assert_eq!(
            m.changes,
            ["add hooks SessionStart, UserPromptSubmit, Stop, StopFailure"]
        );
        let out = render(&m.value).unwrap();
        // Each of the operator's lines is still there, in order, as it was.
        let mut rest = out.as_str();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let trimmed = line.trim_end_matches(',');
            let at = rest
                .find(trimmed)
                .unwrap_or_else(|| panic!("{line:?} lost or moved in:\n{out}"));
            rest = &rest[at + trimmed.len()..];
        }
        assert_eq!(m.value["statusLine"]["command"], "~/bin/my-line");
        assert_eq!(
            m.value["hooks"]["Stop"][0]["hooks"][0]["command"],
            "notify-send done"
        );
        assert_eq!(
            m.value["hooks"]["Stop"][1]["hooks"][0]["command"],
            "/usr/local/bin/failover hook || true"
        );
        let keys: Vec<&String> = m.value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["model", "permissions", "hooks", "statusLine"]);
    }

    #[test]
    fn merge_should_update_our_entries_when_the_binary_moved_and_drop_duplicates() {
        let old = Commands::for_exe(Path::new("/opt/old dir/failover"));
        assert_eq!(old.hook, "'/opt/old dir/failover' hook || true");
        let mut v = merge(None, Some(&old)).unwrap().value;
        v["hooks"]["Stop"]
            .as_array_mut()
            .unwrap()
            .push(json!({"hooks": [{"type": "command", "command": old.hook}]}));
        let m = merge(Some(&v), Some(&ours())).unwrap();
        assert_eq!(
            m.changes,
            [
                "update hooks SessionStart, UserPromptSubmit, Stop, StopFailure",
                "remove hooks Stop",
                "update the status line"
            ]
        );
        assert_eq!(m.value["hooks"]["Stop"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn merge_should_know_its_own_commands_whatever_the_binary_is_called() {
        let renamed = Commands::for_exe(Path::new("/opt/bin/fo"));
        let v = merge(None, Some(&renamed)).unwrap().value;
        let again = merge(Some(&v), Some(&renamed)).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert_eq!(again.value, v, "nothing added twice");
    }

    #[test]
    fn merge_without_want_should_take_out_only_our_entries() {
        let mut v = merge(None, Some(&ours())).unwrap().value;
        v["hooks"]["Stop"]
            .as_array_mut()
            .unwrap()
            .push(json!({"hooks": [{"type": "command", "command": "notify-send done"}]}));
        v["theme"] = json!("dark");
        v["model"] = json!("opus");
        let m = merge(Some(&v), None).unwrap();
        assert_eq!(
            m.value,
            json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]},
                   "theme": "dark", "model": "opus"})
        );
        let keys: Vec<&String> = m.value.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["hooks", "theme", "model"],
            "the operator's keys keep their order"
        );
        let none = merge(Some(&json!({"theme": "dark"})), None).unwrap();
        assert!(none.changes.is_empty());
        assert_eq!(none.value, json!({"theme": "dark"}));
    }

    #[test]
    fn merge_should_refuse_settings_of_another_shape() {
        for bad in [
            json!([1]),
            json!({"hooks": []}),
            json!({"hooks": {"Stop": {}}}),
        ] {
            assert!(merge(Some(&bad), Some(&ours())).is_err(), "{bad}");
        }
    }

    #[test]
    fn is_ours_should_know_our_commands_only() {
        assert!(is_ours("/usr/bin/failover hook", false));
        assert!(is_ours("/usr/bin/failover hook || true", false));
        assert!(!is_ours("/usr/bin/failover-notify hook", false));
        assert!(is_ours("'/a b/failover' hook status-line", true));
        assert!(!is_ours("/usr/bin/failover hook status-line", false));
        assert!(!is_ours("notify-send failover hook", false));
        assert!(!is_ours("/usr/bin/other hook", false));
        assert!(!is_ours("'unterminated", false));
    }

    #[test]
    fn observed_should_name_what_is_wrong_with_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SETTINGS_FILE);
        assert_eq!(Observed::read(&path), Observed::Missing);
        std::fs::write(&path, "{\n  \"a\": 1,\n}").unwrap();
        let Observed::Invalid(why) = Observed::read(&path) else {
            panic!()
        };
        assert!(why.contains("line 3"), "{why}");
        std::fs::write(&path, "{}").unwrap();
        assert_eq!(Observed::read(&path), Observed::Json(json!({})));
        let link = dir.path().join("linked.json");
        std::os::unix::fs::symlink(dir.path().join("gone.json"), &link).unwrap();
        assert!(matches!(Observed::read(&link), Observed::Unreadable(why) if why.contains("link")));
    }
}
