//! The chaos suite's large form: `cargo bench --bench chaos -- --tasks 500 --kills 50
//! --tmux-kills 5 [--runs 5] [--seed N] [--state-damage] [--disk-full] [--clock-jumps]
//! [--mixed]`. The faults asked for are made in turn, one at each event: `--state-damage`
//! damages the state folder at the controller kills (each fault of
//! `chaos::damage::Fault::ALL`), `--disk-full` fills the disk under it (a tmpfs of its
//! own) for a few seconds, `--clock-jumps` sets the wall clock of every process two hours
//! forward or ten minutes back for a few seconds (libfaketime); `--mixed` runs both pools
//! over Claude Code and Codex, the Claude account used up a third of the way and usable
//! again later. One line of figures per run, counted from evidence (see
//! `failover::testbed::chaos`); exits 1 when a run was not clean or a fault asked for
//! could not be made.
//! Figures go to docs/reliability.md.

use std::time::Duration;

use failover::testbed::chaos::{self, Options};

const BIN: &str = env!("CARGO_BIN_EXE_failover");

fn main() -> std::process::ExitCode {
    let mut o = Options {
        tasks: 500,
        kills: 50,
        tmux_kills: 5,
        seed: 0,
        settle: Duration::ZERO,
        faults: Vec::new(),
        mixed: false,
    };
    let mut runs = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| {
                    eprintln!("{arg} wants a number");
                    std::process::exit(2)
                })
        };
        match arg.as_str() {
            "--state-damage" => {
                o.faults.extend(chaos::damage::Fault::ALL);
                continue;
            }
            "--clock-jumps" => {
                o.faults.push(chaos::damage::Fault::ClockJump);
                continue;
            }
            "--disk-full" => {
                o.faults.push(chaos::damage::Fault::DiskFull);
                continue;
            }
            "--mixed" => {
                o.mixed = true;
                continue;
            }
            "--tasks" => o.tasks = value() as usize,
            "--kills" => o.kills = value() as usize,
            "--tmux-kills" => o.tmux_kills = value() as usize,
            "--runs" => runs = value(),
            "--seed" => o.seed = value(),
            // What `cargo bench` passes.
            "--bench" => {}
            other => {
                eprintln!(
                    "unknown argument {other}: --tasks N --kills N --tmux-kills N --runs N --seed N --state-damage --disk-full --clock-jumps --mixed"
                );
                return std::process::ExitCode::from(2);
            }
        }
    }
    // Enough for the slowest pool to work through its share twice over.
    o.settle = Duration::from_secs(120 + o.tasks as u64 * 2);
    let mut clean = true;
    for run in 1..=runs {
        if o.seed == 0 || run > 1 {
            o.seed = jiff::Timestamp::now().as_nanosecond() as u64 | 1;
        }
        let report = chaos::run(BIN.as_ref(), &o);
        println!("run {run} (seed {}): {}", o.seed, report.figures);
        if let Some(why) = &report.skipped {
            println!("run {run}: a fault asked for could not be made: {why}");
            clean = false;
        }
        if !report.figures.clean() {
            clean = false;
            eprintln!("{}\n{}", report.details, report.operator);
        }
    }
    if clean {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
