//! One long-lived control-mode client (`tmux -C`) per server.
//!
//! Commands are written as lines and pipelined; tmux answers each command of a line with
//! a `%begin`/`%end` (or `%error`) block, in order, and stops a `;`-list at its first
//! error. Each line is followed by a sentinel `display-message` whose answer closes it:
//! blocks of commands that other commands ran (an `if-shell`'s) cannot shift the next
//! line's answers. Notifications arrive between blocks and are broadcast as [`Event`]s.
//! When the client exits (`%exit`, EOF: the server was killed), every waiting command
//! fails and the next command reconnects.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{Mutex, broadcast, oneshot};

use super::Error;
use super::proto::{Cmd, Guard, Line, Notification, list_line, parse_line};
use super::server::{Server, control_session};

/// How long one command may take before the connection is considered stuck.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest text [`Tmux::paste`] sends.
pub const MAX_PASTE: usize = 1 << 20;

/// What a connection may do to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Start the server when needed and keep an idle control session `_<owner>-control`
    /// (running `sleep infinity`) to attach to: it keeps the server alive and floods no
    /// output. Observation knows it by its name and never plans for it.
    Manage {
        /// The controller's name.
        owner: String,
    },
    /// Never start a server or create a session: attach to the controller's control
    /// session when it exists, else run each command as its own `tmux` process; no
    /// server means nothing to observe.
    Observe {
        /// The controller's name.
        owner: String,
    },
}

impl Mode {
    fn owner(&self) -> &str {
        match self {
            Mode::Manage { owner } | Mode::Observe { owner } => owner,
        }
    }
}

/// Something the server said without being asked.
pub type Event = Notification;

impl Drop for Tmux {
    /// A connection that ends well takes its control clients with it: its record of
    /// them goes too.
    fn drop(&mut self) {
        if let (Mode::Manage { .. }, Some(dir)) = (&self.mode, &self.server.record) {
            super::leftovers::forget(dir);
        }
    }
}

/// A connection to one tmux server; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Tmux {
    server: Server,
    mode: Mode,
    current: Mutex<Option<Arc<Client>>>,
    events: broadcast::Sender<Event>,
    spawned: AtomicU64,
    one_shot: AtomicBool,
    screens: super::screens::Cache,
    listing: Arc<super::listing::Cache>,
}

