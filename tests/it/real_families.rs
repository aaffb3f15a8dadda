//! A pool over both real CLIs through failover (issue 25): Claude Code against the mock
//! Messages API (accounts a and b, told apart by their tokens) and Codex against the
//! mock Responses API (accounts x and y), a pool of three over `agents: [claude, codex]`
//! fed by an inbox, and the dedicated Claude session `desk`. What `families.rs` checks
//! on the stand-ins, on the real agents: both Claude accounts used up, the pool runs
//! Codex within 2 s and keeps draining its queue, each task reaching the Responses API
//! once; the task cut by the limit is handed to Codex once, its text after the inbox's
//! note; desk stays Claude and says it waits; after a's reset the pool comes back to
//! Claude at idle points, one restart each, and a task after runs under a.
//!
//! It needs both CLIs: where either is not installed the test prints `SKIPPED …` on the
//! terminal and returns, unless `FAILOVER_REAL_CLIENT=required` (Claude Code) or
//! `FAILOVER_REAL_CODEX=required` (Codex) turns that into a failure.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use failover::api::{
    AgentProfileSpec, ControllerConfigSpec, HAND_OFF_NOTE, PoolSpec, SharedStateSpec,
};
use failover::testbed::codex::Home;
use failover::testbed::manifest::duration;
use failover::testbed::mock_api::{self, MockApi};
use failover::testbed::mock_responses::MockResponses;
use failover::testbed::{Spawned, claude, codex, wait_for_or_none};
use serde_json::Value;

use crate::bed::{self, Bed};
use crate::codex::done_in_journal;
use crate::real_codex::{TOKEN_X, TOKEN_Y, real_codex_family};

const WAIT: Duration = Duration::from_secs(60);
const POOL: [&str; 3] = ["mx-0", "mx-1", "mx-2"];
const TOKEN_A: &str = "sk-ant-oat01-mixed-a";
const TOKEN_B: &str = "sk-ant-oat01-mixed-b";
/// How long after the limit a resets, at least (then on the minute, as the CLI shows
/// it): long enough for the queue to drain under Codex first.
const RESET_AFTER: i64 = 90;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The bed, both mocks, the Codex homes and the controller.
struct Mix {
    // Dropped first: a controller still running could start a tmux server after the
    // bed's has been killed.
    controller: Spawned,
    // Then the Codex homes, which end every process running under them by its pid
    // (the TUIs and the daemons they leave), then the bed, whose tmux server goes.
    _homes: Vec<Home>,
    bed: Bed,
    claude: MockApi,
    codex: MockResponses,
    manifest: String,
}

impl Mix {
    /// Codex x (preferred), y and Claude a (preferred), b, each family sharing its own
    /// conversations; the pool `mix` over `[claude, codex]` fed by inbox `p`; `desk`;
    /// the controller; the pool and desk ready under a.
    fn start(claude_cli: &Path, codex_cli: &Path) -> Self {
        let bed = bed::new(&["work", "shared", "claude-shared", "p/.agent-queue/inbox"]);
        let (claude_api, codex_api) = (MockApi::start(), MockResponses::start());
        let r = bed.root.clone();
        let (work, project) = (r.join("work"), r.join("p"));
        let (homes, mut m) = real_codex_family(&bed, &codex_api, codex_cli, &[&work, &project]);
        for (i, (name, token)) in (0..).zip([("a", TOKEN_A), ("b", TOKEN_B)]) {
            claude::seed_home(&r.join(name), &[&work, &project], token);
            m = m.account(name, r.join(name)).priority(i);
        }
        let env = claude::env(&claude_api.url(), &bed.t.mkdir("tmp"));
        let cli = claude_cli.to_string_lossy();
        let m = m
            .shared_state("claude", r.join("claude-shared"))
            .with(|s: &mut SharedStateSpec| s.accounts = Some(vec!["a".into(), "b".into()]))
            .agent("claude", &[&cli, "--dangerously-skip-permissions"])
            .with(|p: &mut AgentProfileSpec| p.env.extend(env))
            .edit("c", |c: &mut ControllerConfigSpec| {
                c.quota.cooldown = duration("0s");
                c.quota.confirmations = 1;
            })
            .pool("mix", "mx-", 3..=3, &work)
            .with(|p: &mut PoolSpec| p.agents = vec!["claude".into(), "codex".into()])
            .inbox("p", bed.inbox("p"), "mix", &project)
            .dedicated("desk", &work);
        let manifest = bed.write("pool.yaml", &m.yaml());
        let controller = bed.controller(&manifest, "controller", Some("info"));
        let mix = Self {
            controller,
            _homes: homes,
            bed,
            claude: claude_api,
            codex: codex_api,
            manifest: manifest.to_string_lossy().into_owned(),
        };
        let mut all = POOL.to_vec();
        all.push("desk");
        mix.wait(WAIT, "the pool and desk ready under a", || {
            all.iter()
                .all(|s| mix.bed.account(s) == "a" && claude_ready(&mix.screen(s)))
                .then_some(())
        });
        mix
    }

