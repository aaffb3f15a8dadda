//! `failover top`: a live dashboard of the fleet, k9s for agent pools. A pure
//! [`app::App`] updated by messages, a pure [`draw::draw`], and this thin loop: the
//! terminal's keys, the state folder's changes (the board the controller publishes
//! read at most every [`GAP`]; without a controller, a look of its own as `get -w`
//! takes one), the clock for countdowns, and the effects the keys ask for (a screen
//! captured on selection, `describe`'s text, an attach).

mod app;
mod draw;
mod model;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyEventKind};

use self::app::{App, Effect, Msg};
use self::model::{Board, Snapshot};
use super::describe::{self, Look};
use super::follow::{Follow, JournalTail};
use crate::api::Settings;
use crate::controller::round::Desired;
use crate::observe::Observed;
use crate::plan::Plan;

/// The shortest time between two looks, and between two redraws they cause.
const GAP: Duration = Duration::from_millis(100);
/// The longest wait for a key before the state folder is asked again.
const POLL: Duration = Duration::from_millis(50);
/// How often countdowns are redrawn without a change.
const TICK: Duration = Duration::from_secs(1);

/// Arguments of `failover top`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Manifests to read; without it, the ones the controller last ran with.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-")]
    files: Vec<PathBuf>,
    /// Show the fleet's nodes too (`:nodes`, and a node column), read from etcd.
    #[arg(long)]
    fleet: bool,
}

