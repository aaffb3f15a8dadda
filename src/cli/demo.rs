//! `failover demo`: the whole story on a private tmux server with stand-in agents, no
//! account, Claude Code or Codex needed. Two Claude accounts sharing their transcripts,
//! one Codex account, a pool of four over both families, a dedicated session, twelve
//! tasks; a third of the way the first account hits its usage limit, every session moves
//! to the second and carries on; two thirds of the way the second one runs out too, the
//! pool restarts under Codex (the tasks cut by the limit handed to it), the dedicated
//! session waits for Claude, and all tasks finish.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::journal::Entry;
use crate::journal::story::Teller;
use crate::object::ObjectRef;
use crate::plan::{Action, Event, SessionAction, TaskAction};

/// Arguments of `failover demo`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Leave the controller, the tmux server and the folder running, to attach and look.
    #[arg(long)]
    keep: bool,
    /// How many tasks to drop.
    #[arg(long, default_value_t = 12)]
    tasks: usize,
}

/// Everything the demo started, stopped on drop unless kept, and what its phases share.
struct Demo {
    /// When the demo began; every line it prints tells the seconds since.
    start: Instant,
    /// This program, run as the controller and as the stand-in agents.
    exe: PathBuf,
    /// The temporary folder holding the accounts, the project, the manifest and the state.
    root: PathBuf,
    /// The private tmux server's socket.
    socket: PathBuf,
    /// The controller, once started.
    controller: Option<Child>,
    /// Tells the journal's new entries while the demo waits.
    narrator: Narrator,
    /// How many tasks to drop in all.
    tasks: usize,
    /// How many of them to drop before the first usage limit.
    first: usize,
    /// How many of them to drop before the second usage limit (`first` included).
    second: usize,
    /// Leave everything running at the end, to attach and look.
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

/// Prints `text` after the seconds since `start`.
fn say(start: Instant, text: &str) {
    println!("[{:>5.1}s] {text}", start.elapsed().as_secs_f64());
}

/// Runs the demo; exit 0 when every task finished after the swap.
pub(super) fn run(args: Args) -> ExitCode {
    match demo(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(2)
        }
    }
}

/// Writes `text` to `path`, the error naming the file.
fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The story, one phase after the other; whatever it started is stopped when `demo` drops.
fn demo(args: &Args) -> Result<(), String> {
    let mut demo = Demo::set_up(args)?;
    demo.start_controller()?;
    demo.bring_up_sessions()?;
    demo.type_in_desk()?;
    demo.first_tasks()?;
    let swap = demo.usage_limit_and_swap()?;
    demo.tasks_done(demo.second, "under account backup")?;
    let codex = demo.claude_used_up()?;
    demo.tasks_done(demo.tasks, "")?;
    demo.summary(&swap, &codex);
    Ok(())
}

/// How the last act went, for the summary: Claude used up, the pool under Codex.
struct Codex {
    /// Milliseconds from the second usage limit to the last pool session under Codex.
    ms: u128,
    /// Pool sessions restarted under Codex.
    restarted: usize,
    /// Tasks cut by the limit and handed to Codex.
    handed_off: usize,
}

/// How the swap went, for the summary.
struct Swap {
    /// Milliseconds from the usage limit to the swap.
    ms: u128,
    /// Sessions moved to the backup account.
    moved: usize,
}

impl Demo {
    /// Makes the temporary folder with the accounts, the project and the manifest.
    fn set_up(args: &Args) -> Result<Demo, String> {
        let start = Instant::now();
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let root = tempfile::Builder::new()
            .prefix("failover-demo-")
            .tempdir()
            .map_err(|e| format!("temp folder: {e}"))?
            .keep();
        let tasks = args.tasks.max(3);
        let demo = Demo {
            start,
            exe,
            socket: root.join("tmux.sock"),
            narrator: Narrator {
                teller: Teller::default(),
                state: root.join("state"),
                seen: 0,
            },
            root,
            controller: None,
            tasks,
            first: tasks / 3,
            second: tasks * 2 / 3,
            keep: args.keep,
        };
        for dir in [
            "main",
            "backup",
            "shared",
            "codex",
            "project/.agent-queue/inbox",
            "desk",
            "manifests",
        ] {
            std::fs::create_dir_all(demo.root.join(dir)).map_err(|e| format!("{dir}: {e}"))?;
        }
        write(
            &demo.root.join("manifests/demo.yaml"),
            &manifest(&demo.root, &demo.exe),
        )?;
        demo.say(&format!(
            "folder {}: Claude accounts main and backup, their transcripts shared; Codex \
             account codex",
            demo.root.display()
        ));
        Ok(demo)
    }

