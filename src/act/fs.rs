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
        FsAction::ConfigureAgent { path, exe, .. } => {
            configure_agent(path, exe.as_deref(), state_dir)
        }
    }
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
