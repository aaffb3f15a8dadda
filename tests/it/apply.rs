//! `failover apply` and `failover diff` against a real, private tmux server and real
//! folders, as an operator runs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use failover::api::{PoolSpec, SharedStateSpec};
use failover::testbed::manifest::{Manifest, duration};

use crate::bed::{self, BIN, Bed};

const EXAMPLE: &str = include_str!("../../manifests/pool.yaml");

/// The example manifests moved under the bed's folder, running the stand-in agent.
fn example(bed: &Bed) -> PathBuf {
    let root = bed.root.to_string_lossy();
    for dir in [
        ".claude-main",
        ".claude-alt",
        "srv/conformvault",
        "srv/scanyze",
        "srv/filesecure",
        "srv/SecuScan",
    ] {
        std::fs::create_dir_all(bed.root.join(dir)).unwrap();
    }
    let text = format!(
        "{}---\n{}",
        EXAMPLE.replace("/home/op", &root),
        sim_profile(Manifest::new()).yaml()
    );
    bed.write("pool.yaml", &text)
}

/// `m` and the profile `claude` running the stand-in agent.
fn sim_profile(m: Manifest) -> Manifest {
    m.agent("claude", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", "200ms")
}

/// A small manifest of one account, a pool and a dedicated session.
fn small(bed: &Bed, min: u32, max: u32) -> PathBuf {
    let root = &bed.root;
    std::fs::create_dir_all(root.join("home")).unwrap();
    std::fs::create_dir_all(root.join("work")).unwrap();
    let m = Manifest::new()
        .account("solo", root.join("home"))
        .pool("p", "w-", min..=max, root.join("work"))
        .with(|p: &mut PoolSpec| p.scale_down_after = duration("0s"))
        .dedicated("desk", root.join("work"));
    bed.write("small.yaml", &sim_profile(m).yaml())
}

fn apply(bed: &Bed, file: &Path) -> (i32, String) {
    bed.run(&["apply", "-f", &file.to_string_lossy()])
}

fn diff(bed: &Bed, file: &Path) -> (i32, String) {
    bed.run(&["diff", "-f", &file.to_string_lossy()])
}

#[test]
fn apply_should_create_the_example_pool_and_leave_a_persons_sessions_alone() {
    let bed = bed::new(&[]);
    let file = example(&bed);
    let (code, out) = diff(&bed, &file);
    assert_eq!(code, 1, "{out}");
    assert!(bed.t.sessions().is_empty(), "diff must not start a server");

    // A person's sessions, one inside the pool's name prefix, are there first.
    let work = bed.root.join("srv");
    bed.t.new_session("ccl-0", &work, &[], &["sleep", "1000"]);
    bed.t
        .new_session("ccl-auto-9", &work, &[], &["sleep", "1000"]);
    let persons = bed.pids();
    let (code, out) = diff(&bed, &file);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        bed.t.sessions(),
        ["ccl-0", "ccl-auto-9"],
        "diff must not create anything"
    );

    let (code, out) = apply(&bed, &file);
    assert_eq!(code, 0, "{out}");
    let mut expected: Vec<String> = (11..=20).map(|i| format!("ccl-auto-{i}")).collect();
    expected.extend([
        "ccl-1-conformvault".into(),
        "ccl-2-scanyze".into(),
        "ccl-0".into(),
        "ccl-auto-9".into(),
    ]);
    expected.sort();
    assert_eq!(bed.pids().keys().cloned().collect::<Vec<_>>(), expected);
    for (name, pid) in &persons {
        assert_eq!(bed.pids()[name], *pid, "{name} must keep its pane");
        assert_eq!(bed.owner(name), "", "{name} must not be marked");
    }
    expected.retain(|n| !persons.contains_key(n));
    for name in &expected {
        assert_eq!(bed.owner(name), "failover", "{name}");
    }
    let account = bed.t.session_option("ccl-auto-11", "@failover-account");
    assert_eq!(account, "main");
    let screen = bed.t.wait_screen(
        "=ccl-auto-11:",
        std::time::Duration::from_secs(10),
        "the agent",
        |s| s.contains("Claude Code v"),
    );
    assert!(
        screen.contains(&format!("{}/srv", bed.root.display())),
        "{screen}"
    );

    let before = bed.pids();
    let (code, out) = apply(&bed, &file);
    assert_eq!((code, out.trim()), (0, "No changes."));
    let (code, out) = diff(&bed, &file);
    assert_eq!((code, out.trim()), (0, "No changes."));
    assert_eq!(bed.pids(), before, "a second apply must change nothing");
}

