//! The chaos suite: pools of stand-in agents work through tasks while the controller is
//! SIGKILLed at random points and the tmux server is killed, the way an operator's bad
//! day goes. What happened is counted from evidence (see [`count`]): the folders, what
//! reached the agents, the journal against the folders, the process table.
//!
//! `tests/it/chaos.rs` runs a small form in `cargo test`; `cargo bench --bench chaos --
//! --tasks 500 --kills 50 --tmux-kills 5` the large one.

pub mod clock;
pub mod count;
pub mod damage;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Spawned, drop_task, wait_for_or_none};
use crate::journal::{Entry::Controller, Life};

/// What a run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// Tasks dropped (four in five for the fast pool, the others for the slow one).
    pub tasks: usize,
    /// Controller SIGKILLs, 0.3–2 s apart, each followed by a restart at once.
    pub kills: usize,
    /// tmux server kills, spread among the controller kills.
    pub tmux_kills: usize,
    /// Seeds the random waits and kill points: a run can be replayed.
    pub seed: u64,
    /// How long the tasks may take to settle once the last kill is behind them.
    pub settle: Duration,
    /// Damage to the state folder, one at each controller kill in turn (none: the
    /// classic suite).
    pub faults: Vec<damage::Fault>,
    /// Both pools run over two families, Claude Code then Codex (one account each):
    /// a third of the way the Claude account hits its usage limit, the pools run
    /// Codex and the tasks cut by the limit are handed to it; the account is usable
    /// again a little later and the pools return to Claude at idle points.
    pub mixed: bool,
}

/// What a run did, counted from evidence.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Figures {
    /// Tasks dropped.
    pub tasks: usize,
    /// Controller SIGKILLs.
    pub kills: usize,
    /// tmux server kills.
    pub tmux_kills: usize,
    /// Tasks in `done/`.
    pub done: usize,
    /// Tasks in `failed/`.
    pub failed: usize,
    /// Tasks found nowhere.
    pub lost: usize,
    /// Tasks still in `inbox/` or `active/` at the end.
    pub stuck: usize,
    /// Tasks in `done/` whose text never ran to a reply.
    pub done_unrun: usize,
    /// Tasks that ran to a reply more than once.
    pub run_twice: usize,
    /// Tasks sent again after a turn that never ended (its agent died mid-turn).
    pub resent: usize,
    /// Tasks carried on in their conversation after their agent died or moved.
    pub resumed: usize,
    /// Tasks sent into a conversation that already held another task's turn.
    pub shared_context: usize,
    /// Moments two controllers ran on the same state folder.
    pub duplicate_controllers: usize,
    /// Times the operator's own session was typed into, or went away without a tmux
    /// kill.
    pub unowned_touched: usize,
    /// tmux control clients of killed controllers still running once the next one was
    /// up.
    pub leftover_clients: usize,
    /// Tasks in `done/` or `failed/` without their journal event.
    pub journal_missing: usize,
    /// Tasks with more than one such event, or events of tasks not there.
    pub journal_extra: usize,
    /// Of those events, how many a controller wrote at its start, from the task's
    /// record, because the one before it was killed between the move and the event.
    pub replayed: usize,
    /// Damage made to the state folder.
    pub faults: usize,
    /// `stateDamaged` lines in the journal: damage the controller said.
    pub said: usize,
    /// Files the controller kept aside.
    pub kept_aside: usize,
    /// Controller logs holding a panic.
    pub panics: usize,
    /// Controllers that exited before their kill (each named in the run's details).
    pub exited: usize,
    /// Of the faults, times the state folder was read-only.
    pub read_only: usize,
    /// Of the faults, times the disk under the state folder was full.
    pub disk_full: usize,
    /// Jumps of the wall clock made (forward and back in turn, each followed by one
    /// back to the real clock).
    pub clock_jumps: usize,
    /// `clockJumped` lines in the journal: jumps the controller saw.
    pub clock_jumps_said: usize,
    /// Times a controller's log said the state folder cannot be written.
    pub logged_unwritable: usize,
    /// Tasks claimed while the state folder could not be written (read-only, or its
    /// disk full).
    pub claimed_unwritable: usize,
    /// A mixed run (see [`Options::mixed`]): its figures must show Codex at work.
    pub mixed: bool,
    /// Tasks sent to another family's agent after the hand-off note.
    pub handed_off: usize,
    /// Hand-offs the journal holds (`handedOff`).
    pub hand_offs_journaled: usize,
    /// Tasks that ran to their reply in a Codex rollout.
    pub under_codex: usize,
    /// Pool sessions that restarted under the other family (`familyChanged`), away
    /// from the used-up one and back.
    pub family_changes: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Figures {
    /// Whether nothing went wrong: every task done once, nothing lost, stuck, run twice,
    /// touched or left behind, and a journal that matches the folders.
    pub fn clean(&self) -> bool {
        self.done == self.tasks
            && self.failed + self.lost + self.stuck + self.done_unrun + self.run_twice == 0
            && self.shared_context == 0
            && self.duplicate_controllers + self.unowned_touched + self.leftover_clients == 0
            && self.journal_missing + self.journal_extra == 0
            && self.panics + self.exited == 0
            && self.said == self.faults
            && self.kept_aside + self.read_only + self.disk_full == self.faults
            && self.logged_unwritable == self.read_only + self.disk_full
            && self.claimed_unwritable == 0
            && self.clock_jumps_said == self.clock_jumps
            && (!self.mixed || self.under_codex > 0)
            && self.handed_off == self.hand_offs_journaled
    }
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tasks {} · kills {} · tmux kills {} · done {} · failed {} · lost {} · stuck {} · \
             done unrun {} · run twice {} · resent after a mid-turn death {} · resumed {} · \
             shared context {} · \
             duplicate controllers {} · unowned touched {} · leftover clients {} · \
             journal missing {} · journal extra {} (replayed {}) · panics {} · \
             exited on their own {} · \
             faults {} · said {} · kept aside {} · read-only {} · disk full {} (said in the \
             log {}, claims meanwhile {}){}{} · elapsed {:.1}s",
            self.tasks,
            self.kills,
            self.tmux_kills,
            self.done,
            self.failed,
            self.lost,
            self.stuck,
            self.done_unrun,
            self.run_twice,
            self.resent,
            self.resumed,
            self.shared_context,
            self.duplicate_controllers,
            self.unowned_touched,
            self.leftover_clients,
            self.journal_missing,
            self.journal_extra,
            self.replayed,
            self.panics,
            self.exited,
            self.faults,
            self.said,
            self.kept_aside,
            self.read_only,
            self.disk_full,
            self.logged_unwritable,
            self.claimed_unwritable,
            if self.clock_jumps > 0 {
                format!(
                    " · clock jumps {} (said {})",
                    self.clock_jumps, self.clock_jumps_said
                )
            } else {
                String::new()
            },
            if self.mixed {
                format!(
                    " · handed off {} (journaled {}) · done under Codex {} · family changes {}",
                    self.handed_off,
                    self.hand_offs_journaled,
                    self.under_codex,
                    self.family_changes
                )
            } else {
                String::new()
            },
            self.elapsed.as_secs_f64()
        )
    }
}

