//! `failover controller` as an operator runs it: a real process, a private tmux server,
//! real files and real file events.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use failover::testbed::{Spawned, TmuxServer, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_failover");

struct Bed {
    t: TmuxServer,
    root: PathBuf,
    manifest: PathBuf,
}

impl Bed {
    fn new() -> Self {
        Self::on(TmuxServer::start())
    }

    fn on(t: TmuxServer) -> Self {
        let root = t.mkdir("op");
        for dir in ["home", "work", "m", "inbox"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let manifest = root.join("m/pool.yaml");
        let bed = Self { t, root, manifest };
        bed.write_pool(3, 3, "1s");
        bed
    }

    fn pool_text(&self, min: u32, max: u32, poll: &str) -> String {
        let root = self.root.display();
        format!(
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: {root}/home}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{BIN}, sim-agent]}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: tasks}}\nspec: {{path: {root}/inbox, pool: auto, workdir: {root}/work}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: default}}\nspec: {{pollInterval: {poll}, resyncPeriod: 60s}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec:\n  prefix: w-\n  min: {min}\n  max: {max}\n  workdir: {root}/work\n"
        )
    }

    /// Saves the manifest as editors do: a temp file renamed over the old one.
    fn save(&self, text: &str) {
        let tmp = self.manifest.with_extension("yaml.tmp~");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.manifest).unwrap();
    }

    fn write_pool(&self, min: u32, max: u32, poll: &str) {
        self.save(&self.pool_text(min, max, poll));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .envs(self.t.env())
            .env("FAILOVER_STATE_DIR", self.state())
            .env("NO_COLOR", "1");
        cmd
    }

    fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    fn start(&self, name: &str) -> Spawned {
        let mut cmd = self.command(&["controller", "-f", &self.manifest.to_string_lossy()]);
        cmd.env(
            "RUST_LOG",
            std::env::var("FAILOVER_TEST_LOG").unwrap_or_else(|_| "debug".into()),
        );
        Spawned::start(cmd, self.root.join(format!("{name}.log")))
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Our sessions (not the control session) with their pane pids, once `n` of them
    /// run an agent.
    fn wait_sessions(&self, n: usize, timeout: Duration) -> BTreeMap<String, u32> {
        wait_for(timeout, &format!("{n} sessions"), || {
            let pids = self.pids();
            (pids.len() == n).then_some(pids)
        })
    }

    fn pids(&self) -> BTreeMap<String, u32> {
        self.t
            .sessions()
            .into_iter()
            .filter(|s| s.starts_with("w-"))
            .filter_map(|s| {
                let out = self.t.try_tmux(&[
                    "display-message",
                    "-p",
                    "-t",
                    &format!("={s}:"),
                    "#{pane_pid} #{pane_dead}",
                ]);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let (pid, dead) = text.trim().split_once(' ')?;
                (dead == "0").then(|| (s, pid.parse().unwrap_or(0)))
            })
            .collect()
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_killed_session_should_be_back_within_two_seconds() {
    let bed = Bed::new();
    let _c = bed.start("c");
    let before = bed.wait_sessions(3, Duration::from_secs(10));
    bed.t.tmux(&["kill-session", "-t", "=w-1"]);
    let killed = Instant::now();
    let after = wait_for(Duration::from_secs(2), "w-1 to come back", || {
        let pids = bed.pids();
        (pids.get("w-1").is_some_and(|p| *p != before["w-1"])).then_some(pids)
    });
    eprintln!("w-1 back after {:?}", killed.elapsed());
    assert_eq!(after["w-0"], before["w-0"]);
    assert_eq!(after["w-2"], before["w-2"]);
}

#[test]
fn an_agent_that_exits_should_be_restarted_within_two_seconds() {
    let bed = Bed::new();
    let _c = bed.start("c");
    let before = bed.wait_sessions(3, Duration::from_secs(10));
    bed.t
        .wait_screen("=w-0:", Duration::from_secs(10), "the prompt", |s| {
            s.contains('❯')
        });
    bed.t.type_text("=w-0:", "/exit");
    bed.t.keys("=w-0:", &["Enter"]);
    // Counted from the command that makes it exit, so a little stricter than "2 s from
    // the event".
    wait_for(Duration::from_secs(2), "the agent restarted", || {
        bed.pids()
            .get("w-0")
            .is_some_and(|p| *p != before["w-0"])
            .then_some(())
    });
}

#[test]
fn editing_the_manifest_should_take_effect_without_a_restart() {
    let bed = Bed::new();
    let c = bed.start("c");
    let before = bed.wait_sessions(3, Duration::from_secs(10));
    bed.write_pool(5, 5, "1s");
    let edited = Instant::now();
    let after = bed.wait_sessions(5, Duration::from_secs(1));
    eprintln!("5 sessions after {:?}", edited.elapsed());
    for (name, pid) in &before {
        assert_eq!(after[name], *pid, "{name} must be kept");
    }
    assert!(c.log().contains("new manifests"), "{}", c.log());
}

#[test]
fn a_bad_edit_should_be_reported_with_its_place_and_change_nothing() {
    let bed = Bed::new();
    let c = bed.start("c");
    let before = bed.wait_sessions(3, Duration::from_secs(10));
    let bad = bed
        .pool_text(3, 3, "1s")
        .replace("  min: 3\n", "  min: three\n");
    bed.save(&bad);
    let manifest = bed.manifest.display().to_string();
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
        let pids = bed.pids();
        (pids.len() == 3 && pids["w-2"] != before["w-2"]).then_some(pids)
    });
    assert_eq!(after["w-0"], before["w-0"]);
    // Fixing the file takes effect.
    bed.write_pool(4, 4, "1s");
    bed.wait_sessions(4, Duration::from_secs(3));
}

