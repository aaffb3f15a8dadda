//! The integration tests, one binary (cargo's target `it`) with a module an area, all on
//! the shared bed of [`bed`]. Select an area with a filter: `cargo test --test it
//! tasks::`.

mod accounts;
mod apply;
mod bed;
mod chaos;
mod cli_validate;
mod controller;
mod demo;
mod failover;
mod fleet;
mod operator;
mod real_client;
mod sim_agent;
mod tasks;
mod tmux_client;
