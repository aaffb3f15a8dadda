//! The filesystem part of a snapshot: shared-state entries and inbox files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::api::Manifests;

/// What is at a path, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Entry {
    /// Nothing.
    Absent,
    /// A symlink, with what it says and, when it resolves, where it leads.
    Link {
        /// The link's text.
        to: PathBuf,
        /// The canonical path it leads to, if it leads anywhere.
        resolved: Option<PathBuf>,
    },
    /// A regular file.
    File,
    /// A real folder, with how many entries it holds.
    Dir {
        /// Entries inside.
        entries: usize,
        /// Its canonical path (links in its parents resolved).
        real: PathBuf,
    },
    /// Something else (socket, device) or unreadable.
    Other,
}

/// Looks at one path.
pub(crate) fn observe_entry(path: &Path) -> Entry {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Entry::Absent,
        Err(_) => Entry::Other,
        Ok(m) if m.file_type().is_symlink() => Entry::Link {
            to: std::fs::read_link(path).unwrap_or_default(),
            resolved: std::fs::canonicalize(path).ok(),
        },
        Ok(m) if m.is_file() => Entry::File,
        Ok(m) if m.is_dir() => Entry::Dir {
            entries: std::fs::read_dir(path).map(Iterator::count).unwrap_or(0),
            real: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        },
        Ok(_) => Entry::Other,
    }
}

/// Every path the shared state involves: each target, `target/<link>`, each account
/// home and `home/<link>`.
pub(super) fn observe_entries(m: &Manifests) -> BTreeMap<PathBuf, Entry> {
    // A set: a home shared by several states, or listed again below, is looked at once.
    let mut paths: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
    for shared in &m.shared_states {
        paths.insert(shared.spec.target.clone());
        for link in &shared.spec.links {
            paths.insert(shared.spec.target.join(link));
        }
        for account in &m.accounts {
            let included = shared
                .spec
                .accounts
                .as_ref()
                .is_none_or(|a| a.contains(&account.name));
            if included {
                paths.insert(account.spec.home.clone());
                paths.extend(shared.spec.links.iter().map(|l| account.spec.home.join(l)));
            }
        }
    }
    for account in &m.accounts {
        paths.insert(account.spec.home.clone());
    }
    paths
        .into_iter()
        .map(|p| {
            let entry = observe_entry(&p);
            (p, entry)
        })
        .collect()
}

/// Matches a file name against a glob of `*` and `?` (no `/`, no classes).
pub(crate) fn glob_match(glob: &str, name: &str) -> bool {
    let (g, n): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    let (mut gi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ni;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_match_should_handle_stars_and_question_marks() {
        for (glob, name, expected) in [
            ("*.md", "task.md", true),
            ("*.md", "task.md.tmp", false),
            ("*.md", ".md", true),
            ("t?sk*", "task-1.md", true),
            ("*", "anything", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ] {
            assert_eq!(glob_match(glob, name), expected, "{glob} {name}");
        }
    }

    #[test]
    fn observe_entry_should_tell_links_files_and_folders_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("f"), "x").unwrap();
        std::fs::create_dir(p.join("d")).unwrap();
        std::os::unix::fs::symlink(p.join("d"), p.join("l")).unwrap();
        std::os::unix::fs::symlink(p.join("nowhere"), p.join("broken")).unwrap();
        assert_eq!(observe_entry(&p.join("absent")), Entry::Absent);
        assert_eq!(observe_entry(&p.join("f")), Entry::File);
        let canonical = std::fs::canonicalize(p.join("d")).unwrap();
        assert_eq!(
            observe_entry(&p.join("d")),
            Entry::Dir {
                entries: 0,
                real: canonical.clone()
            }
        );
        assert_eq!(
            observe_entry(&p.join("l")),
            Entry::Link {
                to: p.join("d"),
                resolved: Some(canonical)
            }
        );
        assert_eq!(
            observe_entry(&p.join("broken")),
            Entry::Link {
                to: p.join("nowhere"),
                resolved: None
            }
        );
    }
}
