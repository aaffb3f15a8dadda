//! The real Codex CLI (the pinned npm version, or `FAILOVER_CODEX_VERSION`) against the
//! mock Responses API of `failover::testbed::mock_responses`, driven directly on private
//! tmux servers (not through a pool yet): its screens idle, busy and at the usage
//! limit; a pasted task reaching the API once and ending on its `notify` report and the
//! rollout's `task_complete`; the limit in the rollout; and a thread resumed under a
//! second home that shares the first's `sessions/`.
//!
//! Where the CLI is not installed, each test prints `SKIPPED …` on the terminal and
//! returns; `FAILOVER_REAL_CODEX=required` (set by `.ci/run` once it installed the CLI)
//! turns that into a failure. With `FAILOVER_CODEX_FIXTURES=<dir>` the tests write what
//! they captured (screens, a rollout, notify reports) there: how tests/fixtures/codex/
//! was made.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use failover::testbed::codex::{self, Home, Seed};
use failover::testbed::mock_responses::{Kind, MockResponses, Reply, Usage, Window};
use failover::testbed::{TmuxServer, wait_for};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(45);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The notify recorder: appends each report (Codex's last argument) as one line.
fn recorder(file: &Path) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!("printf '%s\\n' \"$1\" >> '{}'", file.display()),
        "sh".into(),
    ]
}

fn reports(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("report {l:?}: {e}")))
        .collect()
}

/// The rollout files under `home`'s `sessions/`.
fn rollouts(home: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "jsonl")
                && e.file_name().to_string_lossy().starts_with("rollout-")
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&home.join("sessions"), &mut out);
    out.sort();
    out
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `event_msg` payloads of type `kind` in the rollout `path`.
fn events(path: &Path, kind: &str) -> Vec<Value> {
    lines(path)
        .into_iter()
        .filter(|l| l["type"] == "event_msg" && l["payload"]["type"] == kind)
        .map(|l| l["payload"].clone())
        .collect()
}

