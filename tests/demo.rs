//! `failover demo` as a newcomer runs it.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_demo_should_tell_the_whole_story_and_clean_up() {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_failover"))
        .arg("demo")
        .output()
        .unwrap();
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
        "attach and watch: tmux -S ",
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
}
