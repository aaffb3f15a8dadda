//! The manifest `failover init` writes, composed from what it found on the machine:
//! pure (no file is read, no clock), so that every rule is tested on plain values.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::homes::Origin;
use crate::api::API_VERSION;
use crate::login::Login;

/// Width the comments are wrapped to.
const WIDTH: usize = 90;

/// The pool init writes: its name, prefix, and sessions kept and at most.
const POOL: (&str, &str, u32, u32) = ("auto", "auto-", 2, 4);

/// One home found, with what init read from it.
#[derive(Debug, Clone)]
pub(crate) struct Home {
    /// The folder (absolute).
    pub path: PathBuf,
    /// Why it was taken.
    pub origin: Origin,
    /// Its login, or why it could not be read.
    pub login: Result<Login, String>,
    /// What stands where a shared link belongs: the link's name and what is there.
    pub in_the_way: Vec<(String, String)>,
}

/// Everything the manifest is composed from.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// `$HOME`.
    pub user_home: PathBuf,
    /// The folder the manifests go into.
    pub dir: PathBuf,
    /// The homes found, in priority order.
    pub homes: Vec<Home>,
    /// The folder the pool and the inbox's tasks run in.
    pub workdir: PathBuf,
    /// The inbox folder.
    pub inbox: PathBuf,
    /// The shared folder the homes' links lead into.
    pub shared_target: PathBuf,
    /// The names linked into it.
    pub links: Vec<String>,
    /// Now, to tell an expired access token.
    pub now: Timestamp,
}

/// What became of one home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// Written as the account of this name and priority.
    Account {
        /// Its `metadata.name`.
        name: String,
        /// Its priority.
        priority: usize,
    },
    /// Left out: the same login as the home that became `account`.
    Duplicate {
        /// That home.
        of: PathBuf,
        /// Its account.
        account: String,
    },
    /// Written commented out: no login (why).
    NoLogin(String),
}

/// One home and what became of it, for the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    /// The home.
    pub path: PathBuf,
    /// Its login in words (e-mail or account id, plan), never a token.
    pub label: Option<String>,
    /// What became of it.
    pub role: Role,
}

/// The manifest and what it says about each home.
#[derive(Debug, Clone)]
pub(crate) struct Composed {
    /// The manifest's text.
    pub text: String,
    /// Each home found and what became of it.
    pub found: Vec<Found>,
    /// No home holds a login: the accounts are placeholders.
    pub placeholder: bool,
    /// Accounts that share no conversations yet (something in the way of their links).
    pub unshared: Vec<String>,
}

/// An account as written.
struct Account<'a> {
    name: String,
    home: &'a Home,
    duplicates: Vec<&'a Path>,
}

/// A home without a login, written commented out.
struct Commented<'a> {
    home: &'a Home,
    why: String,
    name: String,
    priority: usize,
}

/// Composes the manifest for `m`.
pub(crate) fn compose(m: &Machine) -> Composed {
    let (accounts, found, commented) = assign(m);
    let placeholder = accounts.is_empty();
    let mut out = header(m, placeholder);
    if placeholder {
        write_placeholders(&mut out, m);
    } else {
        out.push_str(&comment(
            "",
            "Accounts, in order of preference (priority 0 first): the home `claude` opens in this shell \
             (CLAUDE_CONFIG_DIR, else ~/.claude), then ~/.claude, then the others by path. Sessions run \
             under the first available account and move to the next when its quota runs out.",
        ));
        for (priority, account) in accounts.iter().enumerate() {
            write_account(&mut out, m, account, priority);
        }
    }
    for entry in &commented {
        write_commented_account(&mut out, entry);
    }
    let unshared = write_shared(&mut out, m, &accounts);
    write_pool_and_inbox(&mut out, m);
    out.push_str("---\n");
    out.push_str(&comment(
        "",
        "How the controller runs: every field at this version's default, spelled out. Change a \
         value to override it; remove a line to follow the defaults of later versions.",
    ));
    let _ = write!(
        out,
        "apiVersion: {API_VERSION}\nkind: ControllerConfig\nmetadata:\n  name: default\n{}",
        super::defaults::controller_spec()
    );
    Composed {
        text: out,
        found,
        placeholder,
        unshared,
    }
}

