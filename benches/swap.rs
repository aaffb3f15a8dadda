//! A swap on a private tmux server: every session of an exhausted account moved to the
//! next, timed from the plan's decision to the last move carried out. Sizes: 10 pool
//! sessions and 2 dedicated ones (those resume a conversation), then 100 pool sessions.
//!
//! Run with `cargo bench --bench swap`; figures go to docs/benchmarks.md.

use std::time::{Duration, Instant};

use failover::AgentFacts;
use failover::Context;
use failover::api::load_str;
use failover::plan::{Action, Outcome, Plan, Scope, SessionAction};
use failover::round::{self, Desired, Round, Store, Watcher};
use failover::testbed::TmuxServer;
use failover::tmux::Cmd;

fn manifest(root: &std::path::Path, pool: u32, dedicated: u32) -> String {
    let r = root.display();
    let mut text = format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: a}}\nspec: {{home: {r}/a, priority: 0}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: b}}\nspec: {{home: {r}/b, priority: 1}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [sh, -c, 'exec sleep infinity', sh]}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: p}}\nspec: {{prefix: p-, min: {pool}, max: {pool}, workdir: {r}/w}}\n"
    );
    for i in 0..dedicated {
        text += &format!(
            "---\napiVersion: failover/v1alpha1\nkind: DedicatedSession\nmetadata: {{name: d-{i}}}\nspec: {{workdir: {r}/w}}\n"
        );
    }
    text
}

/// When the plan was made, and when each move finished.
#[derive(Default)]
struct Clock {
    planned: Option<Instant>,
    moves: Vec<(Instant, bool)>,
}

impl Watcher for Clock {
    fn planned(&mut self, _plan: &Plan) {
        self.planned = Some(Instant::now());
    }

    fn acted(&mut self, action: &Action, result: &Result<Outcome, String>) {
        if let Action::Session(SessionAction::MoveSession { .. }) = action {
            self.moves.push((Instant::now(), result.is_ok()));
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// The floor for the same moves: every pane respawned with the same agent command in
/// one pipelined write over the same connection, without a plan, guards or state.
async fn respawn_all(tmux: &failover::tmux::Tmux, workdir: &std::path::Path) -> Duration {
    let panes = tmux.panes().await.expect("panes");
    let control = tmux.control_session();
    let lines: Vec<Vec<Cmd>> = panes
        .iter()
        .filter(|p| p.session != control)
        .map(|p| {
            vec![
                Cmd::new("respawn-pane")
                    .args(["-k", "-t", &p.id, "-c"])
                    .arg(workdir.display().to_string())
                    .args(["sh", "-c", "exec sleep infinity", "sh"]),
            ]
        })
        .collect();
    let start = Instant::now();
    for answer in tmux.pipeline(&lines).await.expect("the respawns") {
        answer.expect("a respawn");
    }
    start.elapsed()
}

/// Whether the tmux server records each pane in utmp through libutempter: every pane it
/// spawns then also forks its setgid helper and waits for it, one after another.
async fn utempter(tmux: &failover::tmux::Tmux) -> bool {
    let pid = tmux
        .run(Cmd::new("display-message").args(["-p", "#{pid}"]))
        .await
        .expect("the server's pid");
    let maps = format!("/proc/{}/maps", pid.first().map_or("", |p| p.trim()));
    std::fs::read_to_string(maps).is_ok_and(|m| m.contains("libutempter"))
}

async fn swap(pool: u32, dedicated: u32) -> (Duration, Duration, bool) {
    let t = TmuxServer::start();
    let root = t.dir().to_path_buf();
    for dir in ["a", "b", "w"] {
        std::fs::create_dir_all(root.join(dir)).expect("folder");
    }
    let desired = match load_str("swap.yaml", &manifest(&root, pool, dedicated)).map(Desired::adopt)
    {
        Ok(Ok(d)) => d,
        other => panic!("{other:?}"),
    };
    let tmux = t.manage().await;
    let state = root.join("state");
    let tz = jiff::tz::TimeZone::UTC;
    let round = Round {
        act: Context {
            tmux: Some(&tmux),
            owner: "failover",
            state_dir: None,
        },
        desired: &desired,
        scope: Scope::Sessions,
        tz: &tz,
        zones: jiff::tz::db(),
        began: round::Began::now(),
    };
    let (mut store, _) = Store::load(&state).expect("state folder");
    let up = round::converge(&round, &mut store, 3, &mut ())
        .await
        .expect("sessions up");
    assert!(up.remaining.is_empty(), "{:?}", up.remaining);
    // Account a is used up; the dedicated sessions' agents hold a conversation.
    let mut facts = store.facts().clone();
    facts.exhausted_until.insert(
        "a".into(),
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
    );
    for s in up
        .observed
        .sessions
        .values()
        .filter(|s| s.name.starts_with("d-"))
    {
        let transcript = root.join(format!("{}.jsonl", s.name));
        std::fs::write(&transcript, "{}\n").expect("transcript");
        facts.sessions.entry(s.name.clone()).or_default().agent = Some(AgentFacts {
            pid: s.pane.pid,
            conversation: format!("c-{}", s.name),
            transcript,
            unheard: false,
        });
    }
    store.save(&facts);
    let mut clock = Clock::default();
    round.run(&mut store, &mut clock).await.expect("the swap");
    let moved = clock.moves.iter().filter(|(_, ok)| *ok).count();
    assert_eq!(moved as u32, pool + dedicated, "every session moved");
    let last = clock.moves.iter().map(|(at, _)| *at).max().expect("moves");
    let floor = respawn_all(&tmux, &root.join("w")).await;
    let utempter = utempter(&tmux).await;
    (last - clock.planned.expect("a plan"), floor, utempter)
}

fn main() {
    println!("{}", failover::testbed::machine::describe());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        for (pool, dedicated) in [(10, 2), (100, 0)] {
            let (mut times, mut floors, mut utmp) = (Vec::new(), Vec::new(), false);
            for _ in 0..5 {
                let (time, floor, helper) = swap(pool, dedicated).await;
                times.push(time);
                floors.push(floor);
                utmp = helper;
            }
            times.sort();
            floors.sort();
            println!(
                "swap of {pool} pool + {dedicated} dedicated sessions, decision to last move (5 runs): p50 {}, max {}; \
                 the same respawns as one raw pipelined write: p50 {}, max {}; tmux runs the utempter \
                 helper for each pane it spawns: {}",
                ms(times[2]),
                ms(times[4]),
                ms(floors[2]),
                ms(floors[4]),
                if utmp { "yes" } else { "no" }
            );
        }
    });
}
