//! The chaos suite's small form: forty tasks through two pools of stand-in agents while
//! the controller is SIGKILLed ten times and the tmux server once; and the same with
//! both pools over Claude Code and Codex, the Claude account used up a while. See
//! `failover::testbed::chaos`; `cargo bench --bench chaos` runs the large form.

use std::time::Duration;

use failover::testbed::chaos::{self, Options};

use crate::bed::BIN;

#[test]
fn forty_tasks_through_ten_controller_kills_and_a_tmux_kill_should_each_run_once() {
    let seed = chaos::seed();
    let report = chaos::run(
        BIN.as_ref(),
        &Options {
            tasks: 40,
            kills: 10,
            tmux_kills: 1,
            seed,
            settle: Duration::from_secs(240),
            faults: Vec::new(),
            mixed: false,
        },
    );
    let f = &report.figures;
    eprintln!("{f}");
    assert!(f.clean(), "{f}\n{}", report.details);
    assert_eq!((f.kills, f.tmux_kills), (10, 1), "{f}");
}

#[test]
fn forty_tasks_through_a_pool_of_two_families_and_ten_controller_kills_should_each_run_once() {
    let seed = chaos::seed();
    let report = chaos::run(
        BIN.as_ref(),
        &Options {
            tasks: 40,
            kills: 10,
            tmux_kills: 1,
            seed,
            settle: Duration::from_secs(240),
            faults: Vec::new(),
            mixed: true,
        },
    );
    let f = &report.figures;
    eprintln!("{f}");
    assert!(f.clean(), "{f}\n{}", report.details);
    // Codex ran tasks while the Claude account was used up, and the pools came back.
    assert!(f.under_codex > 0 && f.family_changes > 0, "{f}");
}
