//! `failover sim-agent --agent codex`: a stand-in for OpenAI's Codex CLI 0.171.
//!
//! It draws Codex's screens ([`screen`]): `loading` for a moment, the trust dialog in
//! a git repository its `config.toml` does not trust, `› Ask Codex to do anything`,
//! `• Working (Ns • esc to interrupt)`, answers, and the usage limit's `■ You’ve hit
//! your usage limit. …` wrapped at the pane's width. It writes the thread's rollout
//! ([`rollout`]), runs `notify` from `$CODEX_HOME/config.toml` with the JSON report
//! after each completed turn (never after a failed one; after a thread's first turn a
//! second report follows for the title's own thread, as Codex's do), and `resume
//! <thread-id>` goes on with a rollout found under `$CODEX_HOME/sessions/`. Turns
//! follow the same script as the Claude Code stand-in ([`super::script`]), the
//! account's `.sim-limit` and `.sim-usage` files read from `$CODEX_HOME`.

mod config;
mod rollout;
mod screen;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::terminal;
use serde_json::json;

use super::script::{Outcome, Script};
use config::Config;
use rollout::{Rollout, Said};
use screen::{Mode, View};

/// How long `loading` shows before the input line is ready.
const LOADING: Duration = Duration::from_millis(400);

/// The model the footer names.
const MODEL: &str = "gpt-5.5";

/// Runs the Codex stand-in on the current terminal until Ctrl-C on an empty input or
/// a scripted crash.
pub(super) fn start(args: super::Args) -> Result<ExitCode, String> {
    let home = match std::env::var_os("CODEX_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".codex"),
    };
    let workdir = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
    let resume = match args.command.as_slice() {
        [] => None,
        [verb, thread] if verb == "resume" => Some(thread.clone()),
        other => return Err(format!("error: unexpected arguments {other:?}")),
    };
    let script =
        Script::new(&args.script, args.control.clone(), &home).map_err(|e| e.to_string())?;
    let mut agent = Agent {
        config: Config::read(&home),
        home,
        workdir,
        thread: uuid::Uuid::new_v4().to_string(),
        rollout: None,
        script,
        turn: args.turn.0,
        history: Vec::new(),
        prompts: Vec::new(),
        title: None,
        titled: false,
        input: String::new(),
        phase: Phase::Starting(Instant::now() + LOADING),
        exit: None,
    };
    if let Some(thread) = resume {
        let Some(rollout) = Rollout::find(&agent.home, &thread) else {
            return Err(format!(
                "No saved session found with ID {thread}. Run `codex resume` without an ID to choose from existing sessions."
            ));
        };
        agent.restore(rollout, thread);
    }
    if let Some(root) = git_root(&agent.workdir)
        && !agent.config.trusts(&root)
        && !agent.config.trusts(&agent.workdir)
    {
        agent.phase = Phase::Trust { root, selected: 0 };
    }
    let _terminal = super::RawTerminal::enter().map_err(|e| format!("terminal: {e}"))?;
    agent.run().map_err(|e| format!("terminal: {e}"))
}

#[derive(Debug)]
enum Phase {
    Starting(Instant),
    Trust {
        root: PathBuf,
        selected: usize,
    },
    Idle,
    Busy {
        started: Instant,
        started_at: i64,
        ends: Option<Instant>,
        outcome: Outcome,
        turn: String,
    },
}

struct Agent {
    home: PathBuf,
    workdir: PathBuf,
    config: Config,
    thread: String,
    /// The thread's rollout, once its first turn began.
    rollout: Option<Rollout>,
    script: Script,
    turn: Duration,
    history: Vec<String>,
    /// Every prompt of the thread, oldest first: what a report's `input-messages` lists.
    prompts: Vec<String>,
    /// The footer's title: the thread's first prompt, once its first turn ended.
    title: Option<String>,
    /// Whether the thread has had its title (and its title's report).
    titled: bool,
    input: String,
    phase: Phase,
    exit: Option<ExitCode>,
}

