//! Shared-state rules: every account home exposes `home/<name> -> target/<name>` for
//! each shared name. Missing folders and links are created; anything else in the way
//! is refused, never changed, and every problem is listed.

use crate::object::ObjectRef;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{FsAction, Plan};
use crate::api::{AccountSpec, Manifests, Object};
use crate::observe::{Entry, Observed};

/// Adds the shared-state actions and refusals; returns the accounts whose shared state
/// is broken (no session may start under them).
pub(super) fn plan_shared(m: &Manifests, observed: &Observed, plan: &mut Plan) -> BTreeSet<String> {
    let mut rules = Rules {
        observed,
        planned_dirs: BTreeSet::new(),
        broken: BTreeSet::new(),
    };
    for shared in &m.shared_states {
        let target = &shared.spec.target;
        let mut target_ok = rules.folder(target, plan);
        for name in &shared.spec.links {
            target_ok &= rules.folder(&target.join(name), plan);
        }
        let accounts = m.accounts.iter().filter(|a| {
            shared
                .spec
                .accounts
                .as_ref()
                .is_none_or(|names| names.contains(&a.name))
        });
        for account in accounts {
            if !rules.home(account, plan) {
                continue;
            }
            if !target_ok {
                rules.broken.insert(account.name.clone());
            }
            for name in &shared.spec.links {
                rules.link(
                    account,
                    &account.spec.home.join(name),
                    &target.join(name),
                    plan,
                );
            }
        }
    }
    rules.broken
}

/// What the shared-state rules read and gather across shared states.
struct Rules<'a> {
    observed: &'a Observed,
    /// Folders already planned, created once.
    planned_dirs: BTreeSet<PathBuf>,
    /// Accounts whose shared state is broken.
    broken: BTreeSet<String>,
}

impl Rules<'_> {
    /// What is at `path`.
    fn entry(&self, path: &Path) -> Entry {
        self.observed
            .entries
            .get(path)
            .cloned()
            .unwrap_or(Entry::Absent)
    }

    /// Whether the shared folder `path` is there or planned: created when missing,
    /// refused when something else is in the way.
    fn folder(&mut self, path: &Path, plan: &mut Plan) -> bool {
        match self.entry(path) {
            Entry::Absent => {
                if self.planned_dirs.insert(path.to_path_buf()) {
                    plan.act(FsAction::CreateDir {
                        path: path.to_path_buf(),
                    });
                }
                true
            }
            Entry::Dir { .. }
            | Entry::Link {
                resolved: Some(_), ..
            } => true,
            other => {
                plan.refuse(
                    ObjectRef::Path(path.to_path_buf()),
                    format!(
                        "shared folder expected, found {}; not changed",
                        describe(&other)
                    ),
                );
                false
            }
        }
    }

    /// Whether `account`'s home is a folder; refuses it, and marks the account broken,
    /// when it is missing or something else.
    fn home(&mut self, account: &Object<AccountSpec>, plan: &mut Plan) -> bool {
        let home = &account.spec.home;
        let why = match self.entry(home) {
            Entry::Dir { .. }
            | Entry::Link {
                resolved: Some(_), ..
            } => return true,
            Entry::Absent => format!(
                "account {}: home does not exist; log in to create it, then apply again",
                account.name
            ),
            other => format!(
                "account {}: home is {}, not a folder",
                account.name,
                describe(&other)
            ),
        };
        plan.refuse(ObjectRef::Path(home.clone()), why);
        self.broken.insert(account.name.clone());
        false
    }

    /// Plans the link `link` to `expected` in `account`'s home: created when missing,
    /// left when it leads there already; anything else is refused and marks the
    /// account broken.
    fn link(
        &mut self,
        account: &Object<AccountSpec>,
        link: &Path,
        expected: &Path,
        plan: &mut Plan,
    ) {
        let why = match self.entry(link) {
            Entry::Absent => {
                plan.act(FsAction::CreateLink {
                    link: link.to_path_buf(),
                    target: expected.to_path_buf(),
                });
                return;
            }
            Entry::Link { to, resolved } => {
                let real = match self.entry(expected) {
                    Entry::Dir { real, .. } => Some(real),
                    Entry::Link { resolved, .. } => resolved,
                    _ => None,
                };
                if to == expected || (resolved.is_some() && resolved == real) {
                    return;
                }
                format!(
                    "account {}: links to {}, not {}; not changed",
                    account.name,
                    to.display(),
                    expected.display()
                )
            }
            other => format!(
                "account {}: {} is in the way of the link to {}; move its contents into {} and remove it",
                account.name,
                describe(&other),
                expected.display(),
                expected.display()
            ),
        };
        plan.refuse(ObjectRef::Path(link.to_path_buf()), why);
        self.broken.insert(account.name.clone());
    }
}

