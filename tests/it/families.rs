//! A pool over two families through failover, on the stand-ins (issue 25, step 3): a
//! mixed pool (Claude a, b; Codex x, y) whose Claude accounts are both used up runs
//! Codex within 2 s and keeps draining its queue; the task cut by the limit is handed
//! to Codex once, its text after the inbox's note; the dedicated Claude session stays
//! Claude and says it waits; after a's reset the pool returns to Claude at idle points,
//! one restart each.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use failover::api::{ControllerConfigSpec, HAND_OFF_NOTE, PoolSpec};
use failover::testbed::Spawned;
use failover::testbed::manifest::{Manifest, duration};
use serde_json::Value;

use crate::bed::{self, Bed};
use crate::codex::{
    WAIT, claude_family, codex_family, command, controller, done_in_journal, prompts, wait,
    wait_journaled, wait_ready,
};

const POOL: [&str; 3] = ["mx-0", "mx-1", "mx-2"];
/// How long after its limit an account without a reset time is usable again: long
/// enough for the queue to drain under Codex first.
const RESET_AFTER: &str = "30s";

/// Claude a (preferred), b; Codex x (preferred), y; each family sharing its own
/// conversations; the pool `mix` of three over `[claude, codex]` fed by inbox `pm`,
/// and the dedicated Claude session `desk`.
fn mixed_manifest(bed: &Bed) -> Manifest {
    let r = &bed.root;
    codex_family(claude_family(Manifest::new(), bed), bed)
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("200ms");
            c.dispatch.submit_delay = duration("50ms");
            c.quota.cooldown = duration("0s");
            c.quota.confirmations = 1;
            c.quota.reset_fallback = duration(RESET_AFTER);
        })
        .pool("mix", "mx-", 3..=3, r.join("work"))
        .with(|p: &mut PoolSpec| p.agents = vec!["claude".into(), "codex".into()])
        .env("FAILOVER_SIM_TURN", "150ms")
        .inbox("pm", bed.inbox("pm"), "mix", r.join("work"))
        .dedicated("desk", r.join("work"))
}

/// A bed with [`mixed_manifest`] written, its controller started and the pool ready
/// under a.
fn started() -> (Bed, PathBuf, Spawned) {
    let bed = bed::new(&[
        "a",
        "b",
        "x",
        "y",
        "claude-shared",
        "codex-shared",
        "work",
        "pm/.agent-queue/inbox",
    ]);
    let manifest = bed.write("pool.yaml", &mixed_manifest(&bed).yaml());
    let c = controller(&bed, &manifest);
    wait_ready(&bed, &POOL, "a", "❯");
    (bed, manifest, c)
}

/// Both Claude accounts run out: task `cut.md` (text `cut`) meets a's limit, moves to
/// b with its conversation, and meets b's.
fn use_up_claude(bed: &Bed, cut: &str) {
    std::fs::write(bed.root.join("a/.sim-limit"), "").unwrap();
    std::fs::write(bed.root.join("b/.sim-limit"), "").unwrap();
    bed.drop_task("pm", "cut.md", cut);
}

/// Each pool session's account now.
fn accounts(bed: &Bed) -> BTreeMap<&'static str, String> {
    POOL.iter().map(|s| (*s, bed.account(s))).collect()
}

