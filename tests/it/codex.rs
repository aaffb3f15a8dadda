//! Codex pools end to end through failover: a real controller on a private tmux server
//! running the Codex stand-in (`failover sim-agent --agent codex`: its screens, its
//! rollouts under a `sessions/` the family shares, its `notify` reports), tasks ended by
//! their reports, a usage limit moving the Codex sessions to the next Codex account
//! with their threads, and a Claude pool beside it that a Claude limit alone moves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use failover::api::{AgentKind, ControllerConfigSpec, SharedStateSpec};
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::{Spawned, wait_for};
use serde_json::Value;

use crate::bed::{self, BIN, Bed};

pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// `failover args…` on the bed.
pub(crate) fn command(bed: &Bed, args: &[&str]) -> Command {
    bed.command(args)
}

/// Starts `failover controller -f manifest`, logging at `info`.
pub(crate) fn controller(bed: &Bed, manifest: &Path) -> Spawned {
    let mut cmd = command(bed, &["controller", "-f", &manifest.to_string_lossy()]);
    cmd.env("RUST_LOG", "info");
    Spawned::start(cmd, bed.root.join("controller.log"))
}

/// `m` with the Codex accounts `x` (preferred) and `y` sharing their threads
/// (`sessions/`) and the stand-in's profile `codex`.
pub(crate) fn codex_family(m: Manifest, bed: &Bed) -> Manifest {
    let r = &bed.root;
    m.account("x", r.join("x"))
        .family(AgentKind::Codex)
        .account("y", r.join("y"))
        .family(AgentKind::Codex)
        .priority(1)
        .shared_state("threads", r.join("codex-shared"))
        .with(|s: &mut SharedStateSpec| {
            s.links = vec!["sessions".into()];
            s.accounts = Some(vec!["x".into(), "y".into()]);
        })
        .agent_of(
            AgentKind::Codex,
            "codex",
            &[BIN, "sim-agent", "--agent", "codex"],
        )
}

/// `m` with the Claude accounts `a` (preferred) and `b` sharing their conversations and
/// the stand-in's profile `claude`.
pub(crate) fn claude_family(m: Manifest, bed: &Bed) -> Manifest {
    let r = &bed.root;
    m.account("a", r.join("a"))
        .account("b", r.join("b"))
        .priority(1)
        .shared_state("claude", r.join("claude-shared"))
        .with(|s: &mut SharedStateSpec| s.accounts = Some(vec!["a".into(), "b".into()]))
        .agent("claude", &[BIN, "sim-agent"])
}

/// The Codex family of [`codex_family`], the controller, and the Codex pools: `fast`
/// (turns of 100 ms, inbox `pf`) and `slow` (600 ms, inbox `ps`), two sessions each.
fn codex_manifest(bed: &Bed) -> Manifest {
    let r = &bed.root;
    codex_family(Manifest::new(), bed)
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("200ms");
            c.dispatch.submit_delay = duration("50ms");
        })
        .pool("fast", "cf-", 2..=2, r.join("work"))
        .with(|p: &mut failover::api::PoolSpec| p.agent = "codex".into())
        .env("FAILOVER_SIM_TURN", "100ms")
        .pool("slow", "cs-", 2..=2, r.join("work"))
        .with(|p: &mut failover::api::PoolSpec| p.agent = "codex".into())
        .env("FAILOVER_SIM_TURN", "600ms")
        .inbox("pf", bed.inbox("pf"), "fast", r.join("work"))
        .inbox("ps", bed.inbox("ps"), "slow", r.join("work"))
}

const CODEX_SESSIONS: [&str; 4] = ["cf-0", "cf-1", "cs-0", "cs-1"];

/// A bed with the folders of [`codex_manifest`] (and of the Claude accounts of the
/// mixed test).
fn new_bed() -> Bed {
    bed::new(&[
        "x",
        "y",
        "a",
        "b",
        "codex-shared",
        "claude-shared",
        "work",
        "pf/.agent-queue/inbox",
        "ps/.agent-queue/inbox",
        "pc/.agent-queue/inbox",
    ])
}

/// Waits until every session of `sessions` runs under `account` with Codex's (or
/// Claude Code's) input line drawn.
pub(crate) fn wait_ready(bed: &Bed, sessions: &[&str], account: &str, prompt: &str) {
    wait_for(WAIT, &format!("{sessions:?} ready under {account}"), || {
        sessions
            .iter()
            .all(|s| bed.account(s) == account && bed.t.capture(&format!("={s}:")).contains(prompt))
            .then_some(())
    });
}

