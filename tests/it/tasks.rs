//! Tasks end to end: a real controller process, a private tmux server, the stand-in
//! agent, real inbox folders and file events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use failover::api::{AgentProfileSpec, ControllerConfigSpec, InboxSpec, PoolSpec};
use failover::slug;
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::{Spawned, wait_for};

use crate::bed::{self, BIN, Bed};

/// Inboxes of the projects `a` and `b`, an account home and a working folder.
fn new_bed() -> Bed {
    bed::new(&[
        "home",
        "work",
        "a/.agent-queue/inbox",
        "b/.agent-queue/inbox",
        "desk",
    ])
}

/// A pool `w-` of `min..max` sessions fed by inboxes `a` (two tries a task) and `b`,
/// and a dedicated session `desk`.
fn manifests(bed: &Bed, min: u32, max: u32) -> Manifest {
    let r = &bed.root;
    Manifest::new()
        .account("main", r.join("home"))
        .agent("claude", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", "100ms")
        .controller("default")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("200ms");
            c.dispatch.submit_delay = duration("50ms");
        })
        .pool("auto", "w-", min..=max, r.join("work"))
        .dedicated("desk", r.join("work"))
        .inbox("a", bed.inbox("a"), "auto", r.join("work"))
        .with(|i: &mut InboxSpec| i.max_tries = 2)
        .inbox("b", bed.inbox("b"), "auto", r.join("work"))
}

/// [`manifests`] written to `pool.yaml`.
fn manifest(bed: &Bed, min: u32, max: u32) -> PathBuf {
    write(bed, &manifests(bed, min, max))
}

/// `m` written to `pool.yaml`.
fn write(bed: &Bed, m: &Manifest) -> PathBuf {
    bed.write("pool.yaml", &m.yaml())
}

/// The agents' profile with `name=value` in its environment instead of
/// `FAILOVER_SIM_TURN` (`FAILOVER_SIM_TURN` again: a turn of another length).
fn sim(name: &'static str, value: &'static str) -> impl FnOnce(&mut AgentProfileSpec) {
    move |p| {
        p.env.remove("FAILOVER_SIM_TURN");
        p.env.insert(name.into(), value.into());
    }
}

/// Starts a controller on `manifest`, logging at `info` into `<name>.log`.
fn start(bed: &Bed, manifest: &Path, name: &str) -> Spawned {
    bed.controller(manifest, name, Some("info"))
}

/// Every user message of every conversation under the account home.
fn user_messages(bed: &Bed) -> Vec<String> {
    transcripts(&bed.root.join("home/projects"))
        .into_iter()
        .flatten()
        .filter(|v| v["message"]["role"] == "user")
        .map(|v| {
            v["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn counts(messages: &[String]) -> BTreeMap<String, usize> {
    let mut map = BTreeMap::new();
    for m in messages {
        *map.entry(m.clone()).or_insert(0) += 1;
    }
    map
}

#[test]
fn fifty_tasks_over_two_inboxes_and_four_sessions_should_each_be_done_exactly_once() {
    let bed = new_bed();
    let manifest = manifest(&bed, 4, 4);
    let c = start(&bed, &manifest, "c");
    let mut texts = Vec::new();
    for i in 0..50 {
        let inbox = if i % 2 == 0 { "a" } else { "b" };
        let text = format!("task {i} from {inbox}: make it so");
        bed.drop_task(inbox, &format!("t{i:02}.md"), &text);
        texts.push(text);
    }
    let done = failover::testbed::wait_for_or_none(Duration::from_secs(90), || {
        (bed.files("a", "done").len() + bed.files("b", "done").len() == 50).then_some(())
    });
    assert!(
        done.is_some(),
        "not all done: inbox {:?} {:?} active {:?} {:?}\n{}",
        bed.files("a", "inbox"),
        bed.files("b", "inbox"),
        bed.files("a", "active"),
        bed.files("b", "active"),
        c.log()
    );
    assert!(bed.files("a", "inbox").is_empty() && bed.files("b", "inbox").is_empty());
    assert!(
        bed.files("a", "active").is_empty() && bed.files("b", "active").is_empty(),
        "{}",
        c.log()
    );
    let seen = counts(&user_messages(&bed));
    for text in &texts {
        assert_eq!(seen.get(text), Some(&1), "{text:?} must run exactly once");
    }
    assert_eq!(
        seen.values().sum::<usize>(),
        50,
        "nothing else reached an agent"
    );
    // The dedicated session never got one: its screen shows none, and every record
    // names a pool session.
    let screen = bed.t.capture_all("=desk:");
    assert!(!screen.contains("> task"), "{screen}");
    for inbox in ["a", "b"] {
        for entry in std::fs::read_dir(bed.queue(inbox, "done"))
            .unwrap()
            .flatten()
        {
            if entry.file_name().to_string_lossy().ends_with(".json") {
                let record: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
                let session = record["session"].as_str().unwrap_or_default();
                assert!(session.starts_with("w-"), "{record}");
            }
        }
    }
    let record = bed.record("a", "done", "t00.md");
    assert_eq!(record["inbox"], "a");
    assert_eq!(record["account"], "main");
    assert_eq!(record["attempt"], 1);
    assert!(record["session"].as_str().unwrap().starts_with("w-"));
    // Each ended on its own Stop report, with the reply, and never before the reply
    // was in its conversation.
    let replies = reply_times(&bed.root.join("home/projects"));
    for inbox in ["a", "b"] {
        for entry in std::fs::read_dir(bed.queue(inbox, "done"))
            .unwrap()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            let record: serde_json::Value =
                serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap();
            assert_eq!(record["outcome"], "Stop report", "{record}");
            assert_eq!(record["reply"], "Done. I made the change and checked it.");
            let i: usize = name[1..3].parse().unwrap();
            let replied = replies[&texts[i]];
            let finished: jiff::Timestamp = record["finished"].as_str().unwrap().parse().unwrap();
            assert!(
                finished >= replied,
                "{name} done at {finished}, replied at {replied}"
            );
        }
    }
}

/// The lines of every transcript under `projects`, a transcript each.
fn transcripts(projects: &Path) -> Vec<Vec<serde_json::Value>> {
    let files = std::fs::read_dir(projects)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|dir| {
            std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
        });
    files
        .map(|file| {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            // The conversation's messages: its `user` and `assistant` lines (Claude Code
            // also records the requests it sent, which the stand-in draws too).
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|v| v["type"] == "user" || v["type"] == "assistant")
                .collect()
        })
        .collect()
}

