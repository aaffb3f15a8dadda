//! `failover controller` as an operator runs it: a real process, a private tmux server,
//! real files and real file events.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use failover::testbed::manifest::Manifest;
use failover::testbed::{Spawned, TmuxServer, wait_for};

use crate::bed::{BIN, Bed};

/// A bed whose manifest `m/pool.yaml` runs a pool of three sessions.
fn new_bed() -> Bed {
    new_bed_on(TmuxServer::start())
}

/// Like [`new_bed`], on the server `t`.
fn new_bed_on(t: TmuxServer) -> Bed {
    let bed = Bed::on(t, BIN.as_ref(), &["home", "work", "m", "inbox"]);
    write_pool(&bed, 3, 3, "1s");
    bed
}

/// The manifest the controller runs.
fn manifest(bed: &Bed) -> PathBuf {
    bed.root.join("m/pool.yaml")
}

/// A pool of `min..max` sessions fed by an inbox, polled every `poll`. Written by hand,
/// not with `Manifest`: [`a_bad_edit_should_be_reported_with_its_place_and_change_nothing`]
/// names the line and column of the pool's `min`.
fn pool_text(bed: &Bed, min: u32, max: u32, poll: &str) -> String {
    let root = bed.root.display();
    format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: {root}/home}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{BIN}, sim-agent]}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: tasks}}\nspec: {{path: {root}/inbox, pool: auto, workdir: {root}/work}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: default}}\nspec: {{pollInterval: {poll}, resyncPeriod: 60s}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec:\n  prefix: w-\n  min: {min}\n  max: {max}\n  workdir: {root}/work\n"
    )
}

/// Saves the manifest as editors do: a temp file renamed over the old one.
fn save(bed: &Bed, text: &str) {
    bed.save(manifest(bed), text);
}

fn write_pool(bed: &Bed, min: u32, max: u32, poll: &str) {
    save(bed, &pool_text(bed, min, max, poll));
}

/// Starts a controller on the manifest, logging at `FAILOVER_TEST_LOG` (`debug` unless
/// set) into `<name>.log`.
fn start(bed: &Bed, name: &str) -> Spawned {
    let log = std::env::var("FAILOVER_TEST_LOG").unwrap_or_else(|_| "debug".into());
    bed.controller(&manifest(bed), name, Some(&log))
}

/// Our sessions (not the control session) with their pane pids, once `n` of them
/// run an agent.
fn wait_sessions(bed: &Bed, n: usize, timeout: Duration) -> BTreeMap<String, u32> {
    bed.wait_live_pids("w-", n, timeout)
}

/// The pool's sessions whose agent runs, with their pane pids.
fn pids(bed: &Bed) -> BTreeMap<String, u32> {
    bed.live_pids("w-")
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_killed_session_should_be_back_within_two_seconds() {
    let bed = new_bed();
    let _c = start(&bed, "c");
    let before = wait_sessions(&bed, 3, Duration::from_secs(10));
    bed.t.tmux(&["kill-session", "-t", "=w-1"]);
    let killed = Instant::now();
    let after = wait_for(Duration::from_secs(2), "w-1 to come back", || {
        let pids = pids(&bed);
        (pids.get("w-1").is_some_and(|p| *p != before["w-1"])).then_some(pids)
    });
    eprintln!("w-1 back after {:?}", killed.elapsed());
    assert_eq!(after["w-0"], before["w-0"]);
    assert_eq!(after["w-2"], before["w-2"]);
}

#[test]
fn an_agent_that_exits_should_be_restarted_within_two_seconds() {
    let bed = new_bed();
    let _c = start(&bed, "c");
    let before = wait_sessions(&bed, 3, Duration::from_secs(10));
    bed.t
        .wait_screen("=w-0:", Duration::from_secs(10), "the prompt", |s| {
            s.contains('❯')
        });
    bed.t.type_text("=w-0:", "/exit");
    bed.t.keys("=w-0:", &["Enter"]);
    // Counted from the command that makes it exit, so a little stricter than "2 s from
    // the event".
    wait_for(Duration::from_secs(2), "the agent restarted", || {
        pids(&bed)
            .get("w-0")
            .is_some_and(|p| *p != before["w-0"])
            .then_some(())
    });
}

#[test]
fn editing_the_manifest_should_take_effect_without_a_restart() {
    let bed = new_bed();
    let c = start(&bed, "c");
    let before = wait_sessions(&bed, 3, Duration::from_secs(10));
    write_pool(&bed, 5, 5, "1s");
    let edited = Instant::now();
    let after = wait_sessions(&bed, 5, Duration::from_secs(1));
    eprintln!("5 sessions after {:?}", edited.elapsed());
    for (name, pid) in &before {
        assert_eq!(after[name], *pid, "{name} must be kept");
    }
    assert!(c.log().contains("new manifests"), "{}", c.log());
}

#[test]
fn a_bad_edit_should_be_reported_with_its_place_and_change_nothing() {
    let bed = new_bed();
    let c = start(&bed, "c");
    let before = wait_sessions(&bed, 3, Duration::from_secs(10));
    let bad = pool_text(&bed, 3, 3, "1s").replace("  min: 3\n", "  min: three\n");
    save(&bed, &bad);
    let manifest = manifest(&bed).display().to_string();
    wait_for(Duration::from_secs(5), "the error in the log", || {
        c.log()
            .contains(&format!(
                "{manifest}:26:8: spec.min: \"three\" is not of type \"integer\""
            ))
            .then_some(())
    });
    let status: serde_json::Value =
        wait_for(Duration::from_secs(5), "the error in status.json", || {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(bed.state().join("status.json")).ok()?)
                    .ok()?;
            v["error"]
                .as_str()?
                .contains("invalid manifests")
                .then_some(v)
        });
    assert!(!status["converged"].as_bool().unwrap());
    // The last good manifests keep running: a killed session still comes back.
    bed.t.tmux(&["kill-session", "-t", "=w-2"]);
    let after = wait_for(Duration::from_secs(3), "w-2 back", || {
        let pids = pids(&bed);
        (pids.len() == 3 && pids["w-2"] != before["w-2"]).then_some(pids)
    });
    assert_eq!(after["w-0"], before["w-0"]);
    // Fixing the file takes effect.
    write_pool(&bed, 4, 4, "1s");
    wait_sessions(&bed, 4, Duration::from_secs(3));
}

