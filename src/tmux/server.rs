//! Which tmux server to talk to, and how `tmux` is started for it: the one place that
//! spawns `tmux`, counting the processes it starts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::process::Command;

static SPAWNED: AtomicU64 = AtomicU64::new(0);

/// How many tmux processes this process has started (connections and version checks).
/// Observation must not add to it once connected.
pub fn processes_started() -> u64 {
    SPAWNED.load(Ordering::Relaxed)
}

/// Which tmux server to talk to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Server {
    /// `tmux -S <socket>`; `None` is the user's default server.
    pub socket: Option<PathBuf>,
    /// `tmux -f <config>` when failover starts the server; `None` is tmux's default.
    pub config: Option<PathBuf>,
    /// Where a managing connection records the pids of its control clients (see
    /// [`super::leftovers`]); `None` records nothing.
    pub record: Option<PathBuf>,
}

impl Server {
    /// The server at `socket`, or the default one.
    pub fn new(socket: Option<PathBuf>) -> Self {
        Self {
            socket,
            config: None,
            record: None,
        }
    }

    /// The same server, started with the configuration file `config` when failover
    /// starts it.
    pub fn with_config(mut self, config: Option<PathBuf>) -> Self {
        self.config = config;
        self
    }

    /// A `tmux` command for this server (socket and config), counted.
    pub(super) fn command(&self) -> Command {
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        let mut cmd = Command::new("tmux");
        if let Some(socket) = &self.socket {
            cmd.arg("-S").arg(socket);
        }
        if let Some(config) = &self.config {
            cmd.arg("-f").arg(config);
        }
        cmd.env_remove("TMUX");
        cmd.kill_on_drop(true);
        cmd
    }

    /// The same server, the pids of the control clients a managing connection starts
    /// recorded in `dir`, so that the next process can end those a crash left behind.
    pub fn with_record(mut self, dir: PathBuf) -> Self {
        self.record = Some(dir);
        self
    }

    /// The `tmux` command line that reaches this server, for messages that tell the
    /// operator what to run.
    pub fn command_line(&self) -> String {
        match &self.socket {
            Some(s) => format!("tmux -S {}", s.display()),
            None => "tmux".to_owned(),
        }
    }

    /// How messages name the server.
    pub fn describe(&self) -> String {
        match &self.socket {
            Some(s) => s.display().to_string(),
            None => "default".to_owned(),
        }
    }
}

/// The name of the idle session a managing connection attaches to.
pub fn control_session(owner: &str) -> String {
    format!("_{owner}-control")
}
