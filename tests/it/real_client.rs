//! The real Claude Code CLI (the pinned npm version, or `FAILOVER_CLAUDE_VERSION`)
//! against the mock Messages API of `failover::testbed::mock_api`, on private tmux
//! servers: the classifier on the real screens; tasks that end on the agent's own
//! reports at every reply speed; usage limits from the agent's word alone; moving
//! before the wall on the status line's figures; crashes just after a turn's end; a
//! swap that resumes the conversation under the second account; and three accounts in
//! turn, each limit moving every session on to the next.
//!
//! Where the CLI is not installed, each test prints `SKIPPED …` on the terminal and
//! returns; `FAILOVER_REAL_CLIENT=required` (set by `.ci/run` once it installed the
//! CLI) turns that into a failure.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failover::api::{AgentProfileSpec, ControllerConfigSpec};
use failover::slug;
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::mock_api::{MockApi, Reply, Request, Usage};
use failover::testbed::{Spawned, TmuxServer, claude, wait_for};

use crate::bed::{self, Bed, classify};

const WAIT: Duration = Duration::from_secs(45);

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
    let _turn = crate::bed::real_cli_turn();
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
        s.contains(&format!("Claude Code v{}", claude::version())) && s.contains("❯\u{a0}")
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

/// What a fleet runs.
#[derive(Debug, Clone)]
struct Options {
    /// Pool sessions.
    pool: u32,
    /// A dedicated session `desk` too.
    desk: bool,
    /// A change to the agents' profile (no screen patterns, say).
    profile: fn(&mut AgentProfileSpec),
    /// The quota's `moveAt`.
    move_at: Option<u32>,
    /// The accounts, in order of preference: the first `n` of a, b, c.
    accounts: usize,
    /// The inbox's tasks run in the pool's folder: a task goes to a fresh agent without
    /// restarting it in the task's folder first, so tasks dispatched together are pasted
    /// together.
    tasks_in_pool_folder: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            pool: 1,
            desk: true,
            profile: |_| {},
            move_at: None,
            accounts: 2,
            tasks_in_pool_folder: false,
        }
    }
}

/// Two subscription accounts (or three), each its own home and token, sharing their
/// transcripts; a pool and maybe a dedicated session, on the real CLI under a real
/// controller.
struct Fleet {
    // Dropped first: a controller still running could start a tmux server after the
    // test bed's has been killed.
    controller: Option<Spawned>,
    bed: Bed,
    api: MockApi,
    sessions: Vec<String>,
}

const TOKEN_A: &str = "sk-ant-oat01-account-a";
const TOKEN_B: &str = "sk-ant-oat01-account-b";
const TOKEN_C: &str = "sk-ant-oat01-account-c";

impl Fleet {
    fn start(cli: &Path, opts: Options) -> Self {
        let bed = bed::new(&["work", "p/.agent-queue/inbox"]);
        let api = MockApi::start();
        let root = &bed.root;
        let (work, inbox, project) = (root.join("work"), bed.inbox("p"), root.join("p"));
        let mut m = Manifest::new();
        for (i, (name, token)) in (0..).zip(
            [("a", TOKEN_A), ("b", TOKEN_B), ("c", TOKEN_C)]
                .into_iter()
                .take(opts.accounts),
        ) {
            claude::seed_home(&root.join(name), &[&work, &project], token);
            m = m.account(name, root.join(name)).priority(i);
        }
        let env = claude::env(&api.url(), &bed.t.mkdir("tmp"));
        let cli = cli.to_string_lossy();
        let mut m = m
            .shared_state("s", root.join("shared"))
            .agent("claude", &[&cli, "--dangerously-skip-permissions"])
            .with(|p: &mut AgentProfileSpec| {
                p.env.extend(env);
                (opts.profile)(p);
            })
            .controller("c")
            .with(|c: &mut ControllerConfigSpec| {
                c.poll_interval = duration("250ms");
                c.quota.move_at = opts.move_at;
            })
            .pool("auto", "w-", opts.pool..=opts.pool, &work)
            .inbox(
                "p",
                &inbox,
                "auto",
                if opts.tasks_in_pool_folder {
                    &work
                } else {
                    &project
                },
            );
        let mut sessions: Vec<String> = (0..opts.pool).map(|i| format!("w-{i}")).collect();
        if opts.desk {
            m = m.dedicated("desk", &work);
            sessions.push("desk".into());
        }
        bed.write("pool.yaml", &m.yaml());
        let mut fleet = Self {
            bed,
            api,
            controller: None,
            sessions,
        };
        fleet.start_controller();
        let names = fleet.sessions.clone();
        wait_for(WAIT, "the sessions", || {
            let all = fleet.bed.t.sessions();
            names.iter().all(|s| all.contains(s)).then_some(())
        });
        for s in &names {
            fleet.wait_ready(s);
            assert_eq!(fleet.bed.account(s), "a");
        }
        fleet
    }

