//! `failover demo`: the whole story on a private tmux server with stand-in agents, no
//! account and no Claude Code needed. Two accounts sharing their transcripts, a pool of
//! four, a dedicated session, twelve tasks; part-way the first account hits its usage
//! limit, every session moves to the second and carries on, and all tasks finish.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Arguments of `failover demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Leave the controller, the tmux server and the folder running, to attach and look.
    #[arg(long)]
    keep: bool,
    /// How many tasks to drop.
    #[arg(long, default_value_t = 12)]
    tasks: usize,
}

/// Everything the demo started, stopped on drop unless kept.
struct Demo {
    root: PathBuf,
    socket: PathBuf,
    controller: Option<Child>,
    keep: bool,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Some(mut c) = self.controller.take() {
            let _ = Command::new("kill")
                .args(["-s", "TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // The agents, and the server itself, exit just after the server answers: wait
        // for each to be gone, then end what is left, by pid.
        let agents: Vec<String> = tmux(&self.socket, &["list-panes", "-a", "-F", "#{pane_pid}"])
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        tmux(&self.socket, &["kill-server"]);
        let left = || -> Vec<String> {
            let on_socket = Command::new("pgrep")
                .arg("-f")
                .arg(&self.socket)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            // Alive: listed, and not a zombie (one left to an init that does not reap).
            let alive = |pid: &String| {
                Command::new("ps")
                    .args(["-o", "stat=", "-p", pid])
                    .output()
                    .is_ok_and(|o| {
                        let stat = String::from_utf8_lossy(&o.stdout);
                        !stat.trim().is_empty() && !stat.trim_start().starts_with('Z')
                    })
            };
            on_socket
                .split_whitespace()
                .map(str::to_owned)
                .chain(agents.iter().filter(|p| alive(p)).cloned())
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && !left().is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in left() {
            let _ = Command::new("kill").args(["-s", "KILL", &pid]).status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What the operator types into the dedicated session.
const DESK_PROMPT: &str = "remember the word kumquat";

/// Runs `tmux -S socket args`; its stdout, empty on failure (the demo only looks).
fn tmux(socket: &Path, args: &[&str]) -> String {
    Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn say(start: Instant, text: &str) {
    println!("[{:>5.1}s] {text}", start.elapsed().as_secs_f64());
}

/// Runs the demo; exit 0 when every task finished after the swap.
pub fn run(args: Args) -> ExitCode {
    match demo(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(2)
        }
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn demo(args: &Args) -> Result<(), String> {
    let start = Instant::now();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let root = tempfile::Builder::new()
        .prefix("failover-demo-")
        .tempdir()
        .map_err(|e| format!("temp folder: {e}"))?
        .keep();
    let mut demo = Demo {
        socket: root.join("tmux.sock"),
        root: root.clone(),
        controller: None,
        keep: args.keep,
    };
    for dir in [
        "main",
        "backup",
        "shared",
        "project/.agent-queue/inbox",
        "desk",
        "manifests",
    ] {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| format!("{dir}: {e}"))?;
    }
    let r = root.display();
    let manifest = format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: {r}/main, priority: 0}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: backup}}\nspec: {{home: {r}/backup, priority: 1}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: SharedState\nmetadata: {{name: shared}}\nspec: {{target: {r}/shared}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{exe}, sim-agent], env: {{FAILOVER_SIM_TURN: 1500ms}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: demo}}\nspec: {{pollInterval: 250ms, dispatch: {{submitDelay: 200ms}}, quota: {{cooldown: 1m}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec: {{prefix: demo-, min: 4, max: 4, workdir: {r}/project}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: DedicatedSession\nmetadata: {{name: desk}}\nspec: {{workdir: {r}/desk}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: project}}\nspec: {{path: {r}/project/.agent-queue/inbox, pool: auto, workdir: {r}/project}}\n",
        exe = exe.display(),
    );
    write(&root.join("manifests/demo.yaml"), &manifest)?;
    say(
        start,
        &format!("folder {r}: accounts main and backup, their transcripts shared"),
    );
    let log = std::fs::File::create(root.join("controller.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&exe)
        .args(["controller", "-f"])
        .arg(root.join("manifests"))
        .env("FAILOVER_TMUX_SOCKET", &demo.socket)
        .env("FAILOVER_STATE_DIR", root.join("state"))
        .env("FAILOVER_TMUX_CONFIG", "/dev/null")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start the controller: {e}"))?;
    say(start, &format!("controller started (pid {})", child.id()));
    demo.controller = Some(child);
    let state = root.join("state");
    let journal = state.join(crate::state::paths::JOURNAL_FILE);
    let mut narrator = Narrator {
        state: state.clone(),
        seen: 0,
    };
    let events = |kind: &str| -> Vec<serde_json::Value> {
        crate::state::journal::read(&state)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    };
    let sessions = wait(start, &mut narrator, Duration::from_secs(20), || {
        let created = events("action")
            .iter()
            .filter(|e| e["action"]["action"] == "createSession")
            .count();
        (created >= 5).then_some(created)
    })
    .ok_or("the sessions did not come up")?;
    say(
        start,
        &format!("{sessions} sessions under account main: demo-0..3 (pool) and desk (yours)"),
    );
    // The operator's own conversation in the dedicated session.
    let desk_screen = || tmux(&demo.socket, &["capture-pane", "-p", "-t", "=desk:"]);
    wait(start, &mut narrator, Duration::from_secs(20), || {
        desk_screen().contains('❯').then_some(())
    })
    .ok_or("the dedicated session did not come up")?;
    tmux(
        &demo.socket,
        &["send-keys", "-t", "=desk:", "-l", DESK_PROMPT],
    );
    tmux(&demo.socket, &["send-keys", "-t", "=desk:", "Enter"]);
    say(start, &format!("you type in desk: \"{DESK_PROMPT}\""));
    let inbox = root.join("project/.agent-queue/inbox");
    let drop_tasks = |range: std::ops::RangeInclusive<usize>| -> Result<(), String> {
        for i in range {
            let tmp = root.join("task.tmp");
            write(
                &tmp,
                &format!("Task {i}: improve module {i} and run its tests."),
            )?;
            std::fs::rename(&tmp, inbox.join(format!("task-{i:02}.md")))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    let tasks = args.tasks.max(2);
    let first = (tasks / 3).max(1);
    drop_tasks(1..=first)?;
    say(
        start,
        &format!("{first} tasks dropped into {}", inbox.display()),
    );
    let done_dir = root.join("project/.agent-queue/done");
    let done = || -> usize {
        std::fs::read_dir(&done_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".md"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait(start, &mut narrator, Duration::from_secs(30), || {
        (done() >= first).then_some(())
    })
    .ok_or("the first tasks did not finish")?;
    say(
        start,
        &format!(
            "{} tasks done; now account main hits its usage limit",
            done()
        ),
    );
    write(&root.join("main/.sim-limit"), "11:59pm (UTC)")?;
    drop_tasks(first + 1..=tasks)?;
    say(start, &format!("{} more tasks dropped", tasks - first));
    let hit = Instant::now();
    let swap = wait(start, &mut narrator, Duration::from_secs(20), || {
        events("swap").into_iter().next()
    })
    .ok_or("no swap happened")?;
    let swap_ms = hit.elapsed().as_millis();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    say(
        start,
        &format!(
            "swap {} -> {} ({}), {swap_ms} ms after account main ran out",
            text(&swap["from"]),
            text(&swap["to"]),
            text(&swap["reason"])
        ),
    );
    let moved = wait(start, &mut narrator, Duration::from_secs(20), || {
        let moves = events("action")
            .iter()
            .filter(|e| e["action"]["action"] == "moveSession" && e["ok"] == true)
            .count();
        (moves >= 5).then_some(moves)
    })
    .unwrap_or_else(|| {
        events("action")
            .iter()
            .filter(|e| e["action"]["action"] == "moveSession")
            .count()
    });
    say(
        start,
        &format!("{moved} sessions moved to backup, conversations resumed"),
    );
    wait(start, &mut narrator, Duration::from_secs(60), || {
        (done() >= tasks).then_some(())
    })
    .ok_or_else(|| format!("only {} of {tasks} tasks finished", done()))?;
    say(start, &format!("all {tasks} tasks done"));
    let desk_resumed = desk_screen().contains(DESK_PROMPT);
    println!();
    println!("Summary");
    println!("  tasks done:       {} of {tasks}", done());
    println!("  swap:             main -> backup, {swap_ms} ms after main ran out");
    println!("  sessions moved:   {moved}");
    println!(
        "  desk:             {}",
        if desk_resumed {
            "its conversation resumed under backup (your prompt is back on screen)"
        } else {
            "its conversation is not on screen"
        }
    );
    println!("  journal:          {}", journal.display());
    println!(
        "  attach and watch: tmux -S {} attach -t demo-0",
        demo.socket.display()
    );
    if args.keep {
        let pid = demo.controller.as_ref().map_or(0, Child::id);
        println!(
            "  still running; stop with: kill {pid}; tmux -S {} kill-server; rm -r {r}",
            demo.socket.display()
        );
    } else {
        println!("  (run with --keep to leave it running and attach)");
    }
    Ok(())
}

/// Polls `check` every 100 ms, up to `timeout`, telling what the controller did
/// meanwhile.
fn wait<T>(
    start: Instant,
    narrator: &mut Narrator,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        narrator.narrate(start);
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            say(start, "timed out");
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Tells the journal's new entries as they come: what the controller did and why.
struct Narrator {
    /// The state folder, whose journal is told.
    state: PathBuf,
    /// Entries told so far (a line still being written does not parse, so it is not
    /// one of them yet).
    seen: usize,
}

impl Narrator {
    fn narrate(&mut self, start: Instant) {
        let entries = crate::state::journal::read(&self.state).unwrap_or_default();
        for told in entries.iter().skip(self.seen).filter_map(tell) {
            say(start, &format!("  {told}"));
        }
        self.seen = self.seen.max(entries.len());
    }
}

/// One journal entry in words, for the entries the story needs.
fn tell(e: &serde_json::Value) -> Option<String> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    let a = &e["action"];
    let task =
        |a: &serde_json::Value| format!("{} ({})", s(&a["task"]["name"]), s(&a["task"]["session"]));
    Some(match (s(&e["event"]).as_str(), s(&a["action"]).as_str()) {
        ("taskClaimed", _) => format!("dispatch {}: it is idle and the task waits", task(a)),
        ("taskDone", _) => format!("done {}: its agent's {}", task(a), s(&a["how"])),
        ("quotaDetected", _) => format!(
            "quota on account {} {} {}: \"{}\"{}",
            s(&e["account"]),
            if e["source"] == "report" {
                "reported by the agent of"
            } else {
                "read on the screen of"
            },
            s(&e["session"]),
            s(&e["line"]),
            if e["confirmed"] == true {
                ""
            } else {
                " (to be confirmed)"
            }
        ),
        ("action", "moveSession") => format!(
            "move {} from {} to {}{}",
            s(&a["session"]["name"]),
            s(&a["from"]),
            s(&a["session"]["account"]),
            if a["resume"].is_null() {
                ", fresh"
            } else {
                ", resuming its conversation"
            }
        ),
        ("action", "continueTask") => {
            format!("continue {}: the resumed agent carries on", task(a))
        }
        ("refused", _) => format!("wait: {}", s(&e["reason"])),
        _ => return None,
    })
}
