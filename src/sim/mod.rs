//! `failover sim-agent`: a stand-in for the Claude Code CLI that tests and the demo run
//! in place of the real one.
//!
//! It draws what Claude Code 2.1 draws on a terminal (see
//! `shared/reference/claude-code-screens.md`): the banner, the `❯`+U+00A0 prompt between
//! rules, `esc to interrupt` while a turn runs, a multi-line bracketed paste held as
//! `[Pasted text #N +M lines]` until a lone Enter, `/exit` printing the resume line,
//! transcripts under `$CLAUDE_CONFIG_DIR/projects/<slug>/<uuid>.jsonl`, and
//! `--resume <uuid>`. What each turn does (answer, usage limit, 500, 529, 429, dialog,
//! hang, crash) is scripted; see [`script`]. With `--agent codex` it stands in for
//! OpenAI's Codex CLI instead; see [`codex`].

mod codex;
mod hooks;
mod screen;
pub(crate) mod script;
pub(crate) mod transcript;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::{execute, terminal};

use crate::agents::AgentKind;
use hooks::Hooks;
use screen::{DIALOG_LEN, View};
use script::{Outcome, Script};
use serde_json::json;
use transcript::{SessionFile, Transcript};

/// The stand-in's command line, a superset of what failover passes to Claude Code.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Resume the conversation with this UUID.
    #[arg(long, value_name = "UUID")]
    resume: Option<String>,
    /// How long a normal turn takes.
    #[arg(long, env = "FAILOVER_SIM_TURN", default_value = "1s")]
    turn: crate::api::Duration,
    /// Outcomes of the next turns, `;`-separated: ok, limit [RESET|none],
    /// limit-legacy [EPOCH], error500, error500-ratelimit, overloaded, ratelimit,
    /// dialog, hang, crash, say TEXT.
    #[arg(long, env = "FAILOVER_SIM_SCRIPT", default_value = "")]
    script: String,
    /// A file whose lines are taken as outcomes, one a turn, before the script's.
    #[arg(long, env = "FAILOVER_SIM_CONTROL")]
    control: Option<PathBuf>,
    /// How long after Enter the screen shows an empty input box and no busy marker, as
    /// Claude Code's does before its request is under way.
    #[arg(long, env = "FAILOVER_SIM_LAG", default_value = "300ms")]
    submit_lag: crate::api::Duration,
    /// Accepted like Claude Code's flag; the stand-in asks no permissions anyway.
    #[arg(long)]
    dangerously_skip_permissions: bool,
    /// Which CLI to stand in for.
    #[arg(long, value_enum, default_value_t = AgentKind::ClaudeCode)]
    agent: AgentKind,
    /// Codex's subcommand, `resume THREAD-ID` (`--agent codex` only).
    #[arg(value_name = "COMMAND")]
    command: Vec<String>,
    /// Accepted like Codex's flag; the stand-in asks no approvals anyway.
    #[arg(long)]
    dangerously_bypass_approvals_and_sandbox: bool,
}

/// Runs the stand-in on the current terminal until `/exit`, Ctrl-C on an empty input,
/// or a scripted crash.
pub(crate) fn run(args: Args) -> ExitCode {
    let started = match args.agent {
        AgentKind::ClaudeCode => start(args),
        AgentKind::Codex => codex::start(args),
    };
    match started {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(1)
        }
    }
}

/// How long a resumed agent's screen stays blank before the conversation is redrawn.
const RESUME_BLANK: Duration = Duration::from_millis(300);

