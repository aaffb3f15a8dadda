//! Benchmarks of the reconcile core on a private tmux server: observe + plan with 20,
//! 500, 1000 and 2000 idle sessions (the steady state: how many screens each round
//! captured, and what one changed screen costs), and a cold apply of 20 sessions, with
//! the tmux processes each started. The machine, its load, tmux and the date come
//! first.
//!
//! Run with `cargo bench --bench reconcile`; figures go to docs/benchmarks.md.

use std::time::{Duration, Instant};

use failover::Context;
use failover::Facts;
use failover::api::load_str;
use failover::observe;
use failover::plan::{self, Scope};
use failover::round::{self, Converged, Desired, Round, Store};
use failover::testbed::TmuxServer;
use failover::tmux::{Cmd, Tmux, processes_started};

/// One account and `sessions` idle sessions, in pools of at most 1000 (the schema's
/// maximum): `b-0…`, then `c-0…`.
fn manifest(root: &std::path::Path, sessions: u32) -> String {
    let root = root.display();
    let mut text = format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: a}}\nspec: {{home: {root}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [sleep, infinity]}}\n"
    );
    let mut left = sessions;
    for prefix in ["b", "c", "d", "e"] {
        let n = left.min(1000);
        if n == 0 {
            break;
        }
        left -= n;
        text += &format!(
            "---\napiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: {prefix}}}\nspec: {{prefix: {prefix}-, min: {n}, max: {n}, workdir: {root}}}\n"
        );
    }
    text
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Applies `desired` as `failover apply` does, its facts in `state`.
async fn apply(tmux: &Tmux, desired: &Desired, state: &std::path::Path) -> Converged {
    let tz = jiff::tz::TimeZone::UTC;
    let round = Round {
        act: Context {
            tmux: Some(tmux),
            owner: "failover",
            state_dir: None,
        },
        desired,
        scope: Scope::Sessions,
        tz: &tz,
        zones: jiff::tz::db(),
        began: round::Began::now(),
    };
    let (mut store, _) = Store::load(state).expect("state folder");
    round::converge(&round, &mut store, 3, &mut ())
        .await
        .expect("converge")
}

fn desired(t: &TmuxServer, sessions: u32) -> Desired {
    match load_str("bench.yaml", &manifest(t.dir(), sessions)).map(Desired::adopt) {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => panic!("{e}"),
        Err(e) => panic!("{e}"),
    }
}

