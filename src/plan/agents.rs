//! Agent settings rules: while a profile in use reads the agent's own reports, every
//! account home's `settings.json` carries failover's hooks and status line; when none
//! does, failover's entries are taken out again. The operator's entries are never
//! touched, and a file that is not valid JSON is reported and left as it is.

use super::{FsAction, Plan};
use crate::agent_settings::{self, Commands, Observed as File};
use crate::api::{AgentKind, AgentProfileSpec, Manifests, Object};
use crate::object::ObjectRef;
use crate::observe::{Entry, Observed};

/// Whether a wanted session runs a profile that reads reports.
pub(crate) fn reports_wanted(m: &Manifests) -> bool {
    wanted_profiles(m).any(|p| p.spec.reports)
}

/// Whether a wanted session runs a profile of `kind` that reads reports: the homes of
/// that family then carry failover's entries.
fn reports_wanted_of(m: &Manifests, kind: AgentKind) -> bool {
    wanted_profiles(m).any(|p| p.spec.reports && p.spec.kind == kind)
}

/// The profiles of the wanted sessions (pools and dedicated), once each.
fn wanted_profiles(m: &Manifests) -> impl Iterator<Item = &Object<AgentProfileSpec>> {
    let names: std::collections::BTreeSet<&str> = m
        .pools
        .iter()
        .map(|p| p.spec.agent.as_str())
        .chain(m.dedicated.iter().map(|d| d.spec.agent.as_str()))
        .collect();
    names.into_iter().filter_map(|a| m.agent(a))
}

/// Adds the settings actions and refusals.
pub(super) fn plan_agent_settings(m: &Manifests, o: &Observed, plan: &mut Plan) {
    let Some(exe) = o.exe.as_deref() else {
        if reports_wanted(m) {
            plan.refuse(
                ObjectRef::AgentSettings,
                "the path of the failover binary is unknown; the agents' hooks cannot be set",
            );
        }
        return;
    };
    let commands = Commands::for_exe(exe);
    for account in &m.accounts {
        let home = &account.spec.home;
        let Some(file) = account.spec.agent.settings_file() else {
            continue;
        };
        if !is_folder(o, home) {
            continue;
        }
        let want = reports_wanted_of(m, account.spec.agent);
        let path = home.join(file);
        let existing = match o.agent_settings.get(home) {
            None | Some(File::Missing) => None,
            Some(File::Json(v)) => Some(v),
            Some(File::Invalid(why) | File::Unreadable(why)) => {
                plan.refuse(
                    ObjectRef::Path(path.clone()),
                    format!(
                        "account {}: {why}; left as it is, so its agents do not report \
                         (their tasks end on the transcript or the screen)",
                        account.name
                    ),
                );
                continue;
            }
        };
        match agent_settings::merge(existing, want.then_some(&commands)) {
            Ok(merged) if merged.changes.is_empty() => {}
            Ok(mut merged) => {
                if merged.foreign_status_line {
                    merged.changes.push(
                        "keep the operator's own status line (this account's use is not read)"
                            .into(),
                    );
                }
                plan.act(FsAction::ConfigureAgent {
                    account: account.name.clone(),
                    path,
                    exe: want.then(|| exe.to_path_buf()),
                    changes: merged.changes,
                });
            }
            Err(why) => plan.refuse(
                ObjectRef::Path(path.clone()),
                format!("account {}: {why}; left as it is", account.name),
            ),
        }
    }
}

/// Whether `path` is a folder, or a link to one: an account home whose settings can
/// be read and written.
fn is_folder(o: &Observed, path: &std::path::Path) -> bool {
    matches!(
        o.entries.get(path),
        Some(
            Entry::Dir { .. }
                | Entry::Link {
                    resolved: Some(_),
                    ..
                }
        )
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::plan::{Action, FsAction};
    use serde_json::json;

    fn planned(o: &Observed, text: &str) -> Plan {
        let mut plan = Plan::default();
        plan_agent_settings(&manifests(text), o, &mut plan);
        plan
    }

    fn world(text: &str) -> Observed {
        let mut o = observed();
        o.exe = Some("/usr/bin/failover".into());
        home_dirs(&mut o, &manifests(text));
        o
    }

    #[test]
    fn settings_should_get_our_hooks_in_every_home_and_then_be_left_alone() {
        let o = world(POOL_AND_DEDICATED);
        let p = planned(&o, POOL_AND_DEDICATED);
        let targets: Vec<String> = p
            .actions
            .iter()
            .map(|a| match a {
                Action::Fs(FsAction::ConfigureAgent { path, changes, .. }) => {
                    format!("{} {}", path.display(), changes.join("; "))
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            [
                "/h/main/settings.json add hooks SessionStart, UserPromptSubmit, Stop, StopFailure; add the status line",
                "/h/alt/settings.json add hooks SessionStart, UserPromptSubmit, Stop, StopFailure; add the status line"
            ]
        );
        let mut done = o.clone();
        let merged =
            agent_settings::merge(None, Some(&Commands::for_exe("/usr/bin/failover".as_ref())))
                .unwrap()
                .value;
        for home in ["/h/main", "/h/alt"] {
            done.agent_settings
                .insert(home.into(), File::Json(merged.clone()));
        }
        assert!(planned(&done, POOL_AND_DEDICATED).is_empty());
    }

    #[test]
    fn settings_that_are_not_json_should_be_refused_by_path() {
        let mut o = world(POOL_AND_DEDICATED);
        o.agent_settings.insert(
            "/h/main".into(),
            File::Invalid("trailing comma at line 3 column 1".into()),
        );
        let p = planned(&o, POOL_AND_DEDICATED);
        assert_eq!(
            p.refused[0].object.spoken().to_string(),
            "/h/main/settings.json"
        );
        assert!(
            p.refused[0].reason.contains("line 3 column 1"),
            "{:?}",
            p.refused
        );
        assert_eq!(p.actions.len(), 1, "the other home still gets its hooks");
    }

    #[test]
    fn profiles_that_opt_out_should_have_our_entries_taken_out() {
        let text = format!(
            "{POOL_AND_DEDICATED}---\napiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{reports: false}}\n"
        );
        let mut o = world(&text);
        assert!(planned(&o, &text).is_empty(), "nothing of ours to take out");
        let ours = agent_settings::merge(
            Some(&json!({"theme": "dark"})),
            Some(&Commands::for_exe("/usr/bin/failover".as_ref())),
        )
        .unwrap()
        .value;
        o.agent_settings.insert("/h/main".into(), File::Json(ours));
        let p = planned(&o, &text);
        let [Action::Fs(FsAction::ConfigureAgent { exe, changes, .. })] = &p.actions[..] else {
            panic!("{:?}", p.actions);
        };
        assert_eq!(*exe, None);
        assert_eq!(
            changes,
            &[
                "remove hooks SessionStart, UserPromptSubmit, Stop, StopFailure",
                "remove the status line"
            ]
        );
    }
}
