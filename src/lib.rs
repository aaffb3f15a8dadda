//! `failover` keeps a fleet of AI coding-agent sessions running in tmux across several
//! subscription accounts, the way a Kubernetes controller keeps pods running.
//!
//! The operator declares what should exist in YAML manifests ([`api`]); the controller
//! observes tmux, the filesystem and the agents' screens ([`observe`]), plans the
//! difference ([`plan`], pure: every decision is testable without tmux) and acts until
//! reality matches ([`execute`]), one [`round`] at a time, telling what it did in its
//! [`journal`].
//!
//! New here? Read [`plan::plan`] first: what it is given, what it decides. Then
//! [`round::Round::run`], which carries a plan out. The binary is [`run`].

#![forbid(unsafe_code)]
// `expect` stays allowed for invariants that say why in their message.
#![warn(missing_docs, unreachable_pub, clippy::unwrap_used)]

mod act;
mod agent_settings;
mod agents;
pub mod api;
mod board;
pub mod claude_versions;
mod cli;
mod codex_config;
mod codex_daemons;
pub mod codex_versions;
mod controller;
mod conversation;
mod fleet;
mod https;
pub mod journal;
mod login;
mod metrics;
mod notifications;
pub mod object;
mod observe;
pub mod plan;
mod procfs;
mod report;
mod request;
mod screen;
mod sim;
mod state;
mod tasks;
mod teardown;
#[cfg(any(test, feature = "testbed"))]
pub mod testbed;
pub mod tmux;

// What the binary, the integration tests and the benches use besides the modules
// above: one round of the controller and its parts.
pub use act::{Context, execute};
pub use board::Publisher;
pub use cli::run;
pub use controller::round;
pub use conversation::{messages, slug};
pub use fleet::etcd::Etcd;
pub use observe::{Observed, observe};
pub use report::unwrap_pasted;
pub use state::{AgentFacts, Facts};
