//! Agent settings rules: while a profile in use reads the agent's own reports, every
//! account home's `settings.json` carries failover's hooks and status line; when none
//! does, failover's entries are taken out again. The operator's entries are never
//! touched, and a file that is not valid JSON is reported and left as it is. A Codex
//! home's `config.toml` carries what Codex needs to run unattended in the folders its
//! sessions run in, and failover's `notify` while a profile reads reports.

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
        .flat_map(|p| p.spec.profiles().iter().map(String::as_str))
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
                    projects: Vec::new(),
                });
            }
            Err(why) => plan.refuse(
                ObjectRef::Path(path.clone()),
                format!("account {}: {why}; left as it is", account.name),
            ),
        }
    }
    plan_codex_configs(m, o, exe, plan);
}

/// The folders the wanted sessions of profiles of `kind` run in: pools', their inboxes'
/// and dedicated sessions', once each.
fn workdirs_of(m: &Manifests, kind: AgentKind) -> Vec<std::path::PathBuf> {
    let of_kind = |agent: &str| m.agent(agent).is_some_and(|p| p.spec.kind == kind);
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    let any_of_kind = |p: &crate::api::PoolSpec| p.profiles().iter().any(|a| of_kind(a));
    for pool in m.pools.iter().filter(|p| any_of_kind(&p.spec)) {
        dirs.push(pool.spec.workdir.clone());
        let inboxes = m.inboxes.iter().filter(|i| i.spec.pool == pool.name);
        dirs.extend(inboxes.map(|i| i.spec.workdir.clone()));
    }
    let dedicated = m.dedicated.iter().filter(|d| of_kind(&d.spec.agent));
    dirs.extend(dedicated.map(|d| d.spec.workdir.clone()));
    let mut seen = std::collections::BTreeSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// What failover wants in the `config.toml` of a home of `kind` (Codex): `None` when no
/// session of that family is wanted.
pub(crate) fn codex_want(
    m: &Manifests,
    kind: AgentKind,
    exe: &std::path::Path,
) -> Option<crate::codex_config::Want> {
    let projects = workdirs_of(m, kind);
    (!projects.is_empty()).then(|| crate::codex_config::Want {
        exe: reports_wanted_of(m, kind).then(|| exe.to_path_buf()),
        projects,
    })
}

/// A Codex home's `config.toml`: failover's entries while a session of its family is
/// wanted (`notify` only while one reads reports); its `notify` taken out otherwise.
fn plan_codex_configs(m: &Manifests, o: &Observed, exe: &std::path::Path, plan: &mut Plan) {
    use crate::codex_config::{self, Observed as Toml};
    for account in &m.accounts {
        let home = &account.spec.home;
        let Some(file) = account.spec.agent.config_file() else {
            continue;
        };
        if !is_folder(o, home) {
            continue;
        }
        let path = home.join(file);
        let want = codex_want(m, account.spec.agent, exe);
        let projects = want
            .as_ref()
            .map(|w| w.projects.clone())
            .unwrap_or_default();
        let existing = match o.codex_configs.get(home) {
            None | Some(Toml::Missing) => None,
            Some(Toml::Toml(text)) => Some(text.as_str()),
            Some(Toml::Invalid(why) | Toml::Unreadable(why)) => {
                plan.refuse(
                    ObjectRef::Path(path.clone()),
                    format!(
                        "account {}: {why}; left as it is, so Codex may stop at a dialog \
                         and its agents do not report",
                        account.name
                    ),
                );
                continue;
            }
        };
        match codex_config::merge(existing, want.as_ref()) {
            Ok(merged) if merged.changes.is_empty() => {}
            Ok(mut merged) => {
                if merged.foreign_notify {
                    merged
                        .changes
                        .push("keep the operator's own notify (tasks end on the rollout)".into());
                }
                plan.act(FsAction::ConfigureAgent {
                    account: account.name.clone(),
                    path,
                    exe: want.as_ref().and_then(|w| w.exe.clone()),
                    changes: merged.changes,
                    projects,
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

    const CODEX: &str = "
apiVersion: failover/v1alpha1
kind: Account
metadata: {name: x}
spec: {home: /h/x, agent: codex}
---
apiVersion: failover/v1alpha1
kind: Pool
metadata: {name: cx}
spec: {prefix: cx-, min: 1, max: 2, workdir: /w, agent: codex}
---
apiVersion: failover/v1alpha1
kind: Inbox
metadata: {name: q}
spec: {path: /p/.agent-queue/inbox, pool: cx, workdir: /p}
";

    #[test]
    fn a_codex_home_should_get_its_config_for_the_pools_folders_and_then_be_left_alone() {
        let text = format!("{POOL_AND_DEDICATED}---{CODEX}");
        let mut o = world(&text);
        let operators = "model = \"gpt-5\" # mine\n";
        o.codex_configs.insert(
            "/h/x".into(),
            crate::codex_config::Observed::Toml(operators.into()),
        );
        let p = planned(&o, &text);
        let codex: Vec<&Action> = p
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Fs(FsAction::ConfigureAgent { path, .. }) if path.ends_with("config.toml")))
            .collect();
        let [
            Action::Fs(FsAction::ConfigureAgent {
                path,
                exe,
                changes,
                projects,
                ..
            }),
        ] = &codex[..]
        else {
            panic!("{:?}", p.actions);
        };
        assert_eq!(path, std::path::Path::new("/h/x/config.toml"));
        assert_eq!(
            exe.as_deref(),
            Some(std::path::Path::new("/usr/bin/failover"))
        );
        assert_eq!(projects, &[std::path::PathBuf::from("/w"), "/p".into()]);
        assert_eq!(changes.first().map(String::as_str), Some("set notify"));
        assert_eq!(changes.last().map(String::as_str), Some("trust /w, /p"));
        // Written as the executor would: nothing more to do.
        let want = crate::codex_config::Want {
            exe: exe.clone(),
            projects: projects.clone(),
        };
        let merged = crate::codex_config::merge(Some(operators), Some(&want)).unwrap();
        assert!(merged.text.starts_with(operators));
        o.codex_configs.insert(
            "/h/x".into(),
            crate::codex_config::Observed::Toml(merged.text),
        );
        let again = planned(&o, &text);
        assert!(
            !again.actions.iter().any(|a| matches!(a, Action::Fs(FsAction::ConfigureAgent { path, .. }) if path.ends_with("config.toml"))),
            "{:?}",
            again.actions
        );
        o.codex_configs.insert(
            "/h/x".into(),
            crate::codex_config::Observed::Invalid("expected `=` at line 1".into()),
        );
        let bad = planned(&o, &text);
        assert!(
            bad.refused
                .iter()
                .any(|r| r.object.spoken().to_string() == "/h/x/config.toml"),
            "{:?}",
            bad.refused
        );
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
