//! Taking down what manifests own, for `failover delete`: the sessions that carry our
//! mark and that the manifests want, the tasks those sessions held (back to their
//! inbox, never deleted), failover's entries in the account homes' agent settings (the
//! file put back byte for byte when nothing else changed in it), the app-server
//! daemons failover's Codex agents left running, and the shared-state
//! links failover created that still point where it made them point. Nothing else: a
//! person's session, file or link is never touched, and no task file is ever removed.
//!
//! [`plan`] is pure: it decides from what was observed, in ordinary actions
//! ([`Action`]) that the round's executor carries out, journals and shows like any
//! other: `delete --dry-run` renders them as `diff` renders a plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::agent_settings::{self, Observed as Settings};
use crate::api::Manifests;
use crate::observe::Observed;
use crate::plan::{Action, FsAction, SessionAction, TaskAction};
use crate::state::originals::Original;

/// Why `failover delete` kills a session, as its action says.
pub(crate) const REASON: &str = "failover delete";

/// What [`plan`] reads besides the manifests and the observation.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// Links the journal says failover created (link, target), with what each link
    /// says now (`None`: not a link, or gone).
    pub links: Vec<(PathBuf, PathBuf, Option<PathBuf>)>,
    /// The agent settings files as they were before failover's first write, by path.
    pub originals: BTreeMap<PathBuf, Original>,
}

/// The actions that take down what `m` owns, in order: sessions first (their agents
/// stop), then their tasks back to the inboxes, then the settings and links.
pub(crate) fn plan(m: &Manifests, observed: &Observed, owner: &str, found: &Found) -> Vec<Action> {
    let mut steps: Vec<Action> = observed
        .sessions
        .values()
        .filter(|s| s.is_ours(owner) && m.wants_session(&s.name))
        .map(|s| {
            Action::from(SessionAction::DeleteSession {
                name: s.name.clone(),
                reason: REASON.to_owned(),
            })
        })
        .collect();
    for inbox in &m.inboxes {
        let Some(state) = observed.inboxes.get(&inbox.name) else {
            continue;
        };
        let folders = crate::tasks::Folders::of(&inbox.spec.path);
        for t in &state.active {
            steps.push(Action::from(TaskAction::ReturnTask {
                session: t.session.clone(),
                inbox: inbox.name.clone(),
                name: t.task.clone(),
                from: folders.active.join(&t.file),
                to: inbox.spec.path.join(&t.task),
            }));
        }
    }
    for account in &m.accounts {
        let Some(file) = account.spec.agent.settings_file() else {
            continue;
        };
        let path = account.spec.home.join(file);
        let now = observed.agent_settings.get(&account.spec.home);
        if let Some(step) = settings(&path, now, &found.originals) {
            steps.push(step.into());
        }
    }
    for account in &m.accounts {
        let Some(file) = account.spec.agent.config_file() else {
            continue;
        };
        let path = account.spec.home.join(file);
        let now = observed.codex_configs.get(&account.spec.home);
        let want = observed
            .exe
            .as_deref()
            .and_then(|exe| crate::plan::codex_want(m, account.spec.agent, exe));
        if let Some(step) = codex_config(&path, now, &found.originals, want.as_ref()) {
            steps.push(step.into());
        }
    }
    // The daemons failover's Codex agents left: every session that used them goes.
    for account in &m.accounts {
        if let Some(daemons) = observed.codex_daemons.get(&account.spec.home) {
            steps.push(Action::from(FsAction::EndDaemons {
                account: account.name.clone(),
                home: account.spec.home.clone(),
                daemons: daemons.clone(),
            }));
        }
    }
    let homes: Vec<&Path> = m.accounts.iter().map(|a| a.spec.home.as_path()).collect();
    for (link, target, now) in &found.links {
        if now.as_ref() == Some(target) && homes.iter().any(|h| link.starts_with(h)) {
            steps.push(Action::from(FsAction::RemoveLink {
                link: link.clone(),
                target: target.clone(),
            }));
        }
    }
    steps.dedup();
    steps
}

/// The settings file at `path` without failover's entries, when it has some: as it was
/// before failover when nothing else changed, else with only ours taken out.
fn settings(
    path: &Path,
    observed: Option<&Settings>,
    originals: &BTreeMap<PathBuf, Original>,
) -> Option<FsAction> {
    let Some(Settings::Json(value)) = observed else {
        return None;
    };
    let merged = agent_settings::merge(Some(value), None).ok()?;
    if merged.changes.is_empty() {
        return None;
    }
    let original = originals.get(path);
    let before: Option<Value> = match original.map(|o| o.text.as_deref()) {
        Some(Some(text)) => serde_json::from_str(text).ok(),
        Some(None) => Some(Value::Object(serde_json::Map::new())),
        None => None,
    };
    if let (Some(o), Some(before)) = (original, before)
        && before == merged.value
    {
        return Some(FsAction::RestoreSettings {
            path: path.to_path_buf(),
            removed: o.text.is_none(),
            original: true,
            text: o.text.clone(),
            seen: value.clone(),
        });
    }
    let text = agent_settings::render(&merged.value).ok()?;
    Some(FsAction::RestoreSettings {
        path: path.to_path_buf(),
        removed: false,
        original: false,
        text: Some(text),
        seen: value.clone(),
    })
}

