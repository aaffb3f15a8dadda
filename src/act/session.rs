//! Executing session actions: create, restart, move to another account (resuming its
//! conversation), recycle and delete, each as one tmux command list; the destructive
//! ones only while the session still carries our owner mark.

use std::path::Path;

use super::{
    ACCOUNT_OPTION, Context, Error, OWNER_OPTION, PANE_OPTION, respawn, run, run_guarded, target,
    with_process,
};
use crate::plan::{Outcome, SessionAction, SessionSpec};
use crate::tmux::Cmd;

/// Carries out one session action.
pub(super) async fn execute(action: &SessionAction, ctx: Context<'_>) -> Result<Outcome, Error> {
    match action {
        SessionAction::CreateSession { session, .. } => {
            let create =
                Cmd::new("new-session").args(["-d", "-s", &session.name, "-x", "200", "-y", "50"]);
            let target = target(&session.name);
            let cmds = [
                with_process(create, session, ctx.state_dir),
                Cmd::new("set-option").args(["-t", &target, OWNER_OPTION, ctx.owner]),
                Cmd::new("set-option").args(["-t", &target, ACCOUNT_OPTION, &session.account]),
                Cmd::new("set-option").args(["-F", "-t", &target, PANE_OPTION, "#{pane_id}"]),
                Cmd::new("set-option").args(["-w", "-t", &target, "remain-on-exit", "on"]),
            ];
            run(ctx, &session.name, &cmds).await?;
        }
        SessionAction::RestartSession {
            session,
            pane,
            live,
            ..
        } => {
            // No -k for a crash restart: the agent is dead; if it came back meanwhile,
            // tmux refuses. The operator's restart stops the running one.
            let cmds = respawn(pane, *live, session, ctx.state_dir);
            run_guarded(ctx, &session.name, pane, &cmds).await?;
        }
        SessionAction::MoveSession {
            session,
            pane,
            from_home,
            to_home,
            pid,
            resume,
            conversation,
            ..
        } => {
            let (from, to) = (from_home.as_deref(), to_home.as_deref());
            let held = match conversation {
                Some((id, transcript)) => Some(Held::read(id, transcript, from, to)),
                None => from.and_then(|home| {
                    let id = crate::conversation::of_agent(home, *pid)?;
                    let path = crate::conversation::transcript(home, &session.workdir, &id);
                    Some(Held::read(&id, &path, from, to))
                }),
            };
            return move_session(ctx, session, pane, held, resume.as_deref()).await;
        }
        SessionAction::DeleteSession { name, .. } => {
            let kill = Cmd::new("kill-session").args(["-t", &format!("={name}")]);
            run_guarded(ctx, name, &target(name), &[kill]).await?;
        }
        SessionAction::RecycleSession { session, pane, .. } => {
            let cmds = respawn(pane, true, session, ctx.state_dir);
            run_guarded(ctx, &session.name, pane, &cmds).await?;
        }
    }
    Ok(Outcome::Done)
}

/// The conversation a moving agent holds, as found on disk.
struct Held {
    /// Its id.
    id: String,
    /// Its transcript holds anything (a conversation with no message yet has nothing
    /// to carry on).
    written: bool,
    /// The new account's home finds the transcript too (the homes share the agent's
    /// conversation folder): without it, `--resume` could only fail.
    reachable: bool,
}

impl Held {
    /// Reads conversation `id` whose transcript is `transcript`, and whether the new
    /// account's home `to` finds it at the same place below it as the old home `from`
    /// does (Claude Code's `projects/…`, Codex's `sessions/YYYY/MM/DD/…`).
    fn read(id: &str, transcript: &Path, from: Option<&Path>, to: Option<&Path>) -> Self {
        let reachable = to
            .and_then(|to| {
                let below = from.and_then(|from| transcript.strip_prefix(from).ok());
                match below {
                    Some(below) => Some(to.join(below)),
                    None => crate::conversation::transcript_under(to, transcript),
                }
            })
            // Nowhere to look: resumed as before.
            .is_none_or(|there| there.is_file());
        Self {
            id: id.to_owned(),
            written: transcript.is_file(),
            reachable,
        }
    }
}

/// Restarts a session's agent under its new account. With `resume`, its conversation
/// is resumed when its transcript holds anything and the new home finds it (else the
/// agent starts afresh, and says why); a session whose conversation cannot be named is
/// left untouched (a dedicated one) or started afresh (a pool one without a task to
/// carry on).
async fn move_session(
    ctx: Context<'_>,
    session: &SessionSpec,
    pane: &str,
    conversation: Option<Held>,
    resume: Option<&[String]>,
) -> Result<Outcome, Error> {
    let mut spec = session.clone();
    let mut outcome = Outcome::Done;
    if let Some(args) = resume {
        match conversation {
            Some(held) if held.written && !held.reachable => {
                outcome = Outcome::Fresh(format!(
                    "conversation {} is not in account {}'s conversation folder (the homes \
                     share no projects folder: see SharedState), so it cannot be resumed there",
                    held.id, spec.account
                ));
            }
            Some(held) if held.written => {
                spec.command
                    .extend(args.iter().map(|a| a.replace("{sessionId}", &held.id)));
                outcome = Outcome::Resumed(held.id);
            }
            // A conversation with no message yet has nothing to carry on.
            Some(_) => {}
            None => {
                return Ok(Outcome::Rejected(
                    "no valid conversation id to resume; left as it is".into(),
                ));
            }
        }
    }
    let cmds = respawn(pane, true, &spec, ctx.state_dir);
    run_guarded(ctx, &spec.name, pane, &cmds).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_codex_rollout_should_be_reachable_from_a_home_sharing_its_sessions_folder() {
        let dir = tempfile::tempdir().unwrap();
        let (x, y, z) = (
            dir.path().join("x"),
            dir.path().join("y"),
            dir.path().join("z"),
        );
        let day = x.join("sessions/2026/12/06");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::create_dir_all(&y).unwrap();
        std::fs::create_dir_all(z.join("sessions")).unwrap();
        std::os::unix::fs::symlink(x.join("sessions"), y.join("sessions")).unwrap();
        let rollout = day.join("rollout-2026-12-06T02-06-25-t1.jsonl");
        std::fs::write(&rollout, "{}\n").unwrap();
        let shared = Held::read("t1", &rollout, Some(&x), Some(&y));
        assert!(shared.written && shared.reachable);
        let apart = Held::read("t1", &rollout, Some(&x), Some(&z));
        assert!(apart.written && !apart.reachable);
    }
}
