//! Test support: a private tmux server per test, temp folders, and polling with a
//! deadline.
//!
//! [`TmuxServer`] runs `tmux -S <tempdir>/sock -f /dev/null`, never the user's server,
//! and kills it when dropped, panics included. Its helpers talk to tmux through plain
//! `tmux` processes, independent of the crate's own tmux connection, so tests observe
//! what failover did without trusting failover to report it. Helpers panic with a
//! message on failure, as test helpers do. [`Bed`] puts the operator's folder beside
//! one and runs `failover` on them; [`manifest::Manifest`] writes the manifests it runs.

pub mod bed;
pub mod chaos;
pub mod claude;
pub mod codex;
pub mod etcd;
pub mod machine;
pub mod manifest;
pub mod mock_api;
mod mock_http;
pub mod mock_responses;
pub mod proxy;

pub use bed::Bed;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout`
/// naming `what`.
pub fn wait_for<T>(timeout: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    wait_for_or_none(timeout, check)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// Polls `check` every 20 ms until it returns `Some`, or gives `None` after `timeout`.
pub fn wait_for_or_none<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` with `input` on its stdin; returns its output (stdout and stderr piped).
pub fn run_with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .unwrap_or_else(|e| panic!("stdin of {cmd:?}: {e}"));
    }
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for {cmd:?}: {e}"))
}

/// Drops a task into `inbox` as `name` the way people do: written beside it, then
/// renamed in.
pub fn drop_task(inbox: &Path, name: &str, text: &str) {
    let tmp = inbox.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {tmp:?}: {e}"));
    std::fs::rename(&tmp, inbox.join(name)).unwrap_or_else(|e| panic!("rename {tmp:?}: {e}"));
}

/// The task files in `dir`, sorted: not their records (`<name>.json`), nor files being
/// written (`.name.tmp`).
pub fn task_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.ends_with(".json") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The journal of the state folder `state`, oldest line first, each as the JSON it is
/// on disk.
pub fn journal_values(state: &Path) -> Vec<serde_json::Value> {
    crate::journal::read(state)
        .unwrap_or_else(|e| panic!("journal in {state:?}: {e}"))
        .iter()
        .map(|l| serde_json::to_value(l).unwrap_or_default())
        .collect()
}

/// The journal entries of kind `event` in the state folder `state`, oldest first.
pub fn journal_events(state: &Path, event: &str) -> Vec<serde_json::Value> {
    journal_values(state)
        .into_iter()
        .filter(|e| e["event"] == event)
        .collect()
}

