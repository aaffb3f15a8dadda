//! The real Claude Code CLI (the pinned npm version) against the mock Messages API of
//! `failover::testbed::mock_api`, on private tmux servers: the classifier on the real
//! screens, dispatch through a bracketed paste, and a swap that resumes the
//! conversation under the second account.
//!
//! Where the CLI is not installed, each test prints `SKIPPED …` on the terminal and
//! returns; `FAILOVER_REAL_CLIENT=required` (set by `.ci/run` once it installed the
//! CLI) turns that into a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failover::testbed::mock_api::{MockApi, Reply, Request};
use failover::testbed::{
    Spawned, TmuxServer, claude, drop_task, journal_events, run_with_stdin, wait_for,
};

const BIN: &str = env!("CARGO_BIN_EXE_failover");
const WAIT: Duration = Duration::from_secs(45);

/// `failover classify - -o json` over `screen`, as an operator asks "why".
fn classify(screen: &str) -> serde_json::Value {
    let mut cmd = Command::new(BIN);
    cmd.args(["classify", "-", "-o", "json"]);
    let out = run_with_stdin(cmd, screen.as_bytes());
    assert!(out.status.success(), "classify failed on:\n{screen}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `epoch` as the RFC 3339 minute the CLI prints it to (it shows no seconds).
fn minute(epoch: i64) -> String {
    jiff::Timestamp::from_second(epoch - epoch % 60)
        .unwrap()
        .to_string()
}

fn wait_turn(api: &MockApi, what: &str, pred: impl Fn(&Request) -> bool) -> Request {
    wait_for(WAIT, what, || api.turns().into_iter().find(|r| pred(r)))
}

#[test]
fn real_screens_should_classify_as_idle_busy_quota_rate_limited_and_server_error() {
    let Some(cli) = claude::locate_or_skip("real_screens_should_classify") else {
        return;
    };
    let t = TmuxServer::start();
    let api = MockApi::start();
    let (home, work, tmp) = (t.mkdir("a"), t.mkdir("work"), t.mkdir("tmp"));
    let token = "sk-ant-oat01-screens";
    claude::seed_home(&home, &[&work], token);
    let mut env = claude::env(&api.url(), &tmp);
    env.push(("CLAUDE_CONFIG_DIR".into(), home.to_string_lossy().into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let cli = cli.to_string_lossy();
    t.new_session_kept("c", &work, &env, &[&cli, "--dangerously-skip-permissions"]);
    let pane = "=c:";
    let ask = |text: &str| {
        t.type_text(pane, text);
        t.keys(pane, &["Enter"]);
    };

    let idle = t.wait_screen(pane, WAIT, "the input box", |s| {
        s.contains("Claude Code v2.1.329") && s.contains("❯\u{a0}")
    });
    assert_eq!(classify(&idle)["class"], "idle", "{idle}");

    api.set_reply(token, Reply::Slow(Duration::from_secs(5)));
    ask("take your time");
    let busy = t.wait_screen(pane, WAIT, "the spinner", |s| {
        s.contains("esc to interrupt")
    });
    assert_eq!(classify(&busy)["class"], "busy", "{busy}");
    let answered = t.wait_screen(pane, WAIT, "the answer", |s| {
        s.contains("● Done: take your time") && !s.contains("esc to interrupt")
    });
    assert_eq!(classify(&answered)["class"], "idle", "{answered}");

    api.set_reply(token, Reply::ServerError);
    ask("meet a 500");
    let failed = t.wait_screen(pane, WAIT, "the 500", |s| s.contains("API Error: 500"));
    let verdict = classify(&failed);
    assert_eq!(verdict["class"], "server-error", "{failed}");

    api.set_reply(token, Reply::RateLimited);
    ask("meet a plain 429");
    let limited = t.wait_screen(pane, WAIT, "the 429", |s| {
        s.contains("not your usage limit")
    });
    assert_eq!(classify(&limited)["class"], "rate-limited", "{limited}");

    let resets_at = now() + 2 * 3600;
    api.set_reply(token, Reply::UsageLimit { resets_at });
    ask("meet the usage limit");
    let quota = t.wait_screen(pane, WAIT, "the usage limit", |s| {
        s.contains("You've hit your 5-hour limit")
    });
    let verdict = classify(&quota);
    assert_eq!(verdict["class"], "quota-exhausted", "{quota}");
    assert_eq!(verdict["resetsAt"], minute(resets_at), "{quota}");

    // A reset more than a day away: the date carries its year and a dialog asks what
    // to do. Still a used-up quota, not a person's dialog.
    t.keys(pane, &["Escape"]);
    let resets_at = now() + 3 * 24 * 3600;
    api.set_reply(token, Reply::UsageLimit { resets_at });
    ask("meet a limit days away");
    let dialog = t.wait_screen(pane, WAIT, "the limit dialog", |s| {
        s.contains("What do you want to do?")
    });
    let verdict = classify(&dialog);
    assert_eq!(verdict["class"], "quota-exhausted", "{dialog}");
    assert_eq!(verdict["resetsAt"], minute(resets_at), "{dialog}");
}

/// Two subscription accounts, each its own home and token, sharing their transcripts;
/// a pool of one and a dedicated session, on the real CLI under a real controller.
struct Fleet {
    // Dropped first: a controller still running could start a tmux server after the
    // test bed's has been killed.
    _controller: Spawned,
    t: TmuxServer,
    api: MockApi,
    root: PathBuf,
}

const TOKEN_A: &str = "sk-ant-oat01-account-a";
const TOKEN_B: &str = "sk-ant-oat01-account-b";

impl Fleet {
    fn start(cli: &Path) -> Self {
        let t = TmuxServer::start();
        let api = MockApi::start();
        let root = t.mkdir("op");
        let (work, inbox) = (t.mkdir("op/work"), t.mkdir("op/p/.agent-queue/inbox"));
        let project = root.join("p");
        for (name, token) in [("a", TOKEN_A), ("b", TOKEN_B)] {
            claude::seed_home(&root.join(name), &[&work, &project], token);
        }
        let env: String = claude::env(&api.url(), &t.mkdir("tmp"))
            .iter()
            .map(|(k, v)| format!("{k}: {v:?}, "))
            .collect();
        let (r, cli) = (root.display(), cli.display());
        let text = format!(
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: a}}\nspec: {{home: {r}/a, priority: 0}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: b}}\nspec: {{home: {r}/b, priority: 1}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: SharedState\nmetadata: {{name: s}}\nspec: {{target: {r}/shared}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{cli}, --dangerously-skip-permissions], env: {{{env}}}}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: c}}\nspec: {{pollInterval: 250ms}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec: {{prefix: w-, min: 1, max: 1, workdir: {r}/work}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: DedicatedSession\nmetadata: {{name: desk}}\nspec: {{workdir: {r}/work, resume: true}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: p}}\nspec: {{path: {}, pool: auto, workdir: {r}/p}}\n",
            inbox.display()
        );
        let manifest = root.join("pool.yaml");
        std::fs::write(&manifest, text).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["controller", "-f", &manifest.to_string_lossy()])
            .envs(t.env())
            .env("FAILOVER_STATE_DIR", root.join("state"));
        let controller = Spawned::start(cmd, root.join("controller.log"));
        let fleet = Self {
            t,
            api,
            root,
            _controller: controller,
        };
        wait_for(WAIT, "the sessions", || {
            let names = fleet.t.sessions();
            ["w-0", "desk"]
                .iter()
                .all(|s| names.iter().any(|n| n == s))
                .then_some(())
        });
        for s in ["w-0", "desk"] {
            fleet
                .t
                .wait_screen(&format!("={s}:"), WAIT, "the input box", |s| {
                    s.contains("Claude Code v2.1.329") && s.contains("❯\u{a0}")
                });
            assert_eq!(fleet.account(s), "a");
        }
        fleet
    }

    fn account(&self, session: &str) -> String {
        self.t.session_option(session, "@failover-account")
    }

    fn drop_task(&self, name: &str, text: &str) {
        drop_task(&self.root.join("p/.agent-queue/inbox"), name, text);
    }

    fn done(&self, name: &str) -> bool {
        self.root.join("p/.agent-queue/done").join(name).is_file()
    }

    fn conversation(&self, account: &str, session: &str) -> Option<String> {
        self.t.conversation(&self.root.join(account), session)
    }

    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        journal_events(&self.root.join("state"), kind)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("controller.log")).unwrap_or_default()
    }
}

