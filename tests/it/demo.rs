//! `failover demo` as a newcomer runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use failover::testbed::wait_for_or_none;

use crate::bed::BIN;

#[test]
fn the_demo_should_tell_the_whole_story_and_clean_up() {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A short hard limit: a demo that hangs fails the test instead of the CI run.
    let finished = wait_for_or_none(Duration::from_secs(90), || child.try_wait().unwrap());
    if finished.is_none() {
        child.kill().unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    for expected in [
        "tasks done:       12 of 12",
        "swap main -> backup (quota exhausted)",
        "sessions moved:   5",
        "desk:             its conversation resumed under backup",
        "attach and watch: tmux -S ",
        // What the controller did and why, as it happened.
        "task task-01.md claimed for session demo-",
        "quota-exhausted reported by the agent of session demo-",
        "done in session demo-0 (Stop report)",
        "session/desk: moved from account main to backup, resuming conversation",
        "carries on in session",
        // The last act: no Claude account left, the pool runs Codex.
        "under Codex:      4 pool sessions",
        "handed off from claude-code to codex",
        "no claude-code account is usable: runs codex under account codex",
        "no claude-code session is started; pool auto runs codex meanwhile",
        "session/desk: waits for a claude-code account until 23:59 UTC",
        "it waits for a Claude account",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let folder = stdout
        .lines()
        .find_map(|l| l.split("folder ").nth(1))
        .and_then(|rest| rest.split(':').next())
        .unwrap();
    assert!(
        !std::path::Path::new(folder).exists(),
        "{folder} must be removed"
    );
    let socket = stdout
        .lines()
        .find_map(|l| l.split("tmux -S ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap();
    let left = Command::new("pgrep")
        .args(["-af", socket])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left on {socket}: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