/// What an entry is, in the operator's words.
fn describe(entry: &Entry) -> String {
    match entry {
        Entry::Absent => "nothing".to_owned(),
        Entry::Link { to, .. } => format!("a link to {}", to.display()),
        Entry::File => "a file".to_owned(),
        Entry::Dir { entries, .. } => format!("a real folder ({entries} entries)"),
        Entry::Other => "something that is neither file nor folder".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::plan::{Action, FsAction};
    use std::path::PathBuf;

    #[test]
    fn planner_should_create_missing_target_folders_and_links() {
        let m = manifests(TWO_ACCOUNTS_SHARED);
        let mut o = observed();
        home_dirs(&mut o, &m);
        let mut plan = Plan::default();
        let broken = plan_shared(&m, &o, &mut plan);
        assert!(broken.is_empty());
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
        let dirs: Vec<_> = plan
            .actions
            .iter()
            .filter_map(|a| {
                if let Action::Fs(FsAction::CreateDir { path }) = a {
                    Some(path.clone())
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(
            dirs,
            ["/s", "/s/projects", "/s/file-history"].map(PathBuf::from)
        );
        let links = plan
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Fs(FsAction::CreateLink { .. })))
            .count();
        assert_eq!(links, 4);
        assert!(plan.actions.contains(&Action::Fs(FsAction::CreateLink {
            link: "/h/alt/file-history".into(),
            target: "/s/file-history".into()
        })));
    }

    #[test]
    fn planner_should_accept_correct_links_and_refuse_everything_else_in_the_way() {
        let m = manifests(TWO_ACCOUNTS_SHARED);
        let mut o = observed();
        home_dirs(&mut o, &m);
        for p in ["/s", "/s/projects", "/s/file-history"] {
            o.entries.insert(p.into(), dir(p));
        }
        let link = |to: &str| Entry::Link {
            to: to.into(),
            resolved: Some(to.into()),
        };
        o.entries
            .insert("/h/main/projects".into(), link("/s/projects"));
        o.entries
            .insert("/h/main/file-history".into(), link("/elsewhere"));
        o.entries.insert("/h/alt/projects".into(), Entry::File);
        o.entries.insert(
            "/h/alt/file-history".into(),
            Entry::Dir {
                entries: 3,
                real: "/h/alt/file-history".into(),
            },
        );
        let mut plan = Plan::default();
        let broken = plan_shared(&m, &o, &mut plan);
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        let objects: Vec<String> = plan.refused.iter().map(|r| r.object.to_string()).collect();
        assert_eq!(
            objects,
            [
                "/h/main/file-history",
                "/h/alt/projects",
                "/h/alt/file-history"
            ]
        );
        assert!(
            plan.refused[0]
                .reason
                .contains("links to /elsewhere, not /s/file-history")
        );
        assert!(plan.refused[1].reason.contains("a file is in the way"));
        assert!(
            plan.refused[2]
                .reason
                .contains("a real folder (3 entries) is in the way")
        );
        assert_eq!(
            broken,
            BTreeSet::from(["main".to_owned(), "alt".to_owned()])
        );
    }

    #[test]
    fn planner_should_accept_a_link_that_resolves_to_the_real_target() {
        let m = manifests(TWO_ACCOUNTS_SHARED);
        let mut o = observed();
        home_dirs(&mut o, &m);
        o.entries.insert("/s".into(), dir("/s"));
        o.entries.insert(
            "/s/projects".into(),
            Entry::Dir {
                entries: 0,
                real: "/real/s/projects".into(),
            },
        );
        o.entries.insert(
            "/h/main/projects".into(),
            Entry::Link {
                to: "../../s/projects".into(),
                resolved: Some("/real/s/projects".into()),
            },
        );
        let mut plan = Plan::default();
        plan_shared(&m, &o, &mut plan);
        assert!(plan.refused.is_empty(), "{:?}", plan.refused);
    }

    #[test]
    fn planner_should_refuse_a_missing_home_and_mark_its_account_broken() {
        let m = manifests(TWO_ACCOUNTS_SHARED);
        let mut o = observed();
        o.entries.insert("/h/main".into(), dir("/h/main"));
        let mut plan = Plan::default();
        let broken = plan_shared(&m, &o, &mut plan);
        assert_eq!(broken, BTreeSet::from(["alt".to_owned()]));
        assert_eq!(plan.refused.len(), 1);
        assert!(plan.refused[0].reason.contains("home does not exist"));
    }
}