    /// Starts the controller on the manifest, against the private tmux server.
    fn start_controller(&mut self) -> Result<(), String> {
        let log =
            std::fs::File::create(self.root.join("controller.log")).map_err(|e| e.to_string())?;
        let child = Command::new(&self.exe)
            .args(["controller", "-f"])
            .arg(self.root.join("manifests"))
            .env("FAILOVER_TMUX_SOCKET", &self.socket)
            .env("FAILOVER_STATE_DIR", self.state())
            .env("FAILOVER_TMUX_CONFIG", "/dev/null")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start the controller: {e}"))?;
        self.say(&format!("controller started (pid {})", child.id()));
        self.controller = Some(child);
        Ok(())
    }

    /// Waits for the controller to create the pool's four sessions and the dedicated one.
    fn bring_up_sessions(&mut self) -> Result<(), String> {
        let sessions = self
            .wait(Duration::from_secs(20), |d| {
                let created = d
                    .acted()
                    .iter()
                    .filter(|(a, _)| {
                        matches!(a, Action::Session(SessionAction::CreateSession { .. }))
                    })
                    .count();
                (created >= 5).then_some(created)
            })
            .ok_or("the sessions did not come up")?;
        self.say(&format!(
            "{sessions} sessions under account main: demo-0..3 (pool) and desk (yours)"
        ));
        Ok(())
    }

    /// Types the operator's own prompt into the dedicated session once its agent is ready.
    fn type_in_desk(&mut self) -> Result<(), String> {
        self.wait(Duration::from_secs(20), |d| {
            d.desk_screen().contains('❯').then_some(())
        })
        .ok_or("the dedicated session did not come up")?;
        self.tmux(&["send-keys", "-t", "=desk:", "-l", DESK_PROMPT]);
        self.tmux(&["send-keys", "-t", "=desk:", "Enter"]);
        self.say(&format!("you type in desk: \"{DESK_PROMPT}\""));
        Ok(())
    }

    /// Drops the first tasks and waits for them to finish under account main.
    fn first_tasks(&mut self) -> Result<(), String> {
        let first = self.first;
        self.drop_tasks(1..=first)?;
        self.say(&format!(
            "{first} tasks dropped into {}",
            self.inbox().display()
        ));
        self.wait(Duration::from_secs(30), |d| {
            (d.done() >= first).then_some(())
        })
        .ok_or("the first tasks did not finish")?;
        self.say(&format!(
            "{} tasks done; now account main hits its usage limit",
            self.done()
        ));
        Ok(())
    }

    /// Account main hits its usage limit as the other tasks drop; waits for swap and moves.
    fn usage_limit_and_swap(&mut self) -> Result<Swap, String> {
        write(&self.root.join("main/.sim-limit"), "11:59pm (UTC)")?;
        self.drop_tasks(self.first + 1..=self.second)?;
        self.say(&format!("{} more tasks dropped", self.second - self.first));
        let hit = Instant::now();
        let swap = self
            .wait(Duration::from_secs(20), |d| {
                d.entries().into_iter().find_map(|e| match e {
                    Entry::Event(Event::Swap {
                        from, to, reason, ..
                    }) => Some((from, to, reason)),
                    _ => None,
                })
            })
            .ok_or("no swap happened")?;
        let ms = hit.elapsed().as_millis();
        let (from, to, reason) = swap;
        self.say(&format!(
            "swap {from} -> {to} ({reason}), {ms} ms after account main ran out"
        ));
        let moved = self.wait_for_moves();
        self.say(&format!(
            "{moved} sessions moved to backup, conversations resumed"
        ));
        Ok(Swap { ms, moved })
    }

    /// Waits for all five sessions to move; the moves that worked, or all tried on timeout.
    fn wait_for_moves(&mut self) -> usize {
        let moves = |d: &Demo, ok_only: bool| {
            d.acted()
                .iter()
                .filter(|(a, ok)| {
                    matches!(a, Action::Session(SessionAction::MoveSession { .. }))
                        && (!ok_only || *ok)
                })
                .count()
        };
        self.wait(Duration::from_secs(20), |d| {
            let ok = moves(d, true);
            (ok >= 5).then_some(ok)
        })
        .unwrap_or_else(|| moves(self, false))
    }

