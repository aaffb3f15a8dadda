//! Account failover end to end: a real controller, a private tmux server, the stand-in
//! agent marking an account's quota used up, and conversations carried across accounts.

use std::time::{Duration, Instant};

use failover::api::{AgentProfileSpec, ControllerConfigSpec, DedicatedSessionSpec};
use failover::slug;
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::{Spawned, wait_for};

use crate::bed::{self, BIN, Bed};

const WAIT: Duration = Duration::from_secs(15);

/// Accounts `a` and `b`, their shared state, and the project `p` whose inbox feeds the
/// pool.
fn new_bed() -> Bed {
    bed::new(&["a", "b", "shared", "work", "p/.agent-queue/inbox"])
}

/// Accounts `a` (preferred, with an environment of its own) and `b` sharing their state,
/// stand-in agents, a pool of two fed by inbox `p`, and the operator's session `desk`;
/// running once every session is up on `a`.
fn start(bed: &Bed) -> Spawned {
    start_with(bed, |m| m)
}

/// Like [`start`], with the manifests changed by `edit` first: the pool runs the profile
/// `claude`, the dedicated session `desk` its own profile `desk`, and the controller's
/// configuration is `c`.
fn start_with(bed: &Bed, edit: impl FnOnce(Manifest) -> Manifest) -> Spawned {
    let r = &bed.root;
    let m = Manifest::new()
        .account("a", r.join("a"))
        .env("A_ONLY", "from-a")
        .account("b", r.join("b"))
        .priority(1)
        .shared_state("s", r.join("shared"))
        .agent("claude", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", "200ms")
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("200ms");
            c.dispatch.submit_delay = duration("50ms");
        })
        .pool("auto", "w-", 2..=2, r.join("work"))
        .agent("desk", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", "200ms")
        .dedicated("desk", r.join("work"))
        .with(|d: &mut DedicatedSessionSpec| d.agent = "desk".into())
        .inbox("p", r.join("p/.agent-queue/inbox"), "auto", r.join("work"));
    let manifest = bed.write("pool.yaml", &edit(m).yaml());
    let running = bed.controller(&manifest, "controller", None);
    wait_for(WAIT, "three sessions on account a", || {
        (["w-0", "w-1", "desk"].iter().all(|s| bed.account(s) == "a")
            && ["w-0", "w-1", "desk"]
                .iter()
                .all(|s| bed.t.capture(&format!("={s}:")).contains('❯')))
        .then_some(())
    });
    running
}

/// The stand-in agent of a profile hangs on its first turn: busy until interrupted.
fn hang(p: &mut AgentProfileSpec) {
    p.env.insert("FAILOVER_SIM_SCRIPT".into(), "hang".into());
}

