//! The stand-in agent driven through a real, private tmux server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use failover::slug;
use failover::testbed::{TmuxServer, wait_for};

use crate::bed::{BIN, classify};

const WAIT: Duration = Duration::from_secs(10);

struct Agent {
    server: TmuxServer,
    home: PathBuf,
    work: PathBuf,
}

impl Agent {
    fn new() -> Self {
        let server = TmuxServer::start();
        let home = server.mkdir("home");
        let work = server.mkdir("work");
        Self { server, home, work }
    }

    fn start(&self, name: &str, extra: &[&str], env: &[(&str, &str)]) {
        let home = self.home.to_string_lossy();
        let mut vars = vec![
            ("CLAUDE_CONFIG_DIR", &*home),
            ("FAILOVER_SIM_TURN", "300ms"),
        ];
        vars.extend(env);
        let mut argv = vec![BIN, "sim-agent", "--dangerously-skip-permissions"];
        argv.extend(extra);
        self.server.new_session_kept(name, &self.work, &vars, &argv);
    }

    fn wait_idle(&self, name: &str) -> String {
        self.server.wait_screen(name, WAIT, "the idle prompt", |s| {
            s.lines().any(|l| l.starts_with("❯\u{a0}")) && !s.contains("esc to interrupt")
        })
    }

    fn transcripts(&self) -> Vec<PathBuf> {
        let dir = self.home.join("projects").join(slug(&self.work));
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
    }
}

fn resume_uuid(screen: &str) -> Option<String> {
    let line = screen.lines().find(|l| l.starts_with("claude --resume "))?;
    Some(
        line.trim_start_matches("claude --resume ")
            .trim()
            .to_owned(),
    )
}

#[test]
fn sim_agent_should_draw_the_prompt_between_rules() {
    let a = Agent::new();
    a.start("s", &[], &[]);
    let screen = a.wait_idle("s");
    let lines: Vec<&str> = screen.lines().collect();
    let prompt = lines.iter().position(|l| l.starts_with("❯\u{a0}")).unwrap();
    assert!(lines[prompt - 1].starts_with("────"), "{screen}");
    assert!(lines[prompt + 1].starts_with("────"), "{screen}");
    assert!(screen.contains("Claude Code v2.1.329"), "{screen}");
    assert!(
        screen.contains(&a.work.to_string_lossy().to_string()),
        "{screen}"
    );
}

#[test]
fn sim_agent_should_hold_a_bracketed_paste_until_a_lone_enter() {
    let a = Agent::new();
    a.start("s", &[], &[("FAILOVER_SIM_TURN", "1s")]);
    a.wait_idle("s");
    let payload = "first line with $(rm -rf /) and `backticks`\nsecond 'single' \"double\" \\e[31m\nthird\t\u{1b}[0m end";
    a.server.paste("s", payload);
    a.server
        .wait_screen("s", WAIT, "the paste placeholder", |s| {
            s.contains("[Pasted text #1 +3 lines]")
        });
    // Keys are handled in order: a character typed after the paste showing up behind
    // the placeholder proves the paste was held, not submitted.
    a.server.type_text("s", "Z");
    let screen = a.server.wait_screen("s", WAIT, "the typed character", |s| {
        s.contains("[Pasted text #1 +3 lines]Z")
    });
    assert!(
        !screen.contains("esc to interrupt"),
        "submitted too early:\n{screen}"
    );
    assert!(
        a.transcripts().is_empty(),
        "nothing may reach the transcript before Enter"
    );
    a.server.keys("s", &["BSpace"]);
    a.server
        .wait_screen("s", WAIT, "the character removed", |s| {
            s.lines().any(|l| l.ends_with("[Pasted text #1 +3 lines]"))
        });
    a.server.keys("s", &["Enter"]);
    a.server.wait_screen("s", WAIT, "the busy marker", |s| {
        s.contains("esc to interrupt")
    });
    a.server.wait_screen("s", WAIT, "the end of the turn", |s| {
        s.contains("Churned for")
    });
    let files = a.transcripts();
    assert_eq!(files.len(), 1);
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&files[0])
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        first["message"]["content"], payload,
        "payload must arrive byte-exact"
    );
}