#[test]
fn a_second_controller_should_be_refused_naming_the_first() {
    let bed = Bed::new();
    let c = bed.start("c");
    bed.wait_sessions(3, Duration::from_secs(10));
    let (code, out) = bed.run(&["controller", "-f", &bed.manifest.to_string_lossy()]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("another controller (pid {}) is running", c.pid())),
        "{out}"
    );
}

#[test]
fn sigterm_should_exit_zero_leave_sessions_running_and_a_restart_should_adopt_them() {
    let bed = Bed::new();
    let mut c = bed.start("c");
    let before = bed.wait_sessions(3, Duration::from_secs(10));
    c.signal("TERM");
    assert_eq!(c.exit_code(Duration::from_secs(5)), Some(0), "{}", c.log());
    assert_eq!(bed.pids(), before, "sessions keep running");
    let (code, out) = bed.run(&["get", "sessions"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("controller: not running"), "{out}");
    assert!(out.contains("w-1"), "{out}");

    let c2 = bed.start("c2");
    wait_for(Duration::from_secs(10), "the restart", || {
        c2.log().contains("controller started").then_some(())
    });
    wait_for(Duration::from_secs(10), "a reconcile", || {
        (count(&c2.log(), "reconcile=") >= 2).then_some(())
    });
    assert_eq!(bed.pids(), before, "same panes, no duplicates");
    assert!(c2.log().contains("adopted=3"), "{}", c2.log());
    let stopped = failover::testbed::journal_events(&bed.state(), "stopped");
    assert!(!stopped.is_empty(), "{}", c2.log());
}

#[test]
fn sigint_should_stop_it_too() {
    let bed = Bed::new();
    let mut c = bed.start("c");
    bed.wait_sessions(3, Duration::from_secs(10));
    c.signal("INT");
    assert_eq!(c.exit_code(Duration::from_secs(5)), Some(0));
}

#[test]
fn a_killed_tmux_server_should_be_rebuilt() {
    let bed = Bed::new();
    let _c = bed.start("c");
    bed.wait_sessions(3, Duration::from_secs(10));
    bed.t.tmux(&["kill-server"]);
    let killed = Instant::now();
    bed.wait_sessions(3, Duration::from_secs(5));
    eprintln!("rebuilt after {:?}", killed.elapsed());
}

#[test]
fn a_burst_of_file_events_should_give_a_handful_of_reconciles() {
    let bed = Bed::new();
    bed.write_pool(1, 1, "30s");
    let c = bed.start("c");
    bed.wait_sessions(1, Duration::from_secs(10));
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
    bed.wait_sessions(1, Duration::from_secs(5));
    let reconciles = count(&c.log(), "reconcile=") - before;
    eprintln!("1,000 file events and a kill gave {reconciles} reconciles");
    assert!((1..=10).contains(&reconciles), "{reconciles} reconciles");
}

#[test]
fn apply_should_hand_the_manifests_to_a_running_controller_and_wait() {
    let bed = Bed::new();
    let c = bed.start("c");
    bed.wait_sessions(3, Duration::from_secs(10));
    let other = bed.root.join("other.yaml");
    std::fs::write(&other, bed.pool_text(4, 4, "1s")).unwrap();
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
        bed.pids().len(),
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
    let bed = Bed::new();
    let shared = bed.root.join("shared");
    std::fs::write(bed.root.join("home/projects"), "in the way").unwrap();
    let text = bed.pool_text(1, 1, "1s")
        + &format!(
            "---\napiVersion: failover/v1alpha1\nkind: SharedState\nmetadata: {{name: s}}\nspec: {{target: {}}}\n",
            shared.display()
        );
    bed.save(&text);
    let (code, out) = bed.run(&["controller", "-f", &bed.manifest.to_string_lossy()]);
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
    assert!(bed.pids().is_empty(), "nothing was started");
}

#[test]
fn removed_agent_settings_should_be_written_again_by_the_controller() {
    let bed = Bed::new();
    let _c = bed.start("c");
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
    let bed = Bed::on(TmuxServer::start_in("later"));
    let mut c = bed.start("c");
    let state = bed.state();
    let tries = wait_for(Duration::from_secs(10), "two tries", || {
        let e = failover::testbed::journal_events(&state, "tmuxUnreachable");
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
    bed.wait_sessions(3, Duration::from_secs(30));
    assert_eq!(
        failover::testbed::journal_events(&state, "started").len(),
        1
    );
}

#[test]
fn sigterm_while_tmux_cannot_be_reached_should_stop_it_cleanly() {
    let bed = Bed::on(TmuxServer::start_in("later"));
    let mut c = bed.start("c");
    wait_for(Duration::from_secs(10), "a try", || {
        (!failover::testbed::journal_events(&bed.state(), "tmuxUnreachable").is_empty())
            .then_some(())
    });
    c.signal("TERM");
    assert_eq!(c.exit_code(Duration::from_secs(5)), Some(0), "{}", c.log());
}