#[test]
fn a_used_up_quota_should_move_every_session_to_the_next_account_and_carry_on() {
    let bed = new_bed();
    let _c = start(&bed);
    // The operator's own conversation in the dedicated session.
    bed.t.type_text("=desk:", "remember the word kumquat");
    bed.t.keys("=desk:", &["Enter"]);
    bed.t
        .wait_screen("=desk:", WAIT, "the answer", |s| s.contains("Churned for"));
    let desk_conversation = bed.t.conversation(&bed.root.join("a"), "desk").unwrap();
    // Account a runs out: every turn under it now hits the usage limit.
    std::fs::write(bed.root.join("a/.sim-limit"), "11:59pm (UTC)").unwrap();
    bed.drop_task("p", "quota.md", "a task that meets the limit");
    // The limit shows on a pool session's screen (or has already been read off it).
    wait_for(WAIT, "the limit", || {
        let on_screen = ["w-0", "w-1"].iter().any(|s| {
            bed.t
                .capture(&format!("={s}:"))
                .contains("You've hit your 5-hour limit")
        });
        (on_screen || !bed.events("quotaDetected").is_empty()).then_some(())
    });
    let seen = Instant::now();
    wait_for(
        Duration::from_secs(2),
        "every session under account b",
        || {
            ["w-0", "w-1", "desk"]
                .iter()
                .all(|s| bed.account(s) == "b")
                .then_some(())
        },
    );
    eprintln!(
        "all sessions under b {:?} after the limit showed",
        seen.elapsed()
    );
    // Nothing of account a's environment follows the agents to b.
    for s in ["w-0", "w-1", "desk"] {
        let env = wait_for(WAIT, "the new agent", || {
            let pid = bed.t.pane_pid(&format!("={s}:"));
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let env = String::from_utf8_lossy(&env).into_owned();
            env.contains("CLAUDE_CONFIG_DIR=").then_some(env)
        });
        let vars: Vec<&str> = env.split('\0').collect();
        assert!(
            !vars.iter().any(|v| v.starts_with("A_ONLY=")),
            "{s}: {vars:?}"
        );
        let home = format!("CLAUDE_CONFIG_DIR={}", bed.root.join("b").display());
        assert!(vars.contains(&home.as_str()), "{s}: {vars:?}");
    }
    // The task carries on under b and finishes.
    wait_for(WAIT, "the task done", || {
        (bed.files("p", "done") == ["quota.md"]).then_some(())
    });
    // The dedicated session resumed the same conversation, and it goes on.
    wait_for(WAIT, "the resumed conversation", || {
        (bed.t.conversation(&bed.root.join("b"), "desk").as_deref()
            == Some(desk_conversation.as_str()))
        .then_some(())
    });
    let transcript = bed
        .root
        .join("shared/projects")
        .join(slug(&bed.root.join("work")))
        .join(format!("{desk_conversation}.jsonl"));
    let before = std::fs::read_to_string(&transcript)
        .unwrap()
        .lines()
        .count();
    bed.t
        .wait_screen("=desk:", WAIT, "the resumed prompt", |s| {
            s.contains("> remember the word kumquat")
        });
    bed.t.type_text("=desk:", "what was the word?");
    bed.t.keys("=desk:", &["Enter"]);
    wait_for(WAIT, "the same transcript to grow", || {
        (std::fs::read_to_string(&transcript)
            .unwrap()
            .lines()
            .count()
            >= before + 2)
            .then_some(())
    });
    let swaps = bed.events("swap");
    assert_eq!(swaps.len(), 1, "{swaps:?}");
    assert_eq!(
        (swaps[0]["from"].as_str(), swaps[0]["to"].as_str()),
        (Some("a"), Some("b"))
    );
    let detected = bed.events("quotaDetected");
    assert!(
        detected[0]["line"].as_str().unwrap().contains("limit"),
        "{detected:?}"
    );
    assert_eq!(detected[0]["account"], "a");
    assert!(
        detected[0]["resetsAt"]
            .as_str()
            .unwrap()
            .ends_with("T23:59:00Z"),
        "{detected:?}"
    );
    // A second limit, on b, within the cooldown: no second swap.
    std::fs::write(bed.root.join("b/.sim-limit"), "11:58pm (UTC)").unwrap();
    bed.drop_task("p", "second.md", "another task");
    wait_for(WAIT, "b's limit detected", || {
        (bed.events("quotaDetected").len() >= 2).then_some(())
    });
    assert_eq!(bed.events("swap").len(), 1, "{}", bed.log("controller"));
    assert!(["w-0", "w-1", "desk"].iter().all(|s| bed.account(s) == "b"));
}

#[test]
fn server_errors_and_transient_limits_should_never_swap() {
    let bed = new_bed();
    // One outcome per turn, shared by every agent of the pool (each task gets a fresh
    // agent, so a per-process script would play its first entry only).
    let control = bed.root.join("control");
    std::fs::write(&control, "error500-ratelimit\nratelimit\noverloaded\n").unwrap();
    let _c = start_with(&bed, |m| {
        m.edit("claude", |p: &mut AgentProfileSpec| {
            p.env
                .insert("FAILOVER_SIM_CONTROL".into(), control.display().to_string());
        })
    });
    for i in 0..3 {
        bed.drop_task("p", &format!("t{i}.md"), &format!("task {i}"));
    }
    wait_for(WAIT, "three tasks done", || {
        (bed.files("p", "done").len() == 3).then_some(())
    });
    // Each of the three errors reached an agent's screen (and its conversation).
    let said: String = std::fs::read_dir(bed.root.join("shared/projects"))
        .unwrap()
        .flatten()
        .flat_map(|dir| std::fs::read_dir(dir.path()).unwrap().flatten())
        .flat_map(|f| failover::messages(&f.path()).unwrap_or_default())
        .map(|m| m.text + "\n")
        .collect();
    for error in ["upstream rate limit", "not your usage limit", "529"] {
        assert!(said.contains(error), "{error} never shown:\n{said}");
    }
    assert!(bed.events("swap").is_empty(), "{}", bed.log("controller"));
    assert!(
        bed.events("quotaDetected").is_empty(),
        "{}",
        bed.log("controller")
    );
    assert!(["w-0", "w-1", "desk"].iter().all(|s| bed.account(s) == "a"));
}