impl Agent {
    /// Takes a thread up again: its conversation redrawn, its prompts remembered.
    fn restore(&mut self, rollout: Rollout, thread: String) {
        for said in rollout.said() {
            match said {
                Said::User(text) => {
                    self.push_prompt(&text);
                    self.prompts.push(text);
                }
                Said::Assistant(text) => self.push_answer(&text, None),
                Said::Failed(text) => self.push_failure(&text),
            }
        }
        // A resumed thread has its title already; Codex's footer shows none.
        self.titled = true;
        self.thread = thread;
        self.rollout = Some(rollout);
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
                    Event::Paste(text)
                        if matches!(self.phase, Phase::Idle | Phase::Busy { .. }) =>
                    {
                        self.input
                            .push_str(&text.replace("\r\n", "\n").replace('\r', "\n"));
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
        let mode = match &self.phase {
            Phase::Starting(_) => Mode::Starting,
            Phase::Trust { selected, .. } => Mode::Trust(*selected),
            Phase::Idle => Mode::Ready(None),
            Phase::Busy { started, .. } => Mode::Ready(Some(started.elapsed().as_secs())),
        };
        let view = View {
            workdir: &workdir,
            model: MODEL,
            title: self.title.as_deref(),
            history: &self.history,
            input: &self.input,
            mode,
        };
        screen::draw(&view, width, height)
    }

    fn on_key(&mut self, key: KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if let Phase::Trust { root, selected } = &mut self.phase {
            match key.code {
                KeyCode::Up => *selected = 0,
                KeyCode::Down => *selected = 1,
                KeyCode::Char('1') => *selected = 0,
                KeyCode::Char('2') => *selected = 1,
                KeyCode::Enter if *selected == 0 => {
                    let root = root.clone();
                    let _ = config::trust(&self.home, &root);
                    self.config.trusted.push(root);
                    self.phase = Phase::Starting(Instant::now() + LOADING);
                }
                KeyCode::Enter | KeyCode::Esc => self.exit = Some(ExitCode::SUCCESS),
                _ => {}
            }
            return;
        }
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => {
                if self.input.is_empty() {
                    self.exit = Some(ExitCode::SUCCESS);
                } else {
                    self.input.clear();
                }
            }
            KeyCode::Char(c) if !ctrl => self.input.push(c),
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Esc => self.interrupt(),
            KeyCode::Enter if matches!(self.phase, Phase::Idle) => self.submit(),
            _ => {}
        }
    }

    fn submit(&mut self) {
        let text = std::mem::take(&mut self.input);
        let text = text.trim().to_owned();
        if text.is_empty() {
            return;
        }
        if text == "/exit" || text == "/quit" {
            self.exit = Some(ExitCode::SUCCESS);
            return;
        }
        self.push_prompt(&text);
        let turn = uuid::Uuid::new_v4().to_string();
        let first = if self.rollout.is_none() {
            self.rollout = Rollout::create(&self.home, &self.thread, &self.workdir).ok();
            Some(self.workdir.as_path())
        } else {
            None
        };
        if let Some(rollout) = &mut self.rollout {
            let _ = rollout.start_turn(&turn, &text, first);
        }
        self.prompts.push(text);
        let outcome = self.script.next_outcome();
        if outcome == Outcome::Crash {
            self.exit = Some(ExitCode::from(1));
            return;
        }
        let now = Instant::now();
        let ends = match outcome {
            Outcome::Hang => None,
            Outcome::Limit(_) | Outcome::LimitLegacy(_) => Some(now + Duration::from_millis(200)),
            _ => Some(now + self.turn),
        };
        self.phase = Phase::Busy {
            started: now,
            started_at: jiff::Timestamp::now().as_second(),
            ends,
            outcome,
            turn,
        };
    }

    fn interrupt(&mut self) {
        if let Phase::Busy { turn, .. } = &self.phase {
            if let Some(rollout) = &mut self.rollout {
                let _ = rollout.abort_turn(turn);
            }
            self.history
                .push("■ Conversation interrupted - tell the model what to do differently.".into());
            self.history.extend([String::new(), String::new()]);
            self.phase = Phase::Idle;
        }
    }