/// A Codex `config.toml` without failover's entries: as it was before failover when it
/// is exactly what failover made of that (nothing else changed), else with only
/// failover's `notify` taken out (the rest it set is harmless to keep). The text it was
/// seen with goes in `seen`, as a JSON string.
fn codex_config(
    path: &Path,
    observed: Option<&crate::codex_config::Observed>,
    originals: &BTreeMap<PathBuf, Original>,
    want: Option<&crate::codex_config::Want>,
) -> Option<FsAction> {
    use crate::codex_config::{Observed as Toml, merge};
    let Some(Toml::Toml(now)) = observed else {
        return None;
    };
    let seen = Value::String(now.clone());
    let original = originals.get(path);
    let made = original.and_then(|o| merge(o.text.as_deref(), want).ok());
    if let (Some(o), Some(made)) = (original, made)
        && made.text == *now
        && o.text.as_deref() != Some(now.as_str())
    {
        return Some(FsAction::RestoreSettings {
            path: path.to_path_buf(),
            removed: o.text.is_none(),
            original: true,
            text: o.text.clone(),
            seen,
        });
    }
    let merged = merge(Some(now), None).ok()?;
    (!merged.changes.is_empty()).then(|| FsAction::RestoreSettings {
        path: path.to_path_buf(),
        removed: false,
        original: false,
        text: Some(merged.text),
        seen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn original(path: &str, text: Option<&str>) -> BTreeMap<PathBuf, Original> {
        BTreeMap::from([(
            PathBuf::from(path),
            Original {
                path: PathBuf::from(path),
                text: text.map(str::to_owned),
            },
        )])
    }

    fn with_ours(operator: Value) -> Value {
        let commands = agent_settings::Commands::for_exe(Path::new("/bin/failover"));
        agent_settings::merge(Some(&operator), Some(&commands))
            .unwrap()
            .value
    }

    #[test]
    fn a_codex_config_should_be_put_back_when_unchanged_else_lose_only_our_notify() {
        use crate::codex_config::{Observed as Toml, Want, merge};
        let want = Want {
            exe: Some("/bin/failover".into()),
            projects: vec!["/w".into()],
        };
        let path = "/h/x/config.toml";
        let text = "# mine\nmodel = \"gpt-5\"\n";
        let made = merge(Some(text), Some(&want)).unwrap().text;
        let step = codex_config(
            Path::new(path),
            Some(&Toml::Toml(made.clone())),
            &original(path, Some(text)),
            Some(&want),
        );
        let Some(FsAction::RestoreSettings {
            original: true,
            removed: false,
            text: Some(back),
            ..
        }) = step
        else {
            panic!("{step:?}");
        };
        assert_eq!(back, text, "byte for byte");
        // None before: the file goes.
        let made = merge(None, Some(&want)).unwrap().text;
        let step = codex_config(
            Path::new(path),
            Some(&Toml::Toml(made.clone())),
            &original(path, None),
            Some(&want),
        );
        assert!(
            matches!(step, Some(FsAction::RestoreSettings { removed: true, .. })),
            "{step:?}"
        );
        // Changed by the operator since: only our notify goes.
        let edited = format!("{made}\n[tui]\ntheme = \"dark\"\n");
        let Some(FsAction::RestoreSettings {
            original: false,
            text: Some(left),
            ..
        }) = codex_config(
            Path::new(path),
            Some(&Toml::Toml(edited)),
            &original(path, None),
            Some(&want),
        )
        else {
            panic!()
        };
        assert!(!left.contains("notify"), "{left}");
        assert!(
            left.contains("theme = \"dark\"") && left.contains("trust_level"),
            "{left}"
        );
    }

    #[test]
    fn settings_unchanged_but_for_ours_should_be_put_back_byte_for_byte() {
        let text = "{\"model\":   \"opus\"}\n";
        let seen = with_ours(serde_json::from_str(text).unwrap());
        let now = Settings::Json(seen.clone());
        let step = settings(
            Path::new("/h/s.json"),
            Some(&now),
            &original("/h/s.json", Some(text)),
        );
        assert_eq!(
            step,
            Some(FsAction::RestoreSettings {
                path: "/h/s.json".into(),
                removed: false,
                original: true,
                text: Some(text.to_owned()),
                seen,
            })
        );
    }

    #[test]
    fn settings_failover_created_should_go_when_nothing_else_is_in_them() {
        let now = Settings::Json(with_ours(json!({})));
        let step = settings(
            Path::new("/h/s.json"),
            Some(&now),
            &original("/h/s.json", None),
        );
        assert!(matches!(
            step,
            Some(FsAction::RestoreSettings {
                text: None,
                removed: true,
                ..
            })
        ));
    }

    #[test]
    fn settings_the_operator_changed_since_should_keep_their_change() {
        let now = Settings::Json(with_ours(json!({"model": "sonnet"})));
        let step = settings(
            Path::new("/h/s.json"),
            Some(&now),
            &original("/h/s.json", Some("{\"model\": \"opus\"}")),
        );
        let Some(FsAction::RestoreSettings {
            text: Some(text),
            original: false,
            ..
        }) = step
        else {
            panic!("{step:?}");
        };
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"model": "sonnet"})
        );
    }

    #[test]
    fn settings_without_our_entries_should_be_left_alone() {
        let now = Settings::Json(
            json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "mine"}]}]}}),
        );
        assert_eq!(
            settings(Path::new("/h/s.json"), Some(&now), &BTreeMap::new()),
            None
        );
        let bad = Settings::Invalid("line 1".into());
        assert_eq!(
            settings(Path::new("/h/s.json"), Some(&bad), &BTreeMap::new()),
            None
        );
    }
}