    /// Starts a controller on the fleet's manifests and state folder.
    fn start_controller(&mut self) {
        let name = format!("controller-{}", self.bed.events("started").len());
        let manifest = self.bed.root.join("pool.yaml");
        self.controller = Some(self.bed.controller(&manifest, &name, None));
    }

    fn controller(&self) -> &Spawned {
        self.controller
            .as_ref()
            .expect("the fleet runs a controller")
    }

    /// Waits for `session`'s agent to show its input box.
    fn wait_ready(&self, session: &str) {
        let banner = format!("Claude Code v{}", claude::version());
        self.bed
            .t
            .wait_screen(&format!("={session}:"), WAIT, "the input box", |s| {
                s.contains(&banner) && s.contains("❯\u{a0}")
            });
    }

    fn all_on(&self, account: &str) -> bool {
        self.sessions.iter().all(|s| self.bed.account(s) == account)
    }

    fn drop_task(&self, name: &str, text: &str) {
        self.bed.drop_task("p", name, text);
    }

    fn done(&self, name: &str) -> bool {
        self.bed.queue("p", "done").join(name).is_file()
    }

    /// The done record of task `name`.
    fn record(&self, name: &str) -> serde_json::Value {
        self.bed.record("p", "done", name)
    }

    fn conversation(&self, account: &str, session: &str) -> Option<String> {
        self.bed
            .t
            .conversation(&self.bed.root.join(account), session)
    }

    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.bed.events(kind)
    }

    fn log(&self) -> String {
        self.controller
            .as_ref()
            .map(Spawned::log)
            .unwrap_or_default()
    }

    /// Waits for `check` like `wait_for`, failing with everything worth reading.
    fn wait<T>(&self, what: &str, check: impl FnMut() -> Option<T>) -> T {
        failover::testbed::wait_for_or_none(WAIT, check).unwrap_or_else(|| {
            panic!(
                "timed out after {WAIT:?} waiting for {what}\n{}",
                self.dump()
            )
        })
    }

    /// Everything worth reading when a test fails: the log, the facts, the reports not
    /// yet taken, and every session's screen.
    fn dump(&self) -> String {
        let state = self.bed.state();
        let facts = std::fs::read_to_string(state.join("facts.json")).unwrap_or_default();
        let reports: Vec<String> = std::fs::read_dir(state.join("reports"))
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        let screens: Vec<String> = self
            .sessions
            .iter()
            .map(|s| {
                let out = self
                    .bed
                    .t
                    .try_tmux(&["capture-pane", "-p", "-t", &format!("={s}:")]);
                format!(
                    "--- {s}\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .collect();
        let prompts: Vec<String> = self
            .api
            .turns()
            .iter()
            .map(|r| format!("{:?} {:?}", r.credential, r.prompt()))
            .collect();
        let socket = self.bed.t.socket().to_string_lossy().into_owned();
        let ps = std::process::Command::new("ps")
            .args(["-eo", "pid,ppid,stat,lstart,args"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ps: Vec<&str> = ps.lines().filter(|l| l.contains(&socket)).collect();
        format!(
            "--- processes on the socket\n{}\n{}\n--- facts\n{facts}\n--- reports\n{}\n{}\n--- turns\n{}",
            ps.join("\n"),
            self.log(),
            reports.join("\n"),
            screens.join("\n"),
            prompts.join("\n")
        )
    }

    /// The turns whose prompt is exactly `text`, as Claude Code sends a paste: trimmed,
    /// and wrapped in `<pasted_content>` tags when longer than three lines (the tags
    /// aside, byte for byte).
    fn turns_of(&self, text: &str) -> Vec<Request> {
        self.api
            .turns()
            .into_iter()
            .filter(|r| {
                r.prompt()
                    .is_some_and(|p| failover::unwrap_pasted(&p).trim() == text.trim())
            })
            .collect()
    }
}

#[test]
fn tasks_should_reach_the_real_client_and_a_swap_should_resume_its_conversations() {
    let Some(cli) = claude::locate_or_skip("tasks_should_reach_the_real_client") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let fleet = Fleet::start(&cli, Options::default());
    let api = &fleet.api;

    // Dispatch: a multi-line task with shell-looking text, byte-exact through the paste.
    let task = "Fix the parser:\n  echo $(whoami) `id` \"quoted\" 'single' \\n\nthen report.";
    fleet.drop_task("first.md", task);
    let turn = fleet.wait("the task's turn", || {
        api.turns()
            .into_iter()
            .find(|r| r.prompt().is_some_and(|p| p.contains("Fix the parser")))
    });
    assert_eq!(turn.prompt().as_deref(), Some(task));
    assert_eq!(turn.credential, TOKEN_A);
    fleet.wait("the first task done", || {
        fleet.done("first.md").then_some(())
    });
    let record = fleet.record("first.md");
    assert_eq!(record["outcome"], "Stop report", "{record}");
    assert_eq!(record["reply"], "Done: Fix the parser:", "{record}");

    // The operator's own conversation in the dedicated session, under account a.
    fleet.bed.t.type_text("=desk:", "remember the word kumquat");
    fleet.bed.t.keys("=desk:", &["Enter"]);
    fleet.bed.t.wait_screen("=desk:", WAIT, "the answer", |s| {
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
    fleet.wait("every session under b", || fleet.all_on("b").then_some(()));
    let detected = fleet.events("quotaDetected");
    assert!(!detected.is_empty(), "{}", fleet.log());
    assert_eq!(detected[0]["account"], "a");
    assert_eq!(fleet.events("swap").len(), 1, "{}", fleet.log());

    // The task carries on under b in the same conversation, and finishes.
    let carried = fleet.wait("the task carried on under b", || {
        api.turns().into_iter().find(|r| r.credential == TOKEN_B)
    });
    let history = carried.body["messages"].to_string();
    assert!(history.contains("Write the summary."), "{history}");
    fleet.wait("the second task done", || {
        fleet.done("second.md").then_some(())
    });
    let sent = fleet.turns_of("Write the summary.");
    assert_eq!(sent.len(), 1, "sent once: {sent:#?}\n{}", fleet.dump());

    // The dedicated session was relaunched on the same conversation under b.
    fleet.wait("desk resumed", || {
        (fleet.conversation("b", "desk").as_deref() == Some(conversation.as_str())).then_some(())
    });
    fleet
        .bed
        .t
        .wait_screen("=desk:", WAIT, "the resumed conversation", |s| {
            s.contains("remember the word kumquat") && s.contains("❯\u{a0}")
        });
    fleet.bed.t.type_text("=desk:", "what was the word?");
    fleet.bed.t.keys("=desk:", &["Enter"]);
    let asked = fleet.wait("desk's question under b", || {
        api.turns()
            .into_iter()
            .find(|r| r.prompt().as_deref() == Some("what was the word?"))
    });
    assert_eq!(asked.credential, TOKEN_B);
    let history = asked.body["messages"].to_string();
    assert!(history.contains("remember the word kumquat"), "{history}");
    let user_id = asked.body["metadata"]["user_id"]
        .as_str()
        .unwrap_or_default();
    assert!(user_id.contains(&conversation), "{user_id}");
    let transcript = fleet
        .bed
        .root
        .join("shared/projects")
        .join(slug(&fleet.bed.root.join("work")))
        .join(format!("{conversation}.jsonl"));
    fleet.wait("the transcript to hold the new question", || {
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

/// Types `text` into the dedicated session `desk` and waits for its answer: the turn
/// the API received.
fn ask_desk(fleet: &Fleet, text: &str) -> Request {
    fleet.bed.t.type_text("=desk:", text);
    fleet.bed.t.keys("=desk:", &["Enter"]);
    fleet
        .bed
        .t
        .wait_screen("=desk:", WAIT, "desk's answer", |s| {
            s.contains(&format!("● Done: {text}"))
        });
    fleet.wait("desk's turn", || {
        fleet
            .api
            .turns()
            .into_iter()
            .find(|r| r.prompt().as_deref() == Some(text))
    })
}

#[test]
fn with_three_accounts_each_limit_should_move_every_session_to_the_next_resuming_its_conversation()
{
    // Issue 23 on the real CLI: with more than two accounts, a confirmed exhaustion
    // right after a swap stalled for the cooldown (5 min by default, kept here) while
    // another account was free. a's limit moves the pool of two and desk to b, b's
    // moves them on to c, each session resuming its conversation.
    let Some(cli) = claude::locate_or_skip("with_three_accounts_each_limit") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let fleet = Fleet::start(
        &cli,
        Options {
            pool: 2,
            accounts: 3,
            tasks_in_pool_folder: true,
            ..Options::default()
        },
    );
    let api = &fleet.api;
    let at = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();

    // The operator's own conversation in desk, under a.
    let mut said = vec!["remember the word kumquat"];
    assert_eq!(ask_desk(&fleet, said[0]).credential, TOKEN_A);
    let conversation = fleet.conversation("a", "desk").unwrap();

    let steps = [
        ("a", TOKEN_A, "b", TOKEN_B, "what was the word?"),
        ("b", TOKEN_B, "c", TOKEN_C, "say the word again"),
    ];
    for (step, (used, token, next, next_token, question)) in steps.into_iter().enumerate() {
        // Both pool sessions fresh at their input box (the agents of the step before
        // recycled after their tasks), none holding a task: the two tasks dropped next
        // go out together, each meeting the limit. (Dropped while one still restarted,
        // or run in the inbox's own folder, whose fresh agent starts first, a task
        // reached the API only after the move, in 3 of 16 runs.)
        fleet.wait(&format!("the pool fresh under {used}"), || {
            (fleet.bed.files("p", "active").is_empty()
                && ["w-0", "w-1"].iter().all(|s| {
                    let screen = fleet.bed.t.capture(&format!("={s}:"));
                    fleet.bed.account(s) == used
                        && screen.contains(&format!("Claude Code v{}", claude::version()))
                        && screen.contains("❯\u{a0}")
                        && !screen.contains("Done:")
                }))
            .then_some(())
        });
        // ... and their screens at rest for a second: failover pastes into a prompt only
        // once its screen has rested (half a second), so a session whose status line
        // was still being drawn would take its task after the other's met the limit.
        let mut last = (Vec::new(), std::time::Instant::now());
        fleet.wait("both prompts at rest", || {
            let now: Vec<String> = ["w-0", "w-1"]
                .iter()
                .map(|s| fleet.bed.t.capture(&format!("={s}:")))
                .collect();
            if now != last.0 {
                last = (now, std::time::Instant::now());
            }
            (last.1.elapsed() >= Duration::from_secs(1)).then_some(())
        });
        // `used` runs out: two tasks meet its limit, one in each pool session.
        api.set_reply(
            token,
            Reply::UsageLimit {
                resets_at: now() + 2 * 3600,
            },
        );
        let tasks: Vec<(String, String)> = (0..2)
            .map(|i| {
                (
                    format!("s{step}-{i}.md"),
                    format!("Task {i} that meets {used}'s limit."),
                )
            })
            .collect();
        for (name, text) in &tasks {
            fleet.drop_task(name, text);
        }
        let detected = fleet.wait(&format!("{used}'s limit"), || {
            fleet
                .events("quotaDetected")
                .into_iter()
                .find(|e| e["account"] == used)
        });
        let seen = std::time::Instant::now();
        fleet.wait(&format!("every session under {next}"), || {
            fleet.all_on(next).then_some(())
        });
        let observed = seen.elapsed();
        // Each cut task carries on under `next` in its own conversation: its request
        // there holds the turn `used` refused; its own text reached the API once.
        for (name, text) in &tasks {
            fleet.wait(&format!("{name} done"), || fleet.done(name).then_some(()));
            let sent = fleet.turns_of(text);
            assert_eq!(
                sent.len(),
                1,
                "{name} sent once: {sent:#?}\n{}",
                fleet.dump()
            );
            assert_eq!(
                sent[0].credential,
                token,
                "{name} met {used}'s limit\n{}",
                fleet.dump()
            );
            let carried = api.turns().into_iter().find(|r| {
                r.credential == next_token && r.body["messages"].to_string().contains(text.as_str())
            });
            assert!(
                carried.is_some(),
                "{name}: no request of {next} carries its conversation\n{}",
                fleet.dump()
            );
            assert_eq!(fleet.record(name)["account"], next, "{name}");
        }

        // The journal's figure: the limit's line to the last session's move (written
        // once carried out, a moment after tmux holds the account: read once the tasks
        // are done). A move tried before the agent named its conversation is left as it
        // is and tried again next round (1 of 19 runs): a session may have two lines,
        // the last one counts.
        let moves = fleet.wait(&format!("every move to {next} journaled"), || {
            let mut last: std::collections::BTreeMap<String, serde_json::Value> =
                std::collections::BTreeMap::new();
            for e in fleet.bed.journal().into_iter().filter(|e| {
                e["action"]["action"] == "moveSession" && e["action"]["session"]["account"] == next
            }) {
                let name = e["action"]["session"]["name"].as_str().unwrap_or_default();
                last.insert(name.to_owned(), e);
            }
            (last.len() == fleet.sessions.len()).then_some(last.into_values().collect::<Vec<_>>())
        });
        assert!(moves.iter().all(|m| m["ok"] == true), "{moves:#?}");
        let last = moves.iter().map(|m| at(&m["time"])).max().unwrap();
        let took = last.duration_since(at(&detected["time"]));
        eprintln!(
            "real Claude Code {}: {used}'s limit ({}) -> every session under {next}: \
             {:.2}s by the journal, {:.2}s seen after the limit's line",
            claude::version(),
            detected["source"],
            took.as_secs_f64(),
            observed.as_secs_f64()
        );
        assert!(
            took.as_secs_f64() < 30.0,
            "{used} -> {next} took {took:#}: a stall?\n{}",
            fleet.dump()
        );
        assert!(fleet.events("allExhausted").is_empty(), "{}", fleet.log());

        // desk goes on with the operator's conversation under `next`: its request holds
        // every earlier turn.
        fleet.wait(&format!("desk resumed under {next}"), || {
            (fleet.conversation(next, "desk").as_deref() == Some(conversation.as_str()))
                .then_some(())
        });
        fleet
            .bed
            .t
            .wait_screen("=desk:", WAIT, "the resumed conversation", |s| {
                s.contains(said[0]) && s.contains("❯\u{a0}")
            });
        let asked = ask_desk(&fleet, question);
        assert_eq!(asked.credential, next_token);
        let history = asked.body["messages"].to_string();
        for earlier in &said {
            assert!(history.contains(earlier), "{earlier:?} not in {history}");
        }
        said.push(question);
    }
    let swaps: Vec<(String, String)> = fleet
        .events("swap")
        .iter()
        .map(|e| (e["from"].to_string(), e["to"].to_string()))
        .collect();
    assert_eq!(
        swaps,
        [("\"a\"", "\"b\""), ("\"b\"", "\"c\"")].map(|(f, t)| (f.to_owned(), t.to_owned())),
        "{}",
        fleet.log()
    );
    // The redrawn limits of the resumed conversations never counted against c.
    let against_c: Vec<_> = fleet
        .events("quotaDetected")
        .into_iter()
        .filter(|e| e["account"] == "c")
        .collect();
    assert!(against_c.is_empty(), "{against_c:?}");
    assert!(fleet.bed.files("p", "failed").is_empty());
}

/// The twenty tasks of the speed test: multi-line, with `$(…)`, backticks and quotes.
fn twenty_tasks() -> Vec<(String, String)> {
    (0..20)
        .map(|i| {
            let text = match i % 4 {
                0 => format!(
                    "Task {i}: fix it\n  run $(make test) and `id`\nthen say \"done\" and 'ok'"
                ),
                1 => format!("Task {i}: one line with \\ backslash and $HOME"),
                2 => format!("Task {i}:\n\n- first\n- second ``nested `ticks` ``\n"),
                _ => format!("Task {i}: quotes \"double\" 'single' and \\n, no newline"),
            };
            (format!("t{i:02}.md"), text)
        })
        .collect()
}

#[test]
fn twenty_tasks_at_every_reply_speed_should_each_reach_the_api_once_and_end_on_their_reply() {
    let Some(cli) = claude::locate_or_skip("twenty_tasks_at_every_reply_speed") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    for delay in [50, 500, 5000].map(Duration::from_millis) {
        let fleet = Fleet::start(
            &cli,
            Options {
                pool: 2,
                desk: false,
                ..Options::default()
            },
        );
        fleet.api.set_reply(TOKEN_A, Reply::Slow(delay));
        let tasks = twenty_tasks();
        for (name, text) in &tasks {
            fleet.drop_task(name, text);
        }
        let all_done =
            // A fresh agent per task costs the real CLI about 3 s to start: 20 tasks on
            // two sessions take 40 s idle, more on a loaded machine.
            failover::testbed::wait_for_or_none(Duration::from_secs(120) + delay * 12, || {
                tasks.iter().all(|(name, _)| fleet.done(name)).then_some(())
            });
        assert!(
            all_done.is_some(),
            "{delay:?}: not all done\n{}",
            fleet.dump()
        );
        for (name, text) in &tasks {
            let turns = fleet.turns_of(text);
            assert_eq!(
                turns.len(),
                1,
                "{delay:?} {name}: reached the API {} times",
                turns.len()
            );
            let record = fleet.record(name);
            assert_eq!(record["outcome"], "Stop report", "{delay:?} {record}");
            let first: String = text
                .trim()
                .lines()
                .next()
                .unwrap()
                .chars()
                .take(60)
                .collect();
            assert_eq!(
                record["reply"],
                format!("Done: {first}"),
                "{delay:?} {record}"
            );
            let finished: jiff::Timestamp = record["finished"].as_str().unwrap().parse().unwrap();
            let answered = turns[0].answered.expect("answered");
            assert!(
                finished >= answered,
                "{delay:?} {name}: called done at {finished}, before its reply at {answered}"
            );
        }
        eprintln!(
            "reply time {delay:?}: 20 of 20 tasks reached the API once and ended on their reply"
        );
    }
}

#[test]
fn a_usage_limit_the_agent_reports_should_swap_within_a_second_without_screen_patterns() {
    let Some(cli) = claude::locate_or_skip("a_usage_limit_the_agent_reports") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let fleet = Fleet::start(
        &cli,
        Options {
            profile: |p| {
                p.screen.quota.clear();
                p.screen.reset.clear();
            },
            ..Options::default()
        },
    );
    fleet.api.set_reply(
        TOKEN_A,
        Reply::UsageLimit {
            resets_at: now() + 2 * 3600,
        },
    );
    fleet.drop_task("limit.md", "Meet the limit.");
    wait_for(WAIT, "every session under b", || {
        fleet.all_on("b").then_some(())
    });
    let detected = fleet.events("quotaDetected");
    assert_eq!(detected.len(), 1, "{detected:?}");
    assert_eq!(detected[0]["source"], "report", "{detected:?}");
    let at = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    let swap = &fleet.events("swap")[0];
    let delay = at(&swap["time"]).duration_since(at(&detected[0]["reportedAt"]));
    assert!(delay.as_secs_f64() < 1.0, "swap {delay:?} after the report");
    wait_for(WAIT, "the task done under b", || {
        fleet.done("limit.md").then_some(())
    });
    assert_eq!(fleet.record("limit.md")["account"], "b");
}

#[test]
fn with_every_account_used_up_the_pool_should_wait_and_resume_by_itself_after_the_reset() {
    let Some(cli) = claude::locate_or_skip("with_every_account_used_up") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let fleet = Fleet::start(
        &cli,
        Options {
            pool: 2,
            desk: false,
            ..Options::default()
        },
    );
    // a resets on the minute 30 to 90 s from now (the CLI shows minutes only), b an
    // hour later: the API says so in its rate-limit headers.
    let reset = (now() + 30 + 59) / 60 * 60;
    fleet
        .api
        .set_reply(TOKEN_A, Reply::UsageLimit { resets_at: reset });
    fleet.api.set_reply(
        TOKEN_B,
        Reply::UsageLimit {
            resets_at: reset + 3600,
        },
    );
    fleet.drop_task("first.md", "The task that meets both limits.");
    let all = fleet.wait("every account exhausted", || {
        fleet.events("allExhausted").into_iter().next()
    });
    assert_eq!(all["firstReset"], minute(reset), "{all}");
    let refused = fleet.events("refused");
    assert!(
        refused.iter().any(|e| e["object"] == "accounts"
            && e["reason"].as_str().is_some_and(|r| r.starts_with(&format!(
                "every account is exhausted; the first resets at {}",
                minute(reset)
            )))),
        "{refused:?}"
    );
    // Tasks dropped while every account is used up wait in the inbox.
    for i in 0..2 {
        fleet.drop_task(
            &format!("t{i}.md"),
            &format!("Task {i}, dropped while all wait."),
        );
    }
    let sent_while_waiting = fleet.api.turns().len();
    // Just before the reset the API lets a's requests through again; failover waits for
    // the reset it read: nothing was sent while every account was used up.
    let before = Duration::from_secs(u64::try_from(reset - now() - 2).unwrap_or(0));
    std::thread::sleep(before);
    assert_eq!(fleet.bed.files("p", "inbox").len(), 2, "{}", fleet.dump());
    assert!(fleet.bed.files("p", "failed").is_empty());
    let sent_before = fleet.api.turns().len();
    assert_eq!(sent_before, sent_while_waiting, "{}", fleet.dump());
    fleet.api.set_reply(TOKEN_A, Reply::Answer);
    wait_for(
        Duration::from_secs(150),
        "every task done after the reset",
        || (["first.md", "t0.md", "t1.md"].iter().all(|t| fleet.done(t))).then_some(()),
    );
    assert!(fleet.bed.files("p", "failed").is_empty());
    let resumed = fleet.events("resumed");
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0]["account"], "a");
    let at = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert!(at(&resumed[0]["time"]).as_second() >= reset, "{resumed:?}");
    for t in ["first.md", "t0.md", "t1.md"] {
        assert_eq!(fleet.record(t)["account"], "a", "{t}");
    }
    for i in 0..2 {
        let text = format!("Task {i}, dropped while all wait.");
        assert_eq!(
            fleet.turns_of(&text).len(),
            1,
            "task {i} reached the API once"
        );
    }
    assert!(
        fleet.api.turns().len() > sent_before,
        "the work after the reset went to the API"
    );
}

#[test]
fn an_account_at_96_percent_should_move_every_session_before_any_request_is_refused() {
    let Some(cli) = claude::locate_or_skip("an_account_at_96_percent") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let fleet = Fleet::start(
        &cli,
        Options {
            pool: 2,
            move_at: Some(95),
            ..Options::default()
        },
    );
    let (five, seven) = (now() + 3 * 3600, now() + 4 * 86_400);
    fleet.api.set_usage(
        TOKEN_A,
        Usage {
            five_hour: (0.96, five),
            seven_day: (0.40, seven),
        },
    );
    fleet.api.set_usage(
        TOKEN_B,
        Usage {
            five_hour: (0.10, five),
            seven_day: (0.20, seven),
        },
    );
    fleet.drop_task("first.md", "The turn that reads 96 percent.");
    let moved = failover::testbed::wait_for_or_none(WAIT, || fleet.all_on("b").then_some(()));
    assert!(
        moved.is_some(),
        "not every session under b:\n{}",
        fleet.dump()
    );
    // From here on a would refuse every request.
    fleet
        .api
        .set_reply(TOKEN_A, Reply::UsageLimit { resets_at: five });
    let swap = &fleet.events("swap")[0];
    assert_eq!(swap["reason"], "usage 96% reached moveAt 95%", "{swap}");
    // The turn that read 96 % was not cut: it ended on its own reply.
    wait_for(WAIT, "the first task done", || {
        fleet.done("first.md").then_some(())
    });
    assert_eq!(fleet.record("first.md")["outcome"], "Stop report");
    for i in 0..3 {
        fleet.drop_task(&format!("t{i}.md"), &format!("Task {i} after the move."));
    }
    wait_for(Duration::from_secs(90), "three more tasks done", || {
        (0..3)
            .all(|i| fleet.done(&format!("t{i}.md")))
            .then_some(())
    });
    let refused: Vec<_> = fleet
        .api
        .requests()
        .into_iter()
        .filter(|r| r.status == Some(429))
        .collect();
    assert!(
        refused.is_empty(),
        "a request of a was refused: {refused:?}"
    );
    assert!(fleet.events("quotaDetected").is_empty(), "{}", fleet.log());
    // The operator sees each account's use as the CLI reported it.
    let out = fleet
        .bed
        .command(&["get", "accounts", "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "a")
        .unwrap();
    assert_eq!(a["fiveHour"]["used"], 96.0, "{a}");
    assert_eq!(
        a["fiveHour"]["resetsAt"],
        jiff::Timestamp::from_second(five).unwrap().to_string()
    );
    assert_eq!(a["sevenDay"]["used"], 40.0, "{a}");
    let table = fleet.bed.command(&["get", "accounts"]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    eprintln!("{table}");
    assert!(table.contains("96%"), "{table}");
}

/// Runs a slow task, stops the controller while its turn runs, lets the turn end (its
/// `Stop` report lands), then does `fault`, SIGKILLs the controller and starts another:
/// the task must be done once, never sent again.
fn crash_after_a_stop(test: &str, fault: impl FnOnce(&Fleet)) {
    let Some(cli) = claude::locate_or_skip(test) else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let mut fleet = Fleet::start(
        &cli,
        Options {
            desk: false,
            ..Options::default()
        },
    );
    fleet
        .api
        .set_reply(TOKEN_A, Reply::Slow(Duration::from_secs(2)));
    let text = "A task whose turn ends while nobody watches.";
    fleet.drop_task("crash.md", text);
    wait_turn(&fleet.api, "the task's turn", |r| {
        r.prompt().as_deref() == Some(text)
    });
    fleet.controller().signal("STOP");
    let reports = fleet.bed.state().join("reports");
    wait_for(WAIT, "the Stop report", || {
        std::fs::read_dir(&reports)
            .ok()?
            .flatten()
            .any(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"event\":\"Stop\""))
            })
            .then_some(())
    });
    fault(&fleet);
    if let Some(c) = fleet.controller.take() {
        c.kill();
    }
    fleet.start_controller();
    fleet.wait("the task done", || fleet.done("crash.md").then_some(()));
    let record = fleet.record("crash.md");
    assert_eq!(
        record["outcome"],
        "Stop report",
        "{record}\n{}",
        fleet.log()
    );
    assert_eq!(record["reply"], format!("Done: {text}"));
    // Done, so never sent again: nothing of it waits or runs anywhere.
    for folder in ["inbox", "active"] {
        let left: Vec<_> = std::fs::read_dir(fleet.bed.queue("p", folder))
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{folder}: {left:?}");
    }
    assert_eq!(fleet.turns_of(text).len(), 1, "{}", fleet.log());
    assert!(fleet.events("taskRequeued").is_empty(), "{}", fleet.log());
}

#[test]
fn a_controller_killed_just_after_a_stop_should_complete_the_task_once() {
    crash_after_a_stop("a_controller_killed_just_after_a_stop", |_| {});
}

#[test]
fn a_tmux_server_killed_just_after_a_stop_should_complete_the_task_once() {
    crash_after_a_stop("a_tmux_server_killed_just_after_a_stop", |fleet| {
        fleet.bed.t.tmux(&["kill-server"]);
    });
}

/// The operator's own session on the fleet's server: `cat` appending what is typed into
/// it to `typed`; its pane pid.
fn make_mine(fleet: &Fleet, typed: &Path) -> String {
    wait_for(WAIT, "the operator's own session", || {
        let out = fleet.bed.t.try_tmux(&[
            "new-session",
            "-d",
            "-s",
            "mine",
            "-P",
            "-F",
            "#{pane_pid}",
            "--",
            "sh",
            "-c",
            "exec cat >> \"$0\"",
            &typed.to_string_lossy(),
        ]);
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !pid.is_empty()).then_some(pid)
    })
}

#[test]
fn twenty_tasks_at_every_reply_speed_should_end_once_through_controller_and_tmux_kills() {
    // The chaos suite's small form on the real CLI: at each reply speed, 20 tasks
    // through a pool of three while the controller is SIGKILLed five times and the tmux
    // server once, at random points (a seeded xorshift: replayable). Counted from
    // evidence: the folders, the transcripts, the journal, the process table.
    let Some(cli) = claude::locate_or_skip("twenty_tasks_at_every_reply_speed_should_end_once")
    else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let mut seed: u64 = 0x0005_eedc_4a05;
    let mut next = |from: u64, to: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_millis(from + seed % (to - from))
    };
    for delay in [50, 500, 5000].map(Duration::from_millis) {
        let started = std::time::Instant::now();
        let mut fleet = Fleet::start(
            &cli,
            Options {
                pool: 3,
                desk: false,
                ..Options::default()
            },
        );
        fleet.api.set_reply(TOKEN_A, Reply::Slow(delay));
        let typed = fleet.bed.root.join("mine.typed");
        let mut mine = make_mine(&fleet, &typed);
        let tasks = twenty_tasks();
        for (name, text) in &tasks {
            fleet.drop_task(name, text);
        }
        let (mut kills, mut tmux_kills, mut touched) = (0, 0, 0);
        for event in 0..6 {
            std::thread::sleep(next(300, 3000));
            let now =
                fleet
                    .bed
                    .t
                    .try_tmux(&["display-message", "-p", "-t", "=mine:", "#{pane_pid}"]);
            if String::from_utf8_lossy(&now.stdout).trim() != mine {
                touched += 1;
            }
            if event == 3 {
                let _ = fleet.bed.t.try_tmux(&["kill-server"]);
                tmux_kills += 1;
                mine = make_mine(&fleet, &typed);
            } else {
                if let Some(c) = fleet.controller.take() {
                    c.kill();
                }
                kills += 1;
                fleet.start_controller();
            }
        }
        failover::testbed::wait_for_or_none(Duration::from_secs(120) + delay * 12, || {
            tasks.iter().all(|(name, _)| fleet.done(name)).then_some(())
        })
        .unwrap_or_else(|| panic!("{delay:?}: not all done\n{}", fleet.dump()));
        // Never two controllers at once.
        let manifest = fleet
            .bed
            .root
            .join("pool.yaml")
            .to_string_lossy()
            .into_owned();
        let controllers = failover::testbed::chaos::count::processes(&manifest)
            .into_iter()
            .filter(|p| p.args.iter().any(|a| a == "controller"))
            .count();
        assert_eq!(controllers, 1, "{delay:?}: controllers running at the end");
        let texts: Vec<String> = tasks.iter().map(|(_, t)| t.clone()).collect();
        // Claude Code writes its transcript a moment after its Stop hook ran: the last
        // task's reply may land after the task is done. The evidence settles first.
        let projects = fleet.bed.root.join("shared/projects");
        let count = || {
            use failover::testbed::chaos::count;
            count::turns(&count::claude(&projects), &texts)
        };
        let turns = failover::testbed::wait_for_or_none(Duration::from_secs(10), || {
            let turns = count();
            turns.iter().all(|t| t.completed > 0).then_some(turns)
        })
        .unwrap_or_else(count);
        let entries: Vec<serde_json::Value> = fleet.events("taskDone");
        let (mut resent, mut resumed) = (0, 0);
        for ((name, text), t) in tasks.iter().zip(&turns) {
            if t.completed != 1 {
                let dump: Vec<String> = walk(&fleet.bed.root.join("shared/projects"))
                    .into_iter()
                    .map(|p| std::fs::read_to_string(p).unwrap_or_default())
                    .filter(|t| t.contains(text.split(':').next().unwrap_or_default()))
                    .collect();
                let record = std::fs::read_to_string(
                    fleet.bed.queue("p", "done").join(format!("{name}.json")),
                )
                .unwrap_or_default();
                // What the controllers did with the task and its session, in order.
                let session = serde_json::from_str::<serde_json::Value>(&record)
                    .ok()
                    .and_then(|r| r["session"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let story: Vec<String> = fleet
                    .bed
                    .journal()
                    .iter()
                    .map(|e| e.to_string())
                    .filter(|l| {
                        l.contains(name.as_str())
                            || (!session.is_empty() && l.contains(&format!("\"{session}\"")))
                            || l.contains("\"started\"")
                    })
                    .collect();
                panic!(
                    "{delay:?} {name}: ran to a reply {t:?}\nrecord {record}\n--- journal\n{}\n--- transcripts\n{}",
                    story.join("\n"),
                    dump.join("\n----\n")
                );
            }
            assert!(
                !t.shared,
                "{delay:?} {name}: sent into another task's conversation"
            );
            resent += usize::from(t.sent > 1);
            resumed += usize::from(t.resumed);
            let journaled = entries
                .iter()
                .filter(|e| e["action"]["task"]["name"] == name.as_str())
                .count();
            assert_eq!(
                journaled, 1,
                "{delay:?} {name}: journaled done {journaled} times"
            );
            for folder in ["inbox", "active", "failed"] {
                assert!(
                    !fleet.bed.queue("p", folder).join(name).exists(),
                    "{delay:?} {name} in {folder}/"
                );
            }
        }
        assert_eq!(touched, 0, "{delay:?}: the operator's session was touched");
        assert_eq!(
            std::fs::read_to_string(&typed).unwrap_or_default(),
            "",
            "{delay:?}: text typed into the operator's session"
        );
        eprintln!(
            "real Claude Code {}, reply time {delay:?}: 20 of 20 done once through {kills} \
             controller kills and {tmux_kills} tmux kill; resent {resent}, resumed {resumed}; \
             {:.1}s",
            claude::version(),
            started.elapsed().as_secs_f64()
        );
    }
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