/// A run's figures, and what to read when they are not clean.
#[derive(Debug)]
pub struct Report {
    /// The figures.
    pub figures: Figures,
    /// The tasks behind each bad figure, and the last controller's log.
    pub details: String,
    /// What an operator sees of the damage at the end: `failover get events` and
    /// `failover doctor` (empty without faults); and while the folder was read-only,
    /// `failover get sessions` and `failover doctor`.
    pub operator: String,
    /// Why a fault could not be made (the read-only folder as root without `chattr`):
    /// the run proves nothing of it.
    pub skipped: Option<String>,
}

/// xorshift64: enough randomness for wait times and kill points, replayable by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.next() % (to - from))
    }
}

/// The operator's own session: `cat` appending whatever is typed into it to a file.
const MINE: &str = "mine";

/// A run's bed: the shared one, and what the run keeps count of.
struct Bed {
    /// The state folder's own small disk, for a run that fills it (unmounted first,
    /// before the bed's folder goes); why it could not be mounted; `Err("")` when the
    /// run does not fill it.
    disk: Result<damage::SmallDisk, String>,
    /// The tmux server, the operator's folder, the binary.
    op: super::Bed,
    manifest: PathBuf,
    texts: Vec<String>,
    names: Vec<String>,
    /// The pane pid of the operator's session as last made.
    mine: Option<String>,
    figures: Figures,
    starts: usize,
    /// What the operator saw while the state folder was read-only.
    seen: String,
    /// What the counts above 0 that are not the folders' were, one line each.
    found: String,
    /// Why a fault could not be made.
    skipped: Option<String>,
    /// The event under way, and the last fault made: what the details name.
    event: usize,
    last_fault: Option<damage::Fault>,
    /// The pid of a controller already counted as exited on its own.
    exited: Option<u32>,
    /// The wall clock of the bed's processes, for a run that makes it jump.
    clock: Option<clock::Clock>,
}

