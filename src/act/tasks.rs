//! Executing task actions: claim by rename, paste through a tmux buffer, a lone Enter,
//! completion into `done/`, retries and failures, recycling an agent's context.

use std::path::Path;

use super::{Context, Error, respawn, run_guarded};
use crate::plan::{Outcome, TaskAction, TaskRef};
use crate::report::text_hash;
use crate::tasks::{self, Folders, Record};
use crate::tmux::Cmd;

/// Carries out one task action.
pub(super) async fn execute(action: &TaskAction, ctx: Context<'_>) -> Result<Outcome, Error> {
    match action {
        TaskAction::DispatchTask {
            task,
            pane,
            restart,
            note,
        } => dispatch(ctx, task, pane, restart.as_ref(), note.as_deref()).await,
        TaskAction::PasteTask { task, pane, note } => {
            let folders = Folders::of(&task.path);
            let text =
                tasks::read_task(&folders.active.join(&task.file)).map_err(|e| failure(task, e))?;
            let text = with_note(note.as_deref(), text);
            paste(ctx, task, pane, &text).await?;
            Ok(Outcome::Sent(text_hash(&text)))
        }
        TaskAction::ContinueTask { task, pane, text } => {
            paste(ctx, task, pane, text).await?;
            Ok(Outcome::Sent(text_hash(text)))
        }
        TaskAction::SubmitTask { task, pane } => {
            let enter = Cmd::new("send-keys").args(["-t", pane, "Enter"]);
            run_guarded(ctx, &task.session, pane, &[enter]).await?;
            Ok(Outcome::Done)
        }
        TaskAction::CompleteTask {
            task,
            pane,
            how,
            reply,
            exit,
            ..
        } => complete(ctx, task, pane, how, reply.clone(), exit.as_deref()).await,
        TaskAction::RequeueTask {
            task,
            reason,
            failed,
            ..
        } => {
            let folders = Folders::of(&task.path);
            let from = folders.active.join(&task.file);
            if *failed {
                finish(task, &from, (&folders.failed, reason, None))?;
            } else {
                tasks::move_into(&from, &folders.inbox, &task.name)
                    .map_err(|e| failure(task, e))?;
            }
            Ok(Outcome::Done)
        }
        TaskAction::RejectTask {
            inbox,
            path,
            name,
            reason,
        } => reject(inbox, path, name, reason),
        TaskAction::StallTask { .. } => Ok(Outcome::Done),
        TaskAction::ReturnTask {
            session,
            inbox,
            name,
            from,
            to,
        } => {
            let task = format!("{inbox}/{name}");
            if let Some(tmux) = ctx.tmux {
                let panes = tmux.panes().await.map_err(|source| Error::Session {
                    name: session.clone(),
                    source,
                })?;
                if panes.iter().any(|p| p.session == *session) {
                    return Err(Error::Task {
                        task,
                        message: format!("left in active/: session {session} still runs"),
                    });
                }
            }
            give_back(&task, from, to)?;
            Ok(Outcome::Done)
        }
    }
}

/// Puts a claimed task's file `from` back in its inbox as `to`: a link then an unlink,
/// not a rename, which would replace a task of the same name dropped there meanwhile.
fn give_back(task: &str, from: &Path, to: &Path) -> Result<(), Error> {
    match std::fs::hard_link(from, to) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Task {
            task: task.to_owned(),
            message: format!("{} exists already; left in active/", to.display()),
        }),
        Err(source) => Err(Error::Fs {
            path: to.to_path_buf(),
            source,
        }),
        Ok(()) => std::fs::remove_file(from).map_err(|source| Error::Fs {
            path: from.to_path_buf(),
            source,
        }),
    }
}

/// Moves the finished task to `done/` with its record, then types the exit command
/// that ends a pool agent's context.
async fn complete(
    ctx: Context<'_>,
    task: &TaskRef,
    pane: &str,
    how: &str,
    reply: Option<String>,
    exit: Option<&str>,
) -> Result<Outcome, Error> {
    let folders = Folders::of(&task.path);
    finish(
        task,
        &folders.active.join(&task.file),
        (folders.done.as_path(), how, reply),
    )?;
    // The task is done once in `done/`. An exit command that cannot be typed (the tmux
    // server went down) leaves an agent with a used context, which the next plan
    // recycles: not a failure of the task's.
    if let Some(exit) = exit {
        let typed = Cmd::new("send-keys").args(["-t", pane, "-l", exit]);
        let enter = Cmd::new("send-keys").args(["-t", pane, "Enter"]);
        if let Err(e) = run_guarded(ctx, &task.session, pane, &[typed, enter]).await {
            tracing::warn!(
                task = %task.key(),
                error = %e,
                "task done; its agent did not get the exit command"
            );
        }
    }
    Ok(Outcome::Done)
}

