//! The long-running controller: it takes the state folder's lock, checks the shared
//! state, then reconciles whenever anything may have changed (file events, tmux
//! notifications, a screen poll every `pollInterval`, a full resync every
//! `resyncPeriod`) until SIGTERM or SIGINT. Every trigger only means "look again".

//!
//! The files: [`start`] (the start sequence), `runner` (the loop over the work queue),
//! [`round`] (one observe-plan-act-record-save round, shared with `apply`), `status`
//! (the journal, logs, notifications and `status.json` of each round), [`queue`],
//! `watch`, [`handoff`], [`lock`], `replay`, `error`.

mod error;
pub mod handoff;
pub mod lock;
pub mod queue;
mod replay;
pub mod round;
mod runner;
pub mod start;
mod status;
mod watch;

pub use error::Error;
pub use queue::Key;
pub use start::{run, tmux_server};