/// The `taskDone` entries of the journal, by task name: how each ended, and how often.
pub(crate) fn done_in_journal(bed: &Bed) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in bed.events("taskDone") {
        let name = e["action"]["task"]["name"].as_str().unwrap_or_default();
        let how = e["action"]["how"].as_str().unwrap_or_default();
        out.entry(name.to_owned()).or_default().push(how.to_owned());
    }
    out
}

/// Waits until the journal holds `n` `taskDone` entries: a task reaches `done/` a
/// moment before its line is written.
pub(crate) fn wait_journaled(bed: &Bed, c: &Spawned, n: usize) {
    wait(bed, c, WAIT, &format!("{n} taskDone lines"), || {
        (bed.events("taskDone").len() >= n).then_some(())
    });
}

/// Every rollout file under `dir` (any depth).
pub(crate) fn rollouts(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if e.file_name().to_string_lossy().starts_with("rollout-") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The prompts of the user's `item_completed` messages of every rollout under `dir`:
/// each task's text once per turn it ran.
pub(crate) fn prompts(dir: &Path) -> Vec<String> {
    rollouts(dir)
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|v| {
                    v["payload"]["type"] == "item_completed"
                        && v["payload"]["item"]["type"] == "UserMessage"
                })
                .map(|v| {
                    v["payload"]["item"]["content"][0]["text"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Drops `n` tasks named `<prefix><i>.md` into `project`'s inbox.
fn drop_tasks(bed: &Bed, project: &str, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = format!("{prefix}{i}.md");
            bed.drop_task(project, &name, &format!("Task {prefix}{i}: do the thing."));
            name
        })
        .collect()
}

/// What a failed wait shows: the queues, the journal's last lines, each session's
/// screen, the controller's log.
pub(crate) fn dump(bed: &Bed, c: &Spawned) -> String {
    let mut out = String::new();
    for p in ["pf", "ps", "pc", "pm"] {
        for f in ["inbox", "active", "done", "failed"] {
            out.push_str(&format!("{p}/{f}: {:?}\n", bed.files(p, f)));
        }
    }
    let journal = bed.journal();
    for line in journal.iter().rev().take(40).rev() {
        out.push_str(&format!("{line}\n"));
    }
    for s in bed.sessions("c") {
        out.push_str(&format!(
            "--- {s} ({})\n{}\n",
            bed.account(&s),
            bed.t.capture(&format!("={s}:"))
        ));
    }
    let log = c.log();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    out.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    out
}

/// Waits up to `timeout` for `check`, else panics with [`dump`].
pub(crate) fn wait<T>(
    bed: &Bed,
    c: &Spawned,
    timeout: Duration,
    what: &str,
    check: impl FnMut() -> Option<T>,
) -> T {
    failover::testbed::wait_for_or_none(timeout, check).unwrap_or_else(|| {
        panic!(
            "timed out after {timeout:?} waiting for {what}\n{}",
            dump(bed, c)
        )
    })
}

/// `get accounts -o json`, by account name.
fn accounts(bed: &Bed, manifest: &Path) -> BTreeMap<String, Value> {
    let out = command(
        bed,
        &[
            "get",
            "accounts",
            "-o",
            "json",
            "-f",
            &manifest.to_string_lossy(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

#[test]
fn a_codex_pool_should_end_each_task_on_its_report_and_move_to_the_next_codex_account_at_a_limit() {
    let bed = new_bed();
    std::fs::write(bed.root.join("x/.sim-usage"), "42 7").unwrap();
    std::fs::write(bed.root.join("y/.sim-usage"), "13 2").unwrap();
    let manifest = bed.write("pool.yaml", &codex_manifest(&bed).yaml());
    let c = controller(&bed, &manifest);
    wait_ready(&bed, &CODEX_SESSIONS, "x", "default · ");
    let started = Instant::now();
    let mut names = drop_tasks(&bed, "pf", "f", 10);
    names.extend(drop_tasks(&bed, "ps", "s", 10));
    wait(&bed, &c, Duration::from_secs(90), "20 tasks done", || {
        (bed.files("pf", "done").len() + bed.files("ps", "done").len() == 20).then_some(())
    });
    eprintln!("20 Codex tasks done in {:?}", started.elapsed());
    // Each done once, on its turn's own proof: the notify report, or the rollout's
    // `task_complete` when the controller reads that first (Codex writes it first).
    wait_journaled(&bed, &c, 20);
    let journal = done_in_journal(&bed);
    for name in &names {
        let how = journal.get(name).map(Vec::as_slice).unwrap_or_default();
        assert!(
            matches!(how, [h] if h == "notify report" || h == "transcript"),
            "{name}: {journal:?}\n{}",
            c.log()
        );
    }
    let by_report = journal.values().filter(|h| h[0] == "notify report").count();
    eprintln!("{by_report} of 20 ended by their notify report, the rest by the rollout");
    // Each task reached the agent once.
    let sent = prompts(&bed.root.join("codex-shared/sessions"));
    for i in 0..10 {
        for p in ["f", "s"] {
            let text = format!("Task {p}{i}: do the thing.");
            assert_eq!(
                sent.iter().filter(|s| **s == text).count(),
                1,
                "{text}: {sent:?}"
            );
        }
    }
    // The use the rollouts reported shows per account.
    let rows = accounts(&bed, &manifest);
    assert_eq!(rows["x"]["fiveHour"]["used"], 42.0, "{rows:?}");

    // x runs out: a task's turn meets the limit, every Codex session moves to y.
    let reset = jiff::Timestamp::now().as_second() + 3600;
    std::fs::write(bed.root.join("x/.sim-limit"), reset.to_string()).unwrap();
    bed.drop_task("ps", "limit.md", "The task that meets the limit.");
    wait(&bed, &c, WAIT, "the limit", || {
        (!bed.events("quotaDetected").is_empty()).then_some(())
    });
    let seen = Instant::now();
    wait(
        &bed,
        &c,
        Duration::from_secs(2),
        "every Codex session under y",
        || {
            CODEX_SESSIONS
                .iter()
                .all(|s| bed.account(s) == "y")
                .then_some(())
        },
    );
    eprintln!(
        "every Codex session under y {:?} after the limit",
        seen.elapsed()
    );
    wait(&bed, &c, WAIT, "the cut task done under y", || {
        bed.files("ps", "done")
            .contains(&"limit.md".to_owned())
            .then_some(())
    });
    let record = bed.record("ps", "done", "limit.md");
    assert_eq!(record["account"], "y", "{record}");
    // Its thread went on: one rollout holds its prompt, the limit, and the turn after.
    let with_limit: Vec<PathBuf> = rollouts(&bed.root.join("codex-shared/sessions"))
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(p).is_ok_and(|t| t.contains("The task that meets the limit."))
        })
        .collect();
    assert_eq!(with_limit.len(), 1, "{with_limit:?}");
    let text = std::fs::read_to_string(&with_limit[0]).unwrap();
    let limit_at = text
        .find("usage_limit_exceeded")
        .expect("the limit in the thread");
    assert!(
        text[limit_at..].contains("\"task_complete\""),
        "a turn completed after the limit in the same thread:\n{text}"
    );
    let swaps = bed.events("swap");
    assert_eq!(swaps.len(), 1, "{swaps:?}");
    assert_eq!(
        (swaps[0]["from"].as_str(), swaps[0]["to"].as_str()),
        (Some("x"), Some("y"))
    );
    // Nothing lost, nothing run twice.
    wait_journaled(&bed, &c, 21);
    let journal = done_in_journal(&bed);
    assert_eq!(journal.len(), 21, "{journal:?}");
    assert!(journal.values().all(|h| h.len() == 1), "{journal:?}");
    assert!(bed.files("pf", "failed").is_empty() && bed.files("ps", "failed").is_empty());
    let rows = accounts(&bed, &manifest);
    eprintln!("{rows:?}");
    assert_eq!(rows["y"]["fiveHour"]["used"], 13.0, "{rows:?}");
}

#[test]
fn a_claude_limit_should_move_only_the_claude_sessions_while_codex_keeps_working() {
    let bed = new_bed();
    let r = bed.root.clone();
    let m = claude_family(codex_manifest(&bed), &bed)
        .env("FAILOVER_SIM_TURN", "200ms")
        .pool("cc", "cc-", 2..=2, r.join("work"))
        .inbox("pc", bed.inbox("pc"), "cc", r.join("work"));
    let manifest = bed.write("pool.yaml", &m.yaml());
    let c = controller(&bed, &manifest);
    wait_ready(&bed, &CODEX_SESSIONS, "x", "default · ");
    wait_ready(&bed, &["cc-0", "cc-1"], "a", "❯");
    // Account a runs out: a Claude task meets the limit.
    std::fs::write(r.join("a/.sim-limit"), "11:59pm (UTC)").unwrap();
    bed.drop_task(
        "pc",
        "claude-limit.md",
        "A Claude task that meets the limit.",
    );
    wait(&bed, &c, WAIT, "a's limit", || {
        (!bed.events("quotaDetected").is_empty()).then_some(())
    });
    let seen = Instant::now();
    wait(
        &bed,
        &c,
        Duration::from_secs(2),
        "the Claude sessions under b",
        || {
            ["cc-0", "cc-1"]
                .iter()
                .all(|s| bed.account(s) == "b")
                .then_some(())
        },
    );
    eprintln!(
        "the Claude sessions under b {:?} after the limit",
        seen.elapsed()
    );
    // Codex's sessions stay on x and keep draining their queues meanwhile.
    let codex_accounts: BTreeMap<String, String> = CODEX_SESSIONS
        .iter()
        .map(|s| ((*s).to_owned(), bed.account(s)))
        .collect();
    assert!(
        codex_accounts.values().all(|a| a == "x"),
        "{codex_accounts:?}"
    );
    let mut names = drop_tasks(&bed, "pf", "f", 4);
    names.extend(drop_tasks(&bed, "ps", "s", 4));
    wait(
        &bed,
        &c,
        WAIT,
        "the Codex tasks and the cut Claude task done",
        || {
            (bed.files("pf", "done").len() == 4
                && bed.files("ps", "done").len() == 4
                && bed.files("pc", "done") == ["claude-limit.md"])
            .then_some(())
        },
    );
    for name in &names {
        let pool = if name.starts_with('f') { "pf" } else { "ps" };
        assert_eq!(bed.record(pool, "done", name)["account"], "x", "{name}");
    }
    assert_eq!(bed.record("pc", "done", "claude-limit.md")["account"], "b");
    // One swap, in the Claude family; Codex's sessions never moved.
    let swaps = bed.events("swap");
    assert_eq!(swaps.len(), 1, "{swaps:?}");
    assert_eq!(
        (swaps[0]["from"].as_str(), swaps[0]["to"].as_str()),
        (Some("a"), Some("b"))
    );
    assert!(CODEX_SESSIONS.iter().all(|s| bed.account(s) == "x"));
    let moved: Vec<String> = bed
        .journal()
        .iter()
        .filter(|e| e["action"]["action"] == "moveSession")
        .map(|e| {
            e["action"]["session"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(moved.iter().all(|s| s.starts_with("cc-")), "{moved:?}");
    wait_journaled(&bed, &c, 9);
    let journal = done_in_journal(&bed);
    assert!(journal.values().all(|h| h.len() == 1), "{journal:?}");
    assert_eq!(journal.len(), 9, "{journal:?}");
    // `get accounts` groups the accounts by family, each with its active account.
    let out = command(
        &bed,
        &["get", "accounts", "-f", &manifest.to_string_lossy()],
    )
    .output()
    .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(1)
        .take(4)
        .map(|l| l.split_whitespace().take(4).collect())
        .collect();
    assert_eq!(
        rows,
        [
            ["a", "claude-code", "0", "exhausted"],
            ["b", "claude-code", "1", "active"],
            ["x", "codex", "0", "active"],
            ["y", "codex", "1", "available"],
        ],
        "{table}"
    );
}

#[test]
fn a_dedicated_codex_session_should_move_to_the_next_account_resuming_its_thread() {
    // Codex reports no thread when it starts and a person's session has no task: its
    // thread is found from its folder's rollouts, and a limit moves it with it.
    let bed = new_bed();
    let r = bed.root.clone();
    std::fs::create_dir_all(r.join("desk")).unwrap();
    let m = codex_family(Manifest::new(), &bed)
        .env("FAILOVER_SIM_TURN", "100ms")
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| c.poll_interval = duration("200ms"))
        .dedicated("desk", r.join("desk"))
        .with(|d: &mut failover::api::DedicatedSessionSpec| d.agent = "codex".into());
    let manifest = bed.write("desk.yaml", &m.yaml());
    let c = controller(&bed, &manifest);
    wait_ready(&bed, &["desk"], "x", "default · ");
    // The person works: a first prompt answered, its thread in a rollout.
    bed.t.type_text("=desk:", "remember the word kumquat");
    bed.t.keys("=desk:", &["Enter"]);
    let rollout = wait(&bed, &c, WAIT, "desk's rollout", || {
        rollouts(&r.join("codex-shared/sessions"))
            .into_iter()
            .next()
    });
    wait(&bed, &c, WAIT, "the answer", || {
        std::fs::read_to_string(&rollout)
            .is_ok_and(|t| t.contains("\"task_complete\""))
            .then_some(())
    });
    let thread = failover_thread(&rollout);
    // x runs out at the person's next prompt: desk moves to y, resuming the thread.
    let reset = jiff::Timestamp::now().as_second() + 3600;
    std::fs::write(r.join("x/.sim-limit"), reset.to_string()).unwrap();
    bed.t.type_text("=desk:", "and now the next step");
    bed.t.keys("=desk:", &["Enter"]);
    wait(&bed, &c, WAIT, "the limit", || {
        (!bed.events("quotaDetected").is_empty()).then_some(())
    });
    let seen = Instant::now();
    wait(&bed, &c, Duration::from_secs(2), "desk under y", || {
        (bed.account("desk") == "y").then_some(())
    });
    eprintln!("desk under y {:?} after the limit", seen.elapsed());
    // The move is journaled once carried out, a moment after tmux holds the account.
    let moved: Vec<Value> = wait(&bed, &c, WAIT, "the move journaled", || {
        let moved: Vec<Value> = bed
            .journal()
            .into_iter()
            .filter(|e| e["action"]["action"] == "moveSession")
            .collect();
        (!moved.is_empty()).then_some(moved)
    });
    assert_eq!(moved.len(), 1, "{moved:?}\n{}", c.log());
    assert_eq!(
        moved[0]["action"]["conversation"][0],
        thread.as_str(),
        "{moved:?}"
    );
    assert_eq!(moved[0]["ok"], true, "{moved:?}");
    // The agent under y runs `resume <thread>`, and the thread goes on in the same
    // rollout: a prompt typed now lands there.
    wait_ready(&bed, &["desk"], "y", "default · ");
    bed.t.type_text("=desk:", "what was the word?");
    bed.t.keys("=desk:", &["Enter"]);
    wait(
        &bed,
        &c,
        WAIT,
        "the prompt after the move in the same thread",
        || {
            std::fs::read_to_string(&rollout)
                .is_ok_and(|t| t.contains("what was the word?"))
                .then_some(())
        },
    );
    let all = rollouts(&r.join("codex-shared/sessions"));
    assert_eq!(all.len(), 1, "one thread: {all:?}");
    // No move refused or retried, once moved.
    assert!(
        bed.events("refused").is_empty(),
        "{:?}",
        bed.events("refused")
    );
}

/// The thread a rollout's `session_meta` names.
fn failover_thread(rollout: &Path) -> String {
    let first = std::fs::read_to_string(rollout).unwrap();
    let meta: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    meta["payload"]["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_codex_account_over_move_at_should_move_its_pool_before_any_request_is_refused() {
    // Codex's use comes from its rollouts' token counts (the x-codex headers): a task's
    // turn reading 96 % on x moves the pool to y at idle points, and x then refusing
    // every turn is never met.
    let bed = new_bed();
    std::fs::write(bed.root.join("x/.sim-usage"), "96 20").unwrap();
    std::fs::write(bed.root.join("y/.sim-usage"), "10 2").unwrap();
    let m = codex_manifest(&bed).edit("c", |c: &mut ControllerConfigSpec| {
        c.quota.move_at = Some(95)
    });
    let manifest = bed.write("pool.yaml", &m.yaml());
    let c = controller(&bed, &manifest);
    wait_ready(&bed, &CODEX_SESSIONS, "x", "default · ");
    bed.drop_task("pf", "first.md", "The task that reads 96 %.");
    wait(&bed, &c, WAIT, "every Codex session under y", || {
        CODEX_SESSIONS
            .iter()
            .all(|s| bed.account(s) == "y")
            .then_some(())
    });
    let swap = &bed.events("swap")[0];
    assert_eq!(swap["reason"], "usage 96% reached moveAt 95%", "{swap}");
    assert_eq!(bed.files("pf", "done"), ["first.md"]);
    // From now on x refuses every turn: nothing more reaches it.
    let reset = jiff::Timestamp::now().as_second() + 3600;
    std::fs::write(bed.root.join("x/.sim-limit"), reset.to_string()).unwrap();
    let mut names = drop_tasks(&bed, "pf", "f", 4);
    names.extend(drop_tasks(&bed, "ps", "s", 4));
    wait(&bed, &c, WAIT, "eight more tasks done", || {
        (bed.files("pf", "done").len() == 5 && bed.files("ps", "done").len() == 4).then_some(())
    });
    assert!(bed.events("quotaDetected").is_empty(), "{}", c.log());
    for name in &names {
        let pool = if name.starts_with('f') { "pf" } else { "ps" };
        assert_eq!(bed.record(pool, "done", name)["account"], "y", "{name}");
    }
    assert_eq!(bed.events("swap").len(), 1);
    let journal = done_in_journal(&bed);
    assert!(journal.values().all(|h| h.len() == 1), "{journal:?}");
}