/// `failover args…` on the bed, Codex let through: its stdout (it must succeed).
fn stdout(bed: &Bed, args: &[&str]) -> String {
    let out = command(bed, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_mixed_pool_should_run_codex_when_every_claude_account_is_used_up_hand_off_the_cut_task_once_and_return_at_idle_points()
 {
    let (bed, manifest, c) = started();
    let r = bed.root.clone();
    let m = manifest.to_string_lossy().into_owned();
    wait_ready(&bed, &["desk"], "a", "❯");

    let cut = "The task cut by the limit: write cut.txt.";
    use_up_claude(&bed, cut);
    wait(&bed, &c, WAIT, "every Claude account exhausted", || {
        (!bed.events("allExhausted").is_empty()).then_some(())
    });
    let exhausted = Instant::now();
    wait(
        &bed,
        &c,
        Duration::from_secs(2),
        "every pool session under Codex x",
        || accounts(&bed).values().all(|a| a == "x").then_some(()),
    );
    eprintln!(
        "every pool session under x {:?} after both Claude accounts were used up",
        exhausted.elapsed()
    );
    // The kind column says so.
    let rows: Value =
        serde_json::from_str(&stdout(&bed, &["get", "sessions", "-o", "json", "-f", &m])).unwrap();
    let kinds: BTreeMap<String, String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        POOL.iter().all(|s| kinds[*s] == "codex") && kinds["desk"] == "claude-code",
        "{kinds:?}"
    );

    // The queue keeps draining under Codex.
    let started = Instant::now();
    let names: Vec<String> = (0..20)
        .map(|i| {
            let name = format!("t{i}.md");
            bed.drop_task("pm", &name, &format!("Task t{i}: do the thing."));
            name
        })
        .collect();
    wait(&bed, &c, Duration::from_secs(60), "21 tasks done", || {
        (bed.files("pm", "done").len() == 21).then_some(())
    });
    eprintln!("20 tasks done under Codex in {:?}", started.elapsed());
    let recovered = bed.events("recovered");
    assert!(
        recovered.is_empty(),
        "a reset before the queue drained; raise RESET_AFTER: {recovered:?}"
    );
    for name in &names {
        let account = bed.record("pm", "done", name)["account"].clone();
        assert!(account == "x" || account == "y", "{name}: {account}");
    }
    // The cut task: handed off once, run once under Codex with the note before its text.
    let handed = bed.events("handedOff");
    assert_eq!(handed.len(), 1, "{handed:?}");
    assert_eq!(
        (
            handed[0]["task"].as_str(),
            handed[0]["from"].as_str(),
            handed[0]["to"].as_str()
        ),
        (Some("pm/cut.md"), Some("claude-code"), Some("codex"))
    );
    let record = bed.record("pm", "done", "cut.md");
    assert!(
        record["account"] == "x" || record["account"] == "y",
        "{record}"
    );
    assert_eq!(
        record["handOffs"].as_array().map(Vec::len),
        Some(1),
        "{record}"
    );
    let sent = prompts(&r.join("codex-shared/sessions"));
    let with_cut: Vec<&String> = sent.iter().filter(|p| p.contains(cut)).collect();
    assert_eq!(with_cut.len(), 1, "{sent:?}");
    assert!(
        with_cut[0].starts_with(HAND_OFF_NOTE),
        "the note, then the task's text: {:?}",
        with_cut[0]
    );
    for i in 0..20 {
        let text = format!("Task t{i}: do the thing.");
        assert_eq!(sent.iter().filter(|s| **s == text).count(), 1, "{text}");
    }
    wait_journaled(&bed, &c, 21);
    let journal = done_in_journal(&bed);
    assert_eq!(journal.len(), 21, "{journal:?}");
    assert!(journal.values().all(|h| h.len() == 1), "{journal:?}");
    assert!(bed.files("pm", "failed").is_empty());
    let described = stdout(&bed, &["describe", "task", "cut.md", "-f", &m]);
    assert!(
        described.contains("handed off from claude-code to codex"),
        "{described}"
    );

    // The dedicated Claude session never ran Codex: it waits, and says so.
    assert!(["a", "b"].contains(&bed.account("desk").as_str()));
    let described = stdout(&bed, &["describe", "session", "desk", "-f", &m]);
    assert!(
        described.contains("waits for a claude-code account until"),
        "{described}"
    );
    let listed = stdout(&bed, &["get", "sessions", "-f", &m]);
    assert!(
        listed.contains("waits for a claude-code account until"),
        "{listed}"
    );

    // a resets (RESET_AFTER after its limit): the idle pool sessions return to Claude,
    // one restart each.
    std::fs::remove_file(r.join("a/.sim-limit")).unwrap();
    std::fs::remove_file(r.join("b/.sim-limit")).unwrap();
    wait(&bed, &c, Duration::from_secs(60), "a recovered", || {
        (!bed.events("recovered").is_empty()).then_some(())
    });
    let reset = Instant::now();
    wait(&bed, &c, WAIT, "the pool back under a", || {
        accounts(&bed).values().all(|a| a == "a").then_some(())
    });
    eprintln!(
        "the pool back under a {:?} after a's reset",
        reset.elapsed()
    );
    let back: Vec<String> = bed
        .events("familyChanged")
        .iter()
        .filter(|e| e["return"] == true)
        .map(|e| e["session"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut once = back.clone();
    once.sort();
    once.dedup();
    assert_eq!(once, POOL, "{back:?}");
    assert_eq!(back.len(), 3, "one return each: {back:?}");
    // A task after the return runs under Claude.
    bed.drop_task("pm", "after.md", "A task after the return.");
    wait(&bed, &c, WAIT, "the task after the return done", || {
        bed.files("pm", "done")
            .contains(&"after.md".to_owned())
            .then_some(())
    });
    assert_eq!(bed.record("pm", "done", "after.md")["account"], "a");
}

#[test]
fn a_hand_off_should_run_the_cut_task_once_across_controller_kills() {
    let (bed, manifest, mut c) = started();
    let r = bed.root.clone();
    let cut = "The task cut by the limit, across kills.";
    use_up_claude(&bed, cut);
    // SIGKILL the controller as soon as the hand-off is journaled, and again once the
    // cut task's session restarted under Codex; each time a new one takes over.
    let handed = |bed: &Bed| !bed.events("handedOff").is_empty();
    // The cut task's session runs under Codex (whichever controller restarted it).
    let restarted = |bed: &Bed| {
        let handed = bed.events("handedOff");
        handed
            .first()
            .and_then(|e| e["session"].as_str())
            .is_some_and(|session| bed.account(session) == "x")
    };
    for (what, seen) in [
        ("the hand-off", &handed as &dyn Fn(&Bed) -> bool),
        ("the restart under Codex", &restarted),
    ] {
        wait(&bed, &c, WAIT, what, || seen(&bed).then_some(()));
        c.kill();
        c = controller(&bed, &manifest);
    }
    wait(&bed, &c, WAIT, "the cut task done", || {
        bed.files("pm", "done")
            .contains(&"cut.md".to_owned())
            .then_some(())
    });
    wait_journaled(&bed, &c, 1);
    let journal = done_in_journal(&bed);
    assert_eq!(journal.get("cut.md").map(Vec::len), Some(1), "{journal:?}");
    let sent = prompts(&r.join("codex-shared/sessions"));
    let with_cut: Vec<&String> = sent.iter().filter(|p| p.contains(cut)).collect();
    assert_eq!(with_cut.len(), 1, "run once under Codex: {sent:?}");
    assert!(with_cut[0].starts_with(HAND_OFF_NOTE), "{:?}", with_cut[0]);
    let record = bed.record("pm", "done", "cut.md");
    assert_eq!(
        record["handOffs"].as_array().map(Vec::len),
        Some(1),
        "{record}"
    );
    assert!(bed.files("pm", "failed").is_empty() && bed.files("pm", "active").is_empty());
    // Saved before it was journaled: a controller killed once the line is there
    // never decides it again.
    assert_eq!(bed.events("handedOff").len(), 1);
}
