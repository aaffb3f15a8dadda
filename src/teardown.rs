//! Taking down what manifests own, for `failover delete`: the sessions that carry our
//! mark and that the manifests want, the tasks those sessions held (back to their
//! inbox, never deleted), failover's entries in the account homes' agent settings (the
//! file put back byte for byte when nothing else changed in it), and the shared-state
//! links failover created that still point where it made them point. Nothing else: a
//! person's session, file or link is never touched, and no task file is ever removed.
//!
//! [`plan`] is pure: it decides from what was observed; [`Teardown::apply`] carries it
//! out.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::agent_settings::{self, Observed as Settings};
use crate::api::Manifests;
use crate::observe::Observed;
use crate::state::originals::Original;

/// One thing to take down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A session with our mark that the manifests want: killed, guarded by the mark.
    Session {
        /// Its name.
        name: String,
    },
    /// A claimed task: its file goes from `active/` back to the inbox.
    ReturnTask {
        /// The session that held it: the task goes back only once its agent is gone.
        session: String,
        /// The inbox's name.
        inbox: String,
        /// The task's name as dropped.
        task: String,
        /// Its file in `active/`.
        from: PathBuf,
        /// Where it goes.
        to: PathBuf,
    },
    /// An account home's agent settings without our entries.
    Settings {
        /// The settings file.
        path: PathBuf,
        /// Its text afterwards; `None`: no file (there was none before failover).
        text: Option<String>,
        /// Whether that is the file as it was before failover's first write.
        original: bool,
        /// The file's JSON when it was looked at: changed since, only our entries go.
        seen: Value,
    },
    /// A link failover created that still points where it made it point.
    Link {
        /// The link.
        link: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Session { name } => write!(f, "- session {name}"),
            Step::ReturnTask {
                inbox, task, from, ..
            } => write!(
                f,
                "~ task {inbox}/{task}: {} back to the inbox",
                from.display()
            ),
            Step::Settings {
                path,
                text,
                original,
                ..
            } => match (text, original) {
                (None, _) => write!(
                    f,
                    "- agent settings {} (there was none before failover)",
                    path.display()
                ),
                (Some(_), true) => write!(
                    f,
                    "~ agent settings {}: put back as they were before failover",
                    path.display()
                ),
                (Some(_), false) => write!(
                    f,
                    "~ agent settings {}: failover's hooks and status line taken out",
                    path.display()
                ),
            },
            Step::Link { link, target } => {
                write!(f, "- link {} -> {}", link.display(), target.display())
            }
        }
    }
}

impl Step {
    /// How the journal records it.
    pub fn journal(&self) -> Value {
        match self {
            Step::Session { name } => json!({"action": "deleteSession", "name": name,
                "reason": "failover delete"}),
            Step::ReturnTask {
                session,
                inbox,
                task,
                from,
                to,
            } => json!({"action": "returnTask", "session": session, "inbox": inbox, "name": task,
                "from": from, "to": to}),
            Step::Settings {
                path,
                text,
                original,
                ..
            } => json!({"action": "restoreSettings", "path": path,
                "removed": text.is_none(), "original": original}),
            Step::Link { link, target } => json!({"action": "removeLink", "link": link,
                "target": target}),
        }
    }
}

/// What [`plan`] reads besides the manifests and the observation.
#[derive(Debug, Default)]
pub struct Found {
    /// Links the journal says failover created (link, target), with what each link
    /// says now (`None`: not a link, or gone).
    pub links: Vec<(PathBuf, PathBuf, Option<PathBuf>)>,
    /// The agent settings files as they were before failover's first write, by path.
    pub originals: BTreeMap<PathBuf, Original>,
}

