//! A damaged state folder during live work (issue 28, item 2): twenty tasks through two
//! pools of stand-ins while the controller is SIGKILLed four times, the state folder
//! damaged at each kill (or, for a report, while it runs). Each fault class: every task
//! in `done/` once, the journal matching the folders (the replay rule), no panic, the
//! person's session untouched, each damage said in the journal and kept aside, and the
//! operator told by `get events` and `doctor`. See `failover::testbed::chaos::damage`.

use std::time::Duration;

use failover::testbed::chaos::{self, Options, damage::Fault};

use crate::bed::BIN;

fn survive(fault: Fault, file: &str) {
    let seed = std::env::var("FAILOVER_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) << 16 | 0x2545);
    let report = chaos::run(
        BIN.as_ref(),
        &Options {
            tasks: 20,
            kills: 4,
            tmux_kills: 0,
            seed,
            settle: Duration::from_secs(180),
            faults: vec![fault],
        },
    );
    let f = &report.figures;
    eprintln!("{fault:?}: {f}\n{}", report.operator);
    assert!(f.faults > 0, "no damage was made: {f}");
    assert!(f.clean(), "{f}\n{}\n{}", report.details, report.operator);
    let told = |part: &str| {
        report
            .operator
            .split("--- ")
            .find(|p| p.starts_with(part))
            .unwrap_or_default()
            .to_owned()
    };
    let events = told("get events");
    assert!(
        events.contains(file) && events.contains(".damaged-"),
        "get events names the file and where it went: {}",
        report.operator
    );
    assert!(
        told("doctor").contains("kept aside"),
        "doctor lists what was kept aside: {}",
        report.operator
    );
}

#[test]
fn facts_cut_short_at_each_kill_should_be_kept_aside_and_rebuilt_with_every_task_done_once() {
    survive(Fault::FactsTruncated, "facts.json");
}

#[test]
fn facts_overwritten_with_garbage_should_be_kept_aside_and_rebuilt_with_every_task_done_once() {
    survive(Fault::FactsGarbage, "facts.json");
}

#[test]
fn a_journal_ending_in_a_torn_line_should_be_kept_aside_and_completed_by_the_replay() {
    survive(Fault::JournalTorn, "journal.jsonl");
}

#[test]
fn garbage_lines_in_the_journal_should_be_kept_aside_and_left_out() {
    survive(Fault::JournalGarbage, "journal.jsonl");
}

#[test]
fn a_report_that_is_not_json_should_be_kept_aside_not_deleted() {
    survive(Fault::ReportGarbage, "reports/f-0.");
}

#[test]
fn a_state_folder_read_only_for_a_while_should_hold_claims_say_it_once_and_catch_up() {
    let seed = u64::from(std::process::id()) << 16 | 0x2545;
    let report = chaos::run(
        BIN.as_ref(),
        &Options {
            tasks: 20,
            kills: 2,
            tmux_kills: 0,
            seed,
            settle: Duration::from_secs(180),
            faults: vec![Fault::ReadOnly],
        },
    );
    if let Some(why) = &report.skipped {
        eprintln!("SKIPPED: the state folder could not be made read-only here: {why}");
        return;
    }
    let f = &report.figures;
    eprintln!("ReadOnly: {f}\n{}", report.operator);
    assert_eq!(f.read_only, 2, "{f}");
    assert!(f.clean(), "{f}\n{}\n{}", report.details, report.operator);
    assert!(
        report.operator.contains("cannot be written"),
        "get and doctor say so: {}",
        report.operator
    );
}