/// A process a test started (a controller), with its stderr in a log file, SIGKILLed
/// and reaped when dropped if it is still running.
#[derive(Debug)]
pub struct Spawned {
    /// The process.
    pub child: std::process::Child,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Spawned {
    /// Starts `cmd` with stderr to `log`, stdout discarded.
    pub fn start(mut cmd: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log {log:?}: {e}"));
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Self { child, log }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it a signal by name (`TERM`, `INT`) through `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap_or_else(|e| panic!("kill: {e}"));
        assert!(status.success(), "kill -s {name} failed");
    }

    /// Waits for it to exit; its exit code.
    pub fn exit_code(&mut self, timeout: Duration) -> Option<i32> {
        let child = &mut self.child;
        wait_for(timeout, "the process to exit", || {
            child.try_wait().ok().flatten()
        })
        .code()
    }

    /// SIGKILLs it now.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private tmux server in a temp folder, killed on drop.
#[derive(Debug)]
pub struct TmuxServer {
    dir: tempfile::TempDir,
    socket: PathBuf,
    /// Environment every process of the machine gets: its tmux commands (and so the
    /// server and its panes when one of them starts it) and the bed's `failover`s.
    machine: Vec<(String, String)>,
}

impl Default for TmuxServer {
    fn default() -> Self {
        Self::start()
    }
}

impl TmuxServer {
    /// A new server (it starts with its first session) in a new temp folder.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("failover-test-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot make a temp folder: {e}"));
        let socket = dir.path().join("sock");
        Self {
            dir,
            socket,
            machine: Vec::new(),
        }
    }

    /// A server whose socket lies in the folder `sub` of the temp folder, not made yet:
    /// no tmux can start there until the test makes it.
    pub fn start_in(sub: &str) -> Self {
        let mut t = Self::start();
        t.socket = t.dir.path().join(sub).join("sock");
        t
    }

    /// Gives every process of the machine from now on `env` as well (a faked wall
    /// clock, say): see [`TmuxServer::machine_env`].
    pub fn set_machine_env(&mut self, env: Vec<(String, String)>) {
        self.machine = env;
    }

    /// The environment every process of the machine gets beside its own.
    pub fn machine_env(&self) -> &[(String, String)] {
        &self.machine
    }

    /// The server's socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The server as failover's connection names it, started without any tmux
    /// configuration file (`-f /dev/null`) when failover starts it.
    pub fn server(&self) -> crate::tmux::Server {
        crate::tmux::Server::new(Some(self.socket.clone())).with_config(Some("/dev/null".into()))
    }

    /// A managing connection (owner `failover`) to this server, starting it.
    pub async fn manage(&self) -> crate::tmux::Tmux {
        let mode = crate::tmux::Mode::Manage {
            owner: "failover".into(),
        };
        match crate::tmux::Tmux::connect(self.server(), mode).await {
            Ok(Some(tmux)) => tmux,
            other => panic!("cannot connect to {}: {other:?}", self.socket.display()),
        }
    }

    /// The environment that points a `failover` process at this server, without any
    /// tmux configuration file.
    pub fn env(&self) -> [(&'static str, PathBuf); 2] {
        [
            ("FAILOVER_TMUX_SOCKET", self.socket.clone()),
            ("FAILOVER_TMUX_CONFIG", PathBuf::from("/dev/null")),
        ]
    }

    /// The test's temp folder (the socket lives in it too).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A folder under the temp folder, created.
    pub fn mkdir(&self, relative: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {path:?}: {e}"));
        path
    }

    /// A `tmux` command bound to this server.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.arg("-S").arg(&self.socket).arg("-f").arg("/dev/null");
        cmd.env_remove("TMUX");
        cmd.envs(self.machine.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs tmux with `args`; returns its output whatever the exit status.
    pub fn try_tmux(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux (is it installed?): {e}"))
    }

    /// Runs tmux with `args`, panicking on failure; returns stdout.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = self.try_tmux(args);
        if !out.status.success() {
            panic!(
                "tmux {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a detached 200x50 session `name` in `cwd` running `argv` directly (no
    /// shell) with `env` set.
    pub fn new_session(&self, name: &str, cwd: &Path, env: &[(&str, &str)], argv: &[&str]) {
        self.spawn_session(name, cwd, env, argv, false);
    }

    /// Like [`TmuxServer::new_session`], with `remain-on-exit` set in the same command
    /// so that even an agent that exits at once leaves its pane and output behind.
    pub fn new_session_kept(&self, name: &str, cwd: &Path, env: &[(&str, &str)], argv: &[&str]) {
        self.spawn_session(name, cwd, env, argv, true);
    }

    fn spawn_session(
        &self,
        name: &str,
        cwd: &Path,
        env: &[(&str, &str)],
        argv: &[&str],
        keep: bool,
    ) {
        let cwd = cwd.to_string_lossy();
        let mut args = vec![
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "200",
            "-y",
            "50",
            "-c",
            &cwd,
        ];
        let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for pair in &pairs {
            args.extend(["-e", pair]);
        }
        args.push("--");
        args.extend(argv);
        if keep {
            args.extend([";", "set-option", "-t", name, "remain-on-exit", "on"]);
        }
        self.tmux(&args);
    }

    /// The exit status of the agent in `target` once its pane is dead, else `None`.
    ///
    /// Debian's tmux is built with libutempter, whose own SIGCHLD handler can swallow
    /// the signal of a pane that exits while a record is being removed (tmux issue
    /// #311): the pane reads dead with no status and the agent stays a zombie. A dead
    /// pane without a status gets the server a fresh SIGCHLD so it reaps.
    pub fn exit_status(&self, target: &str) -> Option<i32> {
        let format = "#{pane_dead}:#{pane_dead_status}:#{pid}";
        let out = self.tmux(&["display-message", "-p", "-t", target, format]);
        let mut fields = out.trim().split(':');
        let (dead, status, server) = (fields.next()?, fields.next()?, fields.next()?);
        if dead != "1" {
            return None;
        }
        if status.is_empty() {
            let _ = Command::new("kill").args(["-s", "CHLD", server]).status();
            return None;
        }
        status.parse().ok()
    }

    /// The visible screen of `target`, one string with newlines.
    pub fn capture(&self, target: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-t", target])
    }

    /// The screen of `target` with its whole scrollback. A dead pane's last lines
    /// scroll into the history when tmux writes "Pane is dead" under them.
    pub fn capture_all(&self, target: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-S", "-", "-t", target])
    }

    /// Waits until the visible screen of `target` satisfies `pred`; returns it.
    pub fn wait_screen(
        &self,
        target: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_capture(target, timeout, what, pred, false)
    }

    /// Waits until the screen and scrollback of `target` satisfy `pred`; returns them.
    pub fn wait_output(
        &self,
        target: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        self.wait_capture(target, timeout, what, pred, true)
    }

    fn wait_capture(
        &self,
        target: &str,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&str) -> bool,
        history: bool,
    ) -> String {
        let mut screen = String::new();
        let found = wait_for_or_none(timeout, || {
            screen = if history {
                self.capture_all(target)
            } else {
                self.capture(target)
            };
            pred(&screen).then_some(())
        });
        if found.is_none() {
            panic!("timed out after {timeout:?} waiting for {what} in {target}; screen:\n{screen}");
        }
        screen
    }

    /// Pastes `text` into `target` as a bracketed paste through a tmux buffer.
    pub fn paste(&self, target: &str, text: &str) {
        let buffer = format!("testbed-{}", std::process::id());
        let mut child = self
            .command()
            .args(["load-buffer", "-b", &buffer, "-"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run tmux: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .unwrap_or_else(|e| panic!("load-buffer: {e}"));
        }
        let status = child.wait().unwrap_or_else(|e| panic!("load-buffer: {e}"));
        assert!(status.success(), "load-buffer failed");
        self.tmux(&["paste-buffer", "-p", "-d", "-b", &buffer, "-t", target]);
    }

    /// Sends key names (`Enter`, `Escape`, `C-c`) to `target`.
    pub fn keys(&self, target: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", target];
        args.extend(keys);
        self.tmux(&args);
    }

    /// Sends `text` literally (`send-keys -l`) to `target`.
    pub fn type_text(&self, target: &str, text: &str) {
        self.tmux(&["send-keys", "-t", target, "-l", text]);
    }

    /// The value of session option `name` (`@failover-account`, say) of session
    /// `session`, empty when unset or when there is no such session.
    pub fn session_option(&self, session: &str, name: &str) -> String {
        let target = format!("={session}:");
        let out = self.try_tmux(&["show-options", "-qv", "-t", &target, name]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The conversation the agent of `session` holds, from its session file under
    /// `home`.
    pub fn conversation(&self, home: &Path, session: &str) -> Option<String> {
        crate::conversation::of_agent(home, self.pane_pid(&format!("={session}:")))
    }

    /// The pid of the first pane of `target`.
    pub fn pane_pid(&self, target: &str) -> u32 {
        let out = self.tmux(&["display-message", "-p", "-t", target, "#{pane_pid}"]);
        out.trim()
            .parse()
            .unwrap_or_else(|e| panic!("pane pid of {target}: {out:?}: {e}"))
    }

    /// The names of every session on the server (empty when it is not running).
    pub fn sessions(&self) -> Vec<String> {
        let out = self.try_tmux(&["list-sessions", "-F", "#{session_name}"]);
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }
}

/// SIGKILLs `pid`, quietly: it may have ended meanwhile.
fn kill_hard(pid: &str) {
    let _ = Command::new("kill")
        .args(["-s", "KILL", pid])
        .stderr(Stdio::null())
        .status();
}

impl Drop for TmuxServer {
    /// Kills the server, then every process still tied to this test's socket (a
    /// server a SIGKILLed controller's client had begun to start, say), by pid.
    fn drop(&mut self) {
        let panes = self.try_tmux(&["list-panes", "-a", "-F", "#{pane_pid}"]);
        let panes: Vec<u32> = String::from_utf8_lossy(&panes.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect();
        let _ = self.try_tmux(&["kill-server"]);
        let socket = self.socket.to_string_lossy().into_owned();
        if let Ok(out) = Command::new("pgrep").args(["-f", &socket]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                kill_hard(pid);
            }
        }
        // The panes' programs got SIGHUP and may still write on their way out (a real
        // Claude Code writes its config, backups and transcript): waited for, then
        // killed, so that nothing makes the temp folder again once it is removed.
        let running = || -> Vec<u32> {
            panes
                .iter()
                .copied()
                .filter(|pid| crate::procfs::alive(*pid))
                .collect()
        };
        if wait_for_or_none(Duration::from_secs(5), || {
            running().is_empty().then_some(())
        })
        .is_none()
        {
            for pid in running() {
                kill_hard(&pid.to_string());
            }
            let _ = wait_for_or_none(Duration::from_secs(2), || {
                running().is_empty().then_some(())
            });
        }
    }
}
