//! The operator's everyday verbs on a live pool of stand-in agents: `delete`,
//! `describe`, `get events`, `get -w`, `restart session` and `return task`, run as an
//! operator runs them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use failover::api::ControllerConfigSpec;
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::wait_for;

use crate::bed::{self, BIN, Bed};

/// Two accounts sharing their conversations, a pool of 3 taking tasks from an inbox,
/// and a dedicated session; the agents' turns take `turn`.
fn pool(bed: &Bed, turn: &str) -> PathBuf {
    pool_with(bed, turn, |_| {})
}

/// [`pool`], with `controller` changing the controller's configuration (its metrics).
fn pool_with(bed: &Bed, turn: &str, controller: impl FnOnce(&mut ControllerConfigSpec)) -> PathBuf {
    let r = &bed.root;
    for dir in ["a", "b", "shared", "work/.agent-queue/inbox"] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    let m = Manifest::new()
        .account("a", r.join("a"))
        .account("b", r.join("b"))
        .priority(1)
        .shared_state("shared", r.join("shared"))
        .agent("claude", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", turn)
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("250ms");
            c.dispatch.submit_delay = duration("100ms");
            controller(c);
        })
        .pool("p", "w-", 3..=3, r.join("work"))
        .dedicated("desk", r.join("work"))
        .inbox(
            "work",
            r.join("work/.agent-queue/inbox"),
            "p",
            r.join("work"),
        );
    bed.write("manifests/pool.yaml", &m.yaml())
}

/// Every entry under `home` but the agent's own records (`sessions/`, which Claude
/// Code and the stand-in write themselves): a file's bytes, a link's text, a folder.
fn snapshot(home: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![home.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(home).unwrap().to_path_buf();
            if rel.starts_with("sessions") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "folder".to_owned()
            } else {
                format!("file {:?}", std::fs::read(&path).unwrap())
            };
            out.insert(rel, what);
        }
    }
    out
}