fn start(args: Args) -> Result<ExitCode, String> {
    if let Some(word) = args.command.first() {
        return Err(format!("error: unexpected argument '{word}' found"));
    }
    let home = match std::env::var_os("CLAUDE_CONFIG_DIR") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".claude"),
    };
    let workdir = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
    let session_id = match &args.resume {
        Some(id) => {
            let valid = uuid::Uuid::parse_str(id).is_ok();
            if !valid || !Transcript::new(&home, &workdir, id).exists() {
                return Err(format!("No conversation found with session ID: {id}"));
            }
            id.clone()
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let script =
        Script::new(&args.script, args.control.clone(), &home).map_err(|e| e.to_string())?;
    let mut agent = Agent::new(home, workdir, session_id, script, args.turn.0);
    agent.lag = args.submit_lag.0;
    if args.resume.is_some() {
        // Claude Code shows a blank screen for a moment before it redraws a resumed
        // conversation (its last turn, a usage limit included).
        std::thread::sleep(RESUME_BLANK);
        agent.restore();
    }
    let source = if args.resume.is_some() {
        "resume"
    } else {
        "startup"
    };
    agent.hooks.fire(
        "SessionStart",
        agent.payload(json!({"source": source, "model": "claude-opus-4-5"})),
    );
    agent.refresh_status_line(false);
    let _terminal = RawTerminal::enter().map_err(|e| format!("terminal: {e}"))?;
    let code = agent.run().map_err(|e| format!("terminal: {e}"))?;
    drop(_terminal);
    agent.session_file.remove();
    if code == ExitCode::SUCCESS {
        println!(
            "Resume this session with:\nclaude --resume {}",
            agent.session_id
        );
    } else {
        eprintln!("Error: simulated crash");
    }
    Ok(code)
}

/// Raw mode and bracketed paste for as long as it lives, restored on drop (panics too).
struct RawTerminal;

impl RawTerminal {
    /// Enters raw mode with bracketed paste.
    fn enter() -> std::io::Result<Self> {
        terminal::enable_raw_mode()?;
        execute!(std::io::stdout(), event::EnableBracketedPaste)?;
        Ok(Self)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = execute!(std::io::stdout(), event::DisableBracketedPaste);
        let _ = terminal::disable_raw_mode();
        print!("\x1b[H\x1b[2J");
        let _ = std::io::stdout().flush();
    }
}

#[derive(Debug)]
enum Phase {
    Idle,
    /// Enter was taken; the request is not under way yet (no busy marker).
    Sending {
        until: Instant,
        outcome: Outcome,
    },
    Busy {
        started: Instant,
        ends: Option<Instant>,
        outcome: Outcome,
    },
    Dialog {
        selected: usize,
    },
}

/// What the input box holds: typed text with placeholders for multi-line pastes.
#[derive(Debug, Default)]
struct Input {
    shown: String,
    pastes: Vec<(String, String)>,
    count: usize,
}

impl Input {
    fn paste(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let lines = text.lines().count();
        if lines > 1 {
            self.count += 1;
            let placeholder = format!("[Pasted text #{} +{lines} lines]", self.count);
            self.shown.push_str(&placeholder);
            self.pastes.push((placeholder, text));
        } else {
            self.shown.push_str(&text);
        }
    }

    fn backspace(&mut self) {
        if let Some((placeholder, _)) = self.pastes.last()
            && self.shown.ends_with(placeholder.as_str())
        {
            let len = self.shown.len() - placeholder.len();
            self.shown.truncate(len);
            self.pastes.pop();
        } else {
            self.shown.pop();
        }
    }

    fn take(&mut self) -> String {
        let mut text = std::mem::take(&mut self.shown);
        for (placeholder, content) in self.pastes.drain(..) {
            text = text.replacen(&placeholder, &content, 1);
        }
        text
    }
}

struct Agent {
    workdir: PathBuf,
    home: PathBuf,
    session_id: String,
    transcript: Transcript,
    session_file: SessionFile,
    script: Script,
    turn: Duration,
    history: Vec<String>,
    input: Input,
    phase: Phase,
    exit: Option<ExitCode>,
    hooks: Hooks,
    /// The prompt id of the turn under way or last run.
    prompt_id: Option<String>,
    /// The status line's first line.
    status_line: Option<String>,
    lag: Duration,
}

impl Agent {
    fn new(
        home: PathBuf,
        workdir: PathBuf,
        session_id: String,
        script: Script,
        turn: Duration,
    ) -> Self {
        let transcript = Transcript::new(&home, &workdir, &session_id);
        let session_file = SessionFile::new(&home);
        session_file.write(&session_id, &workdir, "idle");
        let hooks = Hooks::load(&home);
        Self {
            workdir,
            home,
            session_id,
            transcript,
            session_file,
            script,
            turn,
            history: Vec::new(),
            input: Input::default(),
            phase: Phase::Idle,
            exit: None,
            hooks,
            prompt_id: None,
            status_line: None,
            lag: Duration::ZERO,
        }
    }

    /// A hook payload: `extra` with the keys every hook gets.
    fn payload(&self, mut extra: serde_json::Value) -> serde_json::Value {
        extra["session_id"] = json!(self.session_id);
        extra["transcript_path"] = json!(self.transcript.path());
        extra["cwd"] = json!(self.workdir);
        if let Some(id) = &self.prompt_id {
            extra["prompt_id"] = json!(id);
        }
        extra
    }

    /// Runs the status line command, as Claude Code does at start and after each
    /// response; a successful response carries the account's use
    /// (`$CLAUDE_CONFIG_DIR/.sim-usage`: `<5h %> <7d %> [<5h reset> <7d reset>]`).
    fn refresh_status_line(&mut self, answered: bool) {
        let mut input = self.payload(json!({
            "model": {"id": "claude-opus-4-5", "display_name": "Opus 4.5"},
            "workspace": {"current_dir": self.workdir},
            "version": screen::VERSION,
        }));
        if answered && let Some(limits) = sim_usage(&self.home) {
            input["rate_limits"] = limits;
        }
        self.status_line = self.hooks.status_line(&input);
    }

    /// Redraws a resumed conversation.
    fn restore(&mut self) {
        for message in self.transcript.messages().unwrap_or_default() {
            match (message.role.as_str(), &message.error) {
                ("user", _) => self.push_prompt(&message.text),
                (_, Some(_)) if message.text.starts_with("You've hit") => {
                    self.history.push(format!("  ⎿  {}", message.text));
                    self.history.push("● Usage limit reached".into());
                }
                (_, Some(_)) => self.history.push(format!("  ⎿  {}", message.text)),
                _ => self.history.push(format!("● {}", message.text)),
            }
        }
    }

    fn run(&mut self) -> std::io::Result<ExitCode> {
        let mut last_frame = Vec::new();
        loop {
            let (width, height) = terminal::size().unwrap_or((80, 24));
            let frame = self.frame(usize::from(width), usize::from(height));
            if frame != last_frame {
                let mut out = std::io::stdout().lock();
                write!(out, "\x1b[H\x1b[2J{}", frame.join("\r\n"))?;
                out.flush()?;
                last_frame = frame;
            }
            if event::poll(Duration::from_millis(50))? {
                match event::read()? {
                    Event::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
                    Event::Paste(text) if !matches!(self.phase, Phase::Dialog { .. }) => {
                        self.input.paste(&text);
                    }
                    _ => {}
                }
            }
            self.tick(Instant::now());
            if let Some(code) = self.exit.take() {
                return Ok(code);
            }
        }
    }

    fn frame(&self, width: usize, height: usize) -> Vec<String> {
        let workdir = self.workdir.to_string_lossy();
        let (status, busy, dialog) = match &self.phase {
            Phase::Idle | Phase::Sending { .. } => (None, false, None),
            Phase::Dialog { selected } => (None, true, Some(*selected)),
            Phase::Busy {
                started, outcome, ..
            } => {
                let secs = started.elapsed().as_secs();
                let line = match outcome {
                    Outcome::Error500 => {
                        "✻ 500 Internal server error · retrying in 2s · attempt 3/10".to_owned()
                    }
                    Outcome::Overloaded => {
                        "✻ 529 Overloaded · retrying in 4s · attempt 2/10".to_owned()
                    }
                    Outcome::RateLimit => {
                        "✻ 429 Too Many Requests · retrying in 8s · attempt 5/10".to_owned()
                    }
                    _ => format!("✻ Churning… ({secs}s)"),
                };
                (Some(line), true, None)
            }
        };
        let view = View {
            workdir: &workdir,
            history: &self.history,
            status,
            input: &self.input.shown,
            busy,
            dialog,
            status_line: self.status_line.as_deref(),
        };
        screen::draw(&view, width, height)
    }

    fn on_key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if let Phase::Dialog { selected } = &mut self.phase {
            match key.code {
                KeyCode::Up => *selected = selected.saturating_sub(1),
                KeyCode::Down => *selected = (*selected + 1).min(DIALOG_LEN - 1),
                KeyCode::Char('1') => self.answer_dialog(0),
                KeyCode::Char('2') => self.answer_dialog(1),
                KeyCode::Char('3') | KeyCode::Esc => self.answer_dialog(2),
                KeyCode::Enter => {
                    let choice = *selected;
                    self.answer_dialog(choice);
                }
                _ => {}
            }
            return;
        }
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => {
                if self.input.shown.is_empty() {
                    self.exit = Some(ExitCode::SUCCESS);
                } else {
                    self.input = Input::default();
                }
            }
            KeyCode::Char(c) if !ctrl => self.input.shown.push(c),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Esc => {
                if matches!(self.phase, Phase::Busy { .. } | Phase::Sending { .. }) {
                    self.history
                        .push("  ⎿  Interrupted · What should Claude do instead?".into());
                    let _ = self
                        .transcript
                        .append_user("[Request interrupted by user]", None);
                    self.set_idle();
                }
            }
            KeyCode::Enter if matches!(self.phase, Phase::Idle) => self.submit(),
            _ => {}
        }
    }

    fn submit(&mut self) {
        let text = self.input.take();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return;
        }
        match trimmed {
            "/exit" | "/quit" => {
                self.exit = Some(ExitCode::SUCCESS);
                return;
            }
            "/clear" => {
                self.session_id = uuid::Uuid::new_v4().to_string();
                self.transcript = Transcript::new(&self.home, &self.workdir, &self.session_id);
                self.history.clear();
                self.set_idle();
                return;
            }
            _ => {}
        }
        self.push_prompt(&text);
        let prompt_id = uuid::Uuid::new_v4().to_string();
        let _ = self.transcript.append_user(&text, Some(&prompt_id));
        self.prompt_id = Some(prompt_id);
        self.hooks.fire(
            "UserPromptSubmit",
            self.payload(json!({"permission_mode": "bypassPermissions", "prompt": text})),
        );
        let outcome = self.script.next_outcome();
        let now = Instant::now();
        self.phase = match outcome {
            Outcome::Crash => {
                self.exit = Some(ExitCode::from(1));
                Phase::Idle
            }
            Outcome::Dialog => Phase::Dialog { selected: 0 },
            outcome => Phase::Sending {
                until: now + self.lag,
                outcome,
            },
        };
        self.session_file
            .write(&self.session_id, &self.workdir, "busy");
    }

    /// The request goes out: the busy marker shows until the outcome's time is up.
    fn start_turn(&mut self, outcome: Outcome, now: Instant) {
        let ends = match outcome {
            Outcome::Hang => None,
            Outcome::Limit(_) | Outcome::LimitLegacy(_) => Some(now + Duration::from_millis(200)),
            _ => Some(now + self.turn),
        };
        self.phase = Phase::Busy {
            started: now,
            ends,
            outcome,
        };
    }

    fn answer_dialog(&mut self, choice: usize) {
        if choice < 2 {
            let now = Instant::now();
            self.phase = Phase::Busy {
                started: now,
                ends: Some(now + self.turn),
                outcome: Outcome::Ok,
            };
        } else {
            self.history
                .push("  ⎿  User declined to run the command".into());
            self.set_idle();
        }
    }

    fn tick(&mut self, now: Instant) {
        if let Phase::Sending { until, .. } = &self.phase
            && now >= *until
            && let Phase::Sending { outcome, .. } = std::mem::replace(&mut self.phase, Phase::Idle)
        {
            self.start_turn(outcome, now);
        }
        let Phase::Busy {
            started,
            ends: Some(ends),
            outcome,
        } = &self.phase
        else {
            return;
        };
        if now < *ends {
            return;
        }
        let secs = started.elapsed().as_secs();
        let lines = finish(outcome, secs);
        let (error, message) = ending(outcome, &lines);
        self.history.extend(lines);
        let _ = self.transcript.append_reply(&message, error);
        self.set_idle();
        match error {
            None => self.hooks.fire(
                "Stop",
                self.payload(json!({
                    "permission_mode": "bypassPermissions", "effort": "medium",
                    "stop_hook_active": false, "last_assistant_message": message,
                    "background_tasks": [], "session_crons": [],
                })),
            ),
            Some(kind) => self.hooks.fire(
                "StopFailure",
                self.payload(json!({
                    "effort": "medium", "error": kind, "last_assistant_message": message,
                })),
            ),
        }
        self.refresh_status_line(error.is_none());
    }

    fn set_idle(&mut self) {
        self.phase = Phase::Idle;
        self.session_file
            .write(&self.session_id, &self.workdir, "idle");
    }

    fn push_prompt(&mut self, text: &str) {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().take(4).enumerate() {
            let mark = if i == 0 { "> " } else { "  " };
            self.history.push(format!("{mark}{line}"));
        }
        if lines.len() > 4 {
            self.history.push(format!("  … +{} lines", lines.len() - 4));
        }
    }
}

