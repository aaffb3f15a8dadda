//! Why the controller could not start or had to stop.

use crate::api::{LoadError, settings::SettingsError};
use crate::plan::Refusal;
use crate::state;
use crate::tmux;

use super::lock::LockError;

/// Why the controller could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The manifests are invalid or unreadable.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// An agent profile's screen patterns do not compile.
    #[error(transparent)]
    Patterns(#[from] crate::screen::Error),
    /// The settings could not be resolved.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// Another controller runs.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// tmux is missing or too old (an unreachable server is retried).
    #[error(transparent)]
    Tmux(#[from] tmux::Error),
    /// The state folder is unusable.
    #[error(transparent)]
    State(#[from] state::Error),
    /// The shared-state invariant is broken.
    #[error("the shared state is broken; fix these and start again:\n{}", list(.0))]
    SharedState(Vec<Refusal>),
    /// File watching could not start.
    /// The fleet cannot be joined.
    #[error(transparent)]
    Fleet(#[from] crate::fleet::etcd::Error),
    /// The metrics cannot be served.
    #[error(transparent)]
    Metrics(#[from] crate::metrics::Error),
    #[error("cannot watch files: {0}")]
    Watch(#[from] notify::Error),
}

fn list(refusals: &[Refusal]) -> String {
    let lines: Vec<String> = refusals
        .iter()
        .map(|r| format!("  ! {}: {}", r.object, r.reason))
        .collect();
    lines.join("\n")
}