#[test]
fn delete_should_leave_a_persons_sessions_every_task_and_the_homes_as_they_were() {
    let bed = bed::new(&["manifests"]);
    let file = pool(&bed, "30s");
    // The operator's own settings in one home, written their way, and a file of theirs.
    std::fs::write(
        bed.root.join("a/settings.json"),
        "{\"model\":\"opus\",  \"hooks\": {\"Stop\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"notify-send done\"}]}]}}",
    )
    .unwrap();
    std::fs::write(bed.root.join("b/notes.txt"), "mine\n").unwrap();
    let before = [snapshot(&bed.root.join("a")), snapshot(&bed.root.join("b"))];
    bed.t
        .new_session("mine", &bed.root, &[], &["sleep", "1000"]);

    let mut controller = bed.controller(&file, "controller", None);
    for i in 0..5 {
        bed.drop_task("work", &format!("t{i}.md"), "do the thing");
    }
    // Three tasks claimed by the three pool agents, which take 30 s each.
    wait_for(Duration::from_secs(30), "three tasks running", || {
        (bed.files("work", "active").len() == 3).then_some(())
    });

    let (code, out) = bed.run(&["delete", "-f", &file.to_string_lossy(), "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("- session w-0") && out.contains("back to the inbox"),
        "{out}"
    );
    // Rendered as `diff` renders a plan.
    assert!(
        out.contains("failover will perform the following actions:")
            && out.contains("Plan: 0 to add, 4 to change, 11 to delete."),
        "{out}"
    );
    assert_eq!(
        bed.files("work", "active").len(),
        3,
        "a dry run changes nothing"
    );

    let (code, out) = bed.run(&["delete", "-f", &file.to_string_lossy()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Controller stopped."), "{out}");
    let status = wait_for(Duration::from_secs(10), "the controller to exit", || {
        controller.child.try_wait().unwrap()
    });
    assert!(
        status.success(),
        "the controller stopped cleanly: {status:?}"
    );
    assert_eq!(
        bed.t.sessions(),
        ["mine"],
        "only the person's session is left"
    );
    assert!(bed.files("work", "active").is_empty(), "{out}");
    let mut tasks = bed.files("work", "inbox");
    tasks.extend(bed.files("work", "done"));
    tasks.extend(bed.files("work", "failed"));
    tasks.sort();
    assert_eq!(
        tasks,
        ["t0.md", "t1.md", "t2.md", "t3.md", "t4.md"],
        "{out}"
    );
    let after = [snapshot(&bed.root.join("a")), snapshot(&bed.root.join("b"))];
    assert_eq!(after, before, "the account homes as they were before");
    // delete's lines are the journal's ordinary action lines, marked as delete's.
    let deleted: Vec<String> = bed
        .journal()
        .iter()
        .filter(|e| e["origin"] == "delete")
        .map(|e| {
            assert_eq!(e["event"], "action", "{e}");
            assert_eq!(e["ok"], true, "{e}");
            e["action"]["action"].as_str().unwrap().to_owned()
        })
        .collect();
    for verb in ["deleteSession", "returnTask", "restoreSettings"] {
        assert!(deleted.iter().any(|v| v == verb), "{verb} in {deleted:?}");
    }

    let (code, out) = bed.run(&["delete", "-f", &file.to_string_lossy()]);
    assert_eq!((code, out.trim()), (0, "Nothing to delete."));
}

#[test]
fn describe_and_events_should_tell_a_sessions_move_and_the_reading_behind_it() {
    let bed = bed::new(&["manifests"]);
    let file = pool(&bed, "300ms");
    let controller = bed.controller(&file, "controller", None);
    wait_for(Duration::from_secs(30), "the pool up", || {
        (bed.live_pids("w-").len() == 3).then_some(())
    });
    // Account a runs out: the next turn under it hits the limit.
    std::fs::write(bed.root.join("a/.sim-limit"), "11:59pm (UTC)\n").unwrap();
    bed.drop_task("work", "t0.md", "do the thing");
    wait_for(Duration::from_secs(30), "every session on b", || {
        let sessions = bed.sessions("w-");
        (sessions.len() == 3 && sessions.iter().all(|s| bed.account(s) == "b")).then_some(())
    });
    let moved = wait_for(Duration::from_secs(10), "a resumed move journaled", || {
        bed.journal().into_iter().find(|e| {
            e["action"]["action"] == "moveSession" && e["action"]["conversation"][0].is_string()
        })
    });
    let name = moved["action"]["session"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let conversation = moved["action"]["conversation"][0]
        .as_str()
        .unwrap()
        .to_owned();
    // The moved task ends and its agent restarts meanwhile: the journal is stopped
    // (SIGTERM) so that describe and the two `get events` read the same lines (a line
    // landing between them failed 2 of 14 runs under load).
    let mut controller = controller;
    controller.signal("TERM");
    wait_for(Duration::from_secs(10), "the controller stopped", || {
        controller.child.try_wait().ok().flatten()
    });

    let (code, out) = bed.run(&["describe", "session", &name, "-f", &file.to_string_lossy()]);
    assert_eq!(code, 0, "{out}");
    let moved_line = out
        .lines()
        .find(|l| l.contains("moveSession"))
        .unwrap_or_else(|| panic!("no move in:\n{out}"));
    assert!(moved_line.contains("from account a to b"), "{out}");
    assert!(
        moved_line.contains(&format!("resuming conversation {conversation}")),
        "{out}"
    );
    assert!(
        moved_line.contains("You've hit your"),
        "the reading behind it:\n{out}"
    );
    assert!(out.contains("Account:         b"), "{out}");

    let (code, events) = bed.run(&["get", "events", "--for", &format!("session/{name}")]);
    assert_eq!(code, 0, "{events}");
    let described: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Events:"))
        .skip(1)
        .filter(|l| !l.trim_start().starts_with('('))
        .map(|l| l.split_whitespace().nth(2).unwrap_or(""))
        .collect();
    let listed: Vec<&str> = events
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    assert!(
        listed.ends_with(&described),
        "describe's events are the last of get events, in order:\n{out}\n{events}"
    );
    let (code, json) = bed.run(&[
        "get",
        "events",
        "--for",
        &format!("session/{name}"),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let json: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(json.len(), listed.len(), "{events}\n{json:#?}");
    drop(controller);
}

#[test]
fn get_sessions_watch_should_show_a_killed_session_go_and_come_back_in_a_pipe() {
    let bed = bed::new(&["manifests"]);
    let file = pool(&bed, "300ms");
    let controller = bed.controller(&file, "controller", None);
    wait_for(Duration::from_secs(30), "the pool up", || {
        (bed.live_pids("w-").len() == 3).then_some(())
    });
    let mut watch = Watching(
        bed.command(&["get", "sessions", "-w", "-f", &file.to_string_lossy()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = lines_of(&mut watch.0);
    // The table first: a header and the four sessions.
    let table: Vec<String> = (0..5).map(|_| next_line(&lines)).collect();
    assert!(table[0].starts_with("NAME"), "{table:?}");
    let old = bed.pids()["w-1"];
    bed.t.tmux(&["kill-session", "-t", "=w-1"]);
    let mut seen = Vec::new();
    let back = wait_for(Duration::from_secs(20), "w-1 gone, then back", || {
        let line = lines.recv_timeout(Duration::from_millis(100)).ok()?;
        seen.push(line.clone());
        let gone = seen
            .iter()
            .any(|l| l.starts_with("w-1 ") && l.contains(" gone "));
        (gone && line.starts_with("w-1 ") && line.contains(" running ")).then_some(line)
    });
    assert!(!back.contains(&old.to_string()), "a new agent: {seen:?}");
    drop(watch);
    drop(controller);
}

/// The lines a child prints, read on a thread of their own, so that a test waiting
/// for one fails after a deadline instead of hanging.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next line of `lines` within 30 s.
fn next_line(lines: &std::sync::mpsc::Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("no line within 30 s: {e}"))
}

/// A `get -w` process, ended when the test ends, passed or not.
struct Watching(std::process::Child);

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET /metrics` on `port`, as curl does: the body.
fn scrape(port: u16) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The value of the sample `name` (with its labels, as written) in `text`; 0 when absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn metrics_should_count_the_tasks_and_swaps_the_journal_holds() {
    let bed = bed::new(&["manifests"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = pool_with(&bed, "200ms", |c| {
        c.metrics.enabled = true;
        c.metrics.listen = format!("127.0.0.1:{port}");
    });
    let controller = bed.controller(&file, "controller", None);
    wait_for(Duration::from_secs(30), "the pool up", || {
        (bed.live_pids("w-").len() == 3).then_some(())
    });
    for i in 0..6 {
        bed.drop_task("work", &format!("t{i}.md"), "do the thing");
    }
    wait_for(Duration::from_secs(60), "three tasks done", || {
        (bed.files("work", "done").len() >= 3).then_some(())
    });
    // Account a runs out mid-run: a swap, and the rest done under b.
    std::fs::write(bed.root.join("a/.sim-limit"), "11:59pm (UTC)\n").unwrap();
    wait_for(Duration::from_secs(60), "every task done", || {
        (bed.files("work", "done").len() == 6).then_some(())
    });
    let text = wait_for(Duration::from_secs(10), "the last round counted", || {
        let text = scrape(port);
        let on_b = text.lines().any(|l| {
            l.starts_with("failover_sessions{role=\"pool/p\"") && l.contains("account=\"b\"}")
        });
        (sample(&text, "failover_tasks_total{outcome=\"done\"}") == 6.0 && on_b).then_some(text)
    });
    // Valid text format: every line a comment or `name{labels} value`, and the end mark.
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(line.starts_with("failover_"), "{line}");
    }
    let journal = bed.journal();
    let count = |event: &str| {
        journal
            .iter()
            .filter(|e| e["event"] == event && e["ok"] != false)
            .count() as f64
    };
    assert_eq!(
        sample(&text, "failover_tasks_total{outcome=\"done\"}"),
        count("taskDone")
    );
    assert_eq!(
        sample(&text, "failover_tasks_total{outcome=\"claimed\"}"),
        count("taskClaimed")
    );
    assert_eq!(sample(&text, "failover_swaps_total"), count("swap"));
    assert!(count("swap") >= 1.0, "a swap happened");
    assert!(sample(&text, "failover_reconciles_total") > 0.0, "{text}");
    drop(controller);
}

#[test]
fn get_events_watch_should_follow_the_journal_as_json_lines() {
    let bed = bed::new(&["manifests"]);
    let file = pool(&bed, "300ms");
    // The state folder exists before anything runs: apply of nothing yet.
    std::fs::create_dir_all(bed.state()).unwrap();
    let mut watch = Watching(
        bed.command(&["get", "events", "-w", "-o", "json", "--for", "session/w-2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = lines_of(&mut watch.0);
    let controller = bed.controller(&file, "controller", None);
    // The first event about w-2, as one JSON object on a line of its own.
    let line = next_line(&lines);
    let told: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(told["event"], "createSession", "{told}");
    assert!(told["objects"][0] == "session/w-2", "{told}");
    drop(controller);
    drop(watch);
}

/// Two accounts sharing their conversations and a pool of 2 taking tasks from an inbox;
/// the agents' turns take 300 ms, but the first one taken anywhere hangs until stopped
/// (the stand-in's control file).
fn hanging_pool(bed: &Bed) -> PathBuf {
    let r = &bed.root;
    for dir in ["a", "b", "shared", "work/.agent-queue/inbox"] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    let control = r.join("control");
    std::fs::write(&control, "hang\n").unwrap();
    let m = Manifest::new()
        .account("a", r.join("a"))
        .account("b", r.join("b"))
        .priority(1)
        .shared_state("shared", r.join("shared"))
        .agent(
            "claude",
            &[BIN, "sim-agent", "--control", &control.to_string_lossy()],
        )
        .env("FAILOVER_SIM_TURN", "300ms")
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("250ms");
            c.dispatch.submit_delay = duration("100ms");
        })
        .pool("p", "w-", 2..=2, r.join("work"))
        .inbox(
            "work",
            r.join("work/.agent-queue/inbox"),
            "p",
            r.join("work"),
        );
    bed.write("manifests/pool.yaml", &m.yaml())
}

/// The session whose agent runs the task `name` (its turn under way), once it does.
fn running(bed: &Bed, name: &str) -> String {
    wait_for(Duration::from_secs(30), "the task's turn under way", || {
        let active = bed.files("work", "active");
        let file = active.iter().find(|f| f.ends_with(name))?;
        let facts: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bed.state().join("facts.json")).ok()?).ok()?;
        let (session, _) = facts["sessions"]
            .as_object()?
            .iter()
            .find(|(_, f)| f["task"]["file"] == file.as_str() && f["task"]["stage"] == "running")?;
        Some(session.clone())
    })
}

/// The journal's entries of kind `event` about task `name`.
fn about(bed: &Bed, event: &str, name: &str) -> Vec<serde_json::Value> {
    bed.events(event)
        .into_iter()
        .filter(|e| e["action"]["task"]["name"] == name)
        .collect()
}

#[test]
fn restart_session_should_restart_the_agent_resuming_its_conversation_and_its_task() {
    let bed = bed::new(&["manifests"]);
    let file = hanging_pool(&bed);
    let _controller = bed.controller(&file, "controller", None);
    bed.drop_task("work", "long.md", "a long task");
    let session = running(&bed, "long.md");
    let home = bed.root.join("a");
    let held = wait_for(Duration::from_secs(10), "the agent's conversation", || {
        bed.t.conversation(&home, &session)
    });
    let before = bed.t.pane_pid(&format!("={session}:"));

    let (code, out) = bed.run(&["restart", "session", &session, "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("restarted at the operator's request"), "{out}");
    assert_eq!(bed.t.pane_pid(&format!("={session}:")), before, "a dry run");

    let (code, out) = bed.run(&["restart", "session", &session]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("asked the controller")
            && out.contains(&format!(
                "session {session}: restarted at the operator's request"
            ))
            && out.contains(&format!("resuming conversation {held}")),
        "{out}"
    );
    // A new agent in the same conversation carries the task on to its end, once.
    wait_for(Duration::from_secs(30), "the task done", || {
        bed.files("work", "done")
            .contains(&"long.md".to_owned())
            .then_some(())
    });
    assert_ne!(bed.t.pane_pid(&format!("={session}:")), before);
    assert_eq!(about(&bed, "taskDone", "long.md").len(), 1);
    assert!(about(&bed, "taskRequeued", "long.md").is_empty());
    let restarts: Vec<_> = bed
        .events("action")
        .into_iter()
        .filter(|e| {
            e["action"]["action"] == "restartSession"
                && e["action"]["reason"] == "restarted at the operator's request"
        })
        .collect();
    assert_eq!(restarts.len(), 1, "{restarts:?}");
    assert_eq!(restarts[0]["action"]["resume"], held.as_str());
    assert_eq!(restarts[0]["action"]["live"], true);
    assert!(
        std::fs::read_dir(bed.state().join("requests"))
            .unwrap()
            .next()
            .is_none()
    );

    // A person's session, and one that is not there, are refused (exit 1).
    bed.t
        .new_session("mine", &bed.root, &[], &["sleep", "1000"]);
    let (code, out) = bed.run(&["restart", "session", "mine"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused: session mine: is not ours"), "{out}");
    let (code, out) = bed.run(&["restart", "session", "w-9"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not run"), "{out}");
}

#[test]
fn return_task_should_stop_its_turn_and_run_it_again_once_to_its_end() {
    let bed = bed::new(&["manifests"]);
    let file = hanging_pool(&bed);
    let mut controller = bed.controller(&file, "controller", None);
    bed.drop_task("work", "stuck.md", "a task that hangs the first time");
    let session = running(&bed, "stuck.md");
    let before = bed.t.pane_pid(&format!("={session}:"));

    let (code, out) = bed.run(&["return", "task", "stuck.md"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "session {session}: restart the agent (stop the turn of task stuck.md"
        )) && out.contains("returned at the operator's request; no try used"),
        "{out}"
    );
    // Back in the inbox once, then claimed again: its second turn ends.
    wait_for(Duration::from_secs(30), "the task done", || {
        bed.files("work", "done")
            .contains(&"stuck.md".to_owned())
            .then_some(())
    });
    assert_ne!(
        bed.t.pane_pid(&format!("={session}:")),
        before,
        "the turn stopped"
    );
    assert_eq!(about(&bed, "taskRequeued", "stuck.md").len(), 1);
    assert_eq!(about(&bed, "taskDone", "stuck.md").len(), 1);
    let record = bed.record("work", "done", "stuck.md");
    assert_eq!(record["attempt"], 1, "no try used: {record}");

    // A task that does not run is refused; without a controller the verb acts itself.
    let (code, out) = bed.run(&["return", "task", "stuck.md"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("runs in no session of ours"), "{out}");
    controller.signal("TERM");
    assert_eq!(controller.exit_code(Duration::from_secs(20)), Some(0));
    std::fs::write(bed.root.join("control"), "hang\n").unwrap();
    bed.drop_task("work", "again.md", "hangs too");
    // Nobody dispatches without a controller: start one for the claim, then stop it.
    let controller = bed.controller(&file, "controller2", None);
    let session = running(&bed, "again.md");
    controller.signal("TERM");
    let mut controller = controller;
    assert_eq!(controller.exit_code(Duration::from_secs(20)), Some(0));
    let (code, out) = bed.run(&["return", "task", "again.md"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("asked the controller"), "{out}");
    assert!(
        bed.files("work", "inbox").contains(&"again.md".to_owned()),
        "back in the inbox"
    );
    let requeued = about(&bed, "taskRequeued", "again.md");
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0]["origin"], "operator");
    assert_eq!(requeued[0]["action"]["task"]["session"], session.as_str());
}
