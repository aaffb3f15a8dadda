//! Executing filesystem actions: folders and links of the shared state, and failover's
//! entries in an account home's agent settings.

use std::path::Path;

use super::Error;
use crate::plan::FsAction;

/// Carries out one filesystem action; `state_dir` keeps what agent settings held before
/// failover's first write to them.
pub(super) fn execute(action: &FsAction, state_dir: Option<&Path>) -> Result<(), Error> {
    match action {
        FsAction::CreateDir { path } => std::fs::create_dir_all(path).map_err(|source| Error::Fs {
            path: path.clone(),
            source,
        }),
        FsAction::CreateLink { link, target } => {
            std::os::unix::fs::symlink(target, link).map_err(|source| Error::Fs {
                path: link.clone(),
                source,
            })
        }
        FsAction::ConfigureAgent {
            path,
            exe,
            projects,
            ..
        } => {
            if path.file_name().and_then(|n| n.to_str()) == Some(crate::codex_config::CONFIG_FILE) {
                configure_codex(path, exe.as_deref(), projects, state_dir)
            } else {
                configure_agent(path, exe.as_deref(), state_dir)
            }
        }
        FsAction::RestoreSettings {
            path, text, seen, ..
        } => match seen {
            // A Codex `config.toml`, seen as its text.
            serde_json::Value::String(seen) => restore_codex(path, text.as_ref(), seen, state_dir),
            seen => restore_settings(path, text.as_ref(), seen, state_dir),
        },
        FsAction::EndDaemons { home, daemons, .. } => crate::codex_daemons::end(home, daemons)
            .map_err(|e| Error::Settings {
                path: home.clone(),
                message: e.to_string(),
            }),
        FsAction::RemoveLink { link, target } => {
            if std::fs::read_link(link).ok().as_ref() != Some(target) {
                return Err(Error::LinkChanged(link.clone()));
            }
            std::fs::remove_file(link).map_err(|source| Error::Fs {
                path: link.clone(),
                source,
            })
        }
    }
}

/// Takes failover's entries out of the Codex `config.toml` at `path`: writes `text`
/// (removes the file when `None`) when the file is still as `seen`; changed since, only
/// failover's `notify` goes from what it is now. Then forgets the original kept for it.
fn restore_codex(
    path: &Path,
    text: Option<&String>,
    seen: &str,
    state_dir: Option<&Path>,
) -> Result<(), Error> {
    use crate::codex_config::{Observed as Toml, merge};
    let fail = |message: String| Error::Settings {
        path: path.to_path_buf(),
        message,
    };
    let now = match Toml::read(path) {
        Toml::Toml(now) => now,
        _ => {
            return Err(fail(
                "changed since it was looked at and no longer valid TOML; left alone".into(),
            ));
        }
    };
    let text = if now == seen {
        text.cloned()
    } else {
        Some(
            merge(Some(&now), None)
                .map_err(|e| fail(e.to_string()))?
                .text,
        )
    };
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match (text, link) {
        (None, false) => std::fs::remove_file(path).map_err(|source| Error::Fs {
            path: path.to_path_buf(),
            source,
        })?,
        (text, _) => write_through(path, text.as_deref().unwrap_or("")).map_err(fail)?,
    }
    if let Some(dir) = state_dir {
        crate::state::originals::forget(dir, path).map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Takes failover's entries out of the agent settings at `path`: writes `text` (removes
/// the file when `None`) when the file is still as `seen`; changed since, only our
/// entries go from what it is now. A link (the operator's dotfiles) is written through
/// and never removed. Then forgets the original kept for it.
fn restore_settings(
    path: &Path,
    text: Option<&String>,
    seen: &serde_json::Value,
    state_dir: Option<&Path>,
) -> Result<(), Error> {
    use crate::agent_settings::{self, Observed as File};
    let fail = |message: String| Error::Settings {
        path: path.to_path_buf(),
        message,
    };
    let changed =
        || fail("changed since they were looked at and no longer valid JSON; left alone".into());
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Fs { path, source }
    };
    let now = match File::read(path) {
        File::Json(v) => Some(v),
        _ => None,
    };
    let text = if now.as_ref() == Some(seen) {
        text.cloned()
    } else {
        let now = now.ok_or_else(changed)?;
        let merged = agent_settings::merge(Some(&now), None).map_err(|_| changed())?;
        Some(agent_settings::render(&merged.value).map_err(|_| changed())?)
    };
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let target = if link {
        std::fs::canonicalize(path).map_err(io(path))?
    } else {
        path.to_path_buf()
    };
    match (text, link) {
        (None, false) => std::fs::remove_file(path).map_err(io(path))?,
        (text, _) => {
            let text = text.as_deref().unwrap_or("{}\n");
            let mode = std::fs::metadata(&target).ok().map(|m| m.permissions());
            crate::state::write_atomic(&target, text.as_bytes())
                .map_err(|e| fail(e.to_string()))?;
            if let Some(mode) = mode {
                std::fs::set_permissions(&target, mode).map_err(io(&target))?;
            }
        }
    }
    if let Some(dir) = state_dir {
        crate::state::originals::forget(dir, path).map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Merges failover's entries into the Codex `config.toml` at `path` as it is now (none
/// wanted when `projects` is empty: then only its `notify` goes): the operator's keys,
/// comments and mode stay, a link is written through, and a file that is not valid
/// TOML is left untouched.
fn configure_codex(
    path: &Path,
    exe: Option<&Path>,
    projects: &[std::path::PathBuf],
    state_dir: Option<&Path>,
) -> Result<(), Error> {
    use crate::codex_config::{self, Observed as Toml, Want};
    let fail = |message: String| Error::Settings {
        path: path.to_path_buf(),
        message,
    };
    let existing = match Toml::read(path) {
        Toml::Missing => None,
        Toml::Toml(text) => Some(text),
        Toml::Invalid(why) => return Err(fail(format!("not valid TOML ({why}); left untouched"))),
        Toml::Unreadable(why) => return Err(fail(why)),
    };
    let want = (!projects.is_empty()).then(|| Want {
        exe: exe.map(Path::to_path_buf),
        projects: projects.to_vec(),
    });
    let merged =
        codex_config::merge(existing.as_deref(), want.as_ref()).map_err(|e| fail(e.to_string()))?;
    if merged.changes.is_empty() {
        return Ok(());
    }
    if let Some(dir) = state_dir
        && want.is_some()
    {
        crate::state::originals::keep(dir, path).map_err(|e| fail(e.to_string()))?;
    }
    write_through(path, &merged.text).map_err(fail)
}

/// Writes `text` to `path` whole, through a link (the operator's dotfiles keep it),
/// keeping the file's mode (0644 for a new one).
fn write_through(path: &Path, text: &str) -> Result<(), String> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| format!("a link that leads nowhere: {e}"))?
        }
        _ => path.to_path_buf(),
    };
    let mode = std::fs::metadata(&target).ok().map(|m| m.permissions());
    crate::state::write_atomic(&target, text.as_bytes()).map_err(|e| e.to_string())?;
    let mode = mode.unwrap_or_else(|| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o644)
    });
    std::fs::set_permissions(&target, mode).map_err(|e| e.to_string())
}

