//! Dispatch latency: from a task file's rename into an inbox to its text in an agent's
//! pane, over 200 tasks, with a real controller process, the stand-in agent and a
//! private tmux server. The submit delay comes after and is not part of it.
//!
//! Run with `cargo bench --bench dispatch`; figures go to docs/benchmarks.md.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use failover::testbed::{TmuxServer, wait_for};
use failover::tmux::{Cmd, Mode, Tmux};

const BIN: &str = env!("CARGO_BIN_EXE_failover");
const TASKS: usize = 200;
const SESSIONS: usize = 4;

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let t = TmuxServer::start();
    let root = t.mkdir("op");
    for dir in ["home", "work", "p/.agent-queue/inbox"] {
        std::fs::create_dir_all(root.join(dir)).expect("folders");
    }
    let inbox = root.join("p/.agent-queue/inbox");
    let manifest = root.join("pool.yaml");
    let text = format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: {r}/home}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{BIN}, sim-agent], env: {{FAILOVER_SIM_TURN: 50ms}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: default}}\nspec: {{pollInterval: 200ms, dispatch: {{submitDelay: 50ms}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec: {{prefix: b-, min: {SESSIONS}, max: {SESSIONS}, workdir: {r}/work}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: p}}\nspec: {{path: {i}, pool: auto, workdir: {r}/work}}\n",
        r = root.display(),
        i = inbox.display(),
    );
    std::fs::write(&manifest, text).expect("manifest");
    let mut controller = Command::new(BIN)
        .args(["controller", "-f", &manifest.to_string_lossy()])
        .envs(t.env())
        .env("FAILOVER_STATE_DIR", root.join("state"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("controller");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut latencies = runtime.block_on(async {
        wait_for(Duration::from_secs(20), "the pool", || {
            (t.sessions().iter().filter(|s| s.starts_with("b-")).count() == SESSIONS).then_some(())
        });
        let tmux = Tmux::connect(
            t.server(),
            Mode::Observe {
                owner: "failover".into(),
            },
        )
        .await
        .expect("connect")
        .expect("a server");
        let names: Vec<String> = (0..SESSIONS).map(|i| format!("b-{i}")).collect();
        let capture = |names: &[String]| -> Vec<Vec<Cmd>> {
            names
                .iter()
                .map(|n| vec![Cmd::new("capture-pane").args(["-p", "-t", &format!("={n}:")])])
                .collect()
        };
        let screens =
            |answers: Vec<Result<Vec<Vec<String>>, failover::tmux::Error>>| -> Vec<String> {
                answers
                    .into_iter()
                    .map(|a| {
                        a.ok()
                            .and_then(|mut o| o.pop())
                            .unwrap_or_default()
                            .join("\n")
                    })
                    .collect()
            };
        let mut latencies = Vec::with_capacity(TASKS);
        for n in 0..TASKS {
            // Wait for a fresh, idle agent: a prompt and no conversation on screen.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let s = screens(tmux.pipeline(&capture(&names)).await.expect("capture"));
                let fresh = s.iter().any(|s| {
                    s.lines()
                        .any(|l| l.starts_with("❯\u{a0}") && l.trim_end() == "❯\u{a0}".trim_end())
                        && !s.contains("> ")
                        && !s.contains("esc to interrupt")
                });
                if fresh {
                    break;
                }
                assert!(Instant::now() < deadline, "no fresh agent");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let marker = format!("bench-task-{n:04}");
            let tmp = root.join("task.tmp");
            std::fs::write(&tmp, format!("{marker} do the thing")).expect("task");
            let start = Instant::now();
            std::fs::rename(&tmp, inbox.join(format!("{marker}.md"))).expect("rename");
            loop {
                let s = screens(tmux.pipeline(&capture(&names)).await.expect("capture"));
                if s.iter().any(|s| s.contains(&marker)) {
                    latencies.push(start.elapsed());
                    break;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "task {n} never showed"
                );
            }
        }
        latencies
    });
    let _ = controller.kill();
    let _ = controller.wait();
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "dispatch latency over {TASKS} tasks, {SESSIONS} sessions: p50 {}, p90 {}, p99 {}, max {}",
        ms(p(0.5)),
        ms(p(0.9)),
        ms(p(0.99)),
        ms(latencies[latencies.len() - 1])
    );
}
