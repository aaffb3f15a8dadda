//! The long-running controller: it takes the state folder's lock, checks the shared
//! state, then reconciles whenever anything may have changed (file events, tmux
//! notifications, a screen poll every `pollInterval`, a full resync every
//! `resyncPeriod`) until SIGTERM or SIGINT. Every trigger only means "look again".

//!
//! The files: [`start`] (the start sequence), `runner` (the loop over the work queue),
//! [`round`] (one observe-plan-act-record-save round, shared with `apply`), `status`
//! (the journal, logs, notifications and `status.json` of each round), [`queue`],
//! `watch`, [`handoff`], [`lock`], `replay`, `rebuild` (facts rebuilt after damage),
//! `writable` (a state folder that cannot be written), `error`.

mod clock;
mod error;
pub(crate) mod handoff;
pub(crate) mod lock;
pub(crate) mod queue;
mod rebuild;
mod replay;
pub mod round;
mod runner;
pub(crate) mod start;
mod status;
mod watch;
mod writable;

pub(crate) use error::Error;
pub(crate) use start::{run, tmux_server};
pub(crate) use status::HEARTBEAT;
