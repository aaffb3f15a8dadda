//! An operator's folder beside a private tmux server, and the `failover` commands run on
//! them: the bed of the integration tests (`tests/it`) and of the chaos suite.
//!
//! A [`Bed`] is a [`TmuxServer`] with the folder `op` in its temp folder, where the
//! manifests, account homes, inboxes and the state folder (`op/state`) live. Task queues
//! follow failover's layout, `<project>/.agent-queue/{inbox,active,done,failed}` under
//! that folder. What a test writes into its manifests is its own: the bed runs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Spawned, TmuxServer, journal_events, task_files, wait_for};

/// A private tmux server, the operator's folder beside it, and the `failover` binary to
/// run on them.
#[derive(Debug)]
pub struct Bed {
    /// The private tmux server; its temp folder holds [`Bed::root`].
    pub t: TmuxServer,
    /// The operator's folder: `op` in the server's temp folder.
    pub root: PathBuf,
    bin: PathBuf,
}

impl Bed {
    /// A bed on a new server running `bin`, with the folders `dirs` (under the root)
    /// made.
    pub fn new(bin: &Path, dirs: &[&str]) -> Self {
        Self::on(TmuxServer::start(), bin, dirs)
    }

    /// Like [`Bed::new`], on the server `t` (one of [`TmuxServer::start_in`], say).
    pub fn on(t: TmuxServer, bin: &Path, dirs: &[&str]) -> Self {
        let root = t.mkdir("op");
        for dir in dirs {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {path:?}: {e}"));
        }
        Self {
            t,
            root,
            bin: bin.to_path_buf(),
        }
    }

    /// The `failover` binary it runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The state folder every `failover` of the bed uses: `state` under the root.
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Writes `text` to `path` (under the root unless absolute); the full path.
    pub fn write(&self, path: impl AsRef<Path>, text: &str) -> PathBuf {
        let path = self.root.join(path);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {path:?}: {e}"));
        path
    }

    /// Saves `text` to `path` (under the root unless absolute) as editors do: a temp file
    /// renamed over the old one. The full path.
    pub fn save(&self, path: impl AsRef<Path>, text: &str) -> PathBuf {
        let path = self.root.join(path);
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp~");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {tmp:?}: {e}"));
        std::fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("rename {tmp:?}: {e}"));
        path
    }

    /// Replaces `from` by `to` in the file `path` (under the root unless absolute);
    /// `from` must be there.
    pub fn edit(&self, path: impl AsRef<Path>, from: &str, to: &str) {
        let path = self.root.join(path);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(text.contains(from), "{from:?} not in {path:?}:\n{text}");
        std::fs::write(&path, text.replace(from, to))
            .unwrap_or_else(|e| panic!("write {path:?}: {e}"));
    }

    /// `failover args…` on the bed's tmux server and state folder, without colours.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .envs(self.t.env())
            .envs(self.t.machine_env().iter().map(|(k, v)| (k, v)))
            .env("FAILOVER_STATE_DIR", self.state())
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs `failover args…` (see [`Bed::command`]) to its end: its exit code (-1 when a
    /// signal ended it), and its stdout followed by its stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run failover {args:?}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    /// Starts `failover controller -f manifest`, its stderr in `<name>.log` under the
    /// root ([`Bed::log`]), with `RUST_LOG` set to `log` when given, else inherited.
    pub fn controller(&self, manifest: &Path, name: &str, log: Option<&str>) -> Spawned {
        let mut cmd = self.command(&["controller", "-f", &manifest.to_string_lossy()]);
        if let Some(log) = log {
            cmd.env("RUST_LOG", log);
        }
        Spawned::start(cmd, self.root.join(format!("{name}.log")))
    }

    /// What the controller started as `name` has logged so far.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// The journal of the state folder, oldest entry first, each line as the JSON it
    /// is on disk (what tests assert is the journal's format).
    pub fn journal(&self) -> Vec<serde_json::Value> {
        super::journal_values(&self.state())
    }

    /// The journal entries of kind `event`, oldest first.
    pub fn events(&self, event: &str) -> Vec<serde_json::Value> {
        journal_events(&self.state(), event)
    }

    /// The queue folder `folder` (`inbox`, `active`, `done`, `failed`) of the project
    /// folder `project` under the root.
    pub fn queue(&self, project: &str, folder: &str) -> PathBuf {
        self.root.join(project).join(".agent-queue").join(folder)
    }

    /// The inbox of the project folder `project`.
    pub fn inbox(&self, project: &str) -> PathBuf {
        self.queue(project, "inbox")
    }

    /// Drops a task into `project`'s inbox the way people do: written beside it, then
    /// renamed in.
    pub fn drop_task(&self, project: &str, name: &str, text: &str) {
        super::drop_task(&self.inbox(project), name, text);
    }

    /// The task files in `project`'s queue folder `folder`, sorted (see
    /// [`super::task_files`]).
    pub fn files(&self, project: &str, folder: &str) -> Vec<String> {
        task_files(&self.queue(project, folder))
    }

    /// The record (`<name>.json`) of task `name` in `project`'s queue folder `folder`.
    pub fn record(&self, project: &str, folder: &str, name: &str) -> serde_json::Value {
        let path = self.queue(project, folder).join(format!("{name}.json"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path:?}: {e}"))
    }

    /// Session name → pane pid of every session but the control session (`_…`), its
    /// pane alive or dead.
    pub fn pids(&self) -> BTreeMap<String, u32> {
        self.t
            .sessions()
            .into_iter()
            .filter(|s| !s.starts_with('_'))
            .map(|s| {
                let pid = self.t.pane_pid(&format!("={s}:"));
                (s, pid)
            })
            .collect()
    }

    /// Session name → pane pid of the sessions named `prefix…` whose pane still runs.
    pub fn live_pids(&self, prefix: &str) -> BTreeMap<String, u32> {
        self.t
            .sessions()
            .into_iter()
            .filter(|s| s.starts_with(prefix))
            .filter_map(|s| {
                let out = self.t.try_tmux(&[
                    "display-message",
                    "-p",
                    "-t",
                    &format!("={s}:"),
                    "#{pane_pid} #{pane_dead}",
                ]);
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let (pid, dead) = text.trim().split_once(' ')?;
                (dead == "0").then(|| (s, pid.parse().unwrap_or(0)))
            })
            .collect()
    }

    /// [`Bed::live_pids`] of `prefix`, once there are `n` of them; panics after
    /// `timeout`.
    pub fn wait_live_pids(
        &self,
        prefix: &str,
        n: usize,
        timeout: Duration,
    ) -> BTreeMap<String, u32> {
        wait_for(timeout, &format!("{n} sessions"), || {
            let pids = self.live_pids(prefix);
            (pids.len() == n).then_some(pids)
        })
    }

    /// The names of the sessions named `prefix…`, sorted.
    pub fn sessions(&self, prefix: &str) -> Vec<String> {
        self.t
            .sessions()
            .into_iter()
            .filter(|s| s.starts_with(prefix))
            .collect()
    }

    /// The account failover runs `session` under (`@failover-account`), empty when none.
    pub fn account(&self, session: &str) -> String {
        self.t.session_option(session, "@failover-account")
    }

    /// The owner mark (`@failover-owner`) of `session`, empty when unmarked; panics when
    /// there is no such session.
    pub fn owner(&self, session: &str) -> String {
        self.t
            .tmux(&[
                "show-options",
                "-qv",
                "-t",
                &format!("={session}:"),
                "@failover-owner",
            ])
            .trim()
            .to_owned()
    }
}