/// Which home becomes which account, which are duplicates, which have no login.
fn assign(m: &Machine) -> (Vec<Account<'_>>, Vec<Found>, Vec<Commented<'_>>) {
    let mut accounts: Vec<Account<'_>> = Vec::new();
    let mut found = Vec::new();
    let mut no_login = Vec::new();
    let mut names = BTreeSet::new();
    for home in &m.homes {
        let (role, label) = match &home.login {
            Err(why) => (
                Role::NoLogin(format!("its login cannot be read: {why}")),
                None,
            ),
            Ok(login) if !login.is_present() => (Role::NoLogin("no login".to_owned()), None),
            Ok(login) => {
                let label = describe_login(login, m.now);
                let same = accounts.iter_mut().find(|a| {
                    login.identity().is_some()
                        && a.home.login.as_ref().ok().and_then(Login::identity) == login.identity()
                });
                match same {
                    Some(account) => {
                        account.duplicates.push(&home.path);
                        let role = Role::Duplicate {
                            of: account.home.path.clone(),
                            account: account.name.clone(),
                        };
                        (role, Some(label))
                    }
                    None => {
                        let name = unique(account_name(&home.path), &mut names);
                        let role = Role::Account {
                            name: name.clone(),
                            priority: accounts.len(),
                        };
                        accounts.push(Account {
                            name,
                            home,
                            duplicates: Vec::new(),
                        });
                        (role, Some(label))
                    }
                }
            }
        };
        if let Role::NoLogin(why) = &role {
            let name = unique(account_name(&home.path), &mut names);
            no_login.push((home, why.clone(), name));
        }
        found.push(Found {
            path: home.path.clone(),
            label,
            role,
        });
    }
    let first = accounts.len();
    let commented = no_login
        .into_iter()
        .enumerate()
        .map(|(i, (home, why, name))| Commented {
            home,
            why,
            name,
            priority: first + i,
        })
        .collect();
    (accounts, found, commented)
}

/// A login in words: e-mail or account id, the plan, an expired access token.
fn describe_login(login: &Login, now: Timestamp) -> String {
    let mut text = login.label().map_or_else(
        || "a login whose account is not recorded".to_owned(),
        str::to_owned,
    );
    if let Some(plan) = &login.subscription {
        let _ = write!(text, " ({plan})");
    }
    if login.expired(now)
        && let Some(at) = login.expires_at
    {
        let _ = write!(text, ", access token expired {}", at.strftime("%Y-%m-%d"));
    }
    text
}

/// An account name from a home's folder: `.claude` is `default`, `.claude-work` is
/// `work`; characters tmux does not take in a session name become `-`.
pub(crate) fn account_name(home: &Path) -> String {
    let base = home
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = base.trim_start_matches('.');
    let base = match base {
        "claude" => "default",
        other => other.strip_prefix("claude-").unwrap_or(other),
    };
    let name: String = base
        .chars()
        .map(|c| {
            if matches!(c, ':' | '.' | '#') || c.is_whitespace() || c.is_control() {
                '-'
            } else {
                c
            }
        })
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "account".to_owned()
    } else {
        name.to_owned()
    }
}

/// `name`, or `name-2`, `name-3`… when taken; marks it taken.
fn unique(name: String, taken: &mut BTreeSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{name}-{n}");
        n += 1;
    }
    candidate
}

fn header(m: &Machine, placeholder: bool) -> String {
    let dir = shell(&m.dir);
    let mut out = String::from(
        "# yaml-language-server: $schema=failover.schema.json\n#\n\
         # Written by `failover init` from the Claude Code homes on this machine. Next:\n",
    );
    for (verb, what) in [
        ("doctor", "checks the machine against it"),
        ("diff", "shows what would change"),
        ("apply", "starts it"),
        ("controller", "keeps it running"),
    ] {
        let command = format!("failover {verb} -f {dir}");
        let _ = writeln!(out, "#   {command:<width$}  {what}", width = 24 + dir.len());
    }
    out.push_str("# Every field: docs/manifests.md (or `failover schema -o markdown`).\n");
    if placeholder {
        out.push_str("#\n");
        out.push_str(&comment(
            "",
            "No Claude Code home holding a login was found, so the two accounts below are \
             placeholders: log in to each (the commands are above it), then run `failover init \
             --force` again to write this file from what is there, or edit the homes.",
        ));
    }
    out.push_str("#\n");
    out
}