#[test]
fn a_persons_session_inside_the_pool_range_should_be_skipped_not_touched() {
    let bed = bed::new(&[]);
    let file = small(&bed, 3, 5);
    bed.t.new_session("w-1", &bed.root, &[], &["sleep", "1000"]);
    let person = bed.t.pane_pid("=w-1:");
    let (code, out) = apply(&bed, &file);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        bed.pids().keys().collect::<Vec<_>>(),
        ["desk", "w-0", "w-1", "w-2", "w-3"]
    );
    assert_eq!(bed.t.pane_pid("=w-1:"), person);
    assert_eq!(bed.owner("w-1"), "");
    // Filling the whole range leaves the pool short: refused, said, exit 2.
    for name in ["w-0", "w-2", "w-3", "w-4"] {
        bed.t.try_tmux(&["kill-session", "-t", &format!("={name}")]);
        bed.t.new_session(name, &bed.root, &[], &["sleep", "1000"]);
    }
    let (code, out) = diff(&bed, &file);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("! pool p: can keep only 0 of 3 sessions: w-0, w-1, w-2, w-3, w-4 in its range are not ours"), "{out}");
}

#[test]
fn apply_should_recreate_a_killed_session_and_nothing_else() {
    let bed = bed::new(&[]);
    let file = small(&bed, 3, 5);
    assert_eq!(apply(&bed, &file).0, 0);
    let before = bed.pids();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        ["desk", "w-0", "w-1", "w-2"]
    );
    bed.t.tmux(&["kill-session", "-t", "=w-1"]);
    let (code, out) = diff(&bed, &file);
    assert_eq!(code, 1);
    assert!(out.contains("+ session w-1"), "{out}");
    assert!(
        out.contains("Plan: 1 to add, 0 to change, 0 to delete."),
        "{out}"
    );
    let (code, out) = apply(&bed, &file);
    assert_eq!(code, 0, "{out}");
    let after = bed.pids();
    assert_ne!(after["w-1"], before["w-1"]);
    for name in ["desk", "w-0", "w-2"] {
        assert_eq!(after[name], before[name], "{name} must keep its pane");
    }
}

#[test]
fn apply_should_restart_an_agent_that_exited() {
    let bed = bed::new(&[]);
    let file = small(&bed, 1, 1);
    assert_eq!(apply(&bed, &file).0, 0);
    bed.t.wait_screen(
        "=w-0:",
        std::time::Duration::from_secs(10),
        "the prompt",
        |s| s.contains('❯'),
    );
    bed.t.type_text("=w-0:", "/exit");
    bed.t.keys("=w-0:", &["Enter"]);
    failover::testbed::wait_for(
        std::time::Duration::from_secs(10),
        "the pane to die",
        || {
            let dead = bed
                .t
                .tmux(&["display-message", "-p", "-t", "=w-0:", "#{pane_dead}"]);
            (dead.trim() == "1").then_some(())
        },
    );
    let (code, out) = diff(&bed, &file);
    assert_eq!(code, 1);
    assert!(out.contains("~ session w-0: agent exited"), "{out}");
    let (code, out) = apply(&bed, &file);
    assert_eq!(code, 0, "{out}");
    let dead = bed
        .t
        .tmux(&["display-message", "-p", "-t", "=w-0:", "#{pane_dead}"]);
    assert_eq!(dead.trim(), "0");
}