/// Runs `top`: 0 when quit, 2 when it cannot start (no terminal, no manifests).
pub(super) fn run(args: Args) -> ExitCode {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        eprintln!(
            "error: failover top draws on a terminal, and its {} is not one; in a pipe or \
             a log, follow `failover get sessions -w` (or accounts, inboxes, events) instead",
            if std::io::stdout().is_terminal() {
                "input"
            } else {
                "output"
            }
        );
        return ExitCode::from(2);
    }
    let mut source = match Source::new(&args.files, args.fleet) {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let mut app = App::new(
        jiff::Timestamp::now(),
        jiff::tz::TimeZone::system(),
        super::no_color_unset(),
        args.fleet || source.fleet_configured(),
    );
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot set up the terminal: {e}");
            return ExitCode::from(2);
        }
    };
    let ended = run_loop(&mut source, &mut app, &mut terminal);
    ratatui::restore();
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Keys, changes and ticks until `q`.
fn run_loop(
    source: &mut Source,
    app: &mut App,
    terminal: &mut ratatui::DefaultTerminal,
) -> Result<(), String> {
    source.stale = true;
    let mut last_look: Option<Instant> = None;
    let mut last_tick = Instant::now();
    let mut dirty = true;
    loop {
        if source.stale && last_look.is_none_or(|t| t.elapsed() >= GAP) {
            last_look = Some(Instant::now());
            let (effect, changed) = source.refresh(app);
            dirty |= changed;
            if let Some(effect) = effect
                && !perform(effect, source, app, terminal)?
            {
                return Ok(());
            }
        }
        if dirty {
            terminal
                .draw(|f| draw::draw(app, f))
                .map_err(|e| format!("cannot draw: {e}"))?;
            dirty = false;
        }
        let wait = if source.stale {
            last_look.map_or(Duration::ZERO, |t| GAP.saturating_sub(t.elapsed()))
        } else {
            TICK.saturating_sub(last_tick.elapsed())
        };
        if event::poll(wait.min(POLL)).map_err(|e| format!("cannot read the terminal: {e}"))? {
            match event::read().map_err(|e| format!("cannot read the terminal: {e}"))? {
                Event::Key(key) if key.kind != KeyEventKind::Release => {
                    dirty = true;
                    if let Some(effect) = app.update(Msg::Key(key))
                        && !perform(effect, source, app, terminal)?
                    {
                        return Ok(());
                    }
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        if source.follow.changed() {
            source.stale = true;
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            app.update(Msg::Tick(jiff::Timestamp::now()));
            dirty = true;
        }
    }
}

/// Carries out an effect; false to quit.
fn perform(
    effect: Effect,
    source: &mut Source,
    app: &mut App,
    terminal: &mut ratatui::DefaultTerminal,
) -> Result<bool, String> {
    let mut next = Some(effect);
    while let Some(effect) = next.take() {
        let msg = match effect {
            Effect::Quit => return Ok(false),
            Effect::Capture(session) => match source.capture(app, &session, false) {
                Ok(text) => Msg::Screen { session, text },
                Err(e) => Msg::Say(e),
            },
            Effect::History(session) => match source.capture(app, &session, true) {
                Ok(text) => Msg::Text {
                    title: format!("screen history of {session}"),
                    text,
                    end: true,
                },
                Err(e) => Msg::Say(e),
            },
            Effect::Describe(kind, name) => match source.describe(kind, &name) {
                Ok(Some(text)) => Msg::Text {
                    title: format!("describe {} {name}", describe::kind_name(kind)),
                    text,
                    end: false,
                },
                Ok(None) => Msg::Say(format!("{} {name} not found", describe::kind_name(kind))),
                Err(e) => Msg::Say(format!("cannot describe {name}: {e}")),
            },
            Effect::Request(verb, object) => {
                let request = crate::request::Request {
                    verb,
                    object,
                    at: jiff::Timestamp::now(),
                };
                // The verbs' own code; a running controller's answer shows in the events.
                let said =
                    super::operate::ask(&source.desired, &source.settings, &request, false, false);
                source.stale = true;
                Msg::Say(match said {
                    Ok(answer) => answer.lines.join("; "),
                    Err(e) => format!("cannot {} {}: {e}", verb.word(), request.object.spoken()),
                })
            }
            Effect::Attach(session) => {
                let said = attach(&source.settings, &session, terminal)?;
                source.stale = true;
                Msg::Say(said)
            }
        };
        next = app.update(msg);
    }
    Ok(true)
}

/// Attaches to `session` and comes back when it detaches: the dashboard leaves the
/// terminal to tmux meanwhile. Inside tmux on the same server, the client switches to
/// the session instead (the dashboard keeps its pane). What to tell the operator.
fn attach(
    settings: &Settings,
    session: &str,
    terminal: &mut ratatui::DefaultTerminal,
) -> Result<String, String> {
    let socket = settings.socket.clone();
    let tmux = |args: &[&str]| {
        let mut cmd = std::process::Command::new("tmux");
        if let Some(s) = &socket {
            cmd.arg("-S").arg(s);
        }
        cmd.args(args);
        cmd
    };
    let target = format!("={session}");
    // Only the person's own client is switched, named: tmux's "current client" may be
    // a control client (the controller's, this dashboard's).
    let client = inside_same_server(socket.as_deref())
        .then(|| own_client(&tmux))
        .flatten();
    if let Some(client) = client {
        let switched = tmux(&["switch-client", "-c", &client, "-t", &target])
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
        if switched {
            return Ok(format!(
                "switched to {session}: back here with prefix + L (last session)"
            ));
        }
    }
    ratatui::restore();
    let status = tmux(&["attach-session", "-t", &target])
        .env_remove("TMUX")
        .status();
    *terminal = ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    terminal.clear().map_err(|e| format!("cannot draw: {e}"))?;
    match status {
        Ok(s) if s.success() => Ok(format!("back from {session}")),
        Ok(s) => Ok(format!("tmux attach to {session} ended with {s}")),
        Err(e) => Ok(format!("cannot run tmux attach: {e}")),
    }
}

/// The one client, not in control mode, that shows the session of this process's
/// pane (`$TMUX_PANE`); `None` when there is none or several.
fn own_client(tmux: &dyn Fn(&[&str]) -> std::process::Command) -> Option<String> {
    let pane = std::env::var("TMUX_PANE").ok()?;
    let output = |args: &[&str]| {
        tmux(args)
            .stdin(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let session = output(&["display-message", "-p", "-t", &pane, "#{session_name}"])?;
    let session = session.trim();
    let listed = output(&[
        "list-clients",
        "-F",
        "#{client_name}\t#{client_control_mode}\t#{session_name}",
    ])?;
    let mut clients: Vec<&str> = listed
        .lines()
        .filter_map(|l| {
            let mut parts = l.split('\t');
            let (name, control, s) = (parts.next()?, parts.next()?, parts.next()?);
            (control == "0" && s == session).then_some(name)
        })
        .collect();
    (clients.len() == 1).then(|| clients.remove(0).to_owned())
}

/// Whether this process runs in a pane of the server at `socket` (`None`: the
/// default server), as `$TMUX` says.
fn inside_same_server(socket: Option<&std::path::Path>) -> bool {
    let Some(var) = std::env::var_os("TMUX") else {
        return false;
    };
    let var = var.to_string_lossy();
    let ours = var.split(',').next().unwrap_or_default();
    match socket {
        Some(s) => std::fs::canonicalize(s).ok() == std::fs::canonicalize(ours).ok(),
        None => ours.ends_with("/default"),
    }
}

/// Where the dashboard's data comes from: the board the running controller publishes
/// after each round that changed it (`board.json`), read when the state folder says it
/// changed; without a controller, a look of its own (the manifests adopted once, one
/// read-only tmux connection kept across looks). The journal followed.
struct Source {
    desired: Desired,
    settings: Settings,
    runtime: tokio::runtime::Runtime,
    tmux: Option<crate::tmux::Tmux>,
    follow: Follow,
    journal: JournalTail,
    fleet: bool,
    stale: bool,
    /// The published board last read: its file's stamp.
    stamp: Option<Stamp>,
    /// The board of the last look of its own (without a controller), not to redraw
    /// the same.
    looked: Option<Board>,
}

/// What tells a file's versions apart without reading it: a rename gives a new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    fn of(path: &std::path::Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Self {
            inode: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// A board read or looked at, or why there is none.
enum Fresh {
    /// The same as the last one.
    Unchanged,
    /// A new one.
    Board(Board),
    /// No board: why.
    Failed(String),
}

impl Source {
    fn new(files: &[PathBuf], fleet: bool) -> Result<Self, String> {
        let desired = Desired::adopt(super::get::manifests(files)?).map_err(|e| e.to_string())?;
        let settings =
            Settings::from_env(&desired.manifests.controller.spec).map_err(|e| e.to_string())?;
        if fleet && desired.manifests.controller.spec.fleet.endpoints.is_empty() {
            return Err(
                "no fleet: the ControllerConfig has no fleet section (fleet.endpoints)".to_owned(),
            );
        }
        let follow = Follow::new(&settings.state_dir)?;
        // One worker: the tmux connection's reader runs between looks too.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let journal = JournalTail::new(&settings.state_dir);
        Ok(Self {
            desired,
            settings,
            runtime,
            tmux: None,
            follow,
            journal,
            fleet,
            stale: false,
            stamp: None,
            looked: None,
        })
    }

    fn fleet_configured(&self) -> bool {
        !self
            .desired
            .manifests
            .controller
            .spec
            .fleet
            .endpoints
            .is_empty()
    }

    /// The journal read on, and the board, into `app`: what the effects of the update
    /// ask, and whether anything changed (else nothing needs drawing).
    fn refresh(&mut self, app: &mut App) -> (Option<Effect>, bool) {
        self.stale = false;
        let lines = self.journal.read();
        let journaled = !lines.is_empty();
        if journaled {
            app.update(Msg::Journal(lines));
        }
        let now = jiff::Timestamp::now();
        app.update(Msg::Tick(now));
        let dir = &self.settings.state_dir;
        let controller = super::get::controller_line(dir);
        let published = match crate::controller::lock::Lock::holder(dir) {
            Some(pid) => self.published(pid),
            None => None,
        };
        let from_controller = published.is_some();
        let fresh = published.unwrap_or_else(|| {
            self.stamp = None;
            match self.look() {
                Ok((observed, plan)) => {
                    let board = Board::of(
                        &self.desired.manifests,
                        &self.settings.spec.owner,
                        &observed,
                        &plan,
                        now,
                    );
                    if self.looked.as_ref() == Some(&board) {
                        Fresh::Unchanged
                    } else {
                        self.looked = Some(board.clone());
                        Fresh::Board(board)
                    }
                }
                Err(e) => Fresh::Failed(e),
            }
        });
        let mut s = match fresh {
            Fresh::Unchanged if controller == app.snapshot.controller && !self.fleet => {
                return (None, journaled);
            }
            Fresh::Unchanged => Snapshot {
                controller,
                error: None,
                ..app.snapshot.clone()
            },
            Fresh::Board(board) => {
                if from_controller {
                    self.looked = None;
                }
                let fleet = &self.desired.manifests.controller.spec.fleet;
                let node = (!fleet.endpoints.is_empty()).then(|| crate::fleet::node_name(fleet));
                Snapshot::of(board, controller, node)
            }
            Fresh::Failed(e) => Snapshot {
                error: Some(e),
                ..app.snapshot.clone()
            },
        };
        if self.fleet {
            match super::fleet::collect(
                &self.desired.manifests.controller.spec.fleet,
                super::table::What::Nodes,
            ) {
                Ok((table, _)) => s.nodes = Some(table),
                Err(e) => s.error = Some(e),
            }
        }
        (app.update(Msg::Data(Box::new(s))), true)
    }

    /// The board the controller `pid` published: `None` when there is none of its
    /// (not yet written, another controller's, unreadable): then `top` looks itself.
    fn published(&mut self, pid: u32) -> Option<Fresh> {
        let dir = &self.settings.state_dir;
        let stamp = Stamp::of(&dir.join(crate::state::paths::BOARD_FILE))?;
        if self.stamp == Some(stamp) {
            return Some(Fresh::Unchanged);
        }
        // One unreadable (written by another version of failover) is not drawn either.
        match crate::board::read(dir) {
            Ok(Some(p)) if p.pid == pid => {
                self.stamp = Some(stamp);
                Some(Fresh::Board(p.board))
            }
            Ok(_) | Err(_) => None,
        }
    }

    /// One look through the kept connection (made again after a failure).
    fn look(&mut self) -> Result<(Observed, Plan), String> {
        if self.tmux.is_none() {
            self.tmux = self
                .runtime
                .block_on(super::observer(&self.settings))
                .map_err(|e| e.to_string())?;
        }
        let looked = self.runtime.block_on(super::look_on(
            self.tmux.as_ref(),
            &self.desired,
            &self.settings,
        ));
        looked.map_err(|e| {
            self.tmux = None;
            e.to_string()
        })
    }

    /// A session's visible screen, or its whole history.
    fn capture(&mut self, app: &App, session: &str, history: bool) -> Result<String, String> {
        let pane = app
            .snapshot
            .sessions
            .iter()
            .find(|s| s.row.name == session)
            .and_then(|s| s.pane.clone())
            .ok_or_else(|| format!("session {session} has no pane"))?;
        if self.tmux.is_none() {
            self.tmux = self
                .runtime
                .block_on(super::observer(&self.settings))
                .map_err(|e| e.to_string())?;
        }
        let tmux = self
            .tmux
            .as_ref()
            .ok_or_else(|| "no tmux server to capture from".to_owned())?;
        let mut cmd = crate::tmux::Cmd::new("capture-pane").arg("-p");
        if history {
            cmd = cmd.args(["-S", "-"]);
        }
        cmd = cmd.args(["-t", pane.as_str()]);
        self.runtime
            .block_on(tmux.run(cmd))
            .map(|lines| lines.join("\n"))
            .map_err(|e| format!("cannot capture {session}: {e}"))
    }

    /// `failover describe`'s text, from a look taken now (a description is asked for
    /// by a key: the board does not carry what it tells).
    fn describe(&mut self, kind: describe::Kind, name: &str) -> Result<Option<String>, String> {
        let (observed, plan) = self.look()?;
        let look = Look {
            desired: &self.desired,
            settings: &self.settings,
            observed: &observed,
            plan: &plan,
        };
        Ok(describe::text(&look, kind, name, 15))
    }
}