#[test]
fn sim_agent_should_submit_the_first_line_of_an_unbracketed_paste_at_once() {
    let a = Agent::new();
    a.start("s", &[], &[("FAILOVER_SIM_TURN", "5s")]);
    a.wait_idle("s");
    a.server.tmux(&["set-buffer", "-b", "raw", "one\ntwo"]);
    a.server
        .tmux(&["paste-buffer", "-d", "-b", "raw", "-t", "s"]);
    let screen = a
        .server
        .wait_screen("s", WAIT, "a turn started by the first line", |s| {
            s.contains("esc to interrupt")
        });
    assert!(screen.contains("> one"), "{screen}");
}

#[test]
fn sim_agent_should_print_a_resume_line_on_exit_and_resume_the_conversation() {
    let a = Agent::new();
    a.start("s", &[], &[]);
    a.wait_idle("s");
    a.server.type_text("s", "remember the word kumquat");
    a.server.keys("s", &["Enter"]);
    a.server
        .wait_screen("s", WAIT, "the answer", |s| s.contains("Churned for"));
    a.server.type_text("s", "/exit");
    a.server.keys("s", &["Enter"]);
    let screen = a
        .server
        .wait_output("s", WAIT, "the resume line", |s| resume_uuid(s).is_some());
    assert!(screen.contains("Resume this session with:"), "{screen}");
    let uuid = resume_uuid(&screen).unwrap();
    uuid::Uuid::parse_str(&uuid).unwrap();
    let files = a.transcripts();
    assert_eq!(
        files,
        vec![
            a.home
                .join("projects")
                .join(slug(&a.work))
                .join(format!("{uuid}.jsonl"))
        ]
    );
    let before = std::fs::read_to_string(&files[0]).unwrap().lines().count();

    a.start("r", &["--resume", &uuid], &[]);
    let screen = a.wait_idle("r");
    assert!(screen.contains("> remember the word kumquat"), "{screen}");
    a.server.type_text("r", "what was the word?");
    a.server.keys("r", &["Enter"]);
    a.server.wait_screen("r", WAIT, "the second answer", |s| {
        s.matches("Churned for").count() >= 1
            && s.contains("> what was the word?")
            && !s.contains("esc to interrupt")
    });
    wait_for(WAIT, "the transcript to grow", || {
        let now = std::fs::read_to_string(&files[0]).unwrap().lines().count();
        (now >= before + 2).then_some(())
    });
    assert_eq!(
        a.transcripts().len(),
        1,
        "resume must append to the same transcript"
    );
}

#[test]
fn sim_agent_should_refuse_an_unknown_conversation() {
    let a = Agent::new();
    let unknown = "0b7e6f8a-3c1d-4e8b-9f00-123456789abc";
    a.start("s", &["--resume", unknown], &[]);
    let screen = a.server.wait_output("s", WAIT, "the refusal", |s| {
        s.contains("No conversation found")
    });
    assert!(
        screen.contains(&format!("No conversation found with session ID: {unknown}")),
        "{screen}"
    );
    let status = wait_for(WAIT, "the agent to exit", || a.server.exit_status("s"));
    assert_eq!(status, 1);
}

#[test]
fn sim_agent_should_play_scripted_limits_errors_and_dialogs() {
    let a = Agent::new();
    a.start(
        "s",
        &[],
        &[(
            "FAILOVER_SIM_SCRIPT",
            "limit 7:11am (UTC); error500; dialog; crash",
        )],
    );
    a.wait_idle("s");
    let turn = |text: &str| {
        a.server.type_text("s", text);
        a.server.keys("s", &["Enter"]);
    };
    turn("one");
    a.server.wait_screen("s", WAIT, "the usage limit", |s| {
        s.contains("You've hit your 5-hour limit · resets 7:11am (UTC)")
            && s.contains("Usage limit reached · continuing automatically at 7:11am")
    });
    a.wait_idle("s");
    turn("two");
    a.server.wait_screen("s", WAIT, "the retrying 500", |s| {
        s.contains("✻ 500 Internal server error · retrying")
    });
    a.server.wait_screen("s", WAIT, "the final 500", |s| {
        s.contains("API Error: 500 Internal server error")
    });
    a.wait_idle("s");
    turn("three");
    let screen = a.server.wait_screen("s", WAIT, "the dialog", |s| {
        s.contains("Do you want to proceed?")
    });
    assert!(screen.contains("❯ 1. Yes"), "{screen}");
    a.server.keys("s", &["Enter"]);
    a.server
        .wait_screen("s", WAIT, "the turn after the dialog", |s| {
            s.contains("Churned for")
        });
    a.wait_idle("s");
    turn("four");
    let status = wait_for(WAIT, "the agent to exit", || a.server.exit_status("s"));
    assert_eq!(status, 1);
}