#[test]
fn a_limit_read_off_a_screen_without_a_reset_time_should_swap_on_the_second_reading_only() {
    let bed = new_bed();
    // Agents that do not report: their screen is all there is.
    let _c = start_with(&bed, |m| {
        m.edit("c", |c: &mut ControllerConfigSpec| {
            c.quota.confirmations = 2
        })
        .edit("claude", |p: &mut AgentProfileSpec| p.reports = false)
        .edit("desk", |p: &mut AgentProfileSpec| p.reports = false)
    });
    std::fs::write(bed.root.join("a/.sim-limit"), "").unwrap();
    bed.drop_task("p", "q.md", "meets a limit with no reset time");
    wait_for(WAIT, "the swap", || {
        (!bed.events("swap").is_empty()).then_some(())
    });
    let journal = bed.journal();
    let first = journal
        .iter()
        .position(|e| e["event"] == "quotaDetected")
        .unwrap();
    let swap = journal.iter().position(|e| e["event"] == "swap").unwrap();
    assert_eq!(
        journal[first]["confirmed"], false,
        "the first reading only counts"
    );
    assert!(first < swap);
    assert!(
        journal[first..swap]
            .iter()
            .any(|e| e["event"] == "quotaDetected" && e["confirmed"] == true)
    );
}

#[test]
fn with_every_account_exhausted_sessions_should_wait_and_recover_when_one_resets() {
    let bed = new_bed();
    let events = bed.root.join("events.jsonl");
    let append = format!("cat >> {e} && echo >> {e}", e = events.display());
    let _c = start_with(&bed, |m| {
        m.edit("c", |c: &mut ControllerConfigSpec| {
            c.quota.cooldown = duration("0s");
            c.quota.confirmations = 1;
            c.quota.reset_fallback = duration("3s");
            c.notifications.command = vec!["sh".into(), "-c".into(), append];
        })
    });
    std::fs::write(bed.root.join("a/.sim-limit"), "").unwrap();
    std::fs::write(bed.root.join("b/.sim-limit"), "").unwrap();
    bed.drop_task("p", "both.md", "meets a limit everywhere");
    wait_for(WAIT, "every account exhausted", || {
        (!bed.events("allExhausted").is_empty()).then_some(())
    });
    let swaps_then = bed.events("swap").len();
    assert_eq!(
        swaps_then,
        1,
        "a -> b once, then no ping-pong: {}",
        bed.log("controller")
    );
    // Account a resets (3 s after its limit); its limit is gone by then.
    std::fs::remove_file(bed.root.join("a/.sim-limit")).unwrap();
    if failover::testbed::wait_for_or_none(WAIT, || {
        (!bed.events("recovered").is_empty() && bed.files("p", "done") == ["both.md"]).then_some(())
    })
    .is_none()
    {
        let screen = bed.t.capture("=w-0:");
        panic!(
            "a never recovered or the task never finished; w-0:\n{screen}\n{}",
            bed.log("controller")
        );
    }
    let swaps = bed.events("swap");
    assert_eq!(swaps.len(), 2, "{swaps:?}");
    assert_eq!(swaps[1]["to"], "a");
    // The task waited at its limit (it was not taken for done) and finished after the
    // recovery.
    let record = bed.record("p", "done", "both.md");
    let at = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let recovered = at(&bed.events("recovered")[0]["time"]);
    assert!(
        at(&record["finished"]) > recovered,
        "{record} finished before the recovery at {recovered}"
    );
    // Notifications run in the background: wait for the last one to land.
    wait_for(WAIT, "the three kinds notified", || {
        let told = std::fs::read_to_string(&events).ok()?;
        [
            "\"event\":\"swap\"",
            "\"event\":\"allExhausted\"",
            "\"event\":\"recovered\"",
        ]
        .iter()
        .all(|kind| told.contains(kind))
        .then_some(())
    });
}

#[test]
fn fail_back_should_move_idle_sessions_only() {
    let bed = new_bed();
    // The operator's session hangs on its first turn: busy until interrupted.
    let _c = start_with(&bed, |m| {
        m.edit("c", |c: &mut ControllerConfigSpec| {
            c.quota.cooldown = duration("0s");
            c.quota.confirmations = 1;
            c.quota.reset_fallback = duration("8s");
        })
        .edit("desk", hang)
    });
    std::fs::write(bed.root.join("a/.sim-limit"), "").unwrap();
    bed.drop_task("p", "q.md", "meets a limit without a reset time");
    wait_for(WAIT, "every session under b", || {
        ["w-0", "w-1", "desk"]
            .iter()
            .all(|s| bed.account(s) == "b")
            .then_some(())
    });
    std::fs::remove_file(bed.root.join("a/.sim-limit")).unwrap();
    // Under b, the operator starts a long turn before a resets.
    bed.t
        .wait_screen("=desk:", WAIT, "desk's prompt", |s| s.contains('❯'));
    bed.t.type_text("=desk:", "a long piece of work");
    bed.t.keys("=desk:", &["Enter"]);
    bed.t.wait_screen("=desk:", WAIT, "desk busy", |s| {
        s.contains("esc to interrupt")
    });
    assert!(
        bed.events("recovered").is_empty(),
        "a recovered before desk was busy; raise resetFallback: {}",
        bed.log("controller")
    );
    // a resets: the idle pool sessions fail back, the busy desk stays.
    wait_for(WAIT, "the idle sessions back on a", || {
        (bed.account("w-0") == "a" && bed.account("w-1") == "a").then_some(())
    });
    let swaps = bed.events("swap");
    assert_eq!(swaps.len(), 2, "{swaps:?}");
    assert_eq!(swaps[1]["reason"], "fail-back");
    assert_eq!(bed.account("desk"), "b");
    assert!(
        bed.t.capture("=desk:").contains("esc to interrupt"),
        "desk's turn was cut"
    );
    assert_eq!(bed.files("p", "done"), ["q.md"]);
    // Once its turn ends, desk follows.
    bed.t.keys("=desk:", &["Escape"]);
    wait_for(WAIT, "desk back on a", || {
        (bed.account("desk") == "a").then_some(())
    });
}