impl Tmux {
    /// The visible screens of `panes`, in order (`None` for a pane tmux could not
    /// capture): only those that changed since their last capture are captured, in one
    /// round trip (see [`super::screens`]).
    pub async fn screens(
        &self,
        panes: &[super::PaneRef<'_>],
    ) -> Result<Vec<Option<String>>, Error> {
        self.screens
            .screens(panes, |lines| async move { self.pipeline(&lines).await })
            .await
    }

    /// Every pane of the server, listed in full only when something may have changed
    /// since the last full listing (see [`super::listing`]).
    pub async fn panes(&self) -> Result<Vec<super::Listed>, Error> {
        let hears = !self.one_shot.load(Ordering::Acquire);
        self.listing
            .panes(hears, |cmd| async move { self.run(cmd).await })
            .await
    }

    /// How many full pane listings this connection has asked for so far.
    pub fn full_listings(&self) -> u64 {
        self.listing.fulls()
    }

    /// How many panes this connection has captured so far.
    pub fn screens_captured(&self) -> u64 {
        self.screens.taken()
    }

    /// Connects to `server`. In [`Mode::Observe`], `Ok(None)` means no server runs.
    pub async fn connect(server: Server, mode: Mode) -> Result<Option<Self>, Error> {
        let (events, _) = broadcast::channel(256);
        let tmux = Self {
            server,
            mode,
            current: Mutex::new(None),
            events,
            spawned: AtomicU64::new(0),
            one_shot: AtomicBool::new(false),
            screens: super::screens::Cache::default(),
            listing: Arc::default(),
        };
        let client = match tmux.mode {
            // A managing client asks tmux for client flags it has had since 3.2 only: a
            // client that starts proves the version, and `tmux -V` is asked only when
            // it fails, so that an old tmux is told as such. No process more at start.
            Mode::Manage { .. } => {
                let client = tmux.client().await;
                if client.is_err() {
                    check_version(&tmux.server).await?;
                }
                client
            }
            // An observing one may run plain commands as their own processes: the
            // version is asked beside its first one.
            Mode::Observe { .. } => {
                let (version, client) = tokio::join!(check_version(&tmux.server), tmux.client());
                version?;
                client
            }
        };
        match client {
            Ok(_) => Ok(Some(tmux)),
            Err(Error::NoServer { .. }) if matches!(tmux.mode, Mode::Observe { .. }) => Ok(None),
            Err(Error::NoControlSession) => {
                tmux.one_shot.store(true, Ordering::Release);
                Ok(Some(tmux))
            }
            Err(e) => Err(e),
        }
    }

    /// A managing connection for a controller or `apply` marking its sessions with
    /// `owner`: control clients left behind by killed predecessors on this server are
    /// ended first (see [`super::leftovers`]), and this process's own are recorded in the
    /// server's record folder.
    pub async fn manage(server: Server, owner: &str) -> Result<Option<Self>, Error> {
        if let Some(records) = &server.record {
            let ended = super::leftovers::end_leftovers(records, &server, owner);
            if !ended.is_empty() {
                tracing::warn!(pids = ?ended, "ended tmux control clients a killed failover left behind");
            }
        }
        let owner = owner.to_owned();
        Self::connect(server, Mode::Manage { owner }).await
    }

    /// How many tmux processes this connection has started (one per (re)connection).
    pub fn processes_started(&self) -> u64 {
        self.spawned.load(Ordering::Relaxed)
    }

    /// The server this connection talks to.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The name of the control session (never a session of the operator's or a pool's).
    pub fn control_session(&self) -> String {
        control_session(self.mode.owner())
    }

    /// Subscribes to notifications (sessions changed, windows closed, exit).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Runs one command; returns its output lines.
    pub async fn run(&self, cmd: Cmd) -> Result<Vec<String>, Error> {
        let mut out = self.run_list(&[cmd]).await?;
        Ok(out.pop().unwrap_or_default())
    }

    /// Runs commands as one `;`-list: in order, stopping at the first that fails, with
    /// nothing from other clients in between. Returns each command's output.
    pub async fn run_list(&self, cmds: &[Cmd]) -> Result<Vec<Vec<String>>, Error> {
        let mut results = self.pipeline(&[cmds.to_vec()]).await?;
        results.pop().unwrap_or(Ok(Vec::new()))
    }

    /// Sends several lines in one write and waits for every answer: one round trip
    /// however many lines. Each line is a `;`-list as in [`Tmux::run_list`].
    pub async fn pipeline(
        &self,
        lines: &[Vec<Cmd>],
    ) -> Result<Vec<Result<Vec<Vec<String>>, Error>>, Error> {
        if self.one_shot.load(Ordering::Acquire) {
            return Ok(self.pipeline_one_shot(lines).await);
        }
        // A command that may change the server is noted before it is sent and after
        // its answer: a full listing asked for in between does not stand.
        let writes = lines
            .iter()
            .flatten()
            .any(|c| !super::listing::reads_only(c));
        if writes {
            self.listing.changed();
        }
        let mut client = self.client().await?;
        let receivers = match client.send(lines).await {
            // Nothing reached tmux: the client died since it was handed out. Connect
            // again and send once more.
            Err(Error::Disconnected(_)) => {
                client = self.client().await?;
                client.send(lines).await?
            }
            other => other?,
        };
        let mut results = Vec::with_capacity(receivers.len());
        for (rx, line) in receivers.into_iter().zip(lines) {
            let answer = match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
                Err(_) => Err(Error::Timeout {
                    command: describe(line),
                    secs: COMMAND_TIMEOUT.as_secs(),
                }),
                Ok(Err(_)) => Err(Error::Disconnected(client.reason())),
                Ok(Ok(Ok(outputs))) => Ok(outputs),
                Ok(Ok(Err((index, message)))) => Err(Error::Command {
                    command: line
                        .get(index)
                        .map_or_else(|| describe(line), ToString::to_string),
                    message,
                }),
            };
            results.push(answer);
        }
        if writes {
            self.listing.changed();
        }
        Ok(results)
    }