    fn tick(&mut self, now: Instant) {
        if let Phase::Starting(until) = self.phase
            && now >= until
        {
            self.phase = Phase::Idle;
        }
        let Phase::Busy {
            started,
            ends: Some(ends),
            ..
        } = &self.phase
        else {
            return;
        };
        if now < *ends {
            return;
        }
        let secs = started.elapsed().as_secs();
        let Phase::Busy {
            started_at,
            outcome,
            turn,
            ..
        } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let usage = super::read_sim_usage(&self.home);
        match ending(&outcome) {
            Ending::Answer(text) => {
                self.push_answer(&text, Some(secs));
                if let Some(rollout) = &mut self.rollout {
                    let _ = rollout.end_turn(&turn, started_at, Some(&text), None, usage);
                }
                self.report(&turn, &text);
            }
            Ending::Failed(message, info) => {
                self.push_failure(&message);
                if let Some(rollout) = &mut self.rollout {
                    let failed = Some((message.as_str(), info));
                    let _ = rollout.end_turn(&turn, started_at, None, failed, usage);
                }
            }
        }
    }

    /// Runs `notify` with the turn's report; after a thread's first turn, once more
    /// for the title Codex asks for on a thread of its own.
    fn report(&mut self, turn: &str, answer: &str) {
        let first = !self.titled;
        let report = turn_report(&self.thread, turn, &self.workdir, &self.prompts, answer);
        notify(&self.config.notify, &report.to_string());
        if first {
            let prompt = self.prompts.last().cloned().unwrap_or_default();
            let title = prompt
                .split_whitespace()
                .take(4)
                .collect::<Vec<_>>()
                .join(" ");
            let asked = [format!("{TITLE_REQUEST}\n\nUser prompt:\n{prompt}")];
            let (thread, turn) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
            let report = turn_report(
                &thread.to_string(),
                &turn.to_string(),
                &self.workdir,
                &asked,
                &title,
            );
            notify(&self.config.notify, &report.to_string());
            self.title = self.prompts.first().map(|p| title_of(p));
            self.titled = true;
        }
    }

    fn push_prompt(&mut self, text: &str) {
        self.history.extend(prompt_lines(text));
    }

    fn push_answer(&mut self, text: &str, secs: Option<u64>) {
        let clock = jiff::Zoned::now().strftime("%H:%M").to_string();
        self.history.extend(answer_lines(text, secs, &clock));
    }

    fn push_failure(&mut self, message: &str) {
        self.history.extend(failure_lines(message));
    }
}

/// The conversation lines of a prompt.
fn prompt_lines(text: &str) -> Vec<String> {
    let mut lines = text.lines();
    let mut out = vec![format!("› {}", lines.next().unwrap_or_default())];
    out.extend(lines.map(|l| format!("  {l}")));
    out.extend([String::new(), String::new()]);
    out
}

/// The conversation lines of an answer that took `secs` (`None`: not known, a resumed
/// one), ended at `clock` (`HH:MM`).
fn answer_lines(text: &str, secs: Option<u64>, clock: &str) -> Vec<String> {
    let took = match secs {
        Some(0) | None => "<1s".to_owned(),
        Some(s) => format!("{s}s"),
    };
    vec![
        format!("• {text}"),
        String::new(),
        format!("  Worked for {took} • {clock}"),
        String::new(),
        String::new(),
    ]
}

/// The conversation lines of a failed turn.
fn failure_lines(message: &str) -> Vec<String> {
    vec![format!("■ {message}"), String::new(), String::new()]
}

/// The JSON report `notify` gets after a completed turn: `prompts` are all the
/// thread's so far, the turn's own last.
fn turn_report(
    thread: &str,
    turn: &str,
    cwd: &Path,
    prompts: &[String],
    answer: &str,
) -> serde_json::Value {
    json!({
        "type": "agent-turn-complete", "thread-id": thread, "turn-id": turn, "cwd": cwd,
        "client": "codex-tui", "input-messages": prompts, "last-assistant-message": answer,
    })
}