/// Merges failover's hooks and status line into the agent settings at `path` (or takes
/// them out, `exe` being `None`), as the file is now: the operator's entries stay, its
/// mode stays, a symbolic link is written through (the operator's dotfiles keep their
/// link), and a file that is not valid JSON is left untouched.
fn configure_agent(path: &Path, exe: Option<&Path>, state_dir: Option<&Path>) -> Result<(), Error> {
    use crate::agent_settings::{self, Commands, Observed as File};
    let fail = |message: String| Error::Settings {
        path: path.to_path_buf(),
        message,
    };
    let existing = match File::read(path) {
        File::Missing => None,
        File::Json(v) => Some(v),
        File::Invalid(why) => return Err(fail(format!("not valid JSON ({why}); left untouched"))),
        File::Unreadable(why) => return Err(fail(why)),
    };
    let commands = exe.map(Commands::for_exe);
    let merged = agent_settings::merge(existing.as_ref(), commands.as_ref())
        .map_err(|e| fail(e.to_string()))?;
    if merged.changes.is_empty() {
        return Ok(());
    }
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path)
            .map_err(|e| fail(format!("a link that leads nowhere: {e}")))?,
        _ => path.to_path_buf(),
    };
    let text = agent_settings::render(&merged.value).map_err(|e| fail(e.to_string()))?;
    // What the operator had, kept before the first write, for `failover delete`.
    if let Some(dir) = state_dir
        && exe.is_some()
    {
        crate::state::originals::keep(dir, path).map_err(|e| fail(e.to_string()))?;
    }
    let mode = std::fs::metadata(&target).ok().map(|m| m.permissions());
    crate::state::write_atomic(&target, text.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let mode = mode.unwrap_or_else(|| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o644)
    });
    std::fs::set_permissions(&target, mode).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn with_ours(operator: Value) -> Value {
        let commands = crate::agent_settings::Commands::for_exe(Path::new("/bin/failover"));
        crate::agent_settings::merge(Some(&operator), Some(&commands))
            .unwrap()
            .value
    }

    #[test]
    fn settings_changed_since_they_were_looked_at_should_keep_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        let seen = with_ours(json!({"model": "opus"}));
        let action = FsAction::RestoreSettings {
            path: path.clone(),
            removed: false,
            original: true,
            text: Some("{\"model\":\"opus\"}".to_owned()),
            seen,
        };
        // The operator changed the model after delete looked.
        let edited = with_ours(json!({"model": "sonnet"}));
        std::fs::write(&path, edited.to_string()).unwrap();
        execute(&action, Some(dir.path())).unwrap();
        let after: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(after, json!({"model": "sonnet"}));
    }

    #[test]
    fn a_link_pointing_elsewhere_since_should_be_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("projects");
        std::os::unix::fs::symlink("/elsewhere", &link).unwrap();
        let action = FsAction::RemoveLink {
            link: link.clone(),
            target: "/shared/projects".into(),
        };
        let e = execute(&action, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("no longer points where failover made it point"),
            "{e}"
        );
        assert!(std::fs::symlink_metadata(&link).is_ok());
    }
}
