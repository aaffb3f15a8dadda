//! Reading the journal as an operator does: `failover get events` over a journal of
//! 20,000 lines (the recorded lines of `src/journal/testdata/`, repeated with later
//! times), as a table and as JSON, measured from spawn to exit. `FAILOVER_BIN` names
//! another build of the binary to measure the same way (the one before a change), so
//! that two builds can be run alternately.
//!
//! Run with `cargo bench --bench journal`; figures go to docs/benchmarks.md.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINES: usize = 20_000;
const RUNS: usize = 10;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A journal of `LINES` lines in `dir`: the recorded ones, over and over, one
/// millisecond apart.
fn journal(dir: &std::path::Path) {
    let recorded = [
        include_str!("../src/journal/testdata/recorded-d0c5e61.jsonl"),
        include_str!("../src/journal/testdata/recorded-f944075.jsonl"),
    ];
    let lines: Vec<serde_json::Value> = recorded
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let start: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().expect("a time");
    let mut text = String::new();
    for i in 0..LINES {
        let mut line = lines[i % lines.len()].clone();
        let at = start + jiff::SignedDuration::from_millis(i as i64);
        line["time"] = serde_json::Value::String(at.to_string());
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(dir.join("journal.jsonl"), text).expect("journal written");
}

fn main() {
    let bin = std::env::var("FAILOVER_BIN").unwrap_or(env!("CARGO_BIN_EXE_failover").into());
    let dir = tempfile::tempdir().expect("a temp dir");
    journal(dir.path());
    println!("binary: {bin}");
    for format in ["table", "json"] {
        let mut all = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            let status = Command::new(&bin)
                .args(["get", "events", "-o", format])
                .env("FAILOVER_STATE_DIR", dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("failover runs");
            all.push(started.elapsed());
            assert!(status.success(), "get events -o {format}: {status}");
        }
        all.sort();
        println!(
            "get events -o {format}, {LINES} lines: p50 {}, max {}",
            ms(percentile(&all, 0.5)),
            ms(all[all.len() - 1])
        );
    }
}