/// What Codex asks the model for a title with (the start of the title prompt).
const TITLE_REQUEST: &str = "Generate a concise, single-line task title of at most 36 characters and under five words where possible.";

/// The footer's title of a thread: its first prompt's first line, as Codex 0.171
/// shows it against the mock.
fn title_of(prompt: &str) -> String {
    prompt.lines().next().unwrap_or_default().to_owned()
}

/// How a turn ends.
#[derive(Debug, PartialEq)]
enum Ending {
    /// An answer: reported through `notify`.
    Answer(String),
    /// A failure: Codex's message and its `codex_error_info`; no report.
    Failed(String, &'static str),
}

fn ending(outcome: &Outcome) -> Ending {
    match outcome {
        Outcome::Say(text) => Ending::Answer(text.clone()),
        Outcome::Limit(reset) => {
            Ending::Failed(limit_message(reset.as_deref()), "usage_limit_exceeded")
        }
        Outcome::LimitLegacy(epoch) => Ending::Failed(
            limit_message(Some(&epoch.to_string())),
            "usage_limit_exceeded",
        ),
        Outcome::Error500 | Outcome::Error500RateLimit => Ending::Failed(
            "We're currently experiencing high demand, which may cause temporary errors.".into(),
            "internal_server_error",
        ),
        Outcome::Overloaded => Ending::Failed(
            "Selected model is at capacity. Please try a different model.".into(),
            "server_overloaded",
        ),
        Outcome::RateLimit => Ending::Failed(
            "exceeded retry limit, last status: 429 Too Many Requests".into(),
            "response_too_many_failed_attempts",
        ),
        Outcome::Ok | Outcome::Dialog | Outcome::Hang | Outcome::Crash => {
            Ending::Answer("Done. I made the change and checked it.".into())
        }
    }
}

/// Codex's usage-limit message for a Plus plan. `reset` is an epoch (written as Codex
/// writes it: `4:13 AM` today, `Dec 5th, 2025 3:53 PM` another day, in the local
/// zone), a time already written, or Claude Code's stand-in default (`7am (UTC)`,
/// read as that hour); `None` has no reset.
fn limit_message(reset: Option<&str>) -> String {
    let Some(reset) = reset else {
        return "You’ve hit your usage limit. Try again later.".to_owned();
    };
    format!(
        "You’ve hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), visit \
         https://chatgpt.com/settings/usage to purchase more credits or try again at {}.",
        reset_text(reset)
    )
}

fn reset_text(reset: &str) -> String {
    let now = jiff::Zoned::now();
    if let Ok(epoch) = reset.parse::<i64>()
        && let Ok(at) = jiff::Timestamp::from_second(epoch)
    {
        let at = at.to_zoned(now.time_zone().clone());
        return if at.date() == now.date() {
            at.strftime("%-I:%M %p").to_string()
        } else {
            let day = at.day();
            let suffix = match (day % 10, day) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!(
                "{} {day}{suffix}, {} {}",
                at.strftime("%b"),
                at.year(),
                at.strftime("%-I:%M %p")
            )
        };
    }
    // Claude Code's stand-in default, `7am (UTC)`: that hour.
    let hour = reset.split_whitespace().next().unwrap_or_default();
    if let Some((h, ampm)) = hour
        .strip_suffix("am")
        .map(|h| (h, "AM"))
        .or_else(|| hour.strip_suffix("pm").map(|h| (h, "PM")))
        && h.parse::<u8>().is_ok()
    {
        return format!("{h}:00 {ampm}");
    }
    reset.to_owned()
}

/// Runs `argv` with `report` as its last argument, as Codex runs `notify`: stdio
/// closed, not waited for (a thread reaps it).
fn notify(argv: &[String], report: &str) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let child = std::process::Command::new(program)
        .args(args)
        .arg(report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Ok(mut child) = child {
        std::thread::spawn(move || child.wait());
    }
}

/// The git repository `dir` is in, if any: where Codex asks for trust.
fn git_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