#[test]
fn a_limit_the_agent_reports_should_swap_at_once_without_any_screen_pattern() {
    let bed = new_bed();
    // No quota pattern reads the screens: the agent's StopFailure report is all there is.
    let _c = start_with(&bed, |m| {
        m.edit("claude", |p: &mut AgentProfileSpec| p.screen.quota.clear())
            .edit("desk", |p: &mut AgentProfileSpec| p.screen.quota.clear())
    });
    std::fs::write(bed.root.join("a/.sim-limit"), "").unwrap();
    bed.drop_task("p", "q.md", "meets the limit");
    wait_for(WAIT, "every session under b", || {
        ["w-0", "w-1", "desk"]
            .iter()
            .all(|s| bed.account(s) == "b")
            .then_some(())
    });
    let detected = bed.events("quotaDetected");
    assert_eq!(
        detected.len(),
        1,
        "one report, no confirming poll: {detected:?}"
    );
    assert_eq!(detected[0]["source"], "report");
    assert_eq!(detected[0]["confirmed"], true);
    let at = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let swap = &bed.events("swap")[0];
    let delay = at(&swap["time"]).duration_since(at(&detected[0]["reportedAt"]));
    assert!(delay.as_secs_f64() < 1.0, "swap {delay:?} after the report");
    wait_for(WAIT, "the task done under b", || {
        (bed.files("p", "done") == ["q.md"]).then_some(())
    });
}

#[test]
fn an_account_over_move_at_should_move_its_sessions_at_safe_points_and_take_no_task() {
    let bed = new_bed();
    // The operator's session hangs on its first turn: busy until interrupted.
    let _c = start_with(&bed, |m| {
        m.edit("c", |c: &mut ControllerConfigSpec| {
            c.quota.move_at = Some(95)
        })
        .edit("desk", hang)
    });
    bed.t.type_text("=desk:", "a long piece of work");
    bed.t.keys("=desk:", &["Enter"]);
    bed.t.wait_screen("=desk:", WAIT, "desk busy", |s| {
        s.contains("esc to interrupt")
    });
    // Account a's status line says 96 % from the next response on.
    std::fs::write(bed.root.join("a/.sim-usage"), "96 20").unwrap();
    bed.drop_task("p", "first.md", "the task that reads 96 %");
    wait_for(WAIT, "the idle pool sessions under b", || {
        (bed.account("w-0") == "b" && bed.account("w-1") == "b").then_some(())
    });
    let swap = &bed.events("swap")[0];
    assert_eq!(swap["reason"], "usage 96% reached moveAt 95%", "{swap}");
    let crossed = bed.events("usageCrossed");
    assert!(
        crossed
            .iter()
            .any(|e| e["account"] == "a" && e["level"] == 95.0),
        "{crossed:?}"
    );
    // desk's turn is not cut: it stays on a until it ends.
    assert_eq!(bed.account("desk"), "a");
    assert!(bed.t.capture("=desk:").contains("esc to interrupt"));
    // From now on a refuses every turn: nothing more reaches it.
    std::fs::write(bed.root.join("a/.sim-limit"), "11:59pm (UTC)").unwrap();
    for i in 0..4 {
        bed.drop_task(
            "p",
            &format!("t{i}.md"),
            &format!("task {i} after the move"),
        );
    }
    wait_for(Duration::from_secs(30), "five tasks done", || {
        (bed.files("p", "done").len() == 5).then_some(())
    });
    assert!(
        bed.events("quotaDetected").is_empty(),
        "{}",
        bed.log("controller")
    );
    for i in 0..4 {
        let record = bed.record("p", "done", &format!("t{i}.md"));
        assert_eq!(record["account"], "b", "{record}");
    }
    bed.t.keys("=desk:", &["Escape"]);
    wait_for(WAIT, "desk on b once its turn ended", || {
        (bed.account("desk") == "b").then_some(())
    });
    assert_eq!(bed.events("swap").len(), 1, "{}", bed.log("controller"));
}