/// When each prompt got its reply, from every transcript under `projects`: the time of
/// the assistant message after it.
fn reply_times(projects: &Path) -> BTreeMap<String, jiff::Timestamp> {
    let mut out = BTreeMap::new();
    for lines in transcripts(projects) {
        let mut prompt: Option<String> = None;
        for v in lines {
            let at: jiff::Timestamp = v["timestamp"].as_str().unwrap().parse().unwrap();
            match v["message"]["role"].as_str() {
                Some("user") => prompt = v["message"]["content"].as_str().map(str::to_owned),
                Some("assistant") => {
                    if let Some(p) = prompt.take() {
                        out.insert(p, at);
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[test]
fn a_three_line_payload_should_reach_the_transcript_byte_exact() {
    let bed = new_bed();
    let c = start(&bed, &manifest(&bed, 1, 1), "c");
    let payload = "line one $(rm -rf /) and `id`\nline 'two' \"quoted\" \\ back\\slash \\e[31m red\nline three\t\u{1b}[0m ü ❯ end";
    bed.drop_task("a", "-odd name ü.md", payload);
    wait_for(Duration::from_secs(20), "the task done", || {
        (bed.files("a", "done") == ["-odd name ü.md"]).then_some(())
    });
    assert_eq!(user_messages(&bed), vec![payload.to_owned()], "{}", c.log());
}

#[test]
fn bad_tasks_should_go_to_failed_with_the_reason() {
    let bed = new_bed();
    let _c = start(&bed, &manifest(&bed, 1, 1), "c");
    bed.drop_task("a", "empty.md", "  \n");
    std::fs::write(bed.inbox("a").join("binary.md"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    std::fs::write(bed.inbox("a").join("huge.md"), vec![b'x'; (1 << 20) + 1]).unwrap();
    let outside = bed.root.join("secret.txt");
    std::fs::write(&outside, "secret outside the inbox").unwrap();
    std::os::unix::fs::symlink(&outside, bed.inbox("a").join("link.md")).unwrap();
    wait_for(Duration::from_secs(20), "four failed tasks", || {
        (bed.files("a", "failed").len() == 4).then_some(())
    });
    let reason = |name: &str| -> String {
        bed.record("a", "failed", name)["outcome"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(reason("empty.md"), "the task is empty");
    assert_eq!(reason("binary.md"), "the task is not UTF-8 text");
    assert!(reason("huge.md").contains("more than the 1 MiB limit"));
    assert!(reason("link.md").contains("links are not followed"));
    assert!(
        std::fs::symlink_metadata(bed.queue("a", "failed").join("link.md"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "secret outside the inbox",
        "the link's target is neither moved nor changed"
    );
    assert!(
        user_messages(&bed).is_empty(),
        "nothing bad reached an agent"
    );
}

#[test]
fn a_session_killed_mid_task_should_have_its_task_resumed_in_its_conversation_and_done_once() {
    let bed = new_bed();
    // Turns of 3 s leave time to kill the session mid-task.
    let manifest = write(
        &bed,
        &manifests(&bed, 1, 1).edit("claude", sim("FAILOVER_SIM_TURN", "3s")),
    );
    let c = start(&bed, &manifest, "c");
    wait_for(Duration::from_secs(10), "the session", || {
        (bed.sessions("w-").len() == 1).then_some(())
    });
    bed.drop_task("a", "slow.md", "a slow task");
    wait_for(Duration::from_secs(10), "the task at work", || {
        bed.t
            .capture("=w-0:")
            .contains("esc to interrupt")
            .then_some(())
    });
    bed.t.tmux(&["kill-session", "-t", "=w-0"]);
    wait_for(Duration::from_secs(30), "the task done", || {
        (bed.files("a", "done") == ["slow.md"]).then_some(())
    });
    let record = bed.record("a", "done", "slow.md");
    assert_eq!(record["attempt"], 1, "not sent again: {}", c.log());
    assert_eq!(record["outcome"], "Stop report");
    // The task once, then our carry-on prompt in the same conversation.
    let messages = user_messages(&bed);
    assert_eq!(messages[0], "a slow task", "{messages:?}");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[1].starts_with("continue (now under account main,"),
        "{messages:?}"
    );
    let transcripts: Vec<_> = std::fs::read_dir(bed.root.join("home/projects"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .collect();
    assert_eq!(transcripts.len(), 1, "one conversation, resumed");
    assert!(
        c.log().contains("resuming conversation"),
        "the session came back on the task's conversation: {}",
        c.log()
    );
    let requeued = bed.events("taskRequeued");
    assert!(requeued.is_empty(), "{requeued:?}");
}

#[test]
fn a_task_whose_sessions_keep_dying_should_fail_after_its_tries() {
    let bed = new_bed();
    let manifest = write(
        &bed,
        &manifests(&bed, 1, 1).edit("claude", sim("FAILOVER_SIM_SCRIPT", "crash; crash; crash")),
    );
    let _c = start(&bed, &manifest, "c");
    bed.drop_task("a", "doomed.md", "this crashes the agent");
    wait_for(Duration::from_secs(30), "the task failed", || {
        (bed.files("a", "failed") == ["doomed.md"]).then_some(())
    });
    let record = bed.record("a", "failed", "doomed.md");
    assert!(
        record["outcome"].as_str().unwrap().contains("try 2 of 2"),
        "{record}"
    );
    // The earlier try's reason is there too.
    let tries = record["tries"].as_array().cloned().unwrap_or_default();
    assert_eq!(tries.len(), 1, "{record}");
    let first = tries[0].as_str().unwrap_or_default();
    assert!(
        first.starts_with("try 1: ") && first.contains("try 1 of 2"),
        "{record}"
    );
}

#[test]
fn the_pool_should_grow_while_tasks_wait_and_shrink_when_idle() {
    let bed = new_bed();
    let manifest = write(
        &bed,
        &manifests(&bed, 1, 3)
            .edit("auto", |p: &mut PoolSpec| {
                p.scale_down_after = duration("1s");
            })
            .edit("claude", sim("FAILOVER_SIM_TURN", "2s")),
    );
    let _c = start(&bed, &manifest, "c");
    wait_for(Duration::from_secs(10), "one session", || {
        (bed.sessions("w-").len() == 1).then_some(())
    });
    for i in 0..6 {
        bed.drop_task("b", &format!("t{i}.md"), &format!("task {i}"));
    }
    wait_for(Duration::from_secs(10), "three sessions", || {
        (bed.sessions("w-").len() == 3).then_some(())
    });
    wait_for(Duration::from_secs(60), "six done", || {
        (bed.files("b", "done").len() == 6).then_some(())
    });
    wait_for(Duration::from_secs(20), "back to one session", || {
        (bed.sessions("w-").len() == 1).then_some(())
    });
}

#[test]
fn sigkilling_the_controller_during_dispatch_should_lose_no_task_and_run_none_twice() {
    let bed = new_bed();
    let manifest = manifest(&bed, 3, 3);
    let mut texts = Vec::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut n = 0;
    let mut mid_dispatch = 0;
    for round in 0..20 {
        let claimed = bed.events("taskClaimed").len();
        let c = start(&bed, &manifest, &format!("c{round}"));
        for _ in 0..2 {
            let text = format!("task {n}: round {round}");
            bed.drop_task(
                if n % 2 == 0 { "a" } else { "b" },
                &format!("k{n:03}.md"),
                &text,
            );
            texts.push(text);
            n += 1;
        }
        // A random point of the dispatch (claim, paste, submit, record), counted from
        // this round's first claim.
        wait_for(Duration::from_secs(10), "a claim", || {
            (bed.events("taskClaimed").len() > claimed).then_some(())
        });
        std::thread::sleep(Duration::from_millis(next() % 150));
        c.kill();
        if !(bed.files("a", "active").is_empty() && bed.files("b", "active").is_empty()) {
            mid_dispatch += 1;
        }
    }
    assert!(
        mid_dispatch >= 5,
        "only {mid_dispatch} of 20 kills left a task claimed"
    );
    let c = start(&bed, &manifest, "final");
    wait_for(Duration::from_secs(120), "every task done", || {
        (bed.files("a", "done").len() + bed.files("b", "done").len() == texts.len()).then_some(())
    });
    for folder in ["inbox", "active", "failed"] {
        assert!(
            bed.files("a", folder).is_empty() && bed.files("b", folder).is_empty(),
            "{folder}: {}",
            c.log()
        );
    }
    let seen = counts(&user_messages(&bed));
    for text in &texts {
        assert_eq!(seen.get(text), Some(&1), "{text:?} must run exactly once");
    }
}

#[test]
fn an_agent_that_does_not_report_should_have_its_tasks_ended_by_the_transcript() {
    let bed = new_bed();
    let manifest = write(
        &bed,
        &manifests(&bed, 2, 2).edit("claude", |p: &mut AgentProfileSpec| p.reports = false),
    );
    let c = start(&bed, &manifest, "c");
    let texts: Vec<String> = (0..8).map(|i| format!("quiet task {i}")).collect();
    for (i, text) in texts.iter().enumerate() {
        bed.drop_task("a", &format!("q{i}.md"), text);
    }
    wait_for(Duration::from_secs(60), "every task done", || {
        (bed.files("a", "done").len() == texts.len()).then_some(())
    });
    assert!(
        !bed.root.join("home/settings.json").exists(),
        "no hooks for a profile that opts out"
    );
    for i in 0..texts.len() {
        let record = bed.record("a", "done", &format!("q{i}.md"));
        assert_eq!(record["outcome"], "transcript", "{record}\n{}", c.log());
        assert_eq!(record["reply"], "Done. I made the change and checked it.");
    }
    let seen = counts(&user_messages(&bed));
    for text in &texts {
        assert_eq!(seen.get(text), Some(&1), "{text:?} must run exactly once");
    }
}

#[test]
fn a_task_whose_screen_stops_changing_should_be_marked_stalled_and_kept() {
    let bed = new_bed();
    let manifest = write(
        &bed,
        &manifests(&bed, 1, 1)
            .edit("claude", sim("FAILOVER_SIM_SCRIPT", "hang"))
            .edit("default", |c: &mut ControllerConfigSpec| {
                c.completion.idle_timeout = duration("1s");
            }),
    );
    let c = start(&bed, &manifest, "c");
    bed.drop_task("a", "hangs.md", "this turn never ends");
    let stalled = failover::testbed::wait_for_or_none(Duration::from_secs(15), || {
        (!bed.events("taskStalled").is_empty()).then_some(())
    });
    assert!(
        stalled.is_some(),
        "no stall: {}\n{}",
        c.log(),
        bed.t.capture("=w-0:")
    );
    assert_eq!(
        bed.files("a", "active").len(),
        1,
        "a stalled task stays in active/: {}",
        c.log()
    );
    assert!(c.log().contains("stalled in session w-0"), "{}", c.log());
}

#[test]
fn a_task_should_run_in_its_inboxs_folder_in_a_fresh_agent() {
    let bed = new_bed();
    let project = bed.root.join("b");
    let manifest = write(
        &bed,
        &manifests(&bed, 1, 1).edit("b", |i: &mut InboxSpec| i.workdir = project.clone()),
    );
    let c = start(&bed, &manifest, "c");
    bed.drop_task("b", "here.md", "run me in project b");
    wait_for(Duration::from_secs(20), "the task done", || {
        (bed.files("b", "done") == ["here.md"]).then_some(())
    });
    // The conversation lives under the project's folder: the agent ran there.
    let dir = bed.root.join("home/projects").join(slug(&project));
    let transcripts: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert_eq!(transcripts.len(), 1, "{}: {}", dir.display(), c.log());
    assert!(
        c.log().contains("agent started in the task's folder first"),
        "{}",
        c.log()
    );
}