    /// Runs each line as its own `tmux` process: how an observe-only connection reads a
    /// server that has no control session, without attaching to anyone's session.
    async fn pipeline_one_shot(&self, lines: &[Vec<Cmd>]) -> Vec<Result<Vec<Vec<String>>, Error>> {
        let mut results = Vec::with_capacity(lines.len());
        for line in lines {
            let mut cmd = self.server.command();
            self.spawned.fetch_add(1, Ordering::Relaxed);
            for (i, c) in line.iter().enumerate() {
                if i > 0 {
                    cmd.arg(";");
                }
                cmd.args(c.argv());
            }
            let result = match cmd.stdin(Stdio::null()).output().await {
                Err(e) => Err(spawn_error(e)),
                Ok(out) if out.status.success() => {
                    let text = String::from_utf8_lossy(&out.stdout);
                    Ok(vec![text.lines().map(str::to_owned).collect()])
                }
                Ok(out) => Err(Error::Command {
                    command: describe(line),
                    message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                }),
            };
            results.push(result);
        }
        results
    }

    /// Runs `before`, then `cmds` only if the format `condition` is true on `target`,
    /// as one list. Whether `cmds` ran.
    pub async fn run_if(
        &self,
        before: &[Cmd],
        target: &str,
        condition: &str,
        cmds: &[Cmd],
    ) -> Result<bool, Error> {
        let mut list = before.to_vec();
        list.push(super::proto::if_shell(target, condition, cmds));
        let blocks = self.run_list(&list).await?;
        Ok(blocks.len() > list.len())
    }

    /// Pastes `text` into `target` as a bracketed paste, only if the format `condition`
    /// is true on `target` (always, without one): written to a private file in `dir`,
    /// loaded with `load-buffer`, pasted with `paste-buffer -p -d`. No shell sees it; up
    /// to [`MAX_PASTE`] bytes. Whether it was pasted.
    pub async fn paste(
        &self,
        target: &str,
        text: &str,
        dir: &Path,
        condition: Option<&str>,
    ) -> Result<bool, Error> {
        if text.len() > MAX_PASTE {
            return Err(Error::TooLarge { len: text.len() });
        }
        let name = format!("failover-{}", uuid::Uuid::new_v4());
        let path = dir.join(&name);
        write_private(&path, text.as_bytes())
            .await
            .map_err(|source| Error::Buffer {
                path: path.clone(),
                source,
            })?;
        let path_arg = path.to_string_lossy().into_owned();
        let load = Cmd::new("load-buffer").args(["-b", &name, &path_arg]);
        let paste = Cmd::new("paste-buffer").args(["-p", "-d", "-b", &name, "-t", target]);
        let result = match condition {
            Some(condition) => self.run_if(&[load], target, condition, &[paste]).await,
            None => self.run_list(&[load, paste]).await.map(|_| true),
        };
        let _ = tokio::fs::remove_file(&path).await;
        if !matches!(result, Ok(true)) {
            let _ = self
                .run(Cmd::new("delete-buffer").args(["-b", &name]))
                .await;
        }
        result
    }

    /// The live client, connecting (again) when there is none or it has exited.
    async fn client(&self) -> Result<Arc<Client>, Error> {
        let mut current = self.current.lock().await;
        if let Some(client) = current.as_ref()
            && client.alive.load(Ordering::Acquire)
        {
            return Ok(client.clone());
        }
        // A server that is shutting down (killed a moment ago) may accept the client
        // and close at once, saying nothing: try again shortly, a few times.
        let mut attempt = 0;
        let client = loop {
            match self.spawn_client().await {
                Err(e) if closed_at_once(&e) && attempt < 4 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
                other => break other?,
            }
        };
        *current = Some(client.clone());
        Ok(client)
    }