fn write_account(out: &mut String, m: &Machine, account: &Account<'_>, priority: usize) {
    let home = account.home;
    out.push_str("---\n");
    let label = home
        .login
        .as_ref()
        .map(|l| describe_login(l, m.now))
        .unwrap_or_default();
    out.push_str(&comment(
        "",
        &format!(
            "{}: {label}; {}.",
            home.path.display(),
            origin(&home.origin)
        ),
    ));
    for duplicate in &account.duplicates {
        out.push_str(&comment(
            "",
            &format!(
                "Also found {}: same login as this home (same account id), left out: one quota; a \
                 second account would only ever swap onto an exhausted quota.",
                duplicate.display()
            ),
        ));
    }
    if let Ok(login) = &home.login {
        let beside = m.user_home.join(crate::login::CONFIG_FILE);
        if login.config_file.as_deref() == Some(beside.as_path()) {
            out.push_str(&comment(
                "",
                &format!(
                    "Its settings (first-run screens, trusted folders) are in {} beside it; \
                     failover runs it with CLAUDE_CONFIG_DIR set, where Claude Code reads {} \
                     instead: start `{}` once and pass its first-run screens.",
                    beside.display(),
                    home.path.join(crate::login::CONFIG_FILE).display(),
                    login_command(&home.path),
                ),
            ));
        }
    }
    let _ = write!(
        out,
        "apiVersion: {API_VERSION}\nkind: Account\nmetadata:\n  name: {}\nspec:\n  home: {}\n  priority: {priority}\n",
        account.name,
        scalar(&home.path.to_string_lossy())
    );
}

fn write_commented_account(out: &mut String, entry: &Commented<'_>) {
    let Commented {
        home,
        why,
        name,
        priority,
    } = entry;
    out.push_str(&comment(
        "",
        &format!(
            "{}: {why}; {}. Written commented out: log in with `{}` and `/login` in it, then run `failover init \
             --force` again (or remove the `# ` before each line below).",
            home.path.display(),
            origin(&home.origin),
            login_command(&home.path),
        ),
    ));
    let path = scalar(&home.path.to_string_lossy());
    let _ = write!(
        out,
        "# ---\n# apiVersion: {API_VERSION}\n# kind: Account\n# metadata:\n#   name: {name}\n# spec:\n#   home: {path}\n#   priority: {priority}\n\n"
    );
}

fn write_placeholders(out: &mut String, m: &Machine) {
    for (priority, name) in ["main", "alt"].into_iter().enumerate() {
        let home = m.user_home.join(format!(".claude-{name}"));
        out.push_str("---\n");
        out.push_str(&comment(
            "",
            &format!(
                "A placeholder: log in with `{}` and `/login` in it; `failover apply` refuses it until \
                 the home exists.",
                login_command(&home)
            ),
        ));
        let _ = write!(
            out,
            "apiVersion: {API_VERSION}\nkind: Account\nmetadata:\n  name: {name}\nspec:\n  home: {}\n  priority: {priority}\n",
            scalar(&home.to_string_lossy())
        );
    }
}