#[test]
fn sim_agent_should_hit_the_limit_while_the_account_is_marked_exhausted() {
    let a = Agent::new();
    std::fs::write(a.home.join(".sim-limit"), "3pm (UTC)").unwrap();
    a.start("s", &[], &[]);
    a.wait_idle("s");
    a.server.type_text("s", "go");
    a.server.keys("s", &["Enter"]);
    a.server.wait_screen("s", WAIT, "the usage limit", |s| {
        s.contains("resets 3pm (UTC)")
    });
}

#[test]
fn classify_should_read_the_stand_ins_screens() {
    let a = Agent::new();
    a.start(
        "s",
        &[],
        &[(
            "FAILOVER_SIM_SCRIPT",
            "limit 7:11am (UTC); error500-ratelimit; ratelimit",
        )],
    );
    a.wait_idle("s");
    assert_eq!(classify(&a.server.capture("s"))["class"], "idle");
    let turn = |text: &str| {
        a.server.type_text("s", text);
        a.server.keys("s", &["Enter"]);
    };
    turn("one");
    let screen = a.server.wait_screen("s", WAIT, "the usage limit", |s| {
        s.contains("Usage limit reached")
    });
    let v = classify(&screen);
    assert_eq!(v["class"], "quota-exhausted", "{v}");
    assert!(
        v["resetsAt"].as_str().unwrap().ends_with("T07:11:00Z"),
        "{v}"
    );
    turn("two");
    let screen = a
        .server
        .wait_screen("s", WAIT, "the final 500", |s| s.contains("API Error: 500"));
    assert_eq!(
        classify(&screen)["class"],
        "server-error",
        "a 500 that mentions a rate limit"
    );
    turn("three");
    let screen = a
        .server
        .wait_screen("s", WAIT, "the 429", |s| s.contains("not your usage limit"));
    assert_eq!(classify(&screen)["class"], "rate-limited");
}

/// Runs `failover hook [args]` with `env` and `input`; (exit code, stdout, stderr,
/// elapsed).
fn hook(args: &[&str], env: &[(&str, &Path)], input: &str) -> (i32, String, String, Duration) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("hook")
        .args(args)
        .env_remove("FAILOVER_SESSION")
        .env_remove("FAILOVER_REPORTS")
        .env_remove("FAILOVER_ACCOUNT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = std::time::Instant::now();
    let out = failover::testbed::run_with_stdin(cmd, input.as_bytes());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn the_hook_should_exit_zero_at_once_and_quietly_whatever_it_is_given() {
    let server = TmuxServer::start();
    let reports = server.dir().join("state/reports");
    std::fs::create_dir_all(reports.parent().unwrap()).unwrap();
    let file = server.dir().join("a-file");
    std::fs::write(&file, "").unwrap();
    let session = Path::new("w-0");
    let stop = r#"{"hook_event_name":"Stop","prompt_id":"p1","last_assistant_message":"Done."}"#;
    let gone = server.dir().join("gone/reports");
    let in_the_way = file.join("reports");
    let read_only = Path::new("/proc/failover-reports");
    for (dir, input) in [
        (reports.as_path(), stop),
        (reports.as_path(), "{not json"),
        (reports.as_path(), ""),
        (gone.as_path(), stop),
        (in_the_way.as_path(), stop),
        (read_only, stop),
    ] {
        let env = [("FAILOVER_SESSION", session), ("FAILOVER_REPORTS", dir)];
        let (code, out, err, took) = hook(&[], &env, input);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "", ""),
            "{dir:?} {input:?}"
        );
        assert!(took < Duration::from_secs(1), "{dir:?}: {took:?}");
    }
    let written: Vec<_> = std::fs::read_dir(&reports).unwrap().flatten().collect();
    assert_eq!(written.len(), 1, "only the Stop with a folder to go to");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(written[0].path()).unwrap()).unwrap();
    assert_eq!(record["event"], "Stop");
    assert_eq!(record["session"], "w-0");
    assert_eq!(record["payload"]["last_assistant_message"], "Done.");
    assert!(
        !server.dir().join("gone").exists(),
        "a missing state folder is not made"
    );
}