    fn screen(&self, session: &str) -> String {
        self.bed.t.capture(&format!("={session}:"))
    }

    /// Each pool session's account now.
    fn accounts(&self) -> BTreeMap<&'static str, String> {
        POOL.iter().map(|s| (*s, self.bed.account(s))).collect()
    }

    /// Waits for `check` at most `timeout`, failing with everything worth reading.
    fn wait<T>(&self, timeout: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
        wait_for_or_none(timeout, check).unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.dump()
            )
        })
    }

    /// `failover args… -f <manifest>` on the bed: its stdout (it must succeed).
    fn stdout(&self, args: &[&str]) -> String {
        let mut args = args.to_vec();
        args.extend(["-f", &self.manifest]);
        let out = self.bed.command(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The queues, the journal's last lines, each session's screen, the prompts each
    /// mock received, the controller's log.
    fn dump(&self) -> String {
        let mut out = String::new();
        for f in ["inbox", "active", "done", "failed"] {
            out.push_str(&format!("p/{f}: {:?}\n", self.bed.files("p", f)));
        }
        for line in self.bed.journal().iter().rev().take(60).rev() {
            out.push_str(&format!("{line}\n"));
        }
        for s in POOL.iter().chain(&["desk"]) {
            out.push_str(&format!(
                "--- {s} under {:?}\n{}\n",
                self.bed.account(s),
                self.screen(s)
            ));
        }
        out.push_str("--- Messages API turns\n");
        for r in self.claude.turns() {
            out.push_str(&format!(
                "{} {:?} {:?}\n",
                r.credential,
                r.status,
                r.prompt()
            ));
        }
        out.push_str("--- Responses API tasks\n");
        for r in self.codex.tasks() {
            out.push_str(&format!(
                "{} {:?} {:?}\n",
                r.credential,
                r.status,
                r.prompt()
            ));
        }
        out.push_str(&format!("--- controller\n{}", self.controller.log()));
        out
    }
}

/// Claude Code at its input box, done starting.
fn claude_ready(s: &str) -> bool {
    s.contains(&format!("Claude Code v{}", claude::version())) && s.contains("❯\u{a0}")
}

fn at(v: &Value) -> jiff::Timestamp {
    v.as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("not a time: {v}"))
}

