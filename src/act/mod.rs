//! Executing a plan's actions against tmux and the filesystem, each group by its own
//! executor: [`fs`] (folders, links, agent settings), [`session`] (tmux sessions and
//! their agents), [`tasks`] (claims, pastes, completion, retries).
//!
//! Session commands go out as one tmux command list each, so a session is never seen
//! without its owner mark; destructive ones (kill, respawn) run only if the session
//! still carries our mark when tmux executes them.

mod fs;
mod session;
mod tasks;

use crate::state::paths::REPORTS_DIR;
use std::path::Path;

use crate::observe::{ACCOUNT_OPTION, OWNER_OPTION, PANE_OPTION};
use crate::plan::{Action, Outcome, SessionSpec};
use crate::tmux::{self, Cmd, Tmux};

/// An action that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// tmux refused or failed.
    #[error("session {name}: {source}")]
    Session {
        /// The session.
        name: String,
        /// What tmux said.
        source: tmux::Error,
    },
    /// A folder or link could not be made.
    #[error("{}: {source}", path.display())]
    Fs {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The session lost our owner mark between observation and action: left alone.
    #[error("session {name}: no longer carries our owner mark; left alone")]
    NotOurs {
        /// The session.
        name: String,
    },
    /// A task file could not be moved or sent.
    #[error("task {task}: {message}")]
    Task {
        /// `inbox/name`.
        task: String,
        /// What went wrong.
        message: String,
    },
    /// No tmux server to act on (observe-only connection).
    #[error("session {name}: no tmux connection to act on")]
    NoTmux {
        /// The session.
        name: String,
    },
    /// A link failover made points elsewhere since: left alone.
    #[error("link {}: no longer points where failover made it point; left alone", .0.display())]
    LinkChanged(std::path::PathBuf),
    /// An account home's agent settings could not be written.
    #[error("agent settings {}: {message}", path.display())]
    Settings {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
}

/// What actions run with.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The connection; `None` when no server runs and none may be started.
    pub tmux: Option<&'a Tmux>,
    /// The controller's owner mark.
    pub owner: &'a str,
    /// The state folder: paste buffers are written there, and agents are told its
    /// `reports/` folder (`FAILOVER_REPORTS`) for `failover hook`.
    pub state_dir: Option<&'a Path>,
}

/// Carries out one action, by the executor of its group.
pub async fn execute(action: &Action, ctx: Context<'_>) -> Result<Outcome, Error> {
    match action {
        Action::Fs(a) => fs::execute(a, ctx.state_dir).map(|()| Outcome::Done),
        Action::Session(a) => session::execute(a, ctx).await,
        Action::Task(a) => tasks::execute(a, ctx).await,
    }
}

/// `=name:`, the exact-match target of a session's current window and pane.
fn target(name: &str) -> String {
    format!("={name}:")
}

/// Starts `s`'s agent again in `pane` (killing the running one with `kill`): first the
/// variables of other accounts are cleared from the session's environment, then the
/// pane is respawned with `s`'s folder, environment and argv, and marked with its
/// account.
fn respawn(pane: &str, kill: bool, s: &SessionSpec, state_dir: Option<&Path>) -> Vec<Cmd> {
    let mut cmds: Vec<Cmd> = s
        .unset
        .iter()
        .map(|k| Cmd::new("set-environment").args(["-t", pane, "-u", k]))
        .collect();
    let flags: &[&str] = if kill {
        &["-k", "-t", pane]
    } else {
        &["-t", pane]
    };
    cmds.push(with_process(
        Cmd::new("respawn-pane").args(flags.iter().copied()),
        s,
        state_dir,
    ));
    cmds.push(Cmd::new("set-option").args(["-t", pane, ACCOUNT_OPTION, &s.account]));
    cmds
}

/// Adds the working folder, environment and argv. tmux expands `-c` as a format, so
/// `#` is doubled (a literal `#`); a one-word argv would be run by tmux through a
/// shell, so `env --` makes tmux execute it directly. With a state folder, the agent is
/// told where `failover hook` writes its reports, for which session and account.
fn with_process(mut cmd: Cmd, s: &SessionSpec, state_dir: Option<&Path>) -> Cmd {
    cmd = cmd.args([
        "-c".to_owned(),
        s.workdir.to_string_lossy().replace('#', "##"),
    ]);
    for (k, v) in &s.env {
        cmd = cmd.args(["-e".to_owned(), format!("{k}={v}")]);
    }
    if let Some(dir) = state_dir {
        use crate::report::{ENV_ACCOUNT, ENV_REPORTS, ENV_SESSION};
        let reports = dir.join(REPORTS_DIR);
        for (k, v) in [
            (ENV_SESSION, s.name.clone()),
            (ENV_ACCOUNT, s.account.clone()),
            (ENV_REPORTS, reports.to_string_lossy().into_owned()),
        ] {
            cmd = cmd.args(["-e".to_owned(), format!("{k}={v}")]);
        }
    }
    cmd = cmd.arg("--");
    if s.command.len() == 1 {
        cmd = cmd.args(["env", "--"]);
    }
    cmd.args(s.command.iter().cloned())
}

/// The format that is true on a session carrying our owner mark. (The owner is
/// validated to letters, digits, `-` and `_`: nothing a format could read as syntax.)
fn ours(owner: &str) -> String {
    format!("#{{==:#{{{OWNER_OPTION}}},{owner}}}")
}

/// Runs `cmds` only if the session of `target` carries our owner mark when tmux gets
/// to them; an error naming the session when it no longer does.
async fn run_guarded(
    ctx: Context<'_>,
    name: &str,
    target: &str,
    cmds: &[Cmd],
) -> Result<(), Error> {
    let tmux = ctx.tmux.ok_or_else(|| Error::NoTmux {
        name: name.to_owned(),
    })?;
    let ran = tmux
        .run_if(&[], target, &ours(ctx.owner), cmds)
        .await
        .map_err(|source| Error::Session {
            name: name.to_owned(),
            source,
        })?;
    if ran {
        Ok(())
    } else {
        Err(Error::NotOurs {
            name: name.to_owned(),
        })
    }
}

async fn run(ctx: Context<'_>, name: &str, cmds: &[Cmd]) -> Result<(), Error> {
    let tmux = ctx.tmux.ok_or_else(|| Error::NoTmux {
        name: name.to_owned(),
    })?;
    tmux.run_list(cmds)
        .await
        .map(drop)
        .map_err(|source| Error::Session {
            name: name.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Role;

    #[test]
    fn one_word_commands_should_not_go_through_a_shell() {
        let spec = SessionSpec {
            name: "s".into(),
            role: Role::Dedicated,
            account: "a".into(),
            workdir: "/w/#{x}".into(),
            command: vec!["claude".into()],
            env: [("K".to_owned(), "v w".to_owned())].into(),
            unset: vec![],
        };
        let cmd = with_process(Cmd::new("new-session"), &spec, None);
        assert_eq!(
            cmd.argv(),
            [
                "new-session",
                "-c",
                "/w/##{x}",
                "-e",
                "K=v w",
                "--",
                "env",
                "--",
                "claude"
            ]
        );
    }

    #[test]
    fn guarded_commands_should_check_the_owner_mark() {
        let cmd = tmux::proto::if_shell(
            "=s:",
            &ours("failover"),
            &[Cmd::new("kill-session").args(["-t", "=s"])],
        );
        assert_eq!(
            cmd.argv(),
            [
                "if-shell",
                "-F",
                "-t",
                "=s:",
                "#{==:#{@failover-owner},failover}",
                r#""kill-session" "-t" "=s""#
            ]
        );
    }
}
