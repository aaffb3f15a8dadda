//! The tmux connection: one control-mode client per server, commands pipelined and
//! quoted for tmux's own parser (no shell ever sees an argument), notifications, and
//! bracketed pastes through tmux buffers.

mod client;
mod leftovers;
mod listing;
pub mod proto;
mod screens;
mod server;

use std::path::PathBuf;

pub(crate) use client::version_ok;
pub use client::{Event, MAX_PASTE, Mode, Tmux};
pub use leftovers::end_leftovers;
pub use listing::{
    ACCOUNT_OPTION, FULL_EVERY, Listed, OWNER_OPTION, PANE_OPTION, parse_full as listing_line,
};
pub use proto::Cmd;
pub use screens::{MAX_AGE as SCREEN_MAX_AGE, PaneRef};
pub use server::{Server, control_session, processes_started};

/// What went wrong talking to tmux.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `tmux` on PATH.
    #[error("tmux is not installed (no `tmux` on PATH): failover needs tmux 3.2 or newer")]
    NotInstalled,
    /// tmux is older than 3.2.
    #[error("{found:?} is too old: failover needs tmux 3.2 or newer")]
    TooOld {
        /// What `tmux -V` printed.
        found: String,
    },
    /// tmux could not be started.
    #[error("cannot start tmux: {0}")]
    Spawn(std::io::Error),
    /// No server runs at that socket.
    #[error("tmux server {server}: no server running")]
    NoServer {
        /// The socket.
        server: String,
    },
    /// An observe-only connection found no control session to attach to (it then runs
    /// one `tmux` process per command instead of attaching to someone's session).
    #[error("no failover control session on this server")]
    NoControlSession,
    /// Connecting failed.
    #[error("tmux server {server}: {}", if message.is_empty() {
        "it closed the connection at once (it may be shutting down, or be held by a stale client: see `pgrep -af tmux`)"
    } else {
        message.as_str()
    })]
    Connect {
        /// The socket.
        server: String,
        /// What tmux said.
        message: String,
    },
    /// The client was accepted and closed at once, saying only why it exited.
    #[error("tmux server {server}: it closed the connection at once ({reason})")]
    Closed {
        /// The socket.
        server: String,
        /// What the client said as it exited (`%exit …`), with what it usually means.
        reason: String,
    },
    /// A command failed.
    #[error("tmux command `{command}`: {message}")]
    Command {
        /// The command.
        command: String,
        /// tmux's message.
        message: String,
    },
    /// A command got no answer in time.
    #[error("tmux command `{command}` got no answer within {secs}s")]
    Timeout {
        /// The command.
        command: String,
        /// The limit.
        secs: u64,
    },
    /// The connection closed (the server was killed, or tmux exited).
    #[error("{0}")]
    Disconnected(String),
    /// A paste is larger than [`MAX_PASTE`].
    #[error("paste of {len} bytes is larger than the 1 MiB limit")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// The paste file could not be written.
    #[error("cannot write paste buffer file {}: {source}", path.display())]
    Buffer {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