#[test]
fn a_mixed_pool_of_real_clis_should_run_codex_when_both_claude_accounts_are_used_up_and_return_after_the_reset()
 {
    let test = "a_mixed_pool_of_real_clis";
    let Some(claude_cli) = claude::locate_or_skip(test) else {
        return;
    };
    let Some(codex_cli) = codex::locate_or_skip(test) else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let started = Instant::now();
    let mix = Mix::start(&claude_cli, &codex_cli);
    eprintln!(
        "real Claude Code {} and Codex {}: the pool and desk ready under a in {:.1}s",
        claude::version(),
        codex::version(),
        started.elapsed().as_secs_f64()
    );

    // Both Claude accounts are used up: a resets on the minute at least RESET_AFTER
    // from now (the CLI shows minutes only), b an hour later. The task dropped now
    // meets a's limit, moves to b with its conversation, and meets b's.
    let reset = (now() + RESET_AFTER + 59) / 60 * 60;
    let limit = |resets_at| mock_api::Reply::UsageLimit { resets_at };
    mix.claude.set_reply(TOKEN_A, limit(reset));
    mix.claude.set_reply(TOKEN_B, limit(reset + 3600));
    let cut = "The task cut by the limit: write cut.txt.";
    let dropped = Instant::now();
    mix.bed.drop_task("p", "cut.md", cut);
    let all = mix.wait(WAIT, "every Claude account exhausted", || {
        mix.bed.events("allExhausted").into_iter().next()
    });
    let exhausted = Instant::now();
    mix.wait(
        Duration::from_secs(2),
        "every pool session under Codex x",
        || mix.accounts().values().all(|a| a == "x").then_some(()),
    );
    eprintln!(
        "a and b used up {:.1}s after the cut task was dropped (first reset {}); every pool \
         session under x {:.2}s after",
        (exhausted - dropped).as_secs_f64(),
        all["firstReset"],
        exhausted.elapsed().as_secs_f64()
    );
    let rows: Value =
        serde_json::from_str(&mix.stdout(&["get", "sessions", "-o", "json"])).unwrap();
    let kinds: BTreeMap<String, String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].to_string(), r["kind"].to_string()))
        .collect();
    assert!(
        POOL.iter()
            .all(|s| kinds[&format!("\"{s}\"")] == "\"codex\"")
            && kinds["\"desk\""] == "\"claude-code\"",
        "{kinds:?}"
    );

    // The queue keeps draining under Codex.
    let draining = Instant::now();
    let tasks: Vec<(String, String)> = (0..6)
        .map(|i| (format!("t{i}.md"), format!("Mixed task {i}: say done.")))
        .collect();
    for (name, text) in &tasks {
        mix.bed.drop_task("p", name, text);
    }
    mix.wait(Duration::from_secs(120), "all 7 tasks done", || {
        (mix.bed.files("p", "done").len() == 7).then_some(())
    });
    let drained = draining.elapsed();
    assert!(
        mix.bed.events("recovered").is_empty(),
        "a reset before the queue drained; raise RESET_AFTER\n{}",
        mix.dump()
    );
    for (name, text) in &tasks {
        let sent = mix.codex.tasks_of(text);
        assert_eq!(sent.len(), 1, "{name} reached the Responses API once");
        let account = mix.bed.record("p", "done", name)["account"].clone();
        let token = match account.as_str() {
            Some("x") => TOKEN_X,
            Some("y") => TOKEN_Y,
            _ => panic!("{name} done under {account}"),
        };
        assert_eq!(sent[0].credential, token, "{name}");
    }
    assert!(
        mix.claude
            .turns()
            .iter()
            .all(|r| !r.prompt().is_some_and(|p| p.starts_with("Mixed task"))),
        "a task reached the Messages API\n{}",
        mix.dump()
    );
    // The cut task: handed off once, its text after the note reaching Codex once.
    let handed = mix.bed.events("handedOff");
    assert_eq!(handed.len(), 1, "{handed:?}");
    assert_eq!(
        (
            handed[0]["task"].as_str(),
            handed[0]["from"].as_str(),
            handed[0]["to"].as_str()
        ),
        (Some("p/cut.md"), Some("claude-code"), Some("codex")),
        "{handed:?}"
    );
    let record = mix.bed.record("p", "done", "cut.md");
    assert!(
        record["account"] == "x" || record["account"] == "y",
        "{record}"
    );
    assert_eq!(
        record["handOffs"].as_array().map(Vec::len),
        Some(1),
        "{record}"
    );
    let with_cut: Vec<String> = mix
        .codex
        .tasks()
        .iter()
        .filter_map(|r| r.prompt())
        .filter(|p| p.contains(cut))
        .collect();
    assert_eq!(with_cut.len(), 1, "{with_cut:?}");
    assert!(
        with_cut[0].starts_with(HAND_OFF_NOTE),
        "the note, then the task's text: {:?}",
        with_cut[0]
    );
    let journal = mix.wait(WAIT, "7 taskDone lines", || {
        let journal = done_in_journal(&mix.bed);
        (journal.values().map(Vec::len).sum::<usize>() >= 7).then_some(journal)
    });
    assert_eq!(journal.len(), 7, "{journal:?}");
    assert!(journal.values().all(|h| h.len() == 1), "{journal:?}");
    assert!(mix.bed.files("p", "failed").is_empty());
    eprintln!(
        "6 tasks done under Codex in {:.1}s, each once; the cut task handed off once ({} \
         Responses requests in all)",
        drained.as_secs_f64(),
        mix.codex.tasks().len()
    );

    // desk never ran Codex: it waits for a Claude account, and says so.
    let desk = mix.bed.account("desk");
    assert!(desk == "a" || desk == "b", "desk under {desk:?}");
    let described = mix.stdout(&["describe", "session", "desk"]);
    assert!(
        described.contains("waits for a claude-code account until"),
        "{described}"
    );

    // a resets: the API takes its requests again, and the pool returns to Claude at its
    // idle points, one restart each.
    mix.claude.set_reply(TOKEN_A, mock_api::Reply::Answer);
    let left = u64::try_from(reset - now()).unwrap_or(0);
    let recovered = mix.wait(
        Duration::from_secs(left + 30),
        "a recovered after its reset",
        || mix.bed.events("recovered").into_iter().next(),
    );
    assert_eq!(recovered["account"], "a", "{recovered}");
    assert!(at(&recovered["time"]).as_second() >= reset, "{recovered}");
    let back = Instant::now();
    mix.wait(WAIT, "the pool back under a, ready", || {
        POOL.iter()
            .all(|s| mix.bed.account(s) == "a" && claude_ready(&mix.screen(s)))
            .then_some(())
    });
    let returned = back.elapsed();
    let back: Vec<String> = mix
        .bed
        .events("familyChanged")
        .iter()
        .filter(|e| e["return"] == true)
        .map(|e| e["session"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut once = back.clone();
    once.sort();
    assert_eq!(once, POOL, "one return each: {back:?}");
    // A task after the return runs under a, on the real Claude Code.
    let after = "A task after the return.";
    mix.bed.drop_task("p", "after.md", after);
    mix.wait(WAIT, "the task after the return done", || {
        mix.bed
            .files("p", "done")
            .contains(&"after.md".to_owned())
            .then_some(())
    });
    assert_eq!(mix.bed.record("p", "done", "after.md")["account"], "a");
    let sent: Vec<String> = mix
        .claude
        .turns()
        .iter()
        .filter(|r| r.prompt().as_deref() == Some(after))
        .map(|r| r.credential.clone())
        .collect();
    assert_eq!(sent, [TOKEN_A], "reached the Messages API once, under a");
    assert!(mix.codex.tasks_of(after).is_empty());
    assert!(mix.bed.files("p", "failed").is_empty());
    eprintln!(
        "the pool back under a {:.1}s after a's reset was seen; {:.0}s in all",
        returned.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