/// How a finished turn is reported: Claude Code's error kind (`None` for a normal end)
/// and the message its hooks and transcript carry. A transient 429 is a `rate_limit`
/// too, as Claude Code 2.1.329 reports it; only its message tells it apart.
fn ending(outcome: &Outcome, lines: &[String]) -> (Option<&'static str>, String) {
    let shown = || {
        lines
            .iter()
            .find_map(|l| l.strip_prefix("● "))
            .unwrap_or_default()
            .to_owned()
    };
    match outcome {
        Outcome::Limit(_) | Outcome::LimitLegacy(_) => {
            let first = lines
                .iter()
                .find_map(|l| l.trim_start().strip_prefix("⎿  "))
                .map_or_else(shown, str::to_owned);
            (Some("rate_limit"), first)
        }
        Outcome::RateLimit => (
            Some("rate_limit"),
            format!("API Error: {}", shown().trim_start_matches("API Error: ")),
        ),
        Outcome::Error500 | Outcome::Error500RateLimit | Outcome::Overloaded => {
            (Some("server_error"), shown())
        }
        Outcome::Ok | Outcome::Dialog | Outcome::Hang | Outcome::Crash | Outcome::Say(_) => {
            (None, shown())
        }
    }
}

/// An account's use as the stand-ins report it, from `home/.sim-usage`
/// (`<5h %> <7d %> [<5h reset> <7d reset>]`): each window's used percent and reset
/// (epoch seconds; by default three hours on and three days on).
#[derive(Debug, Clone, Copy, PartialEq)]
struct SimUsage {
    five_hour: (f64, i64),
    seven_day: (f64, i64),
}