    async fn spawn_client(&self) -> Result<Arc<Client>, Error> {
        // Another client may be another server: its panes are listed afresh.
        self.listing.changed();
        match &self.mode {
            Mode::Manage { owner } => {
                let ctl = control_session(owner);
                let initial = [
                    "new-session",
                    "-A",
                    "-E",
                    "-s",
                    &ctl,
                    "-f",
                    "no-output,ignore-size",
                    "-x",
                    "80",
                    "-y",
                    "24",
                    "--",
                    "sleep",
                    "infinity",
                ];
                Client::spawn(self, &initial).await
            }
            Mode::Observe { owner } => {
                // `attach-session` would start a server (and one without sessions exits
                // at once): ask a plain `list-sessions`, which never does.
                let ctl = control_session(owner);
                let out = self
                    .server
                    .command()
                    .args(["list-sessions", "-F", "#{session_name}"])
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .map_err(spawn_error)?;
                self.spawned.fetch_add(1, Ordering::Relaxed);
                if !out.status.success() {
                    let message = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                    let lower = message.to_lowercase();
                    return Err(
                        if lower.contains("no server running") || lower.contains("error connecting")
                        {
                            Error::NoServer {
                                server: self.server.describe(),
                            }
                        } else {
                            Error::Connect {
                                server: self.server.describe(),
                                message,
                            }
                        },
                    );
                }
                if !String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l == ctl)
                {
                    return Err(Error::NoControlSession);
                }
                let flags = "no-output,ignore-size";
                Client::spawn(
                    self,
                    &[
                        "attach-session",
                        "-E",
                        "-f",
                        flags,
                        "-t",
                        &format!("={ctl}"),
                    ],
                )
                .await
            }
        }
    }
}

fn describe(line: &[Cmd]) -> String {
    let parts: Vec<String> = line.iter().map(ToString::to_string).collect();
    parts.join(" ; ")
}

async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    let mut file = options.open(path).await?;
    file.write_all(bytes).await?;
    file.flush().await
}

/// The answer to one line: each command's output, or the failing command's index and
/// tmux's message.
type Answer = Result<Vec<Vec<String>>, (usize, String)>;

/// A line waiting for its answer. tmux answers every command it runs with a block,
/// including commands a command inserts (`if-shell`), so the number of blocks is not
/// known in advance: each line is followed by a sentinel `display-message` line whose
/// block closes the answer.
#[derive(Debug)]
struct Pending {
    sentinel: String,
    outputs: Vec<Vec<String>>,
    error: Option<(usize, String)>,
    tx: oneshot::Sender<Answer>,
}

#[derive(Debug)]
struct Client {
    stdin: Mutex<ChildStdin>,
    pending: StdMutex<VecDeque<Pending>>,
    alive: AtomicBool,
    reason: StdMutex<String>,
    sequence: AtomicU64,
    _child: StdMutex<Child>,
}