/// The seed of a test's run: `FAILOVER_CHAOS_SEED` to replay one, else one of this
/// process.
pub fn seed() -> u64 {
    std::env::var("FAILOVER_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) << 16 | 0x2545)
}

/// Runs the suite with the `failover` binary `bin`.
pub fn run(bin: &Path, o: &Options) -> Report {
    let begun = Instant::now();
    let mut bed = Bed::new(bin, o);
    let mut rng = Rng(o.seed.max(1));
    bed.make_mine();
    for i in 0..o.tasks {
        let (inbox, text) = task(i);
        let name = format!("c{i:04}.md");
        drop_task(&bed.op.root.join(inbox).join("inbox"), &name, &text);
        bed.texts.push(text);
        bed.names.push(name);
    }
    let events = o.kills + o.tmux_kills;
    // Which events kill the tmux server: spread evenly, never the first.
    let tmux_at: Vec<usize> = (1..=o.tmux_kills)
        .map(|k| k * events / (o.tmux_kills + 1))
        .collect();
    let mut c = bed.start();
    // A mixed run: the Claude account's limit from a third of the way, lifted a second
    // before the controller tries it again.
    let limit_at = o.mixed.then_some(events / 3);
    let fallback = reset_fallback(events);
    let mut limited: Option<Instant> = None;
    for event in 0..events {
        std::thread::sleep(rng.millis(300, 2000));
        bed.event = event;
        bed.check_alive(&mut c);
        if limit_at == Some(event) {
            bed.limit(true);
            limited = Some(Instant::now());
        } else if limited.is_some_and(|t| t.elapsed() + Duration::from_secs(1) >= fallback) {
            bed.limit(false);
            limited = None;
        }
        bed.check_controllers(&c);
        if event % 5 == 2 {
            bed.start_second();
        }
        if tmux_at.contains(&event) {
            bed.check_mine();
            bed.kill_tmux();
            bed.figures.tmux_kills += 1;
            bed.make_mine();
        } else {
            let fault = (!o.faults.is_empty()).then(|| o.faults[event % o.faults.len()]);
            let pick = rng.next();
            if fault.is_some() {
                // One fault per controller that started and said the last one (two
                // would be repaired as one; a controller cannot take its lock in a
                // read-only folder).
                bed.wait_started(&c);
                bed.wait_handled();
            }
            if let Some(f @ (damage::Fault::ReadOnly | damage::Fault::DiskFull)) = fault {
                bed.unwritable(f);
                continue;
            }
            if fault == Some(damage::Fault::ClockJump) {
                bed.jump();
                continue;
            }
            if let Some(fault) = fault.filter(|f| f.live()) {
                bed.damage(fault, pick);
                // Killed once it kept the report aside and said so, not in between.
                bed.wait_handled();
            }
            bed.check_alive(&mut c);
            c.kill();
            bed.figures.kills += 1;
            if let Some(fault) = fault.filter(|f| !f.live()) {
                bed.damage(fault, pick);
            }
            c = bed.start();
        }
    }
    if limited.is_some() {
        bed.limit(false);
    }
    if !o.faults.is_empty() {
        // The last fault too is said before the count: its tasks may all be done
        // before the controller started after it has read the state folder.
        bed.wait_started(&c);
        bed.wait_handled();
    }
    let settled = wait_for_or_none(o.settle, || bed.settled().then_some(()));
    bed.event = events;
    bed.check_alive(&mut c);
    bed.check_controllers(&c);
    bed.check_mine();
    let operator = if o.faults.is_empty() {
        String::new()
    } else {
        format!("{}{}", bed.seen, bed.operator())
    };
    let log = c.log();
    c.signal("TERM");
    let _ = wait_for_or_none(Duration::from_secs(10), || {
        c.child.try_wait().ok().flatten()
    });
    let counted = bed.count();
    let mut details = format!("seed {}\n{}{counted}", o.seed, bed.found);
    if settled.is_none() {
        details.push_str(&format!("not settled within {:?}\n", o.settle));
    }
    details.push_str(&format!(
        "--- the last controller's log\n{}",
        tail(&log, 80)
    ));
    bed.figures.elapsed = begun.elapsed();
    Report {
        figures: bed.figures,
        details,
        operator,
        skipped: bed.skipped,
    }
}

/// The lines of `entries` in which a controller said damage to its state folder, or
/// that it could not write there: what the figures count as `said`.
fn said(entries: &[crate::journal::Line]) -> usize {
    entries
        .iter()
        .filter(|l| {
            matches!(
                &l.entry,
                Controller(Life::StateDamaged(_) | Life::StateUnwritable { .. })
            )
        })
        .count()
}

/// The last `n` lines of `log`.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How long after its limit the Claude account of a mixed run is tried again: long
/// enough for the pools to run Codex a while, short enough to see them return.
fn reset_fallback(events: usize) -> Duration {
    Duration::from_secs((events as u64 / 4).clamp(5, 20))
}

/// Task `i`: its inbox and its text, multi-line with shell-looking text every third.
fn task(i: usize) -> (&'static str, String) {
    let inbox = if i % 5 == 4 { "slow" } else { "fast" };
    let text = if i.is_multiple_of(3) {
        format!("Chaos task {i}: check\n  run $(make test) and `id`\nthen say \"done\" 'ok'")
    } else {
        format!("Chaos task {i}: summarise the notes")
    };
    (inbox, text)
}

impl Bed {
    fn new(bin: &Path, o: &Options) -> Self {
        let mut op = super::Bed::new(
            bin,
            &["home", "cx", "work", "desk", "fast/inbox", "slow/inbox"],
        );
        let (r, b) = (op.root.display(), bin.display());
        let text = if o.mixed {
            mixed_manifest(&op.root, bin, reset_fallback(o.kills + o.tmux_kills))
        } else {
            format!(
                "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: {r}/home}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{b}, sim-agent], env: {{FAILOVER_SIM_TURN: 150ms}}}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: slow}}\nspec: {{command: [{b}, sim-agent], env: {{FAILOVER_SIM_TURN: 2s}}}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: default}}\nspec: {{pollInterval: 200ms, dispatch: {{submitDelay: 50ms}}}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: fast}}\nspec: {{prefix: f-, min: 3, max: 3, workdir: {r}/work}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: slow}}\nspec: {{prefix: s-, min: 2, max: 2, agent: slow, workdir: {r}/work}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: DedicatedSession\nmetadata: {{name: desk}}\nspec: {{workdir: {r}/desk}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: fast}}\nspec: {{path: {r}/fast/inbox, pool: fast, workdir: {r}/work, maxTries: 3}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: slow}}\nspec: {{path: {r}/slow/inbox, pool: slow, workdir: {r}/work, maxTries: 3}}\n"
            )
        };
        let manifest = op.write("pool.yaml", &text);
        let disk = if o.faults.contains(&damage::Fault::DiskFull) {
            damage::SmallDisk::mount(&op.state(), "32m")
        } else {
            Err(String::new())
        };
        let (clock, skipped) = if o.faults.contains(&damage::Fault::ClockJump) {
            match clock::Clock::install(&op.root) {
                Ok(clock) => {
                    op.t.set_machine_env(clock.env());
                    (Some(clock), None)
                }
                Err(why) => (None, Some(why)),
            }
        } else {
            (None, None)
        };
        Self {
            clock,
            disk,
            op,
            manifest,
            texts: Vec::new(),
            names: Vec::new(),
            mine: None,
            figures: Figures {
                tasks: o.tasks,
                mixed: o.mixed,
                ..Figures::default()
            },
            starts: 0,
            seen: String::new(),
            found: String::new(),
            event: 0,
            last_fault: None,
            exited: None,
            skipped,
        }
    }

    /// Puts the Claude account's usage limit on (every turn its stand-ins start meets
    /// it) or lifts it.
    fn limit(&self, on: bool) {
        let flag = self.op.root.join("home/.sim-limit");
        let _ = if on {
            std::fs::write(&flag, "")
        } else {
            std::fs::remove_file(&flag)
        };
    }

    fn inboxes(&self) -> Vec<PathBuf> {
        ["fast", "slow"]
            .map(|i| self.op.root.join(i).join("inbox"))
            .into()
    }

    /// Starts a controller on the manifests and state folder.
    fn start(&mut self) -> Spawned {
        self.starts += 1;
        let name = format!("controller-{}", self.starts);
        self.op.controller(&self.manifest, &name, Some("info"))
    }

    /// Counts controllers on this manifest beyond one, and, once `c` is up, control
    /// clients on this server that are not its own.
    fn check_controllers(&mut self, c: &Spawned) {
        let manifest = self.manifest.to_string_lossy().into_owned();
        let controllers = count::processes(&manifest)
            .into_iter()
            .filter(|p| p.args.iter().any(|a| a == "controller"))
            .count();
        self.figures.duplicate_controllers += controllers.saturating_sub(1);
        let up = self
            .op
            .events("started")
            .iter()
            .any(|e| e["pid"] == c.pid());
        if !up {
            return;
        }
        // The server itself carries the command line of the client that started it; it
        // runs in a session of its own (a daemon), where a client stays in its
        // controller's: told apart so, also when it does not answer for its pid.
        let server = self.server_pid();
        let socket = self.op.t.socket().to_string_lossy().into_owned();
        let control = crate::tmux::control_session("failover");
        let leftovers: Vec<count::Process> = count::processes(&control)
            .into_iter()
            .filter(|p| p.args.iter().any(|a| a == &socket))
            .filter(|p| p.ppid != c.pid() && Some(p.pid) != server)
            .filter(|p| crate::procfs::session(p.pid) != Some(p.pid))
            .collect();
        for p in &leftovers {
            self.found.push_str(&format!(
                "leftover control client {} (parent {}; the controller {}, the server {server:?}): {}\n",
                p.pid,
                p.ppid,
                c.pid(),
                p.args.join(" ")
            ));
        }
        self.figures.leftover_clients += leftovers.len();
    }

    /// Starts a second controller on the same state folder, as an operator might by
    /// mistake: it must give up at once. One still running after 15 s is a duplicate.
    fn start_second(&mut self) {
        let mut second = self.start();
        let exited = wait_for_or_none(Duration::from_secs(15), || {
            second.child.try_wait().ok().flatten()
        });
        if exited.is_none_or(|status| status.success()) {
            self.figures.duplicate_controllers += 1;
        }
    }

    /// The tmux server's pid, while one runs.
    fn server_pid(&self) -> Option<u32> {
        let out = self.op.t.try_tmux(&["display-message", "-p", "#{pid}"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    /// Kills the tmux server and waits for it to be gone.
    fn kill_tmux(&self) {
        let pid = self.server_pid();
        let _ = self.op.t.try_tmux(&["kill-server"]);
        if let Some(pid) = pid {
            let _ = wait_for_or_none(Duration::from_secs(10), || {
                (!crate::procfs::alive(pid)).then_some(())
            });
        }
    }

    /// Makes the operator's own session (a tmux kill took the last one).
    fn make_mine(&mut self) {
        let typed = self.op.root.join("mine.typed");
        // A server the controller is starting at this moment may refuse it once.
        self.mine = wait_for_or_none(Duration::from_secs(10), || {
            let out = self.op.t.try_tmux(&[
                "new-session",
                "-d",
                "-s",
                MINE,
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
        });
        if self.mine.is_none() {
            self.found.push_str(&format!(
                "event {}: the operator's session could not be made within 10 s\n",
                self.event
            ));
        }
    }

    /// Counts the operator's session as touched if it is gone or runs another process.
    fn check_mine(&mut self) {
        let out = self
            .op
            .t
            .try_tmux(&["display-message", "-p", "-t", "=mine:", "#{pane_pid}"]);
        let now = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if self.mine.as_deref() != Some(now.as_str()) || now.is_empty() {
            self.figures.unowned_touched += 1;
            self.found.push_str(&format!(
                "event {}: the operator's session ran pane pid {:?} when made, now {now:?} ({})\n",
                self.event,
                self.mine,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }

    /// Waits (20 s at most: a loaded machine) for controller `c` to journal its start.
    fn wait_started(&self, c: &Spawned) {
        let _ = wait_for_or_none(Duration::from_secs(20), || {
            self.op
                .events("started")
                .iter()
                .any(|e| e["pid"] == c.pid())
                .then_some(())
        });
    }

    /// Waits (20 s at most: a loaded machine) for every damage made to be said in the
    /// journal, as the figures count it. A damage never said (the figures count it) makes
    /// every later wait run to its end: the bound keeps such a run from crawling.
    fn wait_handled(&mut self) {
        let state = self.op.state();
        let faults = self.figures.faults;
        let mut seen = 0;
        let handled = wait_for_or_none(Duration::from_secs(20), || {
            let entries = crate::journal::read(&state).unwrap_or_default();
            seen = said(&entries);
            (seen >= faults).then_some(())
        });
        if handled.is_none() {
            self.found.push_str(&format!(
                "event {}: {seen} of {faults} faults said after 20 s (the last made: {:?})\n",
                self.event, self.last_fault
            ));
        }
    }

    /// Counts controller `c` as exited on its own if it is gone (once), its exit and
    /// its log's last lines in the details.
    fn check_alive(&mut self, c: &mut Spawned) {
        let Ok(Some(status)) = c.child.try_wait() else {
            return;
        };
        if self.exited == Some(c.pid()) {
            return;
        }
        self.exited = Some(c.pid());
        self.figures.exited += 1;
        self.found.push_str(&format!(
            "event {}: controller {} exited on its own ({status}); its log's last lines:\n{}\n",
            self.event,
            c.pid(),
            tail(&c.log(), 20)
        ));
    }

    /// Damages the state folder with `fault`, counted when it was made.
    fn damage(&mut self, fault: damage::Fault, pick: u64) {
        if fault.make(&self.op.state(), pick) {
            self.figures.faults += 1;
            self.last_fault = Some(fault);
        }
    }

    /// Makes the state folder read-only, or fills its disk, for three seconds while the
    /// controller runs: what the operator sees meanwhile is kept, and the tasks that
    /// left the inboxes counted (a claim the controller could not record).
    fn unwritable(&mut self, fault: damage::Fault) {
        let state = self.op.state();
        let made: Result<Box<dyn std::any::Any>, String> = match fault {
            damage::Fault::DiskFull => match &self.disk {
                Ok(_) => damage::DiskFull::make(&state).map(|d| Box::new(d) as _),
                Err(why) => Err(why.clone()),
            },
            _ => damage::ReadOnly::make(&state).map(|r| Box::new(r) as _),
        };
        let guard = match made {
            Ok(guard) => guard,
            Err(why) => {
                self.skipped = Some(why);
                return;
            }
        };
        self.figures.faults += 1;
        self.last_fault = Some(fault);
        let what = if fault == damage::Fault::DiskFull {
            self.figures.disk_full += 1;
            "disk full"
        } else {
            self.figures.read_only += 1;
            "read-only"
        };
        let m = self.manifest.to_string_lossy().into_owned();
        let (_, get) = self.op.run(&["get", "sessions", "-f", &m]);
        let (_, doctor) = self.op.run(&["doctor", "-f", &m]);
        let said: Vec<&str> = get.lines().filter(|l| l.starts_with("warning")).collect();
        let checks: Vec<&str> = doctor
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("damage"))
            .collect();
        self.seen.push_str(&format!(
            "--- get sessions ({what})\n{}\n--- doctor ({what})\n{}\n",
            said.join("\n"),
            checks.join("\n")
        ));
        // A claim under way when the folder turned read-only has landed by now.
        let waiting = |at: &BTreeMap<String, &str>| -> Vec<String> {
            at.iter()
                .filter(|(_, p)| **p == "inbox")
                .map(|(n, _)| n.clone())
                .collect()
        };
        let before = waiting(&count::places(&self.inboxes()));
        std::thread::sleep(Duration::from_secs(3));
        let after = waiting(&count::places(&self.inboxes()));
        self.figures.claimed_unwritable += before.iter().filter(|n| !after.contains(n)).count();
        drop(guard);
    }

    /// Sets the wall clock forward by two hours, or back by ten minutes, in turn; holds
    /// it there three seconds while the tasks go on; sets it back to the real clock.
    /// Each jump is waited for in the journal (10 s at most), so that no kill comes
    /// before the controller saw it, and none while the clock is off (file times stay
    /// the kernel's: see [`clock`]).
    fn jump(&mut self) {
        let Some(clock) = &self.clock else { return };
        let minutes = if self.figures.clock_jumps.is_multiple_of(4) {
            120
        } else {
            -10
        };
        for offset in [minutes, 0] {
            if let Err(why) = clock.set(offset) {
                self.skipped = Some(why);
                return;
            }
            self.figures.clock_jumps += 1;
            let made = self.figures.clock_jumps;
            let _ = wait_for_or_none(Duration::from_secs(10), || {
                (self.op.events("clockJumped").len() >= made).then_some(())
            });
            if offset != 0 {
                std::thread::sleep(Duration::from_secs(3));
            }
        }
    }

    /// What an operator sees of the damage: the journal's `stateDamaged` events as
    /// `get events` tells them, and doctor's lines on it.
    fn operator(&self) -> String {
        let m = self.manifest.to_string_lossy();
        let (_, events) = self.op.run(&["get", "events", "-f", &m]);
        let (_, doctor) = self.op.run(&["doctor", "-f", &m]);
        let said: Vec<&str> = events
            .lines()
            .filter(|l| l.contains("kept aside"))
            .collect();
        let checks: Vec<&str> = doctor
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("damage"))
            .collect();
        format!(
            "--- get events (kept aside)\n{}\n--- doctor (damage)\n{}\n",
            said.join("\n"),
            checks.join("\n")
        )
    }

    /// Whether every task is in `done/` or `failed/`.
    fn settled(&self) -> bool {
        let at = count::places(&self.inboxes());
        self.names
            .iter()
            .all(|n| matches!(at.get(n), Some(&("done" | "failed"))))
    }

    /// Counts everything from evidence into the figures; the names behind them.
    fn count(&mut self) -> String {
        let at = count::places(&self.inboxes());
        let mut conversations = count::claude(&self.op.root.join("home/projects"));
        conversations.extend(count::codex(&self.op.root.join("cx/sessions")));
        let turns = count::turns(&conversations, &self.texts);
        let entries = crate::journal::read(&self.op.state()).unwrap_or_default();
        let journal = crate::journal::endings(&entries);
        let mut bad: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let f = &mut self.figures;
        for (i, (name, turns)) in self.names.iter().zip(&turns).enumerate() {
            let place = at.get(name).copied();
            let mut note = |what: &'static str| bad.entry(what).or_default().push(name.clone());
            match place {
                Some("done") => f.done += 1,
                Some("failed") => {
                    f.failed += 1;
                    note("failed");
                }
                Some(_) => {
                    f.stuck += 1;
                    note("stuck");
                }
                None => {
                    f.lost += 1;
                    note("lost");
                }
            }
            if place == Some("done") && turns.completed == 0 {
                f.done_unrun += 1;
                note("done unrun");
            }
            if turns.completed > 1 {
                f.run_twice += 1;
                note("run twice");
            } else if turns.sent > 1 + turns.handed_off {
                f.resent += 1;
                note("resent");
            }
            if turns.resumed {
                f.resumed += 1;
            }
            if turns.handed_off > 0 {
                f.handed_off += 1;
                note("handed off");
            }
            if turns.under_codex > 0 {
                f.under_codex += 1;
            }
            if turns.shared {
                f.shared_context += 1;
                note("shared context");
            }
            for ending in ["done", "failed"] {
                let key = (
                    crate::plan::TaskKey::new(task(i).0, name.clone()),
                    ending == "done",
                );
                let events = journal.get(&key).copied().unwrap_or(0);
                let there = usize::from(place == Some(ending));
                if events < there {
                    f.journal_missing += 1;
                    note("journal missing");
                } else if events > there {
                    f.journal_extra += events - there;
                    note("journal extra");
                }
            }
        }
        f.replayed = entries
            .iter()
            .filter(|l| matches!(&l.entry, crate::journal::Entry::Acted(a) if a.replayed))
            .count();
        f.said = said(&entries);
        f.clock_jumps_said = entries
            .iter()
            .filter(|l| matches!(&l.entry, Controller(Life::ClockJumped { .. })))
            .count();
        f.logged_unwritable = (1..=self.starts)
            .map(|n| {
                self.op
                    .log(&format!("controller-{n}"))
                    .matches("cannot be written")
                    .count()
            })
            .sum();
        f.kept_aside = damage::kept_aside(&self.op.state()).len();
        f.hand_offs_journaled = entries
            .iter()
            .filter(|l| {
                matches!(
                    &l.entry,
                    crate::journal::Entry::Event(crate::plan::Event::HandedOff { .. })
                )
            })
            .count();
        f.family_changes = entries
            .iter()
            .filter(|l| {
                matches!(
                    &l.entry,
                    crate::journal::Entry::Event(crate::plan::Event::FamilyChanged { .. })
                )
            })
            .count();
        f.panics = (1..=self.starts)
            .filter(|n| self.op.log(&format!("controller-{n}")).contains("panicked"))
            .count();
        let typed = std::fs::metadata(self.op.root.join("mine.typed")).map_or(0, |m| m.len());
        if typed > 0 {
            f.unowned_touched += 1;
            let text = std::fs::read(self.op.root.join("mine.typed")).unwrap_or_default();
            self.found.push_str(&format!(
                "typed into the operator's session: {:.200}\n",
                String::from_utf8_lossy(&text)
            ));
        }
        let mut text = String::new();
        for (what, names) in &bad {
            text.push_str(&format!("{what}: {}\n", names.join(" ")));
        }
        // A shared conversation: its messages in order, by task, and what the journal
        // says of every task in it.
        let mut involved: Vec<String> = Vec::new();
        for name in bad.get("shared context").into_iter().flatten() {
            let Some(i) = self.names.iter().position(|n| n == name) else {
                continue;
            };
            let text_of = |t: &str| crate::report::unwrap_pasted(t).trim().to_owned();
            for c in conversations.iter().filter(|c| {
                c.messages
                    .iter()
                    .any(|m| text_of(&m.text) == self.texts[i].trim())
            }) {
                let said: Vec<String> = c
                    .messages
                    .iter()
                    .map(|m| {
                        let t = text_of(&m.text);
                        match self.texts.iter().position(|x| x.trim() == t) {
                            Some(j) => {
                                involved.push(self.names[j].clone());
                                format!("{}: {}", m.role, self.names[j])
                            }
                            None => format!("{}: {:.40}", m.role, t.replace('\n', " ")),
                        }
                    })
                    .collect();
                text.push_str(&format!("  conversation of {name}: {}\n", said.join(" | ")));
            }
        }
        involved.sort();
        involved.dedup();
        if !involved.is_empty() {
            // When the controllers started and what they said of the state folder.
            let life: Vec<String> = entries
                .iter()
                .filter(|l| matches!(&l.entry, Controller(_)))
                .filter_map(|l| serde_json::to_value(l).ok())
                .map(|v| format!("{} {}", v["time"].as_str().unwrap_or(""), v["event"]))
                .collect();
            text.push_str(&format!("  controllers: {}\n", life.join(" · ")));
        }
        // What the journal says of the tasks whose events do not match the folders.
        for name in bad
            .iter()
            .filter(|(w, _)| w.starts_with("journal") || **w == "resent" || **w == "handed off")
            .flat_map(|(_, n)| n)
            .chain(&involved)
        {
            for line in entries
                .iter()
                .filter_map(|l| serde_json::to_string(l).ok())
                .filter(|l| l.contains(name.as_str()))
            {
                text.push_str(&format!("  {line}\n"));
            }
        }
        text
    }
}

/// The mixed run's manifest: Claude account `main` and Codex account `cx`; both pools
/// over `[Claude, Codex]` profiles of their speed; the dedicated session on Claude.
fn mixed_manifest(root: &Path, bin: &Path, fallback: Duration) -> String {
    let (r, b) = (root.display(), bin.display());
    let fallback = fallback.as_secs();
    format!(
        "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: main}}\nspec: {{home: {r}/home}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {{name: cx}}\nspec: {{home: {r}/cx, agent: codex}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: claude}}\nspec: {{command: [{b}, sim-agent], env: {{FAILOVER_SIM_TURN: 150ms}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: slow}}\nspec: {{command: [{b}, sim-agent], env: {{FAILOVER_SIM_TURN: 2s}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: codex}}\nspec: {{kind: codex, command: [{b}, sim-agent, --agent, codex], env: {{FAILOVER_SIM_TURN: 150ms}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: AgentProfile\nmetadata: {{name: codex-slow}}\nspec: {{kind: codex, command: [{b}, sim-agent, --agent, codex], env: {{FAILOVER_SIM_TURN: 2s}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata: {{name: default}}\nspec: {{pollInterval: 200ms, dispatch: {{submitDelay: 50ms}}, quota: {{cooldown: 0s, confirmations: 1, resetFallback: {fallback}s}}}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: fast}}\nspec: {{prefix: f-, min: 3, max: 3, agents: [claude, codex], workdir: {r}/work}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {{name: slow}}\nspec: {{prefix: s-, min: 2, max: 2, agents: [slow, codex-slow], workdir: {r}/work}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: DedicatedSession\nmetadata: {{name: desk}}\nspec: {{workdir: {r}/desk, agent: claude}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: fast}}\nspec: {{path: {r}/fast/inbox, pool: fast, workdir: {r}/work, maxTries: 3}}\n---\n\
         apiVersion: failover/v1alpha1\nkind: Inbox\nmetadata: {{name: slow}}\nspec: {{path: {r}/slow/inbox, pool: slow, workdir: {r}/work, maxTries: 3}}\n"
    )
}
