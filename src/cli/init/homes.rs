//! Where `failover init` looks for Claude Code homes: the one `claude` opens in this
//! shell, `~/.claude`, every `~/.claude-*`, and the folders the shell start-up files
//! assign to `CLAUDE_CONFIG_DIR` (read as text, never run). Codex homes are not looked
//! for: failover has no Codex agent family yet.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use crate::login;

/// The shell start-up files read for `CLAUDE_CONFIG_DIR=…`, under `$HOME`.
pub(super) const SHELL_FILES: [&str; 4] = [".bashrc", ".zshrc", ".bash_aliases", ".profile"];

/// Why a folder was taken for a home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `CLAUDE_CONFIG_DIR` names it in init's environment.
    Environment,
    /// `~/.claude`, the home `claude` uses without `CLAUDE_CONFIG_DIR`.
    Default,
    /// A `~/.claude-*` folder holding a login or settings.
    Named,
    /// A shell start-up file assigns it to `CLAUDE_CONFIG_DIR`.
    ShellFile(PathBuf),
}

/// A folder taken for a Claude Code home, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The folder, as found (absolute).
    pub path: PathBuf,
    /// Why it was taken.
    pub origin: Origin,
}

/// What discovery reads from the environment; tests give their own.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    /// `$HOME`.
    pub home: PathBuf,
    /// `$CLAUDE_CONFIG_DIR`, when set.
    pub config_dir: Option<PathBuf>,
}

/// Every home found, once each (by the folder it resolves to), in priority order: the
/// one `claude` opens in this shell (`CLAUDE_CONFIG_DIR`, else `~/.claude`) first, then
/// `~/.claude`, then the others by path.
pub(crate) fn find(env: &Env) -> Vec<Candidate> {
    let mut found = Vec::new();
    if let Some(dir) = env
        .config_dir
        .as_ref()
        .filter(|d| d.is_absolute() && d.is_dir())
    {
        found.push(Candidate {
            path: dir.clone(),
            origin: Origin::Environment,
        });
    }
    let default = env.home.join(".claude");
    if default.is_dir() && (login::is_home(&default) || env.home.join(login::CONFIG_FILE).is_file())
    {
        found.push(Candidate {
            path: default,
            origin: Origin::Default,
        });
    }
    let mut others = named_homes(&env.home);
    for file in SHELL_FILES {
        let path = env.home.join(file);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        others.extend(
            assignments(&text, &env.home)
                .into_iter()
                .filter(|dir| dir.is_dir())
                .map(|dir| Candidate {
                    path: dir,
                    origin: Origin::ShellFile(path.clone()),
                }),
        );
    }
    others.sort_by(|a, b| a.path.cmp(&b.path));
    found.extend(others);
    let mut seen = Vec::new();
    found.retain(|c| {
        let real = std::fs::canonicalize(&c.path).unwrap_or_else(|_| c.path.clone());
        let new = !seen.contains(&real);
        seen.push(real);
        new
    });
    found
}

/// The `~/.claude-*` folders that look like homes.
fn named_homes(home: &Path) -> Vec<Candidate> {
    let Ok(entries) = std::fs::read_dir(home) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".claude-"))
        .map(|e| e.path())
        .filter(|p| p.is_dir() && login::is_home(p))
        .map(|path| Candidate {
            path,
            origin: Origin::Named,
        })
        .collect()
}

/// Assignments to `CLAUDE_CONFIG_DIR` anywhere on a line (`export …`, `alias x='… claude'`,
/// a command's prefix), quoted or not.
static ASSIGNMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[\s;&|('"])CLAUDE_CONFIG_DIR=(?:"([^"]*)"|'([^']*)'|([^\s;&|)'"`]+))"#)
        .expect("the assignment pattern is a valid regex")
});

/// The folders `text` (a shell start-up file) assigns to `CLAUDE_CONFIG_DIR`, with `~`
/// and `$HOME` expanded; values that need the shell to resolve (other variables,
/// commands) and relative paths are skipped. Comment lines are skipped. Nothing is run.
pub(crate) fn assignments(text: &str, home: &Path) -> Vec<PathBuf> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| ASSIGNMENT.captures_iter(line))
        .filter_map(|c| {
            let value = c.get(1).or(c.get(2)).or(c.get(3))?.as_str();
            expand(value, home)
        })
        .collect()
}

/// `value` with a leading `~` or `$HOME` replaced by `home`; `None` when it still needs
/// a shell or is not absolute.
fn expand(value: &str, home: &Path) -> Option<PathBuf> {
    let rest = ["~", "${HOME}", "$HOME"]
        .iter()
        .find_map(|prefix| value.strip_prefix(prefix));
    let path = match rest {
        Some("") => home.to_path_buf(),
        Some(rest) => home.join(rest.strip_prefix('/')?),
        None => PathBuf::from(value),
    };
    let text = path.to_string_lossy();
    let needs_shell = text.contains(['$', '`', '~', '*']);
    (!needs_shell && path.is_absolute()).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_should_read_exports_aliases_and_prefixes_without_running_them() {
        let text = "\
export CLAUDE_CONFIG_DIR=~/.claude-work
alias cw='CLAUDE_CONFIG_DIR=$HOME/.claude-alt claude'
alias cx=\"CLAUDE_CONFIG_DIR='/srv/acc/x y' claude --resume\"
# CLAUDE_CONFIG_DIR=/commented/out
foo && CLAUDE_CONFIG_DIR=${HOME}/.c3 claude
CLAUDE_CONFIG_DIR=$(pick-one) claude
CLAUDE_CONFIG_DIR=$OTHER/x claude
CLAUDE_CONFIG_DIR=relative/x claude
NOT_CLAUDE_CONFIG_DIR=/nope
";
        let found = assignments(text, Path::new("/home/u"));
        assert_eq!(
            found,
            [
                "/home/u/.claude-work",
                "/home/u/.claude-alt",
                "/srv/acc/x y",
                "/home/u/.c3"
            ]
            .map(PathBuf::from)
        );
    }

    fn home_with_config(dir: &Path) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join(login::CONFIG_FILE), "{}").expect("write");
    }

    #[test]
    fn find_should_put_the_shells_home_first_and_take_each_folder_once() {
        let user = tempfile::tempdir().expect("temp dir");
        let home = user.path();
        for name in [".claude", ".claude-b", ".claude-a", ".claude-work"] {
            home_with_config(&home.join(name));
        }
        std::fs::create_dir(home.join(".claude-empty")).expect("mkdir");
        std::fs::write(
            home.join(".bashrc"),
            "alias w='CLAUDE_CONFIG_DIR=~/.claude-a claude'\nalias o='CLAUDE_CONFIG_DIR=~/other claude'\n",
        )
        .expect("write");
        home_with_config(&home.join("other"));
        let env = Env {
            home: home.to_path_buf(),
            config_dir: Some(home.join(".claude-work")),
        };
        let found: Vec<(String, Origin)> = find(&env)
            .into_iter()
            .map(|c| {
                let name = c.path.strip_prefix(home).expect("under home");
                (name.to_string_lossy().into_owned(), c.origin)
            })
            .collect();
        let bashrc = Origin::ShellFile(home.join(".bashrc"));
        assert_eq!(
            found,
            [
                (".claude-work".to_owned(), Origin::Environment),
                (".claude".to_owned(), Origin::Default),
                (".claude-a".to_owned(), Origin::Named),
                (".claude-b".to_owned(), Origin::Named),
                ("other".to_owned(), bashrc),
            ]
        );
    }
}
