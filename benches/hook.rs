//! `failover hook` as Claude Code runs it: a new process per hook event with the event's
//! JSON on stdin, one report file written, exit 0. Measured from spawn to exit over many
//! calls, for each kind of input Claude Code sends (a `Stop`, a `UserPromptSubmit`
//! carrying a 100 KiB prompt, the status line with usage figures), and for a state
//! folder that is gone (the turn must not wait for it).
//!
//! Run with `cargo bench --bench hook`; figures go to docs/benchmarks.md.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_failover");
const CALLS: usize = 500;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the hook `CALLS` times with `input`; the sorted durations.
fn measure(args: &[&str], input: &[u8], reports: &std::path::Path) -> Vec<Duration> {
    let mut all = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .args(args)
            .env("FAILOVER_SESSION", "w-0")
            .env("FAILOVER_ACCOUNT", "a")
            .env("FAILOVER_REPORTS", reports)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the hook starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("the hook reads its input");
        let status = child.wait().expect("the hook ends");
        all.push(started.elapsed());
        assert!(status.success(), "the hook must always exit 0");
    }
    all.sort();
    all
}

fn main() {
    let dir = tempfile::tempdir().expect("a temp folder");
    let reports = dir.path().join("reports");
    let stop = json!({"session_id": "c1", "transcript_path": "/h/projects/-w/c1.jsonl",
        "cwd": "/w", "prompt_id": "p1", "hook_event_name": "Stop",
        "stop_hook_active": false, "last_assistant_message": "Done."});
    let big = "x".repeat(100 * 1024);
    let submit = json!({"session_id": "c1", "transcript_path": "/h/projects/-w/c1.jsonl",
        "cwd": "/w", "prompt_id": "p1", "hook_event_name": "UserPromptSubmit", "prompt": big});
    let status = json!({"session_id": "c1", "model": {"id": "claude-opus"},
        "rate_limits": {"five_hour": {"used_percentage": 42, "resets_at": 1796040044},
                        "seven_day": {"used_percentage": 17, "resets_at": 1796295644}}});
    let cases: [(&str, &[&str], Vec<u8>, std::path::PathBuf); 4] = [
        (
            "Stop",
            &["hook"],
            stop.to_string().into_bytes(),
            reports.clone(),
        ),
        (
            "UserPromptSubmit, 100 KiB prompt",
            &["hook"],
            submit.to_string().into_bytes(),
            reports.clone(),
        ),
        (
            "status line",
            &["hook", "status-line"],
            status.to_string().into_bytes(),
            reports.clone(),
        ),
        (
            "Stop, state folder gone",
            &["hook"],
            stop.to_string().into_bytes(),
            dir.path().join("gone/reports"),
        ),
    ];
    println!("failover hook, {CALLS} calls each, spawn to exit:");
    println!("| input | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (name, args, input, dest) in cases {
        let all = measure(args, &input, &dest);
        println!(
            "| {name} | {} | {} | {} |",
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99)),
            ms(all[all.len() - 1])
        );
    }
    let written = std::fs::read_dir(&reports).map_or(0, Iterator::count);
    assert_eq!(written, 3 * CALLS, "one report per call");
    assert!(
        !dir.path().join("gone").exists(),
        "a missing state folder is not made"
    );
}
