//! A cold `failover apply` as an operator runs it, against the floor: the release
//! binary creating 20 pool sessions on a private tmux server that does not run yet,
//! from spawn to exit, paired run by run with one chained raw `tmux` call that creates
//! the same 20 sessions (`new-session … \; new-session …`) on another fresh server.
//!
//! Run with `cargo bench --bench cold [-- RUNS]`; figures go to docs/benchmarks.md.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use failover::testbed::TmuxServer;

const BIN: &str = env!("CARGO_BIN_EXE_failover");
const SESSIONS: u32 = 20;

fn manifest(root: &std::path::Path) -> String {
    let root = root.display();
    format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: a}}\nspec: {{home: {root}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [sleep, infinity]}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: p}}\nspec: {{prefix: p-, min: {SESSIONS}, max: {SESSIONS}, workdir: {root}}}\n"
    )
}

/// `failover apply` of the manifest on a fresh server: how long the process took.
fn failover_apply() -> Duration {
    let t = TmuxServer::start();
    let file = t.dir().join("pool.yaml");
    std::fs::write(&file, manifest(t.dir())).expect("the manifest");
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["apply", "-f"])
        .arg(&file)
        .envs(t.env())
        .env("FAILOVER_STATE_DIR", t.dir().join("state"))
        .stdin(Stdio::null())
        .output()
        .expect("failover runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sessions = t.sessions().iter().filter(|s| s.starts_with("p-")).count();
    assert_eq!(sessions, SESSIONS as usize, "every session created");
    drop(t);
    took
}

/// The same sessions by one chained `tmux` call on a fresh server.
fn raw_tmux() -> Duration {
    let t = TmuxServer::start();
    let dir = t.dir().to_string_lossy().into_owned();
    let mut cmd = t.command();
    for i in 0..SESSIONS {
        if i > 0 {
            cmd.arg(";");
        }
        let name = format!("p-{i}");
        cmd.args(["new-session", "-d", "-s", &name, "-x", "200", "-y", "50"]);
        cmd.args(["-c", &dir, "--", "sleep", "infinity"]);
    }
    let started = Instant::now();
    let status = cmd.stdin(Stdio::null()).status().expect("tmux runs");
    let took = started.elapsed();
    assert!(status.success());
    assert_eq!(t.sessions().len(), SESSIONS as usize);
    drop(t);
    took
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    println!("{}", failover::testbed::machine::describe());
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.push(failover_apply());
        floor.push(raw_tmux());
    }
    let mut ratios: Vec<f64> = ours
        .iter()
        .zip(&floor)
        .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
        .collect();
    ratios.sort_by(f64::total_cmp);
    ours.sort();
    floor.sort();
    println!(
        "cold apply of {SESSIONS} sessions as processes ({runs} paired runs): failover p50 {}, one chained tmux call p50 {}; ratio of pairs p50 ×{:.2} (min ×{:.2}, max ×{:.2})",
        ms(ours[runs / 2]),
        ms(floor[runs / 2]),
        ratios[runs / 2],
        ratios[0],
        ratios[runs - 1]
    );
}