#[test]
fn shrinking_a_pool_should_remove_only_owned_surplus_sessions() {
    let bed = bed::new(&[]);
    assert_eq!(apply(&bed, &small(&bed, 4, 6)).0, 0);
    let work = bed.root.join("work");
    bed.t.new_session("w-5", &work, &[], &["sleep", "1000"]);
    let person = bed.t.pane_pid("=w-5:");
    // Only idle sessions go: wait until every agent shows its prompt.
    for name in ["w-0", "w-1", "w-2", "w-3"] {
        bed.t.wait_screen(
            &format!("={name}:"),
            std::time::Duration::from_secs(10),
            "the prompt",
            |s| s.contains('❯'),
        );
    }
    let (code, out) = apply(&bed, &small(&bed, 2, 6));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("- session w-3: pool p is above its 2 sessions and this one is idle: done"),
        "{out}"
    );
    assert_eq!(
        bed.pids().keys().collect::<Vec<_>>(),
        ["desk", "w-0", "w-1", "w-5"]
    );
    assert_eq!(bed.t.pane_pid("=w-5:"), person);
    // Shrinking the range makes w-1 an orphan of ours; w-5 stays the person's.
    let (code, out) = apply(&bed, &small(&bed, 1, 1));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("- session w-1: no manifest wants it (orphan): done"),
        "{out}"
    );
    assert_eq!(
        bed.pids().keys().collect::<Vec<_>>(),
        ["desk", "w-0", "w-5"]
    );
}

#[test]
fn apply_should_create_missing_links_and_report_everything_in_the_way_untouched() {
    let bed = bed::new(&[]);
    let root = bed.root.clone();
    let (shared, a, b) = (root.join("shared"), root.join("a"), root.join("b"));
    for home in [&a, &b] {
        std::fs::create_dir_all(home).unwrap();
    }
    std::fs::create_dir_all(shared.join("projects")).unwrap();
    std::os::unix::fs::symlink(root.join("elsewhere"), a.join("projects")).unwrap();
    std::fs::write(a.join("file-history"), "keep me").unwrap();
    std::fs::create_dir_all(b.join("projects")).unwrap();
    std::fs::write(b.join("projects/transcript.jsonl"), "{}\n").unwrap();
    let m = Manifest::new()
        .account("a", &a)
        .account("b", &b)
        .priority(1)
        .shared_state("s", &shared)
        .with(|s: &mut SharedStateSpec| {
            s.links = vec!["projects".into(), "file-history".into()];
        });
    let file = bed.write("links.yaml", &m.yaml());
    let (code, out) = diff(&bed, &file);
    assert_eq!(code, 2, "{out}");
    let (code, out) = apply(&bed, &file);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!(
            "+ link {} -> {}: done",
            b.join("file-history").display(),
            shared.join("file-history").display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "! {}: account a: links to {}",
            a.join("projects").display(),
            root.join("elsewhere").display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "! {}: account a: a file is in the way",
            a.join("file-history").display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "! {}: account b: a real folder (1 entries) is in the way",
            b.join("projects").display()
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::read_link(a.join("projects")).unwrap(),
        root.join("elsewhere")
    );
    assert_eq!(
        std::fs::read_to_string(a.join("file-history")).unwrap(),
        "keep me"
    );
    assert_eq!(
        std::fs::read_to_string(b.join("projects/transcript.jsonl")).unwrap(),
        "{}\n"
    );
    assert_eq!(
        std::fs::read_link(b.join("file-history")).unwrap(),
        shared.join("file-history")
    );
    assert!(shared.join("file-history").is_dir());
}