#[test]
fn the_status_line_should_show_the_use_under_failover_and_nothing_outside_it() {
    let server = TmuxServer::start();
    let reports = server.dir().join("reports");
    let input = r#"{"session_id":"c1","rate_limits":{"five_hour":{"used_percentage":42,"resets_at":4102444800},"seven_day":{"used_percentage":17,"resets_at":4102444800}}}"#;
    let env = [
        ("FAILOVER_SESSION", Path::new("w-0")),
        ("FAILOVER_ACCOUNT", Path::new("a")),
        ("FAILOVER_REPORTS", reports.as_path()),
    ];
    let (code, out, _, _) = hook(&["status-line"], &env, input);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("account a · 5h 42% · 7d 17% · resets "),
        "{out}"
    );
    assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 1);
    // The operator's own `claude` under the same home: nothing shown, nothing recorded.
    let (code, out, err, _) = hook(&["status-line"], &env[2..], input);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let (code, out, _, _) = hook(&[], &env[2..], r#"{"hook_event_name":"Stop"}"#);
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 1);
}

#[test]
fn an_agents_turn_should_end_normally_when_its_reports_cannot_be_written() {
    let a = Agent::new();
    let hooks = serde_json::json!({
        "hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command", "command": format!("{BIN} hook")}]}],
                  "Stop": [{"hooks": [{"type": "command", "command": format!("{BIN} hook")}]}]},
        "statusLine": {"type": "command", "command": format!("{BIN} hook status-line")},
    });
    std::fs::write(a.home.join("settings.json"), hooks.to_string()).unwrap();
    a.start(
        "s",
        &[],
        &[
            ("FAILOVER_SESSION", "s"),
            ("FAILOVER_ACCOUNT", "main"),
            ("FAILOVER_REPORTS", "/proc/failover-reports"),
        ],
    );
    a.wait_idle("s");
    a.server.type_text("s", "do it");
    a.server.keys("s", &["Enter"]);
    let screen = a.server.wait_screen("s", WAIT, "the end of the turn", |s| {
        s.contains("Churned for")
    });
    assert!(
        screen.contains("account main"),
        "the status line still draws:\n{screen}"
    );
}

/// The rollouts under `home`'s `sessions/`.
fn codex_rollouts(home: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for path in std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
        {
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&home.join("sessions"), &mut out);
    out
}

/// The `event_msg` payloads of type `kind` in `rollout`.
fn codex_events(rollout: &Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(rollout)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["type"] == "event_msg" && l["payload"]["type"] == kind)
        .map(|l| l["payload"].clone())
        .collect()
}