impl Client {
    async fn spawn(tmux: &Tmux, initial: &[&str]) -> Result<Arc<Client>, Error> {
        let (server, events) = (&tmux.server, &tmux.events);
        tmux.spawned.fetch_add(1, Ordering::Relaxed);
        let mut child = server
            .command()
            .arg("-C")
            .args(initial)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        if let (Mode::Manage { .. }, Some(dir), Some(pid)) =
            (&tmux.mode, &server.record, child.id())
            && let Err(e) = super::leftovers::record(dir, pid)
        {
            tracing::warn!(error = %e, pid, "cannot record the tmux control client's pid");
        }
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::Disconnected("tmux started without pipes".into()));
        };
        let client = Arc::new(Client {
            stdin: Mutex::new(stdin),
            pending: StdMutex::new(VecDeque::new()),
            alive: AtomicBool::new(true),
            reason: StdMutex::new(String::new()),
            sequence: AtomicU64::new(0),
            _child: StdMutex::new(child),
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        let heard = Heard {
            events: events.clone(),
            listing: tmux.listing.clone(),
        };
        tokio::spawn(read_loop(client.clone(), stdout, heard, ready_tx));
        let connect_error = |message: String| {
            let lower = message.to_lowercase();
            if lower.contains("no server running")
                || lower.contains("error connecting")
                || lower.contains("no sessions")
            {
                Error::NoServer {
                    server: server.describe(),
                }
            } else {
                Error::Connect {
                    server: server.describe(),
                    message,
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(client),
            Ok(Ok(Err(message))) => Err(connect_error(message)),
            Ok(Err(_)) => {
                let mut message = String::new();
                let _ = stderr.read_to_string(&mut message).await;
                let message = message.trim().to_owned();
                // Nothing on stderr: what the client said as it exited (`%exit …`).
                let reason = client.reason();
                let said = reason
                    .strip_prefix("tmux connection closed: ")
                    .filter(|why| *why != "tmux exited");
                match said {
                    Some(why) if message.is_empty() => Err(Error::Closed {
                        server: server.describe(),
                        reason: if why.contains("server exited unexpectedly") {
                            format!(
                                "{why}: tmux could not start or keep a server on this socket; \
                                 does its folder exist, and is it writable?"
                            )
                        } else {
                            format!("{why}: it may be shutting down, or held by a stale client")
                        },
                    }),
                    _ => Err(connect_error(message)),
                }
            }
            Err(_) => Err(Error::Connect {
                server: server.describe(),
                message: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
            }),
        }
    }

    /// Queues and writes `lines`, each followed by its sentinel, in one write; returns
    /// a receiver per line.
    async fn send(&self, lines: &[Vec<Cmd>]) -> Result<Vec<oneshot::Receiver<Answer>>, Error> {
        let mut text = String::new();
        let mut receivers = Vec::with_capacity(lines.len());
        let mut stdin = self.stdin.lock().await;
        if !self.alive.load(Ordering::Acquire) {
            return Err(Error::Disconnected(self.reason()));
        }
        {
            let mut pending = self.lock_pending();
            for line in lines {
                let (tx, rx) = oneshot::channel();
                if line.is_empty() {
                    let _ = tx.send(Ok(Vec::new()));
                } else {
                    let n = self.sequence.fetch_add(1, Ordering::Relaxed);
                    let sentinel = format!("failover-sentinel-{n}");
                    text.push_str(&list_line(line));
                    text.push('\n');
                    text.push_str(
                        &Cmd::new("display-message")
                            .args(["-p", &sentinel])
                            .to_line(),
                    );
                    text.push('\n');
                    pending.push_back(Pending {
                        sentinel,
                        outputs: Vec::new(),
                        error: None,
                        tx,
                    });
                }
                receivers.push(rx);
            }
        }
        let written = async {
            stdin.write_all(text.as_bytes()).await?;
            stdin.flush().await
        };
        if let Err(e) = written.await {
            let reason = format!("cannot write to tmux: {e}");
            self.close(reason.clone());
            return Err(Error::Disconnected(reason));
        }
        Ok(receivers)
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, VecDeque<Pending>> {
        // A poisoned lock only means another task panicked mid-update; the queue itself
        // is still a valid queue.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reason(&self) -> String {
        let reason = self
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if reason.is_empty() {
            "tmux exited".to_owned()
        } else {
            reason
        }
    }

    /// Adds one of our blocks to the oldest waiting line; its sentinel's block
    /// completes it.
    fn complete(&self, lines: Vec<String>, failed: bool) {
        let mut pending = self.lock_pending();
        let Some(front) = pending.front_mut() else {
            return;
        };
        if !failed && lines.len() == 1 && lines[0] == front.sentinel {
            if let Some(p) = pending.pop_front() {
                let answer = match p.error {
                    Some(e) => Err(e),
                    None => Ok(p.outputs),
                };
                let _ = p.tx.send(answer);
            }
            return;
        }
        if failed && front.error.is_none() {
            front.error = Some((front.outputs.len(), lines.join("\n")));
        }
        front.outputs.push(lines);
    }

    fn close(&self, reason: String) {
        if self.alive.swap(false, Ordering::AcqRel) {
            *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
        }
        // Dropping the senders wakes every waiter with a disconnection.
        self.lock_pending().clear();
    }
}

/// Where the read loop passes on what the server says unasked.
struct Heard {
    events: broadcast::Sender<Event>,
    /// Every notification but output may change what a full listing shows.
    listing: Arc<super::listing::Cache>,
}

async fn read_loop(
    client: Arc<Client>,
    stdout: ChildStdout,
    heard: Heard,
    ready: oneshot::Sender<Result<(), String>>,
) {
    let Heard { events, listing } = heard;
    let mut ready = Some(ready);
    let mut reader = BufReader::new(stdout);
    let mut raw = Vec::new();
    let mut block: Option<(Guard, Vec<String>)> = None;
    let mut reason = String::from("tmux exited");
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&raw);
        let line = text.trim_end_matches(['\n', '\r']);
        if let Some((begin, lines)) = &mut block {
            // Only a line that starts with `%` can close a block.
            let closing = match line.starts_with('%').then(|| parse_line(line)) {
                Some(Line::End(g)) if g.number == begin.number => Some((g, false)),
                Some(Line::Error(g)) if g.number == begin.number => Some((g, true)),
                _ => None,
            };
            let Some((guard, failed)) = closing else {
                lines.push(line.to_owned());
                continue;
            };
            let lines = std::mem::take(lines);
            block = None;
            if guard.ours() {
                client.complete(lines, failed);
            } else if let Some(ready) = ready.take() {
                let _ = ready.send(if failed {
                    Err(lines.join("\n"))
                } else {
                    Ok(())
                });
            }
            continue;
        }
        match parse_line(line) {
            Line::Begin(g) => block = Some((g, Vec::new())),
            Line::Notification(Notification::Exit(why)) => {
                reason = why.unwrap_or_else(|| "tmux exited".to_owned());
                // Closed before anyone hears of it, so the next command reconnects.
                client.close(format!("tmux connection closed: {reason}"));
                let _ = events.send(Notification::Exit(Some(reason.clone())));
            }
            Line::Notification(n) => {
                if n != Notification::Output {
                    listing.changed();
                }
                let _ = events.send(n);
            }
            Line::End(_) | Line::Error(_) | Line::Text(_) => {}
        }
    }
    let announced = !client.alive.load(Ordering::Acquire);
    client.close(format!("tmux connection closed: {reason}"));
    if !announced {
        let _ = events.send(Notification::Exit(None));
    }
}

/// A client accepted and closed at once: the server may be going away, or starting.
fn closed_at_once(e: &Error) -> bool {
    match e {
        Error::Closed { .. } => true,
        Error::Connect { message, .. } => message.is_empty(),
        _ => false,
    }
}

fn spawn_error(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        Error::NotInstalled
    } else {
        Error::Spawn(e)
    }
}

/// Checks once per process that tmux is installed and at least 3.2.
async fn check_version(server: &Server) -> Result<(), Error> {
    static CHECKED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    CHECKED
        .get_or_try_init(|| async {
            let out = server
                .command()
                .arg("-V")
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(spawn_error)?;
            let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if version_ok(&found) {
                Ok(())
            } else {
                Err(Error::TooOld { found })
            }
        })
        .await
        .map(drop)
}

/// Whether `tmux -V` output names 3.2 or newer (`tmux 3.3a`, `tmux next-3.5`).
pub(crate) fn version_ok(output: &str) -> bool {
    let version = output.rsplit([' ', '-']).next().unwrap_or_default();
    let mut parts = version.split('.');
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts
        .next()
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    (major, minor) >= (3, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ok_should_accept_3_2_and_newer_only() {
        for ok in [
            "tmux 3.2",
            "tmux 3.3a",
            "tmux 3.5a",
            "tmux next-3.6",
            "tmux 4.0",
        ] {
            assert!(version_ok(ok), "{ok}");
        }
        for old in ["tmux 3.1c", "tmux 2.9", "tmux 1.8", "", "tmux master"] {
            assert!(!version_ok(old), "{old}");
        }
    }
}