/// Writes `text` as fixture `name` when `FAILOVER_CODEX_FIXTURES` names a folder, the
/// test's temp folder `tmp` written as `/tmp/failover-test-codex`.
fn save(tmp: &Path, name: &str, text: &str) {
    if let Some(dir) = std::env::var_os("FAILOVER_CODEX_FIXTURES") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = text.replace(&*tmp.to_string_lossy(), "/tmp/failover-test-codex");
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// One account's home on a private tmux server, the mock behind it, and the notify
/// recorder's file.
struct Rig {
    api: MockResponses,
    work: PathBuf,
    notified: PathBuf,
    cli: String,
    // The homes of a test end every process of theirs, TUIs included, whichever of
    // them and this server goes first.
    t: TmuxServer,
}

impl Rig {
    fn new(cli: &Path) -> Self {
        let t = TmuxServer::start();
        Self {
            api: MockResponses::start(),
            work: t.mkdir("work"),
            notified: t.dir().join("notify.jsonl"),
            cli: cli.to_string_lossy().into_owned(),
            t,
        }
    }

    /// A home `name` whose account is `token`, notify pointed at the recorder.
    fn home(&self, name: &str, token: &str) -> Home {
        let notify = recorder(&self.notified);
        let notify: Vec<&str> = notify.iter().map(String::as_str).collect();
        let url = self.api.url();
        Home::seed(
            &self.t.dir().join(name),
            &Seed {
                api_url: &url,
                token,
                workdirs: &[&self.work],
                notify: &notify,
            },
        )
    }

    /// Starts `codex args…` under `home` in tmux session `name`, `width` columns wide.
    fn start(&self, name: &str, home: &Home, args: &[&str], width: u16) {
        let env = home.env(&self.t.mkdir("tmp"));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut argv = vec![self.cli.as_str()];
        argv.extend(args);
        self.t.new_session_kept(name, &self.work, &env, &argv);
        let width = width.to_string();
        self.t
            .tmux(&["resize-window", "-t", name, "-x", &width, "-y", "40"]);
    }

    /// Pastes `text` through a tmux buffer, as failover hands a task over, and submits it.
    fn ask(&self, pane: &str, text: &str) {
        self.t.paste(pane, text);
        self.t.keys(pane, &["Enter"]);
    }

    /// The notify reports of thread `thread`, oldest first.
    fn reports_of(&self, thread: &str) -> Vec<Value> {
        reports(&self.notified)
            .into_iter()
            .filter(|r| r["thread-id"] == thread)
            .collect()
    }
}

fn idle(s: &str) -> bool {
    s.contains("› Ask Codex to do anything") && !s.contains("esc to interrupt")
}

/// Idle and done starting: the footer names the model.
fn ready(s: &str) -> bool {
    idle(s) && s.contains(&format!("{} default", codex::MODEL))
}

/// The thread id a rollout's `session_meta` names.
fn thread_of(rollout: &Path) -> String {
    let meta = lines(rollout)
        .into_iter()
        .find(|l| l["type"] == "session_meta")
        .unwrap_or_else(|| panic!("no session_meta in {rollout:?}"));
    meta["payload"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {meta}"))
        .to_owned()
}

#[test]
fn real_codex_should_answer_a_pasted_task_once_and_end_the_turn_in_notify_and_rollout() {
    let Some(cli) = codex::locate_or_skip("real_codex_should_answer_a_pasted_task_once") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let rig = Rig::new(&cli);
    let home = rig.home("a", "key-a");
    let window = |used_percent, window_minutes| Window {
        used_percent,
        window_minutes,
        resets_at: now() + 3600,
    };
    rig.api.set_usage(
        "key-a",
        Usage {
            primary: Some(window(42.0, 300)),
            secondary: Some(window(7.0, 10080)),
        },
    );
    rig.start("c", &home, &[], 120);
    let pane = "=c:";
    let banner = format!(">_ OpenAI Codex (v{})", codex::version());
    // The animated logo first, `loading` under the banner (the input line may be drawn
    // already: still starting), then the folder and the footer.
    let first = rig
        .t
        .wait_screen(pane, WAIT, "the banner", |s| s.contains(&banner));
    if first.contains("loading") {
        save(rig.t.dir(), "starting.txt", &first);
    }
    let ready = rig.t.wait_screen(pane, WAIT, "the input line", ready);
    assert!(ready.contains(&banner), "{ready}");
    save(rig.t.dir(), "idle.txt", &ready);

    let task = "Fix the parser: echo $(whoami) `id` \"quoted\"";
    rig.api
        .set_reply("key-a", Reply::Slow(Duration::from_secs(3)));
    rig.ask(pane, task);
    let busy = rig.t.wait_screen(pane, WAIT, "the working line", |s| {
        s.contains("• Working (") && s.contains("esc to interrupt")
    });
    save(rig.t.dir(), "busy.txt", &busy);
    let answered = rig.t.wait_screen(pane, WAIT, "the answer", |s| {
        s.contains(&format!("• Done: {}", &task[..20])) && idle(s)
    });
    save(rig.t.dir(), "answered.txt", &answered);

    // The rollout: one thread, its turn started and completed with the answer, the
    // usage of the headers in its token count.
    let rollout = wait_for(WAIT, "the rollout", || {
        rollouts(home.path()).into_iter().next()
    });
    let thread = thread_of(&rollout);
    let done = wait_for(WAIT, "the turn's task_complete", || {
        events(&rollout, "task_complete").into_iter().next()
    });
    assert_eq!(events(&rollout, "task_started").len(), 1);
    assert_eq!(
        done["last_agent_message"],
        format!("Done: {task}"),
        "{done}"
    );
    assert!(done.get("error").is_none_or(Value::is_null), "{done}");
    let counted = events(&rollout, "token_count");
    let limits = &counted.last().expect("a token_count")["rate_limits"];
    assert_eq!(limits["primary"]["used_percent"], 42.0, "{limits}");
    assert_eq!(limits["primary"]["window_minutes"], 300, "{limits}");
    assert_eq!(limits["secondary"]["window_minutes"], 10080, "{limits}");

    // Notify: the turn's report for this thread, with the prompt and the answer; the
    // title's report is for another thread.
    let report = wait_for(WAIT, "the notify report", || {
        rig.reports_of(&thread).into_iter().next()
    });
    assert_eq!(report["type"], "agent-turn-complete", "{report}");
    assert_eq!(report["turn-id"], done["turn_id"], "{report}");
    assert_eq!(
        report["input-messages"],
        serde_json::json!([task]),
        "{report}"
    );
    assert_eq!(report["last-assistant-message"], done["last_agent_message"]);
    assert_eq!(report["cwd"], rig.work.to_string_lossy().as_ref());

    // The API saw the task once, under the account's key, and one title request.
    let sent = rig.api.tasks_of(task);
    assert_eq!(sent.len(), 1, "{:#?}", rig.api.requests());
    assert_eq!(sent[0].credential, "key-a");
    let titles: Vec<_> = rig
        .api
        .requests()
        .into_iter()
        .filter(|r| r.kind() == Kind::Title)
        .collect();
    assert_eq!(titles.len(), 1, "{titles:#?}");
    assert!(
        titles[0].prompt().unwrap().ends_with(task),
        "{:?}",
        titles[0].prompt()
    );
    let title_report = wait_for(WAIT, "the title's report", || {
        reports(&rig.notified)
            .into_iter()
            .find(|r| r["thread-id"] != thread.as_str())
    });
    // The title's thread leaves no rollout: the only rollout of the folder is the
    // session's own thread (what a dedicated Codex session's move resumes).
    let all = rollouts(home.path());
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(thread_of(&all[0]), thread);
    save(
        rig.t.dir(),
        "notify.jsonl",
        &format!("{report}\n{title_report}\n"),
    );
    save(
        rig.t.dir(),
        "rollout-answered.jsonl",
        &std::fs::read_to_string(&rollout).unwrap(),
    );
}

#[test]
fn real_codex_should_stop_at_the_usage_limit_and_resume_the_thread_under_a_second_home() {
    let Some(cli) = codex::locate_or_skip("real_codex_should_stop_at_the_usage_limit") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let rig = Rig::new(&cli);
    let a = rig.home("a", "key-a");
    let b = rig.home("b", "key-b");
    b.share_sessions(&a);
    rig.start("c", &a, &[], 120);
    let pane = "=c:";
    rig.t.wait_screen(pane, WAIT, "the input line", ready);
    rig.ask(pane, "remember the word kumquat");
    rig.t.wait_screen(pane, WAIT, "the answer", |s| {
        s.contains("• Done: remember the word kumquat") && idle(s)
    });
    let rollout = wait_for(WAIT, "the rollout", || {
        rollouts(a.path()).into_iter().next()
    });
    let thread = thread_of(&rollout);
    wait_for(WAIT, "the first turn's report", || {
        (!rig.reports_of(&thread).is_empty()).then_some(())
    });
    // A second turn's report lists every prompt of the thread so far: the turn's own
    // is the last.
    rig.ask(pane, "and the colour teal");
    let second = wait_for(WAIT, "the second turn's report", || {
        rig.reports_of(&thread).get(1).cloned()
    });
    let prompts = serde_json::json!(["remember the word kumquat", "and the colour teal"]);
    assert_eq!(second["input-messages"], prompts, "{second}");

    // Account a is used up: the limit's lines, wrapped at the pane's width.
    rig.api.set_reply(
        "key-a",
        Reply::UsageLimit {
            resets_at: now() + 2 * 3600,
        },
    );
    rig.ask(pane, "Write the summary.");
    let limit = rig.t.wait_screen(pane, WAIT, "the usage limit", |s| {
        s.contains("try again at") && idle(s)
    });
    save(rig.t.dir(), "limit.txt", &limit);
    let first = limit
        .lines()
        .find(|l| l.contains("■ You’ve hit your usage limit."))
        .unwrap_or_else(|| panic!("no limit line:\n{limit}"));
    assert!(
        !first.contains("try again at"),
        "wrapped at 120 columns:\n{limit}"
    );
    let failed = wait_for(WAIT, "the failed turn's task_complete", || {
        events(&rollout, "task_complete")
            .into_iter()
            .find(|e| !e["error"].is_null())
    });
    assert_eq!(
        failed["error"]["codex_error_info"], "usage_limit_exceeded",
        "{failed}"
    );
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("You’ve hit your usage limit."),
        "{failed}"
    );
    assert_eq!(rig.api.tasks_of("Write the summary.").len(), 1);

    // The same thread under home b, whose sessions/ is a's.
    // c is the server's only session: without exit-empty off, killing it ends the
    // server while d is being started on it.
    rig.t.tmux(&["set-option", "-s", "exit-empty", "off"]);
    rig.t.tmux(&["kill-session", "-t", "c"]);
    rig.start("d", &b, &["resume", &thread], 120);
    let pane = "=d:";
    let resumed = rig.t.wait_screen(pane, WAIT, "the resumed thread", |s| {
        s.contains("remember the word kumquat") && idle(s)
    });
    save(rig.t.dir(), "resumed.txt", &resumed);
    rig.ask(pane, "what was the word?");
    let asked = wait_for(WAIT, "the question under b", || {
        rig.api.tasks_of("what was the word?").into_iter().next()
    });
    assert_eq!(asked.credential, "key-b");
    let history = asked.texts("user");
    assert!(
        history.contains(&"remember the word kumquat".to_owned()),
        "{history:?}"
    );
    assert!(
        history.contains(&"Write the summary.".to_owned()),
        "{history:?}"
    );
    rig.t.wait_screen(pane, WAIT, "the answer under b", |s| {
        s.contains("• Done: what was the word?") && idle(s)
    });

    // One rollout still, continued; a report for the first and the last turn, none for
    // the one cut by the limit.
    let reports = wait_for(WAIT, "the resumed turn's report", || {
        let r = rig.reports_of(&thread);
        (r.len() >= 3).then_some(r)
    });
    let last = |r: &Value| {
        r["input-messages"]
            .as_array()
            .and_then(|m| m.last())
            .cloned()
    };
    let prompts: Vec<Option<Value>> = reports.iter().map(last).collect();
    assert_eq!(
        prompts,
        [
            "remember the word kumquat",
            "and the colour teal",
            "what was the word?"
        ]
        .map(|p| Some(Value::from(p))),
        "{reports:#?}"
    );
    let all = &reports[2]["input-messages"];
    assert_eq!(
        all[2], "Write the summary.",
        "the cut turn stays in the thread: {all}"
    );
    assert_eq!(rollouts(a.path()), std::slice::from_ref(&rollout));
    let ends = wait_for(WAIT, "four task_complete", || {
        let e = events(&rollout, "task_complete");
        (e.len() == 4).then_some(e)
    });
    assert_eq!(ends[3]["last_agent_message"], "Done: what was the word?");
    save(
        rig.t.dir(),
        "rollout-limit-resumed.jsonl",
        &std::fs::read_to_string(&rollout).unwrap(),
    );
}

pub(crate) const TOKEN_X: &str = "sk-codex-account-x";
pub(crate) const TOKEN_Y: &str = "sk-codex-account-y";

/// The task prompts failover sent to the API from `token`'s account, oldest first.
fn task_prompts(api: &MockResponses, token: &str) -> Vec<String> {
    api.tasks()
        .into_iter()
        .filter(|r| r.credential == token)
        .filter_map(|r| r.prompt())
        .collect()
}

/// The Codex accounts `x` and `y` of a bed (homes seeded against `api`, each with its
/// token, sharing `sessions/` through `shared`), the real CLI as profile `codex`, and a
/// controller polling every 250 ms; the homes end what runs under them when dropped.
pub(crate) fn real_codex_family(
    bed: &crate::bed::Bed,
    api: &MockResponses,
    cli: &Path,
    workdirs: &[&Path],
) -> (Vec<Home>, failover::testbed::manifest::Manifest) {
    use failover::api::{AgentKind, ControllerConfigSpec, SharedStateSpec};
    use failover::testbed::manifest::{Manifest, duration};
    let r = bed.root.clone();
    let url = api.url();
    let homes: Vec<Home> = [("x", TOKEN_X), ("y", TOKEN_Y)]
        .iter()
        .map(|(name, token)| {
            let seed = Seed {
                api_url: &url,
                token,
                workdirs,
                notify: &[],
            };
            Home::seed(&r.join(name), &seed)
        })
        .collect();
    let env: Vec<(String, String)> = homes[0]
        .env(&bed.t.mkdir("tmp"))
        .into_iter()
        .filter(|(k, _)| k != "CODEX_HOME")
        .collect();
    let cli = cli.to_string_lossy().into_owned();
    let m = Manifest::new()
        .account("x", r.join("x"))
        .family(AgentKind::Codex)
        .account("y", r.join("y"))
        .family(AgentKind::Codex)
        .priority(1)
        .shared_state("threads", r.join("shared"))
        .with(|s: &mut SharedStateSpec| {
            s.links = vec!["sessions".into()];
            s.accounts = Some(vec!["x".into(), "y".into()]);
        })
        .agent_of(
            AgentKind::Codex,
            "codex",
            &[
                &cli,
                "--dangerously-bypass-approvals-and-sandbox",
                "--no-daemon",
            ],
        )
        .with(|p: &mut failover::api::AgentProfileSpec| p.env.extend(env))
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| c.poll_interval = duration("250ms"));
    (homes, m)
}

