//! What the Codex stand-in reads of `$CODEX_HOME/config.toml`: the top-level `notify`
//! argv and which folders `[projects."<dir>"]` tables trust; and the trust it adds
//! when the person accepts the dialog, as Codex adds it.
//!
//! Read and edited with `toml_edit`, as the adapter (`crate::codex_config`) edits the
//! file: any form TOML allows is read, and the rest of the file is kept as it was.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, value};

/// The keys of a home's `config.toml` the stand-in follows.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Config {
    /// The `notify` argv (empty for none).
    pub(super) notify: Vec<String>,
    /// The folders whose `trust_level` is `"trusted"`.
    pub(super) trusted: Vec<PathBuf>,
}

impl Config {
    /// Reads `home/config.toml`; an absent, unreadable or invalid file is an empty one
    /// (Codex would refuse to start on an invalid one; the stand-in is test support).
    pub(super) fn read(home: &Path) -> Self {
        parse(&std::fs::read_to_string(home.join("config.toml")).unwrap_or_default())
    }

    /// Whether `dir` is trusted.
    pub(super) fn trusts(&self, dir: &Path) -> bool {
        self.trusted.iter().any(|t| t == dir)
    }
}

/// Adds the trust of `dir` to `home/config.toml` (`[projects."<dir>"] trust_level =
/// "trusted"`), keeping the rest of the file.
pub(super) fn trust(home: &Path, dir: &Path) -> std::io::Result<()> {
    let path = home.join("config.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let projects = doc
        .entry("projects")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| std::io::Error::other("projects is not a table"))?;
    let mut table = Table::new();
    table.insert("trust_level", value("trusted"));
    projects.insert(&dir.to_string_lossy(), Item::Table(table));
    std::fs::write(&path, doc.to_string())
}

fn parse(text: &str) -> Config {
    let Ok(doc) = text.parse::<DocumentMut>() else {
        return Config::default();
    };
    let notify = doc
        .get("notify")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let trusted = doc
        .get("projects")
        .and_then(Item::as_table_like)
        .map(|projects| {
            projects
                .iter()
                .filter(|(_, t)| {
                    t.as_table_like()
                        .and_then(|t| t.get("trust_level"))
                        .and_then(Item::as_str)
                        == Some("trusted")
                })
                .map(|(dir, _)| PathBuf::from(dir))
                .collect()
        })
        .unwrap_or_default();
    Config { notify, trusted }
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

[projects]
"/w/d" = { trust_level = "trusted" }
"#;
        let config = parse(text);
        assert_eq!(config.notify, ["sh", "-c", "printf %s \"$1\" > f", "sh"]);
        assert!(config.trusts(Path::new("/w/a \"b\"")));
        assert!(!config.trusts(Path::new("/w/c")));
        assert!(config.trusts(Path::new("/w/d")), "an inline table");
    }

    #[test]
    fn trust_should_append_a_table_the_next_read_sees() {
        let dir = tempfile::tempdir().unwrap();
        let before = "# mine\nnotify = [\"x\"]\n\n[projects.\"/w/a\"]\ntrust_level = \"trusted\"\n";
        std::fs::write(dir.path().join("config.toml"), before).unwrap();
        trust(dir.path(), Path::new("/w/g")).unwrap();
        let config = Config::read(dir.path());
        assert!(config.trusts(Path::new("/w/g")));
        assert!(config.trusts(Path::new("/w/a")));
        assert_eq!(config.notify, ["x"]);
        let after = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
        assert!(after.starts_with(before), "{after}");
    }
}