/// The steps that take down what `m` owns, in order: sessions first (their agents
/// stop), then their tasks back to the inboxes, then the settings and links.
pub fn plan(m: &Manifests, observed: &Observed, owner: &str, found: &Found) -> Vec<Step> {
    let mut steps: Vec<Step> = observed
        .sessions
        .values()
        .filter(|s| s.is_ours(owner) && m.wants_session(&s.name))
        .map(|s| Step::Session {
            name: s.name.clone(),
        })
        .collect();
    for inbox in &m.inboxes {
        let Some(state) = observed.inboxes.get(&inbox.name) else {
            continue;
        };
        let base = inbox.spec.path.parent().unwrap_or(&inbox.spec.path);
        for t in &state.active {
            steps.push(Step::ReturnTask {
                session: t.session.clone(),
                inbox: inbox.name.clone(),
                task: t.task.clone(),
                from: base.join("active").join(&t.file),
                to: inbox.spec.path.join(&t.task),
            });
        }
    }
    for account in &m.accounts {
        let path = account.spec.home.join(agent_settings::SETTINGS_FILE);
        let now = observed.agent_settings.get(&account.spec.home);
        if let Some(step) = settings(&path, now, &found.originals) {
            steps.push(step);
        }
    }
    let homes: Vec<&Path> = m.accounts.iter().map(|a| a.spec.home.as_path()).collect();
    for (link, target, now) in &found.links {
        if now.as_ref() == Some(target) && homes.iter().any(|h| link.starts_with(h)) {
            steps.push(Step::Link {
                link: link.clone(),
                target: target.clone(),
            });
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
) -> Option<Step> {
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
        return Some(Step::Settings {
            path: path.to_path_buf(),
            text: o.text.clone(),
            original: true,
            seen: value.clone(),
        });
    }
    let text = agent_settings::render(&merged.value).ok()?;
    Some(Step::Settings {
        path: path.to_path_buf(),
        text: Some(text),
        original: false,
        seen: value.clone(),
    })
}

/// Why a step could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A task's place in the inbox is taken.
    #[error("task {task}: {to} exists already; left in active/")]
    Taken {
        /// The task.
        task: String,
        /// Its place in the inbox.
        to: PathBuf,
    },
    /// Agent settings that are no longer JSON failover can read.
    #[error(
        "agent settings {0}: changed since they were looked at and no longer valid JSON; left alone"
    )]
    Changed(PathBuf),
    /// A link changed since it was looked at.
    #[error("link {0}: no longer points where failover made it point; left alone")]
    LinkChanged(PathBuf),
    /// A file could not be changed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The state folder could not be written.
    #[error(transparent)]
    State(#[from] crate::state::Error),
    /// A session could not be killed.
    #[error(transparent)]
    Act(#[from] crate::act::Error),
}

/// Carries out one filesystem step (not a session's: see [`crate::act`]).
pub fn apply_fs(step: &Step, state_dir: &Path) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    match step {
        Step::Session { .. } => Ok(()),
        Step::ReturnTask { task, from, to, .. } => {
            // A link then an unlink, not a rename: a rename would replace a task of the
            // same name dropped into the inbox meanwhile.
            match std::fs::hard_link(from, to) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Taken {
                    task: task.clone(),
                    to: to.clone(),
                }),
                Err(e) => Err(Error::Io {
                    path: to.clone(),
                    source: e,
                }),
                Ok(()) => std::fs::remove_file(from).map_err(io(from)),
            }
        }
        Step::Settings {
            path, text, seen, ..
        } => {
            // Changed since it was looked at: only our entries go from what it is now.
            let now = match agent_settings::Observed::read(path) {
                Settings::Json(v) => Some(v),
                _ => None,
            };
            let recomputed;
            let text = if now.as_ref() == Some(seen) {
                text
            } else {
                let Some(now) = now else {
                    return Err(Error::Changed(path.clone()));
                };
                let merged = agent_settings::merge(Some(&now), None)
                    .map_err(|_| Error::Changed(path.clone()))?;
                recomputed = Some(
                    agent_settings::render(&merged.value)
                        .map_err(|_| Error::Changed(path.clone()))?,
                );
                &recomputed
            };
            // A link (the operator's dotfiles) is written through and never removed.
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            let target = if link {
                std::fs::canonicalize(path).map_err(io(path))?
            } else {
                path.clone()
            };
            match (text, link) {
                (None, false) => std::fs::remove_file(path).map_err(io(path))?,
                (text, _) => {
                    let text = text.as_deref().unwrap_or("{}\n");
                    let mode = std::fs::metadata(&target).ok().map(|m| m.permissions());
                    crate::state::write_atomic(&target, text.as_bytes())?;
                    if let Some(mode) = mode {
                        std::fs::set_permissions(&target, mode).map_err(io(&target))?;
                    }
                }
            }
            crate::state::originals::forget(state_dir, path)?;
            Ok(())
        }
        Step::Link { link, target } => {
            if std::fs::read_link(link).ok().as_ref() != Some(target) {
                return Err(Error::LinkChanged(link.clone()));
            }
            std::fs::remove_file(link).map_err(io(link))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Some(Step::Settings {
                path: "/h/s.json".into(),
                text: Some(text.to_owned()),
                original: true,
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
        assert!(matches!(step, Some(Step::Settings { text: None, .. })));
    }

    #[test]
    fn settings_the_operator_changed_since_should_keep_their_change() {
        let now = Settings::Json(with_ours(json!({"model": "sonnet"})));
        let step = settings(
            Path::new("/h/s.json"),
            Some(&now),
            &original("/h/s.json", Some("{\"model\": \"opus\"}")),
        );
        let Some(Step::Settings {
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
    fn settings_changed_since_they_were_looked_at_should_keep_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let seen = with_ours(json!({"model": "opus"}));
        let step = Step::Settings {
            path: path.clone(),
            text: Some("{\"model\":\"opus\"}".to_owned()),
            original: true,
            seen,
        };
        // The operator changed the model after delete looked.
        let edited = with_ours(json!({"model": "sonnet"}));
        std::fs::write(&path, edited.to_string()).unwrap();
        apply_fs(&step, dir.path()).unwrap();
        let after: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(after, json!({"model": "sonnet"}));
    }

    #[test]
    fn a_task_should_never_replace_one_of_the_same_name_in_the_inbox() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("w-0.1.t.md"), dir.path().join("t.md"));
        std::fs::write(&from, "claimed").unwrap();
        std::fs::write(&to, "dropped since").unwrap();
        let step = Step::ReturnTask {
            session: "w-0".into(),
            inbox: "i".into(),
            task: "t.md".into(),
            from: from.clone(),
            to: to.clone(),
        };
        assert!(matches!(
            apply_fs(&step, dir.path()),
            Err(Error::Taken { .. })
        ));
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "dropped since");
        assert_eq!(std::fs::read_to_string(&from).unwrap(), "claimed");
        std::fs::remove_file(&to).unwrap();
        apply_fs(&step, dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "claimed");
        assert!(!from.exists());
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
