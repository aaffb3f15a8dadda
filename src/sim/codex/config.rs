//! What the Codex stand-in reads of `$CODEX_HOME/config.toml`: the top-level `notify`
//! argv and which folders `[projects."<dir>"]` tables trust; and the trust it adds
//! when the person accepts the dialog, appended as Codex appends it.
//!
//! Only these keys, in the form Codex, failover and the test bed write them (basic
//! strings, one line per key), are read; the rest of the file is left alone. The
//! stand-in is test support: a TOML crate would be worth it in the adapter, which
//! edits the operator's file, not here.

use std::path::{Path, PathBuf};

/// The keys of a home's `config.toml` the stand-in follows.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Config {
    /// The `notify` argv (empty for none).
    pub(super) notify: Vec<String>,
    /// The folders whose `trust_level` is `"trusted"`.
    pub(super) trusted: Vec<PathBuf>,
}

impl Config {
    /// Reads `home/config.toml`; an absent or unreadable file is an empty one.
    pub(super) fn read(home: &Path) -> Self {
        parse(&std::fs::read_to_string(home.join("config.toml")).unwrap_or_default())
    }

    /// Whether `dir` is trusted.
    pub(super) fn trusts(&self, dir: &Path) -> bool {
        self.trusted.iter().any(|t| t == dir)
    }
}

/// Appends the trust of `dir` to `home/config.toml`.
pub(super) fn trust(home: &Path, dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("config.toml"))?;
    let key = serde_json::Value::from(dir.to_string_lossy()).to_string();
    write!(file, "\n[projects.{key}]\ntrust_level = \"trusted\"\n")
}

fn parse(text: &str) -> Config {
    let mut config = Config::default();
    let mut table: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = Some(header.trim().to_owned());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match (table.as_deref(), key) {
            (None, "notify") => {
                // A TOML array of basic strings reads as JSON.
                config.notify = serde_json::from_str(value).unwrap_or_default();
            }
            (Some(header), "trust_level") if value == "\"trusted\"" => {
                let dir = header
                    .strip_prefix("projects.")
                    .and_then(|d| serde_json::from_str::<String>(d).ok());
                config.trusted.extend(dir.map(PathBuf::from));
            }
            _ => {}
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_should_give_the_notify_argv_and_the_trusted_folders() {
        let text = r#"
model = "mock-model"
notify = ["sh", "-c", "printf %s \"$1\" > f", "sh"]

[notice]
hide_rate_limit_model_nudge = true

[projects."/w/a \"b\""]
trust_level = "trusted"

[projects."/w/c"]
trust_level = "untrusted"
"#;
        let config = parse(text);
        assert_eq!(config.notify, ["sh", "-c", "printf %s \"$1\" > f", "sh"]);
        assert!(config.trusts(Path::new("/w/a \"b\"")));
        assert!(!config.trusts(Path::new("/w/c")));
    }

    #[test]
    fn trust_should_append_a_table_the_next_read_sees() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), "notify = [\"x\"]\n").unwrap();
        trust(dir.path(), Path::new("/w/g")).unwrap();
        let config = Config::read(dir.path());
        assert!(config.trusts(Path::new("/w/g")));
        assert_eq!(config.notify, ["x"]);
    }
}