#[test]
fn tasks_should_reach_the_real_client_and_a_swap_should_resume_its_conversations() {
    let Some(cli) = claude::locate_or_skip("tasks_should_reach_the_real_client") else {
        return;
    };
    let fleet = Fleet::start(&cli);
    let api = &fleet.api;

    // Dispatch: a multi-line task with shell-looking text, byte-exact through the paste.
    let task = "Fix the parser:\n  echo $(whoami) `id` \"quoted\" 'single' \\n\nthen report.";
    fleet.drop_task("first.md", task);
    let turn = wait_turn(api, "the task's turn", |r| {
        r.prompt().is_some_and(|p| p.contains("Fix the parser"))
    });
    assert_eq!(turn.prompt().as_deref(), Some(task));
    assert_eq!(turn.credential, TOKEN_A);
    wait_for(WAIT, "the first task done", || {
        fleet.done("first.md").then_some(())
    });

    // The operator's own conversation in the dedicated session, under account a.
    fleet.t.type_text("=desk:", "remember the word kumquat");
    fleet.t.keys("=desk:", &["Enter"]);
    fleet.t.wait_screen("=desk:", WAIT, "the answer", |s| {
        s.contains("● Done: remember the word kumquat")
    });
    let conversation = fleet.conversation("a", "desk").unwrap();

    // Account a runs out; the next task meets the limit.
    api.set_reply(
        TOKEN_A,
        Reply::UsageLimit {
            resets_at: now() + 2 * 3600,
        },
    );
    fleet.drop_task("second.md", "Write the summary.");
    wait_for(WAIT, "every session under b", || {
        ["w-0", "desk"]
            .iter()
            .all(|s| fleet.account(s) == "b")
            .then_some(())
    });
    let detected = fleet.events("quotaDetected");
    assert!(!detected.is_empty(), "{}", fleet.log());
    assert_eq!(detected[0]["account"], "a");
    assert_eq!(fleet.events("swap").len(), 1, "{}", fleet.log());

    // The task carries on under b in the same conversation, and finishes.
    let carried = wait_turn(api, "the task carried on under b", |r| {
        r.credential == TOKEN_B
    });
    let history = carried.body["messages"].to_string();
    assert!(history.contains("Write the summary."), "{history}");
    wait_for(WAIT, "the second task done", || {
        fleet.done("second.md").then_some(())
    });

    // The dedicated session was relaunched on the same conversation under b.
    wait_for(WAIT, "desk resumed", || {
        (fleet.conversation("b", "desk").as_deref() == Some(conversation.as_str())).then_some(())
    });
    fleet
        .t
        .wait_screen("=desk:", WAIT, "the resumed conversation", |s| {
            s.contains("remember the word kumquat") && s.contains("❯\u{a0}")
        });
    fleet.t.type_text("=desk:", "what was the word?");
    fleet.t.keys("=desk:", &["Enter"]);
    let asked = wait_turn(api, "desk's question under b", |r| {
        r.prompt().as_deref() == Some("what was the word?")
    });
    assert_eq!(asked.credential, TOKEN_B);
    let history = asked.body["messages"].to_string();
    assert!(history.contains("remember the word kumquat"), "{history}");
    let user_id = asked.body["metadata"]["user_id"]
        .as_str()
        .unwrap_or_default();
    assert!(user_id.contains(&conversation), "{user_id}");
    let transcript = fleet
        .root
        .join("shared/projects")
        .join(fleet.root.join("work").to_string_lossy().replace('/', "-"))
        .join(format!("{conversation}.jsonl"));
    wait_for(WAIT, "the transcript to hold the new question", || {
        std::fs::read_to_string(&transcript)
            .ok()?
            .contains("what was the word?")
            .then_some(())
    });
    // The redrawn limit of the resumed conversations never counted against b.
    let against_b: Vec<_> = fleet
        .events("quotaDetected")
        .into_iter()
        .filter(|e| e["account"] == "b")
        .collect();
    assert!(against_b.is_empty(), "{against_b:?}");
    assert_eq!(fleet.events("swap").len(), 1, "{}", fleet.log());
}