/// Moves a waiting task that must not be sent to `failed/`, with a record saying why.
fn reject(inbox: &str, path: &std::path::Path, name: &str, reason: &str) -> Result<Outcome, Error> {
    let folders = Folders::of(path);
    let record = Record {
        task: name.to_owned(),
        inbox: inbox.to_owned(),
        session: String::new(),
        account: String::new(),
        attempt: 0,
        started: None,
        finished: jiff::Timestamp::now(),
        outcome: reason.to_owned(),
        reply: None,
        hand_offs: Vec::new(),
        tries: Vec::new(),
    };
    tasks::move_with_record(&folders.inbox.join(name), &folders.failed, name, &record).map_err(
        |e| Error::Task {
            task: format!("{inbox}/{name}"),
            message: e.to_string(),
        },
    )?;
    Ok(Outcome::Rejected(reason.to_owned()))
}

fn failure(task: &TaskRef, e: impl std::fmt::Display) -> Error {
    Error::Task {
        task: task.key().to_string(),
        message: e.to_string(),
    }
}

/// Claims the task (rename into `active/`), then pastes its text, or starts the agent
/// afresh in the task's folder (the text follows once it is idle). A task that must
/// not be sent goes to `failed/`; a paste that fails puts the task back.
/// A task's text after `note` (the inbox's hand-off note) and a blank line, if any.
fn with_note(note: Option<&str>, text: String) -> String {
    match note.filter(|n| !n.is_empty()) {
        Some(note) => format!("{note}\n\n{text}"),
        None => text,
    }
}

async fn dispatch(
    ctx: Context<'_>,
    task: &TaskRef,
    pane: &str,
    restart: Option<&crate::plan::SessionSpec>,
    note: Option<&str>,
) -> Result<Outcome, Error> {
    let folders = Folders::of(&task.path);
    std::fs::create_dir_all(&folders.active).map_err(|e| failure(task, e))?;
    let claimed = folders.active.join(&task.file);
    std::fs::rename(folders.inbox.join(&task.name), &claimed)
        .map_err(|e| failure(task, format!("cannot claim it: {e}")))?;
    let text = match tasks::read_task(&claimed) {
        Ok(text) => with_note(note, text),
        Err(rejected) => {
            finish(
                task,
                &claimed,
                (&folders.failed, &rejected.to_string(), None),
            )?;
            return Ok(Outcome::Rejected(rejected.to_string()));
        }
    };
    let sent = match restart {
        Some(spec) => {
            let cmds = respawn(pane, true, spec, ctx.state_dir);
            run_guarded(ctx, &task.session, pane, &cmds)
                .await
                .map(|()| Outcome::Done)
        }
        None => paste(ctx, task, pane, &text)
            .await
            .map(|()| Outcome::Sent(text_hash(&text))),
    };
    if sent.is_err() {
        let _ = tasks::move_into(&claimed, &folders.inbox, &task.name);
    }
    sent
}

/// Pastes `text` into the agent's pane as one bracketed paste.
async fn paste(ctx: Context<'_>, task: &TaskRef, pane: &str, text: &str) -> Result<(), Error> {
    let tmux = ctx.tmux.ok_or_else(|| Error::NoTmux {
        name: task.session.clone(),
    })?;
    let dir = ctx.state_dir.map_or_else(std::env::temp_dir, |d| {
        d.join(crate::state::paths::BUFFERS_DIR)
    });
    crate::state::create_private_dir(&dir).map_err(|e| failure(task, e))?;
    // Behind the owner guard: a session handed to a person meanwhile gets nothing.
    let pasted = tmux
        .paste(pane, text, &dir, Some(&super::ours(ctx.owner)))
        .await
        .map_err(|source| Error::Session {
            name: task.session.clone(),
            source,
        })?;
    if pasted {
        Ok(())
    } else {
        Err(Error::NotOurs {
            name: task.session.clone(),
        })
    }
}

/// Moves a claimed task into `dir` (`done/` or `failed/`) with its record: how it
/// ended and the agent's last reply.
fn finish(
    task: &TaskRef,
    from: &Path,
    (dir, outcome, reply): (&Path, &str, Option<String>),
) -> Result<(), Error> {
    let record = Record {
        task: task.name.clone(),
        inbox: task.inbox.clone(),
        session: task.session.clone(),
        account: task.account.clone(),
        attempt: task.attempt,
        started: task.started,
        finished: jiff::Timestamp::now(),
        outcome: outcome.to_owned(),
        reply,
        tries: task.earlier.clone(),
        hand_offs: task.hand_offs.clone(),
    };
    tasks::move_with_record(from, dir, &task.name, &record)
        .map(drop)
        .map_err(|e| failure(task, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_should_never_replace_one_of_the_same_name_in_the_inbox() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("w-0.1.t.md"), dir.path().join("t.md"));
        std::fs::write(&from, "claimed").unwrap();
        std::fs::write(&to, "dropped since").unwrap();
        let e = give_back("i/t.md", &from, &to).unwrap_err();
        assert!(
            e.to_string().contains("exists already; left in active/"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "dropped since");
        assert_eq!(std::fs::read_to_string(&from).unwrap(), "claimed");
        std::fs::remove_file(&to).unwrap();
        give_back("i/t.md", &from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "claimed");
        assert!(!from.exists());
    }
}
