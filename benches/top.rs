//! `failover top` over 500 sessions: the CPU the dashboard uses while the state folder
//! is quiet and while it changes busily (the facts file rewritten every 10 ms, faster
//! than any controller writes it, and a journal line every 500 ms), and how long a
//! change takes to reach the screen (a journal line appended, timed until
//! `capture-pane` shows it); first without a controller (the dashboard looks itself),
//! then with one, whose board is also published again with a change every 100 ms.
//! The 500 sessions are made by `failover apply` on a private tmux server (their agent
//! is `sleep`); the dashboard runs in a 200x50 pane of a second private server.
//!
//! Run with `cargo bench --bench top`; figures go to docs/benchmarks.md.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use failover::testbed::TmuxServer;

const BIN: &str = env!("CARGO_BIN_EXE_failover");
const SESSIONS: u32 = 500;

fn manifest(root: &Path) -> String {
    let r = root.display();
    format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: a}}\nspec: {{home: {r}/a, priority: 0}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: b}}\nspec: {{home: {r}/b, priority: 1}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [sh, -c, 'exec sleep infinity', sh]}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: p}}\nspec: {{prefix: p-, min: {SESSIONS}, max: {SESSIONS}, workdir: {r}/w}}\n"
    )
}

/// The CPU time `pid` has used so far (user and system).
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process's stat");
    // Fields after the command's closing parenthesis: state is field 3, utime 14.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let hz: u64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / hz)
}

/// The share of one core `pid` used over `span`, while `busy` runs (if any).
fn share(pid: u32, span: Duration) -> f64 {
    let (c0, t0) = (cpu(pid), Instant::now());
    std::thread::sleep(span);
    (cpu(pid) - c0).as_secs_f64() / t0.elapsed().as_secs_f64() * 100.0
}

fn append(journal: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(journal)
        .expect("the journal");
    writeln!(f, "{line}").expect("a journal line");
}

fn stopped(pid: u64) -> String {
    format!(
        "{{\"time\":\"{}\",\"event\":\"stopped\",\"pid\":{pid}}}",
        jiff::Timestamp::now()
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// A copy of `board.json` with the first session's task flipped: a board that changed.
fn changed_board(board: &serde_json::Value, i: u64) -> Vec<u8> {
    let mut b = board.clone();
    b["board"]["sessions"][0]["row"]["task"] = format!("bench-{}.md", i % 2).into();
    serde_json::to_vec(&b).expect("a board")
}

/// The dashboard's CPU, quiet and then busy, and the time from a change to the screen.
/// Busy: the facts rewritten every 10 ms and a journal line every 500 ms; with
/// `board`, the controller's board published again with a change every 100 ms too.
fn measure(viewer: &TmuxServer, pid: u32, state: &Path, board: Option<serde_json::Value>) {
    let journal = state.join("journal.jsonl");
    let facts = state.join("facts.json");
    let facts_text = std::fs::read_to_string(&facts).unwrap_or_else(|_| "{}".to_owned());

    std::thread::sleep(Duration::from_secs(2));
    let quiet = share(pid, Duration::from_secs(10));
    println!("  CPU, quiet: {quiet:.2} % of a core");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, journal, facts, text, board_file) = (
            stop.clone(),
            journal.clone(),
            facts.clone(),
            facts_text.clone(),
            state.join("board.json"),
        );
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if i.is_multiple_of(50) {
                    append(&journal, &stopped(i));
                }
                let tmp = facts.with_extension("json.tmp");
                std::fs::write(&tmp, &text).expect("facts");
                std::fs::rename(&tmp, &facts).expect("facts renamed");
                if let Some(b) = board.as_ref().filter(|_| i.is_multiple_of(10)) {
                    let tmp = board_file.with_extension("json.tmp");
                    std::fs::write(&tmp, changed_board(b, i / 10)).expect("board");
                    std::fs::rename(&tmp, &board_file).expect("board renamed");
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let busy = share(pid, Duration::from_secs(10));
    println!("  CPU, busy: {busy:.2} % of a core");

    // Redraws: a journal line with a pid of its own, until the screen shows it.
    let mut latencies = Vec::new();
    for k in 0..30u64 {
        let marker = 900_000_000 + k;
        let t0 = Instant::now();
        append(&journal, &stopped(marker));
        let needle = format!("(pid {marker})");
        loop {
            if viewer.capture("=dash:").contains(&needle) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{needle} never drawn"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        latencies.push(t0.elapsed());
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().expect("the writer");
    latencies.sort();
    println!(
        "  change to screen (busy): p50 {}  p95 {}  max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.95)),
        ms(latencies[latencies.len() - 1])
    );
}

fn main() {
    let agents = TmuxServer::start();
    let root = agents.mkdir("op");
    for d in ["a", "b", "w", "state"] {
        std::fs::create_dir_all(root.join(d)).expect("a folder");
    }
    let file = root.join("pool.yaml");
    std::fs::write(&file, manifest(&root)).expect("the manifest");
    let state = root.join("state");
    let env = |cmd: &mut std::process::Command| {
        cmd.envs(agents.env()).env("FAILOVER_STATE_DIR", &state);
    };
    let started = Instant::now();
    let mut apply = std::process::Command::new(BIN);
    apply.args(["apply", "-f", &file.to_string_lossy()]);
    env(&mut apply);
    let out = apply.output().expect("failover apply");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "{SESSIONS} sessions made by apply in {:?}",
        started.elapsed()
    );

    let viewer = TmuxServer::start();
    let socket = agents.socket().to_string_lossy().into_owned();
    let state_text = state.to_string_lossy().into_owned();
    viewer.new_session(
        "dash",
        &root,
        &[
            ("FAILOVER_STATE_DIR", &state_text),
            ("FAILOVER_TMUX_SOCKET", &socket),
            ("FAILOVER_TMUX_CONFIG", "/dev/null"),
        ],
        &[BIN, "top", "-f", &file.to_string_lossy()],
    );
    viewer.wait_screen("=dash:", Duration::from_secs(60), "the dashboard", |s| {
        s.contains("failover top") && s.contains("p-0")
    });
    let pid = viewer.pane_pid("=dash:");

    println!("failover top, {SESSIONS} sessions, no controller (its own looks):");
    measure(&viewer, pid, &state, None);

    // A controller: the dashboard now draws the board it publishes.
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(["controller", "-f", &file.to_string_lossy()]);
    env(&mut cmd);
    let controller = failover::testbed::Spawned::start(cmd, root.join("controller.log"));
    let board =
        failover::testbed::wait_for(Duration::from_secs(60), "the controller's board", || {
            let text = std::fs::read_to_string(state.join("board.json")).ok()?;
            let value: serde_json::Value = serde_json::from_str(&text).ok()?;
            (value["pid"] == controller.pid()).then_some(value)
        });
    viewer.wait_screen("=dash:", Duration::from_secs(60), "the controller", |s| {
        s.contains("controller: running")
    });
    println!("failover top, {SESSIONS} sessions, a controller publishing its board:");
    measure(&viewer, pid, &state, Some(board));
    viewer.keys("=dash:", &["q"]);
    controller.kill();
}