fn codex_reports(file: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn codex_stand_in_should_answer_report_hit_the_limit_and_resume_its_thread() {
    let a = Agent::new();
    let reports = a.server.dir().join("reports.jsonl");
    let recorder = format!("printf '%s\\n' \"$1\" >> '{}'", reports.display());
    let config = format!(
        "model = \"gpt-5.5\"\nnotify = [\"sh\", \"-c\", {}, \"sh\"]\n",
        serde_json::Value::from(recorder)
    );
    std::fs::write(a.home.join("config.toml"), config).unwrap();
    let home = a.home.to_string_lossy().into_owned();
    let env = [
        ("CODEX_HOME", home.as_str()),
        ("FAILOVER_SIM_TURN", "300ms"),
    ];
    let start = |name: &str, extra: &[&str]| {
        let mut argv = vec![BIN, "sim-agent", "--agent", "codex"];
        argv.extend(extra);
        a.server.new_session_kept(name, &a.work, &env, &argv);
        a.server
            .tmux(&["resize-window", "-t", name, "-x", "120", "-y", "40"]);
    };
    let idle = |s: &str| {
        s.contains("› Ask Codex to do anything")
            && s.contains("gpt-5.5 default ·")
            && !s.contains("esc to interrupt")
    };
    start("c", &[]);
    let first = a.server.wait_screen("=c:", WAIT, "the input line", idle);
    assert!(first.contains(">_ OpenAI Codex (v0.171.0)"), "{first}");

    a.server.paste("=c:", "remember the word kumquat");
    a.server.keys("=c:", &["Enter"]);
    a.server.wait_screen("=c:", WAIT, "the working line", |s| {
        s.contains("• Working (") && s.contains("esc to interrupt)")
    });
    a.server.wait_screen("=c:", WAIT, "the answer", |s| {
        s.contains("• Done. I made the change and checked it.") && idle(s)
    });
    let rollout = wait_for(WAIT, "the rollout", || {
        codex_rollouts(&a.home).into_iter().next()
    });
    let meta: serde_json::Value = std::fs::read_to_string(&rollout)
        .ok()
        .and_then(|t| serde_json::from_str(t.lines().next()?).ok())
        .unwrap();
    assert_eq!(meta["type"], "session_meta", "{meta}");
    let thread = meta["payload"]["id"].as_str().unwrap().to_owned();
    let name = rollout.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.ends_with(&format!("-{thread}.jsonl")), "{name}");
    let both = wait_for(WAIT, "the turn's and the title's reports", || {
        let r = codex_reports(&reports);
        (r.len() == 2).then_some(r)
    });
    // The two notify calls are spawned and not waited for: their order is not kept.
    let (turn, title): (Vec<_>, Vec<_>) =
        both.iter().partition(|r| r["thread-id"] == thread.as_str());
    assert_eq!(
        (turn.len(), title.len()),
        (1, 1),
        "one report of the thread, one of the title's own thread: {both:#?}"
    );
    assert_eq!(
        turn[0]["input-messages"],
        serde_json::json!(["remember the word kumquat"])
    );

    // The account used up: the limit's lines wrapped at 120 columns, the rollout's
    // structured limit, no report.
    std::fs::write(a.home.join(".sim-limit"), "4:13 AM").unwrap();
    a.server.paste("=c:", "Write the summary.");
    a.server.keys("=c:", &["Enter"]);
    let limit = a.server.wait_screen("=c:", WAIT, "the usage limit", |s| {
        s.contains("usage to purchase more credits or try again at 4:13 AM.") && idle(s)
    });
    assert!(
        limit.contains("■ You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit https://chatgpt.com/settings/\n"),
        "{limit}"
    );
    let failed = wait_for(WAIT, "the failed turn", || {
        codex_events(&rollout, "task_complete")
            .into_iter()
            .find(|e| !e["error"].is_null())
    });
    assert_eq!(failed["error"]["codex_error_info"], "usage_limit_exceeded");

    // Resumed, the thread goes on in the same rollout; the next report lists every
    // prompt, none came for the cut turn.
    std::fs::remove_file(a.home.join(".sim-limit")).unwrap();
    // c is the server's only session: without exit-empty off, killing it ends the
    // server while d is being started on it.
    a.server.tmux(&["set-option", "-s", "exit-empty", "off"]);
    a.server.tmux(&["kill-session", "-t", "c"]);
    start("d", &["resume", &thread]);
    a.server
        .wait_screen("=d:", WAIT, "the resumed thread", |s| {
            s.contains("› remember the word kumquat") && s.contains("■ You’ve hit") && idle(s)
        });
    a.server.paste("=d:", "what was the word?");
    a.server.keys("=d:", &["Enter"]);
    let last = wait_for(WAIT, "the resumed turn's report", || {
        codex_reports(&reports).get(2).cloned()
    });
    assert_eq!(last["thread-id"], thread.as_str());
    let prompts = [
        "remember the word kumquat",
        "Write the summary.",
        "what was the word?",
    ];
    assert_eq!(last["input-messages"], serde_json::json!(prompts));
    assert_eq!(codex_rollouts(&a.home), std::slice::from_ref(&rollout));
    assert_eq!(codex_events(&rollout, "task_complete").len(), 3);
}

#[test]
fn codex_stand_in_should_ask_trust_for_a_git_folder_and_save_the_answer() {
    let a = Agent::new();
    std::fs::create_dir(a.work.join(".git")).unwrap();
    let home = a.home.to_string_lossy().into_owned();
    let env = [("CODEX_HOME", home.as_str())];
    let argv = [BIN, "sim-agent", "--agent", "codex"];
    a.server.new_session_kept("c", &a.work, &env, &argv);
    a.server.wait_screen("=c:", WAIT, "the trust dialog", |s| {
        s.contains("Trust this folder?") && s.contains("› 1. Trust and continue")
    });
    a.server.keys("=c:", &["Enter"]);
    a.server.wait_screen("=c:", WAIT, "the input line", |s| {
        s.contains("› Ask Codex to do anything")
    });
    let config = std::fs::read_to_string(a.home.join("config.toml")).unwrap();
    let table = format!(
        "[projects.{}]",
        serde_json::Value::from(&*a.work.to_string_lossy())
    );
    assert!(
        config.contains(&format!("{table}\ntrust_level = \"trusted\"")),
        "{config}"
    );
}
