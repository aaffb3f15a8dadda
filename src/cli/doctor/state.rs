//! What failover keeps on disk: the shared-state links as the manifests want them, and
//! the state folder, owned by the user with the mode failover makes it with (0700).

use std::path::{Path, PathBuf};

use super::{Check, Fixes};
use crate::api::Manifests;
use crate::observe::{Entry, observe_entry};

/// One link a SharedState wants in one account's home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Link {
    /// The SharedState.
    pub shared: String,
    /// The account.
    pub account: String,
    /// `home/<name>`.
    pub link: PathBuf,
    /// `target/<name>`, where it is to lead.
    pub target: PathBuf,
    /// What is at the link.
    pub entry: Entry,
    /// What is at the target.
    pub target_entry: Entry,
}

/// Looks at every link every SharedState wants.
pub(super) fn gather_links(m: &Manifests) -> Vec<Link> {
    let mut links = Vec::new();
    for shared in &m.shared_states {
        let accounts = m.accounts.iter().filter(|a| {
            shared
                .spec
                .accounts
                .as_ref()
                .is_none_or(|names| names.contains(&a.name))
        });
        // A missing home is the home line's to tell: apply makes no links in it.
        for account in accounts.filter(|a| a.spec.home.is_dir()) {
            for name in &shared.spec.links {
                let link = account.spec.home.join(name);
                let target = shared.spec.target.join(name);
                links.push(Link {
                    shared: shared.name.clone(),
                    account: account.name.clone(),
                    entry: observe_entry(&link),
                    target_entry: observe_entry(&target),
                    link,
                    target,
                });
            }
        }
    }
    links
}

/// One line per SharedState and account: all its links right, or the first one wrong
/// with its fix.
pub(super) fn judge_links(links: &[Link], fixes: &Fixes) -> Vec<Check> {
    let mut checks: Vec<Check> = Vec::new();
    let mut groups: Vec<(&str, &str, Vec<&Link>)> = Vec::new();
    for l in links {
        match groups
            .iter_mut()
            .find(|(s, a, _)| *s == l.shared && *a == l.account)
        {
            Some(group) => group.2.push(l),
            None => groups.push((&l.shared, &l.account, vec![l])),
        }
    }
    for (shared, account, links) in groups {
        let object = format!("account/{account}");
        let problems: Vec<(String, String)> =
            links.iter().filter_map(|l| judge_link(l, fixes)).collect();
        match problems.first() {
            None => {
                let target = links[0].target.parent().unwrap_or(Path::new("/"));
                checks.push(Check::ok(
                    "links",
                    object,
                    format!(
                        "{} link{} to {} (SharedState {shared})",
                        links.len(),
                        if links.len() == 1 { "" } else { "s" },
                        target.display()
                    ),
                ));
            }
            Some((found, fix)) => {
                let more = match problems.len() {
                    1 => String::new(),
                    n => format!(" (and {} more)", n - 1),
                };
                checks.push(Check::fail(
                    "links",
                    object,
                    format!("{found}{more}"),
                    fix.clone(),
                ));
            }
        }
    }
    checks
}

/// What is wrong with one link and its fix, or `None` when it leads where it should.
fn judge_link(l: &Link, fixes: &Fixes) -> Option<(String, String)> {
    let link = l.link.display();
    let target = l.target.display();
    let quoted = shell_words::quote(&l.link.to_string_lossy()).into_owned();
    let real = match &l.target_entry {
        Entry::Dir { real, .. } => Some(real.clone()),
        Entry::Link { resolved, .. } => resolved.clone(),
        _ => None,
    };
    match &l.entry {
        Entry::Absent => Some((format!("{link} is missing"), fixes.apply())),
        Entry::Link { to, resolved } => {
            let leads_there = to == &l.target || (resolved.is_some() && *resolved == real);
            if leads_there && real.is_some() {
                None
            } else if leads_there {
                Some((
                    format!("{link} leads to {target}, which does not exist"),
                    fixes.apply(),
                ))
            } else {
                Some((
                    format!("{link} is a stale link to {}, not {target}", to.display()),
                    format!("rm {quoted} && {}", fixes.apply()),
                ))
            }
        }
        other => {
            let what = match other {
                Entry::File => "a file",
                Entry::Dir { .. } => "a real folder",
                _ => "something that is neither file nor folder",
            };
            Some((
                format!("{link} is {what}, not a link to {target}"),
                format!(
                    "move what it holds into {target}, remove it, then {}",
                    fixes.apply()
                ),
            ))
        }
    }
}

/// The state folder as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StateDir {
    /// Where it is.
    pub path: PathBuf,
    /// Its owner's uid and its permission bits, when it exists.
    pub meta: Option<(u32, u32)>,
    /// This process's uid.
    pub me: Option<u32>,
    /// This user's name, for the `chown` fix.
    pub user: String,
}

/// Looks at the state folder.
pub(super) fn gather_state_dir(path: &Path) -> StateDir {
    use std::os::unix::fs::MetadataExt;
    StateDir {
        path: path.to_path_buf(),
        meta: std::fs::metadata(path)
            .ok()
            .map(|m| (m.uid(), m.mode() & 0o7777)),
        // `/proc/self` belongs to the process's effective user.
        me: std::fs::metadata("/proc/self").ok().map(|m| m.uid()),
        user: std::env::var("USER").unwrap_or_else(|_| "$USER".to_owned()),
    }
}

/// The state folder's line: ours, 0700.
pub(super) fn judge_state_dir(d: &StateDir) -> Check {
    let object = d.path.display().to_string();
    let quoted = shell_words::quote(&d.path.to_string_lossy()).into_owned();
    let Some((uid, mode)) = d.meta else {
        return Check::ok(
            "state",
            object,
            "not made yet (the first apply or controller makes it, mode 0700)",
        );
    };
    if d.me.is_some_and(|me| me != uid) {
        return Check::fail(
            "state",
            object,
            format!("owned by uid {uid}, not by this user: failover cannot keep its facts there"),
            format!("sudo chown -R {} {quoted}", d.user),
        );
    }
    let chmod = format!("chmod 700 {quoted}");
    if mode & 0o022 != 0 {
        return Check::fail(
            "state",
            object,
            format!("mode {mode:04o}: others can write the facts and the agents' reports"),
            chmod,
        );
    }
    if mode & 0o700 != 0o700 {
        return Check::fail(
            "state",
            object,
            format!("mode {mode:04o}: failover itself cannot use it"),
            chmod,
        );
    }
    if mode & 0o077 != 0 {
        return Check::warn(
            "state",
            object,
            format!("mode {mode:04o}: others can read the journal and the agents' reports"),
            chmod,
        );
    }
    Check::ok("state", object, "yours, mode 0700")
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
