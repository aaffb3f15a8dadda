//! A damaged state folder during live work (issue 28, item 2): twenty tasks through two
//! pools of stand-ins while the controller is SIGKILLed four times, the state folder
//! damaged at each kill (or, for a report, while it runs). Each fault class: every task
//! in `done/` once, the journal matching the folders (the replay rule), no panic, the
//! person's session untouched, each damage said in the journal and kept aside, and the
//! operator told by `get events` and `doctor`. A read-only folder and a full disk
//! (the state folder on a small tmpfs of its own, SKIPPED where it cannot be mounted)
//! are made while the controller runs. See `failover::testbed::chaos::damage`.

use std::time::Duration;

use failover::testbed::chaos::{self, Options, damage::Fault};

use crate::bed::BIN;

/// Twenty tasks with `fault` made at each of `events` (controller kills, or read-only
/// spells); the figures printed and asserted clean. `None` when the fault could not be
/// made here (said as SKIPPED).
fn run(fault: Fault, events: usize) -> Option<chaos::Report> {
    let report = chaos::run(
        BIN.as_ref(),
        &Options {
            tasks: 20,
            kills: events,
            tmux_kills: 0,
            seed: chaos::seed(),
            settle: Duration::from_secs(180),
            faults: vec![fault],
            mixed: false,
        },
    );
    if let Some(why) = &report.skipped {
        eprintln!("SKIPPED: {fault:?} could not be made here: {why}");
        return None;
    }
    let f = &report.figures;
    eprintln!("{fault:?}: {f}\n{}", report.operator);
    assert!(f.faults > 0, "no damage was made: {f}");
    assert!(f.clean(), "{f}\n{}\n{}", report.details, report.operator);
    Some(report)
}

fn survive(fault: Fault, file: &str) {
    let Some(report) = run(fault, 4) else { return };
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
    let Some(report) = run(Fault::ReadOnly, 2) else {
        return;
    };
    assert_eq!(report.figures.read_only, 2, "{}", report.figures);
    assert!(
        report.operator.contains("cannot be written"),
        "get and doctor say so: {}",
        report.operator
    );
}

#[test]
fn a_full_disk_under_the_state_folder_should_hold_claims_say_it_once_and_catch_up() {
    let Some(report) = run(Fault::DiskFull, 2) else {
        return;
    };
    assert_eq!(report.figures.disk_full, 2, "{}", report.figures);
    assert!(
        report.operator.contains("cannot be written") && report.operator.contains("No space"),
        "get and doctor say so, and why: {}",
        report.operator
    );
}

/// A bed with one pool of one stand-in, its manifest saved, and its state folder made.
fn one_pool() -> (
    failover::testbed::Bed,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    use failover::testbed::manifest::Manifest;
    let bed = crate::bed::new(&["home", "work"]);
    let m = Manifest::new()
        .account("main", bed.root.join("home"))
        .agent("claude", &[BIN, "sim-agent"])
        .pool("p", "w-", 1..=1, bed.root.join("work"));
    let file = bed.save("pool.yaml", &m.yaml());
    let state = bed.state();
    std::fs::create_dir_all(&state).unwrap();
    (bed, file, state)
}

#[test]
fn get_and_doctor_should_say_damaged_files_by_name_before_a_controller_repairs_them() {
    let (bed, file, state) = one_pool();
    let file = file.to_string_lossy();
    std::fs::write(state.join("facts.json"), "{\"sessions\": {\"w-0\": ").unwrap();
    let good = r#"{"time":"2026-12-06T03:15:00Z","event":"stopped","pid":10}"#;
    std::fs::write(
        state.join("journal.jsonl"),
        format!("{good}\n\u{1}garbage\n"),
    )
    .unwrap();
    let (code, get) = bed.run(&["get", "sessions", "-f", &file]);
    assert_eq!(code, 0, "get shows what it can: {get}");
    assert!(
        get.contains("facts.json: not valid") && get.contains("shown without the facts"),
        "{get}"
    );
    let (code, events) = bed.run(&["get", "events", "-f", &file]);
    assert_eq!(code, 0, "{events}");
    assert!(
        events.contains("journal.jsonl: 1 line that is not a journal line (line 2)"),
        "{events}"
    );
    assert!(events.contains("controller stopped (pid 10)"), "{events}");
    let (_, doctor) = bed.run(&["doctor", "-f", &file]);
    let damage: Vec<&str> = doctor
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("damage"))
        .collect();
    assert_eq!(damage.len(), 2, "facts and journal each fail: {doctor}");
    assert!(damage[0].contains("facts.json") && damage[0].contains("keeps it aside"));
    assert!(damage[1].contains("journal.jsonl") && damage[1].contains("whole lines back"));
    assert_eq!(
        std::fs::read_dir(&state).unwrap().count(),
        2,
        "nothing moved by a reader"
    );
}

#[test]
fn a_file_kept_aside_by_a_controller_killed_before_it_said_so_should_be_said_once_at_the_next_start()
 {
    use failover::testbed::wait_for;
    // What a kill between the rename aside and the journal line leaves: the facts
    // moved aside, no facts file, a journal that does not name it.
    let (bed, file, state) = one_pool();
    let kept = "facts.json.damaged-20261206T031500Z";
    std::fs::write(state.join(kept), "{\"sessions\": {\"w-0\": ").unwrap();
    let said = || {
        bed.events("stateDamaged")
            .iter()
            .filter(|e| e.to_string().contains(kept))
            .count()
    };
    for start in 1..=2 {
        let c = bed.controller(&file, &format!("controller-{start}"), None);
        wait_for(Duration::from_secs(20), "the controller's start", || {
            bed.events("started")
                .iter()
                .any(|e| e["pid"] == c.pid())
                .then_some(())
        });
        assert_eq!(said(), 1, "start {start}: said once, and not again");
        c.kill();
    }
    let (_, events) = bed.run(&["get", "events", "-f", &file.to_string_lossy()]);
    assert!(
        events.contains(kept) && events.contains("stopped before it could say why"),
        "{events}"
    );
    assert!(
        state.join(kept).exists(),
        "the kept file stays for the operator"
    );
}
