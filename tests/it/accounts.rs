//! Every account in turn: four accounts used up one after the other by their agents'
//! own reports (default quota settings), the pool on the next within two seconds each,
//! then all four used up, the queue waiting and resuming by itself at the first reset;
//! and accounts that share no conversation folder, where a move starts afresh.

use std::time::Duration;

use failover::api::{AgentProfileSpec, ControllerConfigSpec};
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::{Spawned, wait_for};

use crate::bed::{self, BIN, Bed};

const WAIT: Duration = Duration::from_secs(20);

/// The manifests: `accounts` (homes under the root, by priority), the shared state
/// when `shared`, stand-in agents, a pool of two fed by inbox `p`, the notifications
/// written to files in `told/`, and the default quota settings.
fn start(bed: &Bed, accounts: &[&str], shared: bool) -> Spawned {
    start_with(bed, accounts, shared, |_| {})
}

/// [`start`], with `profile` changing the agents' profile (their environment, their
/// `resumeArgs`).
fn start_with(
    bed: &Bed,
    accounts: &[&str],
    shared: bool,
    profile: impl FnOnce(&mut AgentProfileSpec),
) -> Spawned {
    let r = &bed.root;
    let mut m = Manifest::new();
    for (i, a) in (0..).zip(accounts) {
        std::fs::create_dir_all(r.join(a)).unwrap();
        m = m.account(a, r.join(a)).priority(i);
    }
    if shared {
        m = m.shared_state("s", r.join("shared"));
    }
    let told = r.join("told");
    std::fs::create_dir_all(&told).unwrap();
    let notify = format!("cat > \"$(mktemp -p {})\"", told.display());
    let m = m
        .agent("claude", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", "200ms")
        .with(profile)
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("200ms");
            c.dispatch.submit_delay = duration("50ms");
            c.notifications.command = vec!["sh".into(), "-c".into(), notify];
        })
        .pool("auto", "w-", 2..=2, r.join("work"))
        .inbox("p", r.join("p/.agent-queue/inbox"), "auto", r.join("work"));
    let manifest = bed.write("pool.yaml", &m.yaml());
    let running = bed.controller(&manifest, "controller", None);
    wait_for(WAIT, "the pool up on the first account", || {
        ["w-0", "w-1"]
            .iter()
            .all(|s| {
                bed.account(s) == accounts[0] && bed.t.capture(&format!("={s}:")).contains('❯')
            })
            .then_some(())
    });
    running
}

fn at(v: &serde_json::Value) -> jiff::Timestamp {
    v.as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

/// No "keeps dying" refusal was journaled: no session crash-looped.
fn assert_no_crash_loop(bed: &Bed) {
    let refused = bed.events("refused");
    assert!(
        !refused.iter().any(|e| e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("keeps dying"))),
        "{}",
        bed.log("controller")
    );
}

/// Prints what `get events --for object` says, as an operator would read it.
fn show_events(bed: &Bed, object: &str) {
    let file = bed.root.join("pool.yaml");
    let (_, events) = bed.run(&[
        "get",
        "events",
        "--for",
        object,
        "-f",
        &file.to_string_lossy(),
    ]);
    eprintln!("{events}");
}