    /// Waits for the first `tasks` tasks to finish (`under`: where, for the story).
    fn tasks_done(&mut self, tasks: usize, under: &str) -> Result<(), String> {
        self.wait(Duration::from_secs(60), |d| {
            (d.done() >= tasks).then_some(())
        })
        .ok_or_else(|| format!("only {} of {tasks} tasks finished", self.done()))?;
        let under = if under.is_empty() {
            String::new()
        } else {
            format!(" {under}")
        };
        self.say(&format!("{tasks} tasks done{under}"));
        Ok(())
    }

    /// The last act: account backup runs out too as the last tasks drop; waits for the
    /// pool to restart under Codex and for the dedicated session to say it waits.
    fn claude_used_up(&mut self) -> Result<Codex, String> {
        self.say("now account backup hits its usage limit too: no Claude account is left");
        write(&self.root.join("backup/.sim-limit"), "11:59pm (UTC)")?;
        self.drop_tasks(self.second + 1..=self.tasks)?;
        self.say(&format!("{} more tasks dropped", self.tasks - self.second));
        let hit = Instant::now();
        let family_changes = |d: &Demo| {
            d.entries()
                .into_iter()
                .filter(|e| matches!(e, Entry::Event(Event::FamilyChanged { back: false, .. })))
                .count()
        };
        let restarted = self
            .wait(Duration::from_secs(30), |d| {
                let n = family_changes(d);
                (n >= 4).then_some(n)
            })
            .ok_or("the pool did not restart under Codex")?;
        let ms = hit.elapsed().as_millis();
        self.say(&format!(
            "the {restarted} pool sessions run Codex, {ms} ms after backup ran out"
        ));
        let handed_off = self
            .entries()
            .into_iter()
            .filter(|e| matches!(e, Entry::Event(Event::HandedOff { .. })))
            .count();
        Ok(Codex {
            ms,
            restarted,
            handed_off,
        })
    }

    /// Prints the summary: tasks, swap, moves, the dedicated session and where to look.
    fn summary(&self, swap: &Swap, codex: &Codex) {
        let desk_resumed = self.desk_screen().contains(DESK_PROMPT);
        let desk_waits = self.entries().into_iter().any(|e| {
            matches!(e, Entry::Event(Event::SessionWaits { sessions, .. }) if sessions.iter().any(|s| s == "desk"))
        });
        let socket = self.socket.display();
        println!();
        println!("Summary");
        println!("  tasks done:       {} of {}", self.done(), self.tasks);
        println!(
            "  swap:             main -> backup, {} ms after main ran out",
            swap.ms
        );
        println!("  sessions moved:   {}", swap.moved);
        println!(
            "  under Codex:      {} pool sessions, {} ms after backup ran out; {} cut {} \
             handed off",
            codex.restarted,
            codex.ms,
            codex.handed_off,
            if codex.handed_off == 1 {
                "task"
            } else {
                "tasks"
            }
        );
        println!(
            "  desk:             {}{}",
            if desk_resumed {
                "its conversation resumed under backup (your prompt is back on screen)"
            } else {
                "its conversation is not on screen"
            },
            if desk_waits {
                "; it waits for a Claude account (a dedicated session never changes family)"
            } else {
                ""
            }
        );
        println!(
            "  journal:          {}",
            self.state()
                .join(crate::state::paths::JOURNAL_FILE)
                .display()
        );
        println!("  attach and watch: tmux -S {socket} attach -t demo-0");
        if self.keep {
            let pid = self.controller.as_ref().map_or(0, Child::id);
            println!(
                "  still running; stop with: kill {pid}; tmux -S {socket} kill-server; rm -r {}",
                self.root.display()
            );
        } else {
            println!("  (run with --keep to leave it running and attach)");
        }
    }

    /// Polls `check` every 100 ms, up to `timeout`, telling what the controller did meanwhile.
    fn wait<T>(
        &mut self,
        timeout: Duration,
        mut check: impl FnMut(&Demo) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        loop {
            self.narrator.narrate(self.start);
            if let Some(v) = check(self) {
                return Some(v);
            }
            if let Some(status) = self.controller_exited() {
                self.say(&format!(
                    "the controller exited ({status}); its log: {}",
                    self.root.join("controller.log").display()
                ));
                return None;
            }
            if Instant::now() >= deadline {
                self.say("timed out");
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// How the controller ended, when it did: the demo stops waiting at once.
    fn controller_exited(&mut self) -> Option<std::process::ExitStatus> {
        self.controller.as_mut()?.try_wait().ok().flatten()
    }

    /// Drops the tasks numbered `range` into the inbox, each written aside then renamed in.
    fn drop_tasks(&self, range: std::ops::RangeInclusive<usize>) -> Result<(), String> {
        for i in range {
            let tmp = self.root.join("task.tmp");
            write(
                &tmp,
                &format!("Task {i}: improve module {i} and run its tests."),
            )?;
            std::fs::rename(&tmp, self.inbox().join(format!("task-{i:02}.md")))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The journal's entries so far.
    fn entries(&self) -> Vec<Entry> {
        crate::journal::read(&self.state())
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.entry)
            .collect()
    }

    /// The actions carried out so far, with whether each went well.
    fn acted(&self) -> Vec<(Action, bool)> {
        self.entries()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Acted(a) => {
                    let ok = a.ok();
                    Some((a.action, ok))
                }
                _ => None,
            })
            .collect()
    }

    /// How many tasks are done (in the queue's done folder).
    fn done(&self) -> usize {
        std::fs::read_dir(self.root.join("project/.agent-queue/done"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".md"))
                    .count()
            })
            .unwrap_or(0)
    }