#[test]
fn a_second_controller_should_be_refused_naming_the_first() {
    let bed = new_bed();
    let c = start(&bed, "c");
    wait_sessions(&bed, 3, Duration::from_secs(10));
    let (code, out) = bed.run(&["controller", "-f", &manifest(&bed).to_string_lossy()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("another controller (pid {}) is running", c.pid())),
        "{out}"
    );
}

#[test]
fn sigterm_should_exit_zero_leave_sessions_running_and_a_restart_should_adopt_them() {
    let bed = new_bed();
    let mut c = start(&bed, "c");
    let before = wait_sessions(&bed, 3, Duration::from_secs(10));
    c.signal("TERM");
    assert_eq!(c.exit_code(Duration::from_secs(5)), Some(0), "{}", c.log());
    assert_eq!(pids(&bed), before, "sessions keep running");
    let (code, out) = bed.run(&["get", "sessions"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("controller: not running"), "{out}");
    assert!(out.contains("w-1"), "{out}");

    let c2 = start(&bed, "c2");
    wait_for(Duration::from_secs(10), "the restart", || {
        c2.log().contains("controller started").then_some(())
    });
    wait_for(Duration::from_secs(10), "a reconcile", || {
        (count(&c2.log(), "reconcile=") >= 2).then_some(())
    });
    assert_eq!(pids(&bed), before, "same panes, no duplicates");
    assert!(c2.log().contains("adopted=3"), "{}", c2.log());
    let stopped = bed.events("stopped");
    assert!(!stopped.is_empty(), "{}", c2.log());
}

#[test]
fn sigint_should_stop_it_too() {
    let bed = new_bed();
    let mut c = start(&bed, "c");
    wait_sessions(&bed, 3, Duration::from_secs(10));
    c.signal("INT");
    assert_eq!(c.exit_code(Duration::from_secs(5)), Some(0));
}

#[test]
fn a_killed_tmux_server_should_be_rebuilt() {
    let bed = new_bed();
    let _c = start(&bed, "c");
    wait_sessions(&bed, 3, Duration::from_secs(10));
    bed.t.tmux(&["kill-server"]);
    let killed = Instant::now();
    wait_sessions(&bed, 3, Duration::from_secs(5));
    eprintln!("rebuilt after {:?}", killed.elapsed());
}

#[test]
fn a_burst_of_file_events_should_give_a_handful_of_reconciles() {
    let bed = new_bed();
    write_pool(&bed, 1, 1, "30s");
    let c = start(&bed, "c");
    wait_sessions(&bed, 1, Duration::from_secs(10));
    wait_for(Duration::from_secs(10), "a settled controller", || {
        let status = std::fs::read(bed.state().join("status.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&status).ok()?;
        v["converged"].as_bool().filter(|c| *c)
    });
    let before = count(&c.log(), "reconcile=");
    let inbox = bed.root.join("inbox");
    for i in 0..1000 {
        std::fs::write(inbox.join(format!("note-{i}.txt")), "x").unwrap();
    }
    // One more event, after the burst, that the controller must see: a killed session.
    bed.t.tmux(&["kill-session", "-t", "=w-0"]);
    wait_sessions(&bed, 1, Duration::from_secs(5));
    let reconciles = count(&c.log(), "reconcile=") - before;
    eprintln!("1,000 file events and a kill gave {reconciles} reconciles");
    assert!((1..=10).contains(&reconciles), "{reconciles} reconciles");
}

#[test]
fn apply_should_hand_the_manifests_to_a_running_controller_and_wait() {
    let bed = new_bed();
    let c = start(&bed, "c");
    wait_sessions(&bed, 3, Duration::from_secs(10));
    let other = bed.root.join("other.yaml");
    std::fs::write(&other, pool_text(&bed, 4, 4, "1s")).unwrap();
    let (code, out) = bed.run(&[
        "apply",
        "-f",
        &other.to_string_lossy(),
        "--wait",
        "--timeout",
        "10s",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("A controller (pid {}) runs", c.pid())),
        "{out}"
    );
    assert!(out.contains("Converged."), "{out}");
    assert_eq!(
        pids(&bed).len(),
        4,
        "converged means the sessions are there"
    );
    let (code, out) = bed.run(&["get", "sessions"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("controller: running (pid {}), converged", c.pid())),
        "{out}"
    );
}

#[test]
fn a_broken_shared_state_should_stop_the_controller_from_starting() {
    let bed = new_bed();
    let shared = bed.root.join("shared");
    std::fs::write(bed.root.join("home/projects"), "in the way").unwrap();
    let shared_state = Manifest::new().shared_state("s", &shared).yaml();
    let text = format!("{}---\n{shared_state}", pool_text(&bed, 1, 1, "1s"));
    save(&bed, &text);
    let (code, out) = bed.run(&["controller", "-f", &manifest(&bed).to_string_lossy()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("the shared state is broken"), "{out}");
    assert!(
        out.contains(&format!(
            "{}: account main: a file is in the way",
            bed.root.join("home/projects").display()
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(bed.root.join("home/projects")).unwrap(),
        "in the way"
    );
    assert!(pids(&bed).is_empty(), "nothing was started");
}

#[test]
fn removed_agent_settings_should_be_written_again_by_the_controller() {
    let bed = new_bed();
    let _c = start(&bed, "c");
    let settings = bed.root.join("home/settings.json");
    let written = || {
        let text = std::fs::read_to_string(&settings).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        (v["hooks"]["Stop"][0]["hooks"][0]["command"] == format!("{BIN} hook || true"))
            .then_some(())
    };
    wait_for(
        Duration::from_secs(5),
        "the hooks in settings.json",
        written,
    );
    std::fs::remove_file(&settings).unwrap();
    wait_for(
        Duration::from_secs(2),
        "settings.json written again",
        written,
    );
}

#[test]
fn a_tmux_server_that_cannot_be_reached_should_be_retried_until_it_can() {
    let bed = new_bed_on(TmuxServer::start_in("later"));
    let mut c = start(&bed, "c");
    let tries = wait_for(Duration::from_secs(10), "two tries", || {
        let e = bed.events("tmuxUnreachable");
        (e.len() >= 2).then_some(e)
    });
    assert!(
        !tries[0]["error"].as_str().unwrap_or_default().is_empty(),
        "{tries:?}"
    );
    assert!(c.child.try_wait().unwrap().is_none(), "{}", c.log());
    let log = c.log();
    assert!(log.contains("trying again in"), "{log}");
    assert!(log.contains("kill-server"), "{log}");
    // The socket's folder appears: the controller comes up and builds the pool.
    std::fs::create_dir_all(bed.t.socket().parent().unwrap()).unwrap();
    wait_sessions(&bed, 3, Duration::from_secs(30));
    assert_eq!(bed.events("started").len(), 1);
}

#[test]
fn sigterm_while_tmux_cannot_be_reached_should_stop_it_cleanly() {
    let bed = new_bed_on(TmuxServer::start_in("later"));
    let mut c = start(&bed, "c");
    wait_for(Duration::from_secs(10), "a try", || {
        (!bed.events("tmuxUnreachable").is_empty()).then_some(())
    });
    c.signal("TERM");
    assert_eq!(c.exit_code(Duration::from_secs(5)), Some(0), "{}", c.log());
}