/// The notifications sent so far, a file each.
fn told(bed: &Bed) -> Vec<serde_json::Value> {
    std::fs::read_dir(bed.root.join("told"))
        .map(|d| {
            d.flatten()
                .filter_map(|f| serde_json::from_slice(&std::fs::read(f.path()).ok()?).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_account_should_take_its_turn_and_the_queue_wait_for_the_first_reset() {
    let bed = bed::new(&["shared", "work", "p/.agent-queue/inbox"]);
    let accounts = ["a", "b", "c", "d"];
    // d's status line says 97 % of its 5-hour window, which resets in 30 s: its limit,
    // reported without a reset time, lasts until then.
    let reset = jiff::Timestamp::now().as_second() + 30;
    std::fs::create_dir_all(bed.root.join("d")).unwrap();
    std::fs::write(
        bed.root.join("d/.sim-usage"),
        format!("97 20 {reset} {}", reset + 7 * 86_400),
    )
    .unwrap();
    let _c = start(&bed, &accounts, true);
    // a, b and c run out one after the other, a task each meeting the limit.
    for (i, pair) in accounts.windows(2).enumerate().take(3) {
        let (used, next) = (pair[0], pair[1]);
        std::fs::write(bed.root.join(used).join(".sim-limit"), "11:59pm (UTC)").unwrap();
        bed.drop_task("p", &format!("t{i}.md"), &format!("task {i}, under {used}"));
        wait_for(WAIT, &format!("the pool on {next}"), || {
            ["w-0", "w-1"]
                .iter()
                .all(|s| bed.account(s) == next)
                .then_some(())
        });
        let report = bed
            .events("quotaDetected")
            .into_iter()
            .find(|e| e["account"] == used)
            .unwrap_or_else(|| panic!("{used}'s limit: {}", bed.log("controller")));
        assert_eq!(report["source"], "report");
        let swap = bed
            .events("swap")
            .into_iter()
            .find(|e| e["from"] == used)
            .unwrap_or_else(|| panic!("the swap from {used}"));
        assert_eq!(swap["to"], next);
        let delay = at(&swap["time"]).duration_since(at(&report["reportedAt"]));
        eprintln!("{used} -> {next}: {delay:#}");
        assert!(delay.as_secs_f64() < 2.0, "{used} -> {next} took {delay:#}");
        assert!(
            bed.events("allExhausted").is_empty(),
            "while {next} was available: {}",
            bed.log("controller")
        );
        let refused = bed.events("refused");
        assert!(
            !refused.iter().any(|e| e["object"] == "accounts"),
            "no refusal while {next} was available: {refused:?}"
        );
    }
    wait_for(WAIT, "the first three tasks done", || {
        (bed.files("p", "done").len() == 3).then_some(())
    });
    let (code, accounts_now) = bed.run(&[
        "get",
        "accounts",
        "-f",
        &bed.root.join("pool.yaml").to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{accounts_now}");
    eprintln!("{accounts_now}");
    // d runs out too: every account is used up.
    std::fs::write(bed.root.join("d/.sim-limit"), "").unwrap();
    bed.drop_task("p", "t3.md", "task 3, the last one d takes");
    let all = wait_for(WAIT, "every account exhausted", || {
        bed.events("allExhausted").into_iter().next()
    });
    assert!(
        jiff::Timestamp::now().as_second() < reset - 3,
        "the chain took too long to see the wait: raise the reset"
    );
    assert_eq!(at(&all["firstReset"]).as_second(), reset, "{all}");
    let refused = bed.events("refused");
    let refusal = refused
        .iter()
        .find(|e| e["object"] == "accounts")
        .unwrap_or_else(|| panic!("{refused:?}"));
    let reason = refusal["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("every account is exhausted; the first resets at ")
            && reason.contains("a until ")
            && reason.contains("d until "),
        "{reason}"
    );
    std::fs::remove_file(bed.root.join("d/.sim-limit")).unwrap();
    // Tasks dropped now wait in the inbox: none is claimed, none fails.
    for i in 4..6 {
        bed.drop_task(
            "p",
            &format!("t{i}.md"),
            &format!("task {i}, dropped while all wait"),
        );
    }
    let file = bed.root.join("pool.yaml");
    let file = file.to_string_lossy();
    let (_, inboxes) = bed.run(&["get", "inboxes", "-f", &file]);
    eprintln!("{inboxes}");
    assert!(inboxes.contains("waiting for a reset: until "), "{inboxes}");
    let (_, table) = bed.run(&["get", "accounts", "-f", &file]);
    eprintln!("{table}");
    let out = bed
        .command(&["get", "accounts", "-o", "json", "-f", &file])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "d")
        .unwrap();
    assert_eq!(d["state"], "exhausted", "{d}");
    let left: u64 = d["resetsIn"]
        .as_str()
        .and_then(|c| c.strip_suffix('s')?.parse().ok())
        .unwrap_or_else(|| panic!("a countdown in seconds: {d}"));
    assert!((1..=30).contains(&left), "a countdown to d's reset: {d}");
    assert!(bed.files("p", "failed").is_empty());
    assert_eq!(bed.files("p", "inbox").len(), 2, "the new tasks wait");
    // d resets: the pool resumes by itself, every task ends once.
    wait_for(
        Duration::from_secs(60),
        "every task done and journaled",
        || (bed.files("p", "done").len() == 6 && bed.events("taskDone").len() >= 6).then_some(()),
    );
    assert!(bed.files("p", "failed").is_empty());
    let done = bed.events("taskDone");
    for i in 0..6 {
        let name = format!("t{i}.md");
        assert_eq!(
            done.iter()
                .filter(|e| e["action"]["task"]["name"] == name.as_str())
                .count(),
            1,
            "{name} done once"
        );
    }
    let resumed = bed.events("resumed");
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert!(at(&resumed[0]["time"]).as_second() >= reset);
    // Notifications run in the background: wait for the last to land, then count.
    let told = failover::testbed::wait_for_or_none(WAIT, || {
        let told = told(&bed);
        told.iter().any(|e| e["event"] == "resumed").then_some(told)
    })
    .unwrap_or_else(|| panic!("no resumed notification: {:?}", told(&bed)));
    let count = |kind: &str| told.iter().filter(|e| e["event"] == kind).count();
    assert_eq!(
        (count("allExhausted"), count("resumed")),
        (1, 1),
        "{told:?}"
    );
}

#[test]
fn a_move_between_homes_without_shared_conversations_should_start_afresh_and_send_the_task_again() {
    let bed = bed::new(&["work", "p/.agent-queue/inbox"]);
    let _c = start(&bed, &["a", "b"], false);
    let (code, out) = bed.run(&[
        "validate",
        "-f",
        &bed.root.join("pool.yaml").to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: ")
            && out.contains("pool.yaml:3:18: metadata.name: account a")
            && out.contains("shares no conversation folder (projects) with account b"),
        "{out}"
    );
    std::fs::write(bed.root.join("a/.sim-limit"), "11:59pm (UTC)").unwrap();
    bed.drop_task("p", "held.md", "the task a move cannot resume");
    wait_for(WAIT, "the task done and journaled", || {
        (bed.files("p", "done") == ["held.md"] && !bed.events("taskDone").is_empty()).then_some(())
    });
    let record = bed.record("p", "done", "held.md");
    assert_eq!(record["account"], "b", "{record}");
    assert_eq!(bed.events("taskDone").len(), 1);
    let journal = bed.journal();
    let fresh: Vec<_> = journal
        .iter()
        .filter(|e| e["action"]["action"] == "moveSession" && e["fresh"].is_string())
        .collect();
    assert!(!fresh.is_empty(), "{}", bed.log("controller"));
    assert_no_crash_loop(&bed);
    assert!(
        bed.events("sessionFailed").is_empty(),
        "{}",
        bed.log("controller")
    );
    show_events(&bed, "session/w-0");
}

#[test]
fn a_resume_that_finds_no_conversation_should_start_afresh_once_and_send_the_task_again() {
    let bed = bed::new(&["shared", "work", "p/.agent-queue/inbox"]);
    // The first turn's agent crashes mid-turn; the profile resumes a conversation that
    // does not exist (a resume flag gone wrong), so the restart that resumes fails.
    let control = bed.root.join("control");
    std::fs::write(&control, "crash\n").unwrap();
    let _c = start_with(&bed, &["a"], true, |p| {
        p.env
            .insert("FAILOVER_SIM_CONTROL".into(), control.display().to_string());
        p.resume_args = vec![
            "--resume".into(),
            "00000000-0000-4000-8000-000000000000".into(),
        ];
    });
    bed.drop_task("p", "crashes.md", "the task whose agent crashes");
    wait_for(WAIT, "the task done and journaled", || {
        (bed.files("p", "done") == ["crashes.md"] && !bed.events("taskDone").is_empty())
            .then_some(())
    });
    let failed = bed.events("resumeFailed");
    assert_eq!(failed.len(), 1, "{}", bed.log("controller"));
    assert_eq!(failed[0]["task"], "crashes.md", "{failed:?}");
    assert_eq!(bed.events("taskDone").len(), 1);
    assert!(
        bed.events("taskRequeued").is_empty(),
        "{}",
        bed.log("controller")
    );
    let record = bed.record("p", "done", "crashes.md");
    assert_eq!(record["attempt"], 1, "no try used: {record}");
    assert_no_crash_loop(&bed);
    show_events(&bed, "task/crashes.md");
}