    /// What the dedicated session shows.
    fn desk_screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "=desk:"])
    }

    /// The project's inbox, where tasks are dropped.
    fn inbox(&self) -> PathBuf {
        self.root.join("project/.agent-queue/inbox")
    }

    /// The controller's state folder, holding the journal.
    fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Runs tmux on the demo's private server.
    fn tmux(&self, args: &[&str]) -> String {
        tmux(&self.socket, args)
    }

    /// Prints `text` after the seconds since the demo began.
    fn say(&self, text: &str) {
        say(self.start, text);
    }
}

/// The demo's manifest: two Claude accounts sharing their transcripts and one Codex
/// account, stand-in agents of both families, a pool over both, desk, inbox.
fn manifest(root: &Path, exe: &Path) -> String {
    format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: {r}/main, priority: 0}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: backup}}\nspec: {{home: {r}/backup, priority: 1}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: SharedState\nmetadata: {{name: shared}}\nspec: {{target: {r}/shared}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: codex}}\nspec: {{home: {r}/codex, agent: codex}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{exe}, sim-agent], env: {{FAILOVER_SIM_TURN: 1500ms}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: codex}}\nspec: {{kind: codex, command: [{exe}, sim-agent, --agent, codex], env: {{FAILOVER_SIM_TURN: 1500ms}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: demo}}\nspec: {{pollInterval: 250ms, dispatch: {{submitDelay: 200ms}}, quota: {{cooldown: 1m}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: auto}}\nspec: {{prefix: demo-, min: 4, max: 4, agents: [claude, codex], workdir: {r}/project}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: DedicatedSession\nmetadata: {{name: desk}}\nspec: {{workdir: {r}/desk, agent: claude}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: project}}\nspec: {{path: {r}/project/.agent-queue/inbox, pool: auto, workdir: {r}/project}}\n",
        r = root.display(),
        exe = exe.display(),
    )
}

/// Tells the journal's new entries as they come, in the story's words (the same
/// teller as `get events`): what the controller did and why.
struct Narrator {
    /// The state folder, whose journal is told.
    state: PathBuf,
    /// Entries told so far (a line still being written does not parse, so it is not
    /// one of them yet).
    seen: usize,
    /// The story so far: a move says the swap and the reading behind it.
    teller: Teller,
}

impl Narrator {
    /// Tells the entries written since the last call that the demo's story needs.
    fn narrate(&mut self, start: Instant) {
        let lines = crate::journal::read(&self.state).unwrap_or_default();
        for line in lines.iter().skip(self.seen) {
            let told = self.teller.tell(line);
            if narrated(&line.entry) {
                // A task's sentence names its task; a session's or account's does not.
                let object = match told.object() {
                    Some(ObjectRef::Task { .. }) | None => String::new(),
                    Some(o) => format!("{o}: "),
                };
                say(start, &format!("  {object}{}", told.message));
            }
        }
        self.seen = self.seen.max(lines.len());
    }
}

/// Whether the demo tells `entry`: claims, endings, quota, moves, carrying on, refusals.
fn narrated(entry: &Entry) -> bool {
    match entry {
        Entry::Acted(a) => matches!(
            a.action,
            Action::Task(TaskAction::DispatchTask { .. } | TaskAction::CompleteTask { .. })
                | Action::Task(TaskAction::ContinueTask { .. })
                | Action::Session(SessionAction::MoveSession { .. })
        ),
        Entry::Event(e) => matches!(
            e,
            Event::QuotaDetected { .. }
                | Event::AllExhausted { .. }
                | Event::HandedOff { .. }
                | Event::FamilyChanged { .. }
                | Event::SessionWaits { .. }
        ),
        Entry::Refused(_) => true,
        Entry::Controller(_) | Entry::Unknown(_) => false,
    }
}