fn read_sim_usage(home: &std::path::Path) -> Option<SimUsage> {
    let text = std::fs::read_to_string(home.join(".sim-usage")).ok()?;
    let fields: Vec<f64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let now = jiff::Timestamp::now().as_second();
    let hour = now - now % 3600;
    let five = fields.get(2).map_or(hour + 3 * 3600, |r| *r as i64);
    let seven = fields
        .get(3)
        .map_or(hour - hour % 86_400 + 3 * 86_400, |r| *r as i64);
    Some(SimUsage {
        five_hour: (*fields.first()?, five),
        seven_day: (fields.get(1).copied().unwrap_or(0.0), seven),
    })
}

/// The `rate_limits` of the status line input, from `home/.sim-usage`.
fn sim_usage(home: &std::path::Path) -> Option<serde_json::Value> {
    let u = read_sim_usage(home)?;
    Some(json!({
        "five_hour": {"used_percentage": u.five_hour.0, "resets_at": u.five_hour.1},
        "seven_day": {"used_percentage": u.seven_day.0, "resets_at": u.seven_day.1},
    }))
}

/// The lines a finished turn adds to the conversation.
fn finish(outcome: &Outcome, secs: u64) -> Vec<String> {
    let api = |text: &str| vec![format!("● API Error: {text}")];
    match outcome {
        Outcome::Ok | Outcome::Dialog | Outcome::Hang | Outcome::Crash => vec![
            "● Done. I made the change and checked it.".to_owned(),
            format!("✻ Churned for {secs}s"),
        ],
        Outcome::Say(text) => vec![format!("● {text}")],
        Outcome::Limit(Some(reset)) => {
            let at = reset.split(" (").next().unwrap_or(reset);
            vec![
                format!("  ⎿  You've hit your 5-hour limit · resets {reset}"),
                format!("● Usage limit reached · continuing automatically at {at} · esc to cancel"),
            ]
        }
        Outcome::Limit(None) => vec![
            "  ⎿  You've hit your usage limit".to_owned(),
            "● Usage limit reached".to_owned(),
        ],
        Outcome::LimitLegacy(epoch) => vec![format!("● Claude AI usage limit reached|{epoch}")],
        Outcome::Error500 => api(
            "500 Internal server error. This is a server-side issue, usually temporary — try again in a moment.",
        ),
        Outcome::Error500RateLimit => api(
            r#"500 {"type":"error","error":{"type":"api_error","message":"Internal server error: upstream rate limit exceeded"}}"#,
        ),
        Outcome::Overloaded => api(
            r#"529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        Outcome::RateLimit => {
            api("Server is temporarily limiting requests (not your usage limit) · Rate limited")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_should_hold_a_multiline_paste_as_a_placeholder_and_submit_it_whole() {
        let mut input = Input::default();
        input.shown.push_str("do: ");
        input.paste("a\rb $(x)\rc `y`");
        assert_eq!(input.shown, "do: [Pasted text #1 +3 lines]");
        assert_eq!(input.take(), "do: a\nb $(x)\nc `y`");
        assert!(input.shown.is_empty());
    }

    #[test]
    fn backspace_should_remove_a_whole_paste() {
        let mut input = Input::default();
        input.paste("a\nb");
        input.backspace();
        assert_eq!(input.take(), "");
    }

    #[test]
    fn finish_should_draw_the_usage_limit_like_claude_code() {
        let lines = finish(&Outcome::Limit(Some("7:11am (UTC)".into())), 0);
        assert_eq!(
            lines[0],
            "  ⎿  You've hit your 5-hour limit · resets 7:11am (UTC)"
        );
        assert_eq!(
            lines[1],
            "● Usage limit reached · continuing automatically at 7:11am · esc to cancel"
        );
    }
}