#[test]
fn apply_then_diff_of_a_twenty_session_pool_should_report_no_changes() {
    let bed = bed::new(&[]);
    let file = small(&bed, 20, 20);
    let (code, out) = apply(&bed, &file);
    assert_eq!(code, 0, "{out}");
    assert_eq!(bed.pids().len(), 21);
    let (code, out) = diff(&bed, &file);
    assert_eq!((code, out.as_str()), (0, "No changes.\n"));
}

#[test]
fn diff_should_print_json_and_a_yaml_diff() {
    let bed = bed::new(&[]);
    let file = small(&bed, 1, 2);
    let (code, out) = bed.run(&["diff", "-f", &file.to_string_lossy(), "-o", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["add"], 2);
    let (_, out) = bed.run(&["diff", "-f", &file.to_string_lossy(), "--diff"]);
    assert!(out.contains("+session w-0:"), "{out}");
    let (code, _) = bed.run(&["apply", "--dry-run", "-f", &file.to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(bed.t.sessions().is_empty(), "dry run changed something");
}

#[test]
fn a_missing_tmux_should_give_one_clear_error() {
    let bed = bed::new(&[]);
    let file = small(&bed, 1, 1);
    let out = Command::new(BIN)
        .args(["diff", "-f", &file.to_string_lossy()])
        .env("PATH", bed.root.join("no-bin"))
        .envs(bed.t.env())
        .env("FAILOVER_STATE_DIR", bed.state())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "error: tmux is not installed (no `tmux` on PATH): failover needs tmux 3.2 or newer"
    );
}

#[test]
fn apply_should_merge_the_agent_hooks_into_each_home_and_keep_the_operators_settings() {
    let bed = bed::new(&[]);
    let file = small(&bed, 1, 1);
    let settings = bed.root.join("home/settings.json");
    // The operator's own settings, as Claude Code writes them, with their own status line.
    let theirs = "{\n  \"model\": \"opus\",\n  \"hooks\": {\n    \"Stop\": [\n      {\n        \"hooks\": [\n          {\n            \"type\": \"command\",\n            \"command\": \"notify-send done\"\n          }\n        ]\n      }\n    ]\n  },\n  \"statusLine\": {\n    \"type\": \"command\",\n    \"command\": \"~/bin/my-line\"\n  }\n}";
    std::fs::write(&settings, theirs).unwrap();
    let (code, out) = diff(&bed, &file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "~ agent settings {} (account solo): add hooks SessionStart, UserPromptSubmit, Stop, StopFailure; keep the operator's own status line (this account's use is not read)",
            settings.display()
        )),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        theirs,
        "diff changes nothing"
    );
    let (code, out) = apply(&bed, &file);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&settings).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["model"], "opus");
    assert_eq!(
        v["statusLine"]["command"], "~/bin/my-line",
        "their status line stays"
    );
    assert_eq!(
        v["hooks"]["Stop"][0]["hooks"][0]["command"],
        "notify-send done"
    );
    assert_eq!(
        v["hooks"]["Stop"][1]["hooks"][0]["command"],
        format!("{BIN} hook || true"),
        "ours beside theirs"
    );
    for event in ["SessionStart", "UserPromptSubmit", "StopFailure"] {
        assert_eq!(
            v["hooks"][event][0]["hooks"][0]["command"],
            format!("{BIN} hook || true")
        );
    }
    let journal = bed.journal();
    assert!(
        journal
            .iter()
            .any(|e| e["action"]["action"] == "configureAgent" && e["ok"] == true),
        "journaled"
    );
    let (code, out) = diff(&bed, &file);
    assert_eq!(
        (code, out.trim_end().ends_with("No changes.")),
        (0, true),
        "{out}"
    );

    // A file that is not JSON is refused by its path and left as it is.
    std::fs::write(&settings, "{\"model\": \"opus\",}").unwrap();
    let (code, out) = apply(&bed, &file);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&format!("! {}: account solo:", settings.display())),
        "{out}"
    );
    assert!(out.contains("line 1 column"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&settings).unwrap(),
        "{\"model\": \"opus\",}"
    );
}