/// Starts `failover controller -f manifest` on the bed.
fn real_codex_controller(bed: &crate::bed::Bed, manifest: &Path) -> failover::testbed::Spawned {
    let mut cmd = bed.command(&["controller", "-f", &manifest.to_string_lossy()]);
    cmd.env("RUST_LOG", "info");
    failover::testbed::Spawned::start(cmd, bed.root.join("controller.log"))
}

#[test]
fn a_pool_of_real_codex_sessions_should_run_tasks_through_failover_and_move_them_at_a_limit() {
    let Some(cli) = codex::locate_or_skip("a_pool_of_real_codex_sessions") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let api = MockResponses::start();
    let bed = crate::bed::new(&["work", "shared", "p/.agent-queue/inbox"]);
    let r = bed.root.clone();
    let (work, project) = (r.join("work"), r.join("p"));
    // Declared before the controller: dropped after it, they end what runs under them.
    let (_homes, m) = real_codex_family(&bed, &api, &cli, &[&work, &project]);
    let m = m
        .pool("auto", "w-", 2..=2, &work)
        .with(|p: &mut failover::api::PoolSpec| p.agent = "codex".into())
        .inbox("p", bed.inbox("p"), "auto", &project);
    let manifest = bed.write("pool.yaml", &m.yaml());
    let c = real_codex_controller(&bed, &manifest);
    let sessions = ["w-0", "w-1"];
    let on = |account: &str| {
        sessions
            .iter()
            .all(|s| bed.account(s) == account && ready(&bed.t.capture(&format!("={s}:"))))
    };
    let log = || {
        format!(
            "{}\n{:?}",
            c.log(),
            bed.journal().iter().rev().take(20).collect::<Vec<_>>()
        )
    };
    failover::testbed::wait_for_or_none(WAIT, || on("x").then_some(()))
        .unwrap_or_else(|| panic!("the pool under x:\n{}", log()));

    let texts: Vec<String> = (0..6).map(|i| format!("Real Codex task {i}.")).collect();
    let started = std::time::Instant::now();
    for (i, text) in texts.iter().enumerate() {
        bed.drop_task("p", &format!("t{i}.md"), text);
    }
    failover::testbed::wait_for_or_none(Duration::from_secs(120), || {
        (bed.files("p", "done").len() == 6).then_some(())
    })
    .unwrap_or_else(|| panic!("six tasks done:\n{}", log()));
    eprintln!("6 real Codex tasks done in {:?}", started.elapsed());
    let mut hows = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(api.tasks_of(text).len(), 1, "{text} reached the API once");
        let how = bed
            .events("taskDone")
            .into_iter()
            .filter(|e| e["action"]["task"]["name"] == format!("t{i}.md"))
            .map(|e| e["action"]["how"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>();
        assert!(
            matches!(&how[..], [h] if h == "notify report" || h == "transcript"),
            "t{i}: {how:?}"
        );
        hows.push(how[0].clone());
    }
    eprintln!("ended by: {hows:?}");

    // x runs out: the API refuses its requests, every session moves to y, and the cut
    // task's thread goes on there.
    let limit = "The real task that meets the limit.";
    api.set_reply(
        TOKEN_X,
        Reply::UsageLimit {
            resets_at: now() + 3600,
        },
    );
    bed.drop_task("p", "limit.md", limit);
    failover::testbed::wait_for_or_none(WAIT, || {
        (!bed.events("quotaDetected").is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("the limit:\n{}", log()));
    let seen = std::time::Instant::now();
    failover::testbed::wait_for_or_none(Duration::from_secs(2), || {
        sessions.iter().all(|s| bed.account(s) == "y").then_some(())
    })
    .unwrap_or_else(|| panic!("every session under y within 2 s:\n{}", log()));
    eprintln!("every session under y {:?} after the limit", seen.elapsed());
    failover::testbed::wait_for_or_none(WAIT, || {
        bed.files("p", "done")
            .contains(&"limit.md".to_owned())
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the cut task done under y:\n{}", log()));
    // y's request carried the thread's earlier turn: the cut task's prompt.
    let resumed = api
        .tasks()
        .into_iter()
        .filter(|r| r.credential == TOKEN_Y)
        .find(|r| r.texts("user").iter().any(|t| t.trim() == limit))
        .unwrap_or_else(|| {
            panic!(
                "no request of y carries the thread: {:?}\n{}",
                task_prompts(&api, TOKEN_Y),
                log()
            )
        });
    eprintln!("y's request went on with: {:?}", resumed.texts("user"));
    let swaps = bed.events("swap");
    assert_eq!(swaps.len(), 1, "{swaps:?}");
    let record = serde_json::from_slice::<Value>(
        &std::fs::read(bed.queue("p", "done").join("limit.md.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["account"], "y", "{record}");
    drop(c);
}

#[test]
fn a_dedicated_real_codex_session_should_move_at_a_limit_resuming_its_thread() {
    // Codex reports no thread when it starts and a person's session has no task: failover
    // finds the thread in the folder's rollouts, and the move resumes it.
    let Some(cli) = codex::locate_or_skip("a_dedicated_real_codex_session") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let api = MockResponses::start();
    let bed = crate::bed::new(&["desk", "shared"]);
    let desk = bed.root.join("desk");
    let (_homes, m) = real_codex_family(&bed, &api, &cli, &[&desk]);
    let m = m
        .dedicated("desk", &desk)
        .with(|d: &mut failover::api::DedicatedSessionSpec| d.agent = "codex".into());
    let manifest = bed.write("desk.yaml", &m.yaml());
    let c = real_codex_controller(&bed, &manifest);
    let log = || {
        format!(
            "{}\n{:?}",
            c.log(),
            bed.journal().iter().rev().take(20).collect::<Vec<_>>()
        )
    };
    let under = |account: &str| {
        (bed.account("desk") == account && ready(&bed.t.capture("=desk:"))).then_some(())
    };
    failover::testbed::wait_for_or_none(WAIT, || under("x"))
        .unwrap_or_else(|| panic!("desk under x:\n{}", log()));
    // The person works under x.
    let first = "Remember the word kumquat.";
    bed.t.paste("=desk:", first);
    bed.t.keys("=desk:", &["Enter"]);
    failover::testbed::wait_for_or_none(WAIT, || {
        idle(&bed.t.capture("=desk:"))
            .then(|| api.tasks_of(first).len())
            .filter(|n| *n == 1)
    })
    .unwrap_or_else(|| panic!("the first answer:\n{}", log()));
    // x runs out at the next prompt: desk moves to y within 2 s.
    api.set_reply(
        TOKEN_X,
        Reply::UsageLimit {
            resets_at: now() + 3600,
        },
    );
    bed.t.paste("=desk:", "And the next step.");
    bed.t.keys("=desk:", &["Enter"]);
    failover::testbed::wait_for_or_none(WAIT, || {
        (!bed.events("quotaDetected").is_empty()).then_some(())
    })
    .unwrap_or_else(|| panic!("the limit:\n{}", log()));
    let seen = std::time::Instant::now();
    failover::testbed::wait_for_or_none(Duration::from_secs(2), || {
        (bed.account("desk") == "y").then_some(())
    })
    .unwrap_or_else(|| panic!("desk under y within 2 s:\n{}", log()));
    eprintln!("desk under y {:?} after the limit", seen.elapsed());
    // The move is journaled once carried out, a moment after tmux holds the account.
    let moved: Vec<Value> = failover::testbed::wait_for_or_none(WAIT, || {
        let moved: Vec<Value> = bed
            .journal()
            .into_iter()
            .filter(|e| e["action"]["action"] == "moveSession")
            .collect();
        (!moved.is_empty()).then_some(moved)
    })
    .unwrap_or_else(|| panic!("the move journaled:\n{}", log()));
    assert!(
        matches!(&moved[..], [m] if m["ok"] == true && m["action"]["conversation"][0].is_string()),
        "{moved:?}"
    );
    // Under y the thread goes on: y's request for the next prompt carries the first.
    failover::testbed::wait_for_or_none(WAIT, || under("y"))
        .unwrap_or_else(|| panic!("desk ready under y:\n{}", log()));
    let last = "What was the word?";
    bed.t.paste("=desk:", last);
    bed.t.keys("=desk:", &["Enter"]);
    let resumed = failover::testbed::wait_for_or_none(WAIT, || {
        api.tasks()
            .into_iter()
            .find(|r| r.credential == TOKEN_Y && r.texts("user").iter().any(|t| t.trim() == last))
    })
    .unwrap_or_else(|| panic!("y's request:\n{}", log()));
    let earlier = resumed.texts("user");
    assert!(
        earlier.iter().any(|t| t.trim() == first),
        "y's request carries the thread: {earlier:?}"
    );
    drop(c);
}

/// A real Codex pool of two under x (and y) through failover, with inbox `p`: the bed,
/// the homes (ending what runs under them when dropped), the controller.
fn real_codex_pool(
    api: &MockResponses,
    cli: &Path,
    change: impl FnOnce(failover::testbed::manifest::Manifest) -> failover::testbed::manifest::Manifest,
) -> (crate::bed::Bed, Vec<Home>, failover::testbed::Spawned) {
    let bed = crate::bed::new(&["work", "shared", "p/.agent-queue/inbox"]);
    let r = bed.root.clone();
    let (work, project) = (r.join("work"), r.join("p"));
    let (homes, m) = real_codex_family(&bed, api, cli, &[&work, &project]);
    let m = change(
        m.pool("auto", "w-", 2..=2, &work)
            .with(|p: &mut failover::api::PoolSpec| p.agent = "codex".into())
            .inbox("p", bed.inbox("p"), "auto", &project),
    );
    let manifest = bed.write("pool.yaml", &m.yaml());
    let c = real_codex_controller(&bed, &manifest);
    failover::testbed::wait_for_or_none(WAIT, || {
        ["w-0", "w-1"]
            .iter()
            .all(|s| bed.account(s) == "x" && ready(&bed.t.capture(&format!("={s}:"))))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the pool under x:\n{}", c.log()));
    (bed, homes, c)
}

#[test]
fn twenty_real_codex_tasks_at_every_reply_speed_should_each_reach_the_api_once_and_end_on_their_proof()
 {
    let Some(cli) = codex::locate_or_skip("twenty_real_codex_tasks_at_every_reply_speed") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    for delay in [50, 500, 5000].map(Duration::from_millis) {
        let api = MockResponses::start();
        api.set_reply(TOKEN_X, Reply::Slow(delay));
        let (bed, _homes, c) = real_codex_pool(&api, &cli, |m| m);
        let texts: Vec<String> = (0..20)
            .map(|i| format!("Real Codex task {i} at {delay:?}: say done."))
            .collect();
        let started = std::time::Instant::now();
        for (i, text) in texts.iter().enumerate() {
            bed.drop_task("p", &format!("t{i:02}.md"), text);
        }
        failover::testbed::wait_for_or_none(Duration::from_secs(90) + delay * 12, || {
            (bed.files("p", "done").len() == 20).then_some(())
        })
        .unwrap_or_else(|| panic!("{delay:?}: not all 20 done:\n{}", c.log()));
        let mut by_report = 0;
        for (i, text) in texts.iter().enumerate() {
            assert_eq!(
                api.tasks_of(text).len(),
                1,
                "{delay:?}: {text} reached the API once"
            );
            let how: Vec<String> = bed
                .events("taskDone")
                .into_iter()
                .filter(|e| e["action"]["task"]["name"] == format!("t{i:02}.md"))
                .map(|e| e["action"]["how"].as_str().unwrap_or_default().to_owned())
                .collect();
            let name = format!("t{i:02}.md");
            assert!(
                matches!(&how[..], [h] if h == "notify report" || h == "transcript"),
                "{delay:?} {name}: {how:?}\nits API requests: {:?}\nits journal: {:#?}",
                api.tasks_of(text)
                    .iter()
                    .map(|r| (r.received, r.answered, r.status))
                    .collect::<Vec<_>>(),
                bed.journal()
                    .into_iter()
                    .filter(|e| e.to_string().contains(&name))
                    .collect::<Vec<_>>()
            );
            by_report += usize::from(how[0] == "notify report");
            // Ended after its reply was written whole, never while it ran.
            let record = bed.record("p", "done", &name);
            let finished: jiff::Timestamp = record["finished"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("{delay:?} {name}: no finish time in {record}"));
            let answered = api.tasks_of(text)[0].answered.expect("answered");
            assert!(
                finished >= answered,
                "{delay:?} {name}: called done at {finished}, before its reply at {answered}"
            );
        }
        assert!(bed.files("p", "failed").is_empty());
        eprintln!(
            "reply time {delay:?}: 20 of 20 real Codex tasks reached the API once, done in \
             {:?}; {by_report} ended on their notify report, the rest on the rollout's \
             task_complete",
            started.elapsed()
        );
        drop(c);
    }
}

#[test]
fn a_real_codex_account_over_move_at_should_move_its_pool_before_any_request_is_refused() {
    let Some(cli) = codex::locate_or_skip("a_real_codex_account_over_move_at") else {
        return;
    };
    let _turn = crate::bed::real_cli_turn();
    let api = MockResponses::start();
    let window = |used_percent| Window {
        used_percent,
        window_minutes: 300,
        resets_at: now() + 3 * 3600,
    };
    api.set_usage(
        TOKEN_X,
        Usage {
            primary: Some(window(96.0)),
            secondary: None,
        },
    );
    api.set_usage(
        TOKEN_Y,
        Usage {
            primary: Some(window(12.0)),
            secondary: None,
        },
    );
    let (bed, _homes, c) = real_codex_pool(&api, &cli, |m| {
        m.edit("c", |c: &mut failover::api::ControllerConfigSpec| {
            c.quota.move_at = Some(95)
        })
    });
    bed.drop_task("p", "first.md", "The task that reads 96 %.");
    failover::testbed::wait_for_or_none(WAIT, || {
        ["w-0", "w-1"]
            .iter()
            .all(|s| bed.account(s) == "y")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the pool under y:\n{}", c.log()));
    let swap = &bed.events("swap")[0];
    assert_eq!(swap["reason"], "usage 96% reached moveAt 95%", "{swap}");
    // x would refuse every turn from now on: none reaches it.
    api.set_reply(
        TOKEN_X,
        Reply::UsageLimit {
            resets_at: now() + 3600,
        },
    );
    for i in 0..4 {
        bed.drop_task(
            "p",
            &format!("t{i}.md"),
            &format!("Real task {i} after the move."),
        );
    }
    failover::testbed::wait_for_or_none(Duration::from_secs(90), || {
        (bed.files("p", "done").len() == 5).then_some(())
    })
    .unwrap_or_else(|| panic!("five tasks done:\n{}", c.log()));
    assert!(bed.events("quotaDetected").is_empty(), "{}", c.log());
    let refused: Vec<_> = api
        .tasks()
        .into_iter()
        .filter(|r| r.credential == TOKEN_X)
        .filter_map(|r| r.prompt())
        .filter(|p| p.contains("after the move"))
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
    // The use the headers reported shows in `get accounts`.
    let out = bed
        .command(&[
            "get",
            "accounts",
            "-o",
            "json",
            "-f",
            &bed.root.join("pool.yaml").to_string_lossy(),
        ])
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let used = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| r["fiveHour"]["used"].clone())
    };
    assert_eq!(used("x"), Some(serde_json::json!(96.0)), "{rows}");
    assert_eq!(used("y"), Some(serde_json::json!(12.0)), "{rows}");
    drop(c);
}
