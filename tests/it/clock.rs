//! A wall clock that jumps during live work (issue 28, item 3), made with libfaketime for
//! every process of the bed (controller, tmux server, agents, hooks, the operator's
//! commands; SKIPPED where libfaketime is missing): two hours forward in the middle of a
//! cooldown, past an exhausted account's reset, with tasks under way, then ten minutes
//! back. No swap, no stalled or failed task, each jump said once; and the chaos suite's
//! jumps forward and back among twenty tasks. See `failover::testbed::chaos::clock`.

use std::time::Duration;

use failover::api::ControllerConfigSpec;
use failover::testbed::chaos::{self, Options, clock::Clock, damage::Fault};
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::{wait_for, wait_for_or_none};

use crate::bed::{self, BIN};

const WAIT: Duration = Duration::from_secs(30);

/// The time of day an hour from now, as Claude Code's limit line says it.
fn in_an_hour() -> String {
    let t = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    let h = t.hour();
    let (h12, half) = (
        if h % 12 == 0 { 12 } else { h % 12 },
        if h < 12 { "am" } else { "pm" },
    );
    format!("{h12}:{:02}{half} (UTC)", t.minute())
}

#[test]
fn a_clock_jumping_in_a_cooldown_past_a_reset_should_move_no_session_and_stall_no_task() {
    let mut bed = bed::new(&["shared", "work", "p/.agent-queue/inbox", "a", "b"]);
    let clock = match Clock::install(&bed.root) {
        Ok(clock) => clock,
        Err(why) => {
            eprintln!("SKIPPED: the clock cannot be made to jump here: {why}");
            return;
        }
    };
    bed.t.set_machine_env(clock.env());
    let r = bed.root.clone();
    let m = Manifest::new()
        .account("a", r.join("a"))
        .priority(0)
        .account("b", r.join("b"))
        .priority(1)
        .shared_state("s", r.join("shared"))
        .agent("claude", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", "4s")
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("200ms");
            c.dispatch.submit_delay = duration("50ms");
            c.quota.cooldown = duration("30m");
        })
        .pool("auto", "w-", 2..=2, r.join("work"))
        .inbox("p", r.join("p/.agent-queue/inbox"), "auto", r.join("work"));
    let manifest = bed.write("pool.yaml", &m.yaml());
    let _c = bed.controller(&manifest, "controller", Some("info"));
    let on = |account: &str| {
        ["w-0", "w-1"]
            .iter()
            .all(|s| bed.account(s) == account && bed.t.capture(&format!("={s}:")).contains('❯'))
    };
    // Waits for `check`; on a timeout, fails with the controller's log and the panes.
    let until = |what: &str, check: &mut dyn FnMut() -> bool| {
        if wait_for_or_none(WAIT, || check().then_some(())).is_none() {
            let panes: Vec<String> = ["w-0", "w-1"]
                .iter()
                .map(|s| format!("--- {s}\n{}", bed.t.capture(&format!("={s}:"))))
                .collect();
            panic!(
                "timed out after {WAIT:?} waiting for {what}\n{}\n{}",
                panes.join("\n"),
                bed.log("controller")
            );
        }
    };
    wait_for(WAIT, "the pool up on a", || on("a").then_some(()));
    // a runs out, its reset an hour away: the pool moves to b, and the cooldown begins.
    std::fs::write(r.join("a/.sim-limit"), in_an_hour()).unwrap();
    bed.drop_task("p", "t0.md", "task 0, cut by a's limit");
    wait_for(WAIT, "the pool on b", || on("b").then_some(()));
    std::fs::remove_file(r.join("a/.sim-limit")).unwrap();
    wait_for(WAIT, "task 0 done under b", || {
        (bed.files("p", "done").len() == 1).then_some(())
    });
    assert_eq!(bed.events("swap").len(), 1, "{}", bed.log("controller"));
    // Tasks `first` and `first + 1` under way, then the clock set `offset` minutes off
    // the real one: said as the `nth` jump, by `seconds` (give or take 10 s).
    let jump = |first: usize, offset: i64, nth: usize, seconds: i64, what: &str| {
        for i in [first, first + 1] {
            let text = format!("task {i}, under way across {what}");
            bed.drop_task("p", &format!("t{i}.md"), &text);
        }
        wait_for(
            WAIT,
            &format!("tasks {first} and {} under way", first + 1),
            || (bed.files("p", "active").len() == 2).then_some(()),
        );
        clock.set(offset).unwrap();
        let said = wait_for(WAIT, &format!("{what} said"), || {
            bed.events("clockJumped").into_iter().nth(nth)
        });
        let by = said["seconds"].as_i64().unwrap();
        assert!((seconds - 10..=seconds + 10).contains(&by), "{said}");
    };
    // Two tasks under way, then the clock two hours forward: past a's reset, far past
    // the cooldown's end and the tasks' stall timer (30 minutes) as the wall clock reads.
    jump(1, 120, 0, 7200, "the jump forward");
    until("tasks 1 and 2 done", &mut || {
        bed.files("p", "done").len() == 3
    });
    // a is usable again by the clock (its reset is a time of day) ...
    wait_for(WAIT, "a usable again", || {
        bed.events("recovered")
            .into_iter()
            .find(|e| e["account"] == "a")
    });
    // ... and the pool, idle, stays on b: the cooldown since the swap kept its span.
    let (code, accounts) = bed.run(&["get", "accounts", "-f", &manifest.to_string_lossy()]);
    eprintln!("{accounts}");
    assert_eq!(code, 0, "{accounts}");
    // Ten minutes back, with two more tasks under way.
    jump(3, 110, 1, -600, "the jump back");
    until("tasks 3 and 4 done", &mut || {
        bed.files("p", "done").len() == 5
    });
    // The sessions restart after their tasks (`/exit`), on b: the cooldown kept its span.
    wait_for(WAIT, "the pool idle on b", || on("b").then_some(()));
    let log = bed.log("controller");
    let swaps = bed.events("swap");
    assert_eq!(swaps.len(), 1, "no swap but a's limit: {swaps:?}\n{log}");
    for event in ["taskStalled", "taskFailed", "taskRequeued", "resumeFailed"] {
        assert_eq!(
            bed.events(event),
            Vec::<serde_json::Value>::new(),
            "{event}: {log}"
        );
    }
    assert_eq!(bed.events("taskDone").len(), 5, "{log}");
    assert!(bed.files("p", "failed").is_empty());
    assert_eq!(
        bed.events("clockJumped").len(),
        2,
        "each jump said once: {log}"
    );
    assert_eq!(log.matches("the wall clock jumped").count(), 2, "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let (_, events) = bed.run(&["get", "events", "-f", &manifest.to_string_lossy()]);
    let told: Vec<&str> = events
        .lines()
        .filter(|l| l.contains("clock jumped"))
        .collect();
    eprintln!("{}", told.join("\n"));
    assert!(
        told.iter().any(|l| l.contains("jumped forward by 2h"))
            && told.iter().any(|l| l.contains("jumped back by 10m")),
        "{events}"
    );
}

#[test]
fn a_clock_jumping_forward_and_back_among_twenty_tasks_should_fail_none_and_be_said_each_time() {
    let report = chaos::run(
        BIN.as_ref(),
        &Options {
            tasks: 20,
            kills: 4,
            tmux_kills: 0,
            seed: chaos::seed(),
            settle: Duration::from_secs(180),
            faults: vec![Fault::ClockJump],
            mixed: false,
        },
    );
    if let Some(why) = &report.skipped {
        eprintln!("SKIPPED: the clock cannot be made to jump here: {why}");
        return;
    }
    let f = &report.figures;
    eprintln!("{f}");
    assert_eq!(f.clock_jumps, 8, "{f}");
    assert!(f.clean(), "{f}\n{}", report.details);
}
