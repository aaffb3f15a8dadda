//! Tasks end to end: a real controller process, a private tmux server, the stand-in
//! agent, real inbox folders and file events.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use failover::testbed::{Spawned, TmuxServer, wait_for};

const BIN: &str = env!("CARGO_BIN_EXE_failover");

struct Bed {
    t: TmuxServer,
    root: PathBuf,
}

impl Bed {
    fn new() -> Self {
        let t = TmuxServer::start();
        let root = t.mkdir("op");
        for dir in [
            "home",
            "work",
            "a/.agent-queue/inbox",
            "b/.agent-queue/inbox",
            "desk",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        Self { t, root }
    }

    fn inbox(&self, name: &str) -> PathBuf {
        self.root.join(name).join(".agent-queue/inbox")
    }

    fn queue(&self, name: &str, folder: &str) -> PathBuf {
        self.root.join(name).join(".agent-queue").join(folder)
    }

    /// A pool `w-` of `min..max` sessions fed by inboxes `a` and `b`, and a dedicated
    /// session `desk`.
    fn manifest(&self, min: u32, max: u32, extra_pool: &str) -> PathBuf {
        let root = self.root.display();
        let text = format!(
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: {root}/home}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{BIN}, sim-agent], env: {{FAILOVER_SIM_TURN: 100ms}}}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: default}}\nspec: {{pollInterval: 200ms, dispatch: {{submitDelay: 50ms}}}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec: {{prefix: w-, min: {min}, max: {max}, workdir: {root}/work{extra_pool}}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: DedicatedSession\nmetadata: {{name: desk}}\nspec: {{workdir: {root}/work}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: a}}\nspec: {{path: {a}, pool: auto, workdir: {root}/work, maxTries: 2}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: b}}\nspec: {{path: {b}, pool: auto, workdir: {root}/work}}\n",
            a = self.inbox("a").display(),
            b = self.inbox("b").display(),
        );
        let path = self.root.join("pool.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Replaces `from` by `to` in the manifest; `from` must be there.
    fn edit(&self, manifest: &Path, from: &str, to: &str) {
        let text = std::fs::read_to_string(manifest).unwrap();
        assert!(text.contains(from), "{from:?} not in the manifest:\n{text}");
        std::fs::write(manifest, text.replace(from, to)).unwrap();
    }

    fn start(&self, manifest: &Path, name: &str) -> Spawned {
        let mut cmd = Command::new(BIN);
        cmd.args(["controller", "-f", &manifest.to_string_lossy()])
            .envs(self.t.env())
            .env("FAILOVER_STATE_DIR", self.root.join("state"))
            .env("RUST_LOG", "info");
        Spawned::start(cmd, self.root.join(format!("{name}.log")))
    }

    /// Drops a task the way people do: written beside, then renamed into the inbox.
    fn drop_task(&self, inbox: &str, name: &str, text: &str) {
        failover::testbed::drop_task(&self.inbox(inbox), name, text);
    }

    fn files(&self, inbox: &str, folder: &str) -> Vec<String> {
        failover::testbed::task_files(&self.queue(inbox, folder))
    }

    /// Every user message of every conversation under the account home.
    fn user_messages(&self) -> Vec<String> {
        transcripts(&self.root.join("home/projects"))
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

    fn sessions(&self) -> Vec<String> {
        self.t
            .sessions()
            .into_iter()
            .filter(|s| s.starts_with("w-"))
            .collect()
    }
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
    let bed = Bed::new();
    let manifest = bed.manifest(4, 4, "");
    let c = bed.start(&manifest, "c");
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
    let seen = counts(&bed.user_messages());
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
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bed.queue("a", "done").join("t00.md.json")).unwrap())
            .unwrap();
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
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
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
    let bed = Bed::new();
    let c = bed.start(&bed.manifest(1, 1, ""), "c");
    let payload = "line one $(rm -rf /) and `id`\nline 'two' \"quoted\" \\ back\\slash \\e[31m red\nline three\t\u{1b}[0m ü ❯ end";
    bed.drop_task("a", "-odd name ü.md", payload);
    wait_for(Duration::from_secs(20), "the task done", || {
        (bed.files("a", "done") == ["-odd name ü.md"]).then_some(())
    });
    assert_eq!(bed.user_messages(), vec![payload.to_owned()], "{}", c.log());
}

#[test]
fn bad_tasks_should_go_to_failed_with_the_reason() {
    let bed = Bed::new();
    let _c = bed.start(&bed.manifest(1, 1, ""), "c");
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
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(bed.queue("a", "failed").join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        v["outcome"].as_str().unwrap().to_owned()
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
        bed.user_messages().is_empty(),
        "nothing bad reached an agent"
    );
}

