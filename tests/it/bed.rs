//! The test bed every area shares: this build's `failover` binary, the operator's bed on
//! a private tmux server ([`Bed`], from `failover::testbed`), and the helpers more than
//! one area needs.

use std::process::{Command, Output};

pub use failover::testbed::Bed;

/// The `failover` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_failover");

/// A [`Bed`] running [`BIN`] on a new private tmux server, with the folders `dirs`
/// made under its root.
pub fn new(dirs: &[&str]) -> Bed {
    Bed::new(BIN.as_ref(), dirs)
}

/// Runs `failover args…`, outside any bed and without colours, with `input` on its
/// stdin.
pub fn run(args: &[&str], input: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("NO_COLOR", "1");
    failover::testbed::run_with_stdin(cmd, input.as_bytes())
}

/// `failover classify - -o json` over `screen`, as an operator asks "why".
pub fn classify(screen: &str) -> serde_json::Value {
    let out = run(&["classify", "-", "-o", "json"], screen);
    assert!(out.status.success(), "classify failed on:\n{screen}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The turn of a test that runs a real agent CLI, held until the test ends: one such
/// test at a time. Each starts several Node (Claude Code) or native (Codex) processes
/// whose start-up takes a core for seconds; two at once on a small CI machine made
/// deadlines of one fail on the other's load. The rest of the suite runs beside it.
/// A test that panicked passes the turn on all the same.
pub fn real_cli_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
