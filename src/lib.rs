//! `failover` keeps a fleet of AI coding-agent sessions running in tmux across several
//! subscription accounts, the way a Kubernetes controller keeps pods running.
//!
//! The operator declares what should exist in YAML manifests ([`api`]); the controller
//! observes tmux, the filesystem and the agents' screens, plans the difference and acts
//! until reality matches.

#![forbid(unsafe_code)]

pub mod act;
pub(crate) mod agent_settings;
pub mod api;
pub mod cli;
pub mod controller;
pub mod conversation;
pub mod fleet;
pub(crate) mod https;
pub mod journal;
pub mod metrics;
pub(crate) mod notifications;
pub mod object;
pub mod observe;
pub mod plan;
pub(crate) mod procfs;
pub mod report;
pub mod screen;
pub(crate) mod sim;
pub mod state;
pub mod tasks;
pub mod teardown;
#[cfg(any(test, feature = "testbed"))]
pub mod testbed;
pub mod tmux;