#[test]
fn a_session_killed_mid_task_should_have_its_task_resumed_in_its_conversation_and_done_once() {
    let bed = Bed::new();
    // Turns of 3 s leave time to kill the session mid-task.
    let manifest = bed.manifest(1, 1, "");
    bed.edit(
        &manifest,
        "FAILOVER_SIM_TURN: 100ms",
        "FAILOVER_SIM_TURN: 3s",
    );
    let c = bed.start(&manifest, "c");
    wait_for(Duration::from_secs(10), "the session", || {
        (bed.sessions().len() == 1).then_some(())
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
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bed.queue("a", "done").join("slow.md.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["attempt"], 1, "not sent again: {}", c.log());
    assert_eq!(record["outcome"], "Stop report");
    // The task once, then our carry-on prompt in the same conversation.
    let messages = bed.user_messages();
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
    let requeued = failover::testbed::journal_events(&bed.root.join("state"), "taskRequeued");
    assert!(requeued.is_empty(), "{requeued:?}");
}

#[test]
fn a_task_whose_sessions_keep_dying_should_fail_after_its_tries() {
    let bed = Bed::new();
    let manifest = bed.manifest(1, 1, "");
    bed.edit(
        &manifest,
        "FAILOVER_SIM_TURN: 100ms",
        "FAILOVER_SIM_SCRIPT: crash; crash; crash",
    );
    let _c = bed.start(&manifest, "c");
    bed.drop_task("a", "doomed.md", "this crashes the agent");
    wait_for(Duration::from_secs(30), "the task failed", || {
        (bed.files("a", "failed") == ["doomed.md"]).then_some(())
    });
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bed.queue("a", "failed").join("doomed.md.json")).unwrap(),
    )
    .unwrap();
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
    let bed = Bed::new();
    let manifest = bed.manifest(1, 3, ", scaleDownAfter: 1s");
    bed.edit(
        &manifest,
        "FAILOVER_SIM_TURN: 100ms",
        "FAILOVER_SIM_TURN: 2s",
    );
    let _c = bed.start(&manifest, "c");
    wait_for(Duration::from_secs(10), "one session", || {
        (bed.sessions().len() == 1).then_some(())
    });
    for i in 0..6 {
        bed.drop_task("b", &format!("t{i}.md"), &format!("task {i}"));
    }
    wait_for(Duration::from_secs(10), "three sessions", || {
        (bed.sessions().len() == 3).then_some(())
    });
    wait_for(Duration::from_secs(60), "six done", || {
        (bed.files("b", "done").len() == 6).then_some(())
    });
    wait_for(Duration::from_secs(20), "back to one session", || {
        (bed.sessions().len() == 1).then_some(())
    });
}

#[test]
fn sigkilling_the_controller_during_dispatch_should_lose_no_task_and_run_none_twice() {
    let bed = Bed::new();
    let manifest = bed.manifest(3, 3, "");
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
    let state = bed.root.join("state");
    for round in 0..20 {
        let claimed = failover::testbed::journal_events(&state, "taskClaimed").len();
        let c = bed.start(&manifest, &format!("c{round}"));
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
            (failover::testbed::journal_events(&state, "taskClaimed").len() > claimed).then_some(())
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
    let c = bed.start(&manifest, "final");
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
    let seen = counts(&bed.user_messages());
    for text in &texts {
        assert_eq!(seen.get(text), Some(&1), "{text:?} must run exactly once");
    }
}

#[test]
fn an_agent_that_does_not_report_should_have_its_tasks_ended_by_the_transcript() {
    let bed = Bed::new();
    let manifest = bed.manifest(2, 2, "");
    bed.edit(
        &manifest,
        "env: {FAILOVER_SIM_TURN: 100ms}",
        "env: {FAILOVER_SIM_TURN: 100ms}, reports: false",
    );
    let c = bed.start(&manifest, "c");
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
        let record: serde_json::Value = serde_json::from_slice(
            &std::fs::read(bed.queue("a", "done").join(format!("q{i}.md.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(record["outcome"], "transcript", "{record}\n{}", c.log());
        assert_eq!(record["reply"], "Done. I made the change and checked it.");
    }
    let seen = counts(&bed.user_messages());
    for text in &texts {
        assert_eq!(seen.get(text), Some(&1), "{text:?} must run exactly once");
    }
}

#[test]
fn a_task_whose_screen_stops_changing_should_be_marked_stalled_and_kept() {
    let bed = Bed::new();
    let manifest = bed.manifest(1, 1, "");
    bed.edit(
        &manifest,
        "FAILOVER_SIM_TURN: 100ms",
        "FAILOVER_SIM_SCRIPT: hang",
    );
    bed.edit(
        &manifest,
        "pollInterval: 200ms,",
        "pollInterval: 200ms, completion: {idleTimeout: 1s},",
    );
    let c = bed.start(&manifest, "c");
    bed.drop_task("a", "hangs.md", "this turn never ends");
    let state = bed.root.join("state");
    let stalled = failover::testbed::wait_for_or_none(Duration::from_secs(15), || {
        (!failover::testbed::journal_events(&state, "taskStalled").is_empty()).then_some(())
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
    let bed = Bed::new();
    let manifest = bed.manifest(1, 1, "");
    let project = bed.root.join("b");
    bed.edit(
        &manifest,
        &format!(
            "path: {}, pool: auto, workdir: {}/work}}",
            bed.inbox("b").display(),
            bed.root.display()
        ),
        &format!(
            "path: {}, pool: auto, workdir: {}}}",
            bed.inbox("b").display(),
            project.display()
        ),
    );
    let c = bed.start(&manifest, "c");
    bed.drop_task("b", "here.md", "run me in project b");
    wait_for(Duration::from_secs(20), "the task done", || {
        (bed.files("b", "done") == ["here.md"]).then_some(())
    });
    // The conversation lives under the project's folder: the agent ran there.
    let slug = project.to_string_lossy().replace('/', "-");
    let dir = bed.root.join("home/projects").join(slug);
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