/// Writes the SharedState over the accounts with nothing in the way of their links;
/// gives the accounts left out.
fn write_shared(out: &mut String, m: &Machine, accounts: &[Account<'_>]) -> Vec<String> {
    let (clean, blocked): (Vec<&Account<'_>>, Vec<&Account<'_>>) =
        accounts.iter().partition(|a| a.home.in_the_way.is_empty());
    let target = &m.shared_target;
    let links = m.links.join(", ");
    out.push_str("---\n");
    out.push_str(&comment(
        "",
        &format!(
            "Conversations follow a session to another account only when both homes' projects/ \
             lead to one folder. apply creates {} and its folders {links}, and links each home's \
             to them; it never moves a file, and refuses a link where a real folder is (the \
             controller then refuses to start), so a home whose own folders are there is left \
             out until they are moved.",
            target.display()
        ),
    ));
    for account in &blocked {
        write_blocked(out, m, account);
    }
    let body = format!(
        "apiVersion: {API_VERSION}\nkind: SharedState\nmetadata:\n  name: conversations\nspec:\n  target: {}\n  links: [{links}]\n",
        scalar(&target.to_string_lossy())
    );
    let names = |list: &[&Account<'_>]| list.iter().map(|a| a.name.clone()).collect::<Vec<_>>();
    if clean.is_empty() && !accounts.is_empty() {
        out.push_str(&comment(
            "",
            "Every account has folders of its own there, so this is written commented out: move \
             them as above, then run `failover init --force` again (or remove the `# ` before each \
             line below).",
        ));
        for line in body.lines() {
            let _ = writeln!(out, "# {line}");
        }
        out.push('\n');
    } else {
        out.push_str(&body);
        if !blocked.is_empty() {
            let _ = writeln!(out, "  accounts: [{}]", names(&clean).join(", "));
        }
    }
    names(&blocked)
}

fn write_blocked(out: &mut String, m: &Machine, account: &Account<'_>) {
    let home = &account.home.path;
    let what: Vec<String> = account
        .home
        .in_the_way
        .iter()
        .map(|(name, what)| format!("{name} is {what}"))
        .collect();
    out.push_str(&comment(
        "",
        &format!(
            "{} is left out for now: in {}, {}. A session that moves to it starts its conversation \
             afresh. To share it, with no agent running under it:",
            account.name,
            home.display(),
            what.join(", ")
        ),
    ));
    for (name, what) in &account.home.in_the_way {
        let (own, shared) = (home.join(name), m.shared_target.join(name));
        let aside = shell(&home.join(format!("{name}.before-failover")));
        let line = if what == "a file" {
            format!("mv {} {aside}", shell(&own))
        } else {
            format!(
                "mkdir -p {s} && cp -a {o}/. {s}/ && mv {o} {aside}",
                s = shell(&shared),
                o = shell(&own)
            )
        };
        let _ = writeln!(out, "#   {line}");
    }
    out.push_str(&comment(
        "",
        "then run `failover init --force` again (or add it to accounts below).",
    ));
}

fn write_pool_and_inbox(out: &mut String, m: &Machine) {
    let (name, prefix, min, max) = POOL;
    let workdir = scalar(&m.workdir.to_string_lossy());
    out.push_str("---\n");
    out.push_str(&comment(
        "",
        &format!(
            "The autonomous sessions: {prefix}0 and {prefix}1 always, up to {max} while tasks \
             wait. They start in {}; change workdir to your project.",
            m.workdir.display()
        ),
    ));
    let _ = write!(
        out,
        "apiVersion: {API_VERSION}\nkind: Pool\nmetadata:\n  name: {name}\nspec:\n  prefix: {prefix}\n  min: {min}\n  max: {max}\n  workdir: {workdir}\n"
    );
    out.push_str("---\n");
    out.push_str(&comment(
        "",
        &format!(
            "Tasks for the pool: write a task file elsewhere, then move it in (`mv task.md {}/`); \
             claimed, finished and failed ones go to its siblings active/, done/ and failed/. \
             init creates the folder.",
            shell(&m.inbox)
        ),
    ));
    let _ = write!(
        out,
        "apiVersion: {API_VERSION}\nkind: Inbox\nmetadata:\n  name: tasks\nspec:\n  path: {}\n  pool: {name}\n  workdir: {workdir}\n  glob: \"*.md\"\n",
        scalar(&m.inbox.to_string_lossy())
    );
}

/// Why a home was taken, in words.
fn origin(origin: &Origin) -> String {
    match origin {
        Origin::Environment => "CLAUDE_CONFIG_DIR names it in this shell".to_owned(),
        Origin::Default => "the home claude uses without CLAUDE_CONFIG_DIR".to_owned(),
        Origin::Named => "a ~/.claude-* folder".to_owned(),
        Origin::ShellFile(file) => format!("{} sets CLAUDE_CONFIG_DIR to it", file.display()),
    }
}

/// The command that starts Claude Code in `home`.
fn login_command(home: &Path) -> String {
    format!("CLAUDE_CONFIG_DIR={} claude", shell(home))
}

/// A path quoted for a shell command line, when it needs it.
fn shell(path: &Path) -> String {
    shell_words::quote(&path.to_string_lossy()).into_owned()
}

/// A string as a YAML scalar: plain when it reads back as the same string, else
/// double-quoted (JSON's quoting is YAML's).
pub(crate) fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+@".contains(c))
        && !text.starts_with(['-', '.'])
        && text.parse::<f64>().is_err()
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::Value::String(text.to_owned()).to_string()
    }
}

/// `text` as `# ` comment lines indented by `indent`, wrapped.
pub(crate) fn comment(indent: &str, text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + 2 + line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(out, "{indent}# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}# {line}");
    }
    out
}

#[cfg(test)]
#[path = "compose_tests.rs"]
mod tests;
