//! The entries failover owns in a Codex home's `config.toml`: what makes Codex start
//! unattended (`check_for_update_on_startup = false`, `[notice]
//! hide_rate_limit_model_nudge = true`, `cli_auth_credentials_store = "file"`, and
//! `[projects."<folder>"] trust_level = "trusted"` for every folder its sessions run
//! in) and, while its profile reads reports, `notify = [<failover>, "hook", "--agent",
//! "codex"]`, the program Codex runs after each turn.
//!
//! Merged into the operator's file with `toml_edit`, which keeps every other key, its
//! order and its comments. An operator's own `notify` is left as it is (there is one
//! per file; failover then ends Codex tasks on the rollout alone). A file that is not
//! valid TOML is never written. [`merge`] is pure: the planner uses it to show what
//! would change and the executor to write it.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, Value, value};

/// The configuration file's name in a Codex home.
pub(crate) use crate::agents::codex::CONFIG_FILE;

/// The arguments after the program in failover's `notify`.
const NOTIFY_ARGS: [&str; 3] = ["hook", "--agent", "codex"];

/// Why failover's entries cannot be merged into a `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Error {
    /// The file is not valid TOML.
    #[error("not valid TOML: {0}")]
    Invalid(String),
    /// A key failover sets holds another type than Codex gives it.
    #[error("its {0} is not a TOML {1}")]
    Shape(String, &'static str),
}

/// What failover wants in a Codex home's `config.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Want {
    /// The failover binary `notify` runs; `None` when no profile of the family reads
    /// reports (failover's `notify` is then taken out).
    pub exe: Option<PathBuf>,
    /// The folders Codex sessions run in, trusted.
    pub projects: Vec<PathBuf>,
}

/// A `config.toml` as observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// There is none.
    Missing,
    /// Its text, valid TOML.
    Toml(String),
    /// It is not valid TOML: why, with the line and column.
    Invalid(String),
    /// It cannot be read: why.
    Unreadable(String),
}

impl Observed {
    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => match text.parse::<DocumentMut>() {
                Ok(_) => Observed::Toml(text),
                Err(e) => Observed::Invalid(one_line(&e.to_string())),
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

/// A parse error's text on one line (toml_edit draws the line and a caret under it).
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with('^'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `config.toml` with failover's entries merged in (or its `notify` taken out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Merged {
    /// The whole file.
    pub text: String,
    /// What changed, in words; empty when nothing did.
    pub changes: Vec<String>,
    /// The `notify` is the operator's own and was left as it is.
    pub foreign_notify: bool,
}

/// failover's `notify`: the binary at `exe`, then `hook --agent codex` (an argv: Codex
/// runs no shell).
pub(crate) fn notify(exe: &Path) -> Vec<String> {
    std::iter::once(exe.to_string_lossy().into_owned())
        .chain(NOTIFY_ARGS.map(String::from))
        .collect()
}

/// Whether `argv` is a `notify` failover wrote: `…/failover hook --agent codex`, or the
/// exact program wanted now.
pub(crate) fn is_ours(argv: &[String], exe: Option<&Path>) -> bool {
    let Some((program, rest)) = argv.split_first() else {
        return false;
    };
    let named = Path::new(program)
        .file_name()
        .is_some_and(|n| n == "failover")
        || exe.is_some_and(|e| Path::new(program) == e);
    named && rest == NOTIFY_ARGS
}

/// Merges failover's entries (`want`) into `existing` text (`None`: no file), or takes
/// failover's `notify` out (`want` is `None`: nothing else it set is harmful to keep).
pub(crate) fn merge(existing: Option<&str>, want: Option<&Want>) -> Result<Merged, Error> {
    let mut doc = match existing {
        None => DocumentMut::new(),
        Some(text) => text
            .parse::<DocumentMut>()
            .map_err(|e| Error::Invalid(one_line(&e.to_string())))?,
    };
    let mut changes = Vec::new();
    let foreign_notify = merge_notify(&mut doc, want, &mut changes)?;
    if let Some(want) = want {
        let root = doc.as_table_mut();
        set(
            root,
            "check_for_update_on_startup",
            value(false),
            "turn off the update check",
            &mut changes,
        );
        set(
            root,
            "cli_auth_credentials_store",
            value("file"),
            "keep the login in auth.json",
            &mut changes,
        );
        let notice = table(root, "notice")?;
        set(
            notice,
            "hide_rate_limit_model_nudge",
            value(true),
            "hide the rate-limit nudge",
            &mut changes,
        );
        let mut trusted = Vec::new();
        for folder in &want.projects {
            let key = folder.to_string_lossy().into_owned();
            let projects = table(doc.as_table_mut(), "projects")?;
            let project = table(projects, &key)?;
            if project.get("trust_level").and_then(Item::as_str) != Some("trusted") {
                project.insert("trust_level", value("trusted"));
                trusted.push(key);
            }
        }
        if !trusted.is_empty() {
            changes.push(format!("trust {}", trusted.join(", ")));
        }
    }
    Ok(Merged {
        text: doc.to_string(),
        changes,
        foreign_notify,
    })
}

/// Adds, updates or removes failover's `notify`; true when the operator has one of
/// their own (left as it is).
fn merge_notify(
    doc: &mut DocumentMut,
    want: Option<&Want>,
    changes: &mut Vec<String>,
) -> Result<bool, Error> {
    let wanted = want.and_then(|w| w.exe.as_deref());
    let current: Option<Option<Vec<String>>> = doc.get("notify").map(|item| {
        item.as_array().and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()
        })
    });
    let ours = match &current {
        Some(Some(argv)) => is_ours(argv, wanted),
        _ => false,
    };
    match (current, wanted) {
        (None, Some(exe)) => {
            doc.insert("notify", value(array(&notify(exe))));
            changes.push("set notify".into());
            Ok(false)
        }
        (None, None) => Ok(false),
        (Some(Some(argv)), Some(exe)) if ours => {
            if argv != notify(exe) {
                doc.insert("notify", value(array(&notify(exe))));
                changes.push("update notify".into());
            }
            Ok(false)
        }
        (Some(_), None) if ours => {
            doc.remove("notify");
            changes.push("remove notify".into());
            Ok(false)
        }
        (Some(_), wanted) => Ok(wanted.is_some()),
    }
}

fn array(items: &[String]) -> toml_edit::Array {
    items.iter().map(String::as_str).collect()
}

/// Sets `key` of `table` to `want` when it differs, saying `what` in `changes`.
fn set(table: &mut Table, key: &str, want: Item, what: &str, changes: &mut Vec<String>) {
    let same = match (table.get(key).and_then(Item::as_value), want.as_value()) {
        (Some(Value::Boolean(a)), Some(Value::Boolean(b))) => a.value() == b.value(),
        (Some(Value::String(a)), Some(Value::String(b))) => a.value() == b.value(),
        _ => false,
    };
    if !same {
        table.insert(key, want);
        changes.push(what.to_owned());
    }
}

/// The table at `key` of `parent`, made (implicit, as `[a.b]` headers make it) when
/// missing.
fn table<'t>(parent: &'t mut Table, key: &str) -> Result<&'t mut Table, Error> {
    let item = parent.entry(key).or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    if let Some(inline) = item.as_inline_table_mut() {
        let t = std::mem::take(inline).into_table();
        *item = Item::Table(t);
    }
    item.as_table_mut()
        .ok_or_else(|| Error::Shape(format!("{key:?}"), "table"))
}

#[cfg(test)]
#[path = "codex_config_tests.rs"]
mod tests;
