//! The integration tests, one binary (cargo's target `it`) with a module an area, all on
//! the shared bed of [`bed`]. Select an area with a filter: `cargo test --test it
//! tasks::`. A new test goes in the area below whose line names what it exercises;
//! manifests come from `failover::testbed::manifest::Manifest` unless their YAML is the
//! subject.

// Accounts used up one after another, the wait for the first reset, homes sharing no conversations.
mod accounts;
// `failover apply` and `diff`, run once by an operator: create, repair, shrink, links, hooks.
mod apply;
// Helpers every area shares: this build's binary, a new `Bed`, `failover` outside a bed.
mod bed;
// The chaos suite's small form: controller and tmux kills while tasks run, each task once.
mod chaos;
// Codex pools through failover on the Codex stand-in: reports, rollouts, a limit moving them, beside a Claude pool.
mod codex;
// Commands without tmux: `validate` (YAML errors, their lines), `schema`, help, man, completions.
mod cli_validate;
// A pool over two families on the stand-ins: Claude used up, Codex carries on, the cut task handed off, the return.
mod families;
// A wall clock that jumps forward and back during live work (libfaketime; skipped without it).
mod clock;
// `failover init` on a made-up $HOME: homes found, one account per login, never overwriting.
mod init;
// The `failover controller` process: manifest edits, signals, its lock, tmux lost and back.
mod controller;
// A damaged state folder during live work: facts, journal, reports; each task once, each damage kept aside and said.
mod damage;
// `failover demo` as a newcomer runs it.
mod demo;
// `failover doctor` on a live pool: all ✓ when healthy, each fault's ✗ and its fix.
mod doctor;
// One controller moving sessions between accounts: limits read or reported, fail-back, `moveAt`.
mod failover;
// Several controllers sharing accounts through a real etcd (skipped without etcd).
mod fleet;
// Everyday verbs on a live pool: `delete`, `describe`, `get events`, `get -w`, `restart`, `return`, the metrics.
mod operator;
// The real Claude Code CLI against the mock Messages API (skipped without it).
mod real_client;
// The real Codex CLI against the mock Responses API, driven directly (skipped without it).
mod real_codex;
// Both real CLIs in one pool over two families: Claude used up, Codex carries on, the return (skipped without either).
mod real_families;
// `failover top` in a pane next to a live pool: a swap redrawn, filter, describe, attach, restart, return, quit.
mod top;
// The stand-in agent (`failover sim-agent`), its hook and status line, on their own.
mod sim_agent;
// Tasks from inboxes: claim, dispatch, completion, retries, failures, autoscaling, crashes.
mod tasks;
// The control-mode tmux client on a private server: quoting, pipelining, notifications, pastes.
mod tmux_client;