async fn observe_and_plan(sessions: u32) {
    let t = TmuxServer::start();
    let d = desired(&t, sessions);
    let m = &d.manifests;
    let tmux = t.manage().await;
    let converged = apply(&tmux, &d, &t.dir().join("state")).await;
    assert!(
        converged.remaining.is_empty(),
        "not converged: {converged:?}"
    );
    let ctx = plan::Context {
        owner: "failover",
        now: jiff::Timestamp::now(),
        tz: jiff::tz::TimeZone::UTC,
        zones: jiff::tz::db(),
        classifiers: &d.classifiers,
        scope: Scope::Sessions,
        hold_claims: false,
    };
    let observe_times = std::cell::RefCell::new(Vec::new());
    let reconcile = || async {
        let start = Instant::now();
        let observed = observe(Some(&tmux), m, Facts::default(), None)
            .await
            .expect("observe");
        observe_times.borrow_mut().push(start.elapsed());
        let p = plan::plan(m, &observed, &ctx);
        (observed, p)
    };
    // The first looks capture every screen; once each capture is a second younger than
    // its pane's last output, it stands.
    for _ in 0..3 {
        reconcile().await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let before = processes_started();
    let captured = tmux.screens_captured();
    let fulls = tmux.full_listings();
    observe_times.borrow_mut().clear();
    let mut times = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        let (observed, p) = reconcile().await;
        times.push(start.elapsed());
        assert_eq!(observed.sessions.len(), sessions as usize);
        assert!(p.is_empty());
    }
    let spawned = processes_started() - before;
    let captured = tmux.screens_captured() - captured;
    // What the controller adds to each round: its board, made and compared with the last
    // one (written only when it changed: the first time here).
    let state = t.dir().join("state");
    std::fs::create_dir_all(&state).expect("the state folder");
    let mut publisher = failover::Publisher::new(&state);
    let (observed, p) = reconcile().await;
    let now = jiff::Timestamp::now();
    let start = Instant::now();
    assert!(publisher.publish(m, "failover", &observed, &p, now));
    let first = start.elapsed();
    let mut boards = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        assert!(!publisher.publish(m, "failover", &observed, &p, now));
        boards.push(start.elapsed());
    }
    boards.sort();
    let size = std::fs::metadata(state.join("board.json")).map_or(0, |f| f.len());
    let fulls = tmux.full_listings() - fulls;
    times.sort();
    let mut observing = observe_times.borrow().clone();
    observing.sort();
    // tmux's own floor: listing every pane with a constant format, over the same
    // connection, as often.
    let mut floor = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        tmux.run(Cmd::new("list-panes").args(["-a", "-F", "x"]))
            .await
            .expect("list-panes");
        floor.push(start.elapsed());
    }
    floor.sort();
    // Our listing alone, as each observation asks for it.
    let mut listing = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        tmux.panes().await.expect("panes");
        listing.push(start.elapsed());
    }
    listing.sort();
    println!(
        "observe+plan, {sessions:>4} idle sessions: p50 {}, p99 {}, max {} (observe alone p50 {}, of which the pane listing p50 {}; tmux's bare `list-panes -a -F x` p50 {}); over 50 reconciles: {captured} screens captured, {fulls} full listings, {spawned} tmux processes started",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1]),
        ms(percentile(&observing, 0.5)),
        ms(percentile(&listing, 0.5)),
        ms(percentile(&floor, 0.5)),
    );
    println!(
        "  the controller's board: unchanged p50 {}, p99 {} (made and compared); written {} ({} KiB)",
        ms(percentile(&boards, 0.5)),
        ms(percentile(&boards, 0.99)),
        ms(first),
        size / 1024,
    );
    // One agent draws: the next reconcile captures that one screen.
    let pane = t.tmux(&["display-message", "-p", "-t", "=b-0:", "#{pane_id}"]);
    t.tmux(&["send-keys", "-t", pane.trim(), "-l", "x"]);
    // Drawn once tmux shows it (asked by its own command line, not our connection).
    failover::testbed::wait_for(Duration::from_secs(5), "the key echoed", || {
        t.tmux(&["capture-pane", "-p", "-t", pane.trim()])
            .contains('x')
            .then_some(())
    });
    let captured = tmux.screens_captured();
    let start = Instant::now();
    let (observed, _) = reconcile().await;
    let took = start.elapsed();
    println!(
        "  after one agent drew: one reconcile {} captured {} screen(s); it shows the change: {}",
        ms(took),
        tmux.screens_captured() - captured,
        observed.screens.get("b-0").is_some_and(|s| s.contains('x'))
    );
}

async fn cold_apply(sessions: u32) {
    let mut times = Vec::new();
    let mut spawned = Vec::new();
    for _ in 0..5 {
        let t = TmuxServer::start();
        let d = desired(&t, sessions);
        let before = processes_started();
        let start = Instant::now();
        let tmux = t.manage().await;
        let converged = apply(&tmux, &d, &t.dir().join("state")).await;
        times.push(start.elapsed());
        spawned.push(processes_started() - before);
        // The sessions, and the agent settings of the account's home.
        assert!({
            let c = &converged;
            let created = c
                .done
                .iter()
                .filter(|(a, _)| {
                    matches!(
                        a,
                        failover::plan::Action::Session(
                            failover::plan::SessionAction::CreateSession { .. }
                        )
                    )
                })
                .count();
            c.remaining.is_empty() && created == sessions as usize
        });
    }
    times.sort();
    println!(
        "cold apply, {sessions} sessions (5 runs): p50 {}, max {}; tmux processes started per apply: {:?}",
        ms(percentile(&times, 0.5)),
        ms(times[times.len() - 1]),
        spawned
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    println!("{}", failover::testbed::machine::describe());
    let sizes: Vec<u32> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![20, 500, 1000, 2000]
    } else {
        sizes
    };
    runtime.block_on(async {
        for n in sizes {
            observe_and_plan(n).await;
        }
        cold_apply(20).await;
    });
}
