//! The dashboard's state, pure: what it shows ([`App`]), what happens to it ([`Msg`]:
//! a key, a new look, the journal, the clock) and what it asks the loop to do
//! ([`Effect`]: capture a screen, describe, attach, quit). No terminal, no clock, no
//! file: the loop feeds it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::Timestamp;

use super::model::{Activity, History, Snapshot};
use crate::journal::Line;
use crate::object::ObjectRef;
use crate::request::Verb;

/// The main view, switched with `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    /// The sessions, with the selected one's screen beside them.
    Sessions,
    /// The accounts, one row each.
    Accounts,
    /// The inboxes.
    Inboxes,
    /// The journal in words.
    Events,
    /// The fleet's nodes.
    Nodes,
}

impl View {
    /// The view a `:` command names (a prefix is enough: `:s`, `:acc`).
    fn named(name: &str) -> Option<Self> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        [
            ("sessions", View::Sessions),
            ("accounts", View::Accounts),
            ("inboxes", View::Inboxes),
            ("events", View::Events),
            ("nodes", View::Nodes),
        ]
        .into_iter()
        .find(|(n, _)| n.starts_with(name) || name.strip_suffix('s').is_some_and(|s| *n == s))
        .map(|(_, v)| v)
    }

    /// Its name, as `:` takes it.
    pub(super) fn name(self) -> &'static str {
        match self {
            View::Sessions => "sessions",
            View::Accounts => "accounts",
            View::Inboxes => "inboxes",
            View::Events => "events",
            View::Nodes => "nodes",
        }
    }
}

/// What the keys do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mode {
    /// Moving, acting on the selection.
    Normal,
    /// Typing the filter after `/`.
    Filter,
    /// Typing a view after `:`.
    Command(String),
    /// The key help.
    Help,
    /// A question on the bottom line (`restart w-1? y/n`): `y` asks for the effect.
    Confirm {
        /// The question.
        question: String,
        /// What `y` asks for.
        effect: Effect,
    },
}

/// A text shown over the main view: a description or a screen's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pane {
    /// What it shows (`describe session w-1`).
    pub title: String,
    /// Its lines.
    pub lines: Vec<String>,
    /// The first line shown.
    pub scroll: usize,
}

/// Something that happened.
#[derive(Debug)]
pub(super) enum Msg {
    /// A key was pressed.
    Key(KeyEvent),
    /// A new look.
    Data(Box<Snapshot>),
    /// New journal lines, oldest first.
    Journal(Vec<Line>),
    /// The clock moved on (countdowns).
    Tick(Timestamp),
    /// The selected session's screen, captured.
    Screen {
        /// The session.
        session: String,
        /// Its visible lines.
        text: String,
    },
    /// A text to show over the main view (`d`, `l`).
    Text {
        /// Its title.
        title: String,
        /// The text.
        text: String,
        /// Shown from its end (a screen's history), else from its start.
        end: bool,
    },
    /// Something to tell on the bottom line (an error of an effect).
    Say(String),
}

/// What the loop is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    /// Leave, restoring the terminal.
    Quit,
    /// Capture the visible screen of this session (selection changed).
    Capture(String),
    /// Describe this object as `failover describe` does.
    Describe(super::super::describe::Kind, String),
    /// Show this session's screen history.
    History(String),
    /// Attach to this session; back on detach.
    Attach(String),
    /// Ask for this, as `failover restart session` or `failover return task` does.
    Request(Verb, ObjectRef),
}

/// The dashboard.
#[derive(Debug)]
pub(super) struct App {
    /// The main view.
    pub view: View,
    /// What the keys do.
    pub mode: Mode,
    /// The row filter (`/`), matched against each row's text.
    pub filter: String,
    /// The selected row, among the filtered rows of the view.
    pub selected: usize,
    /// The last look.
    pub snapshot: Snapshot,
    /// What the journal told.
    pub history: History,
    /// Now, as the loop's clock says.
    pub now: Timestamp,
    /// The time zone times are shown in.
    pub tz: jiff::tz::TimeZone,
    /// Colours (off with `NO_COLOR`).
    pub color: bool,
    /// Whether a fleet is shown (a node column, the nodes view).
    pub fleet: bool,
    /// The selected session's screen: the session and its lines.
    pub screen: Option<(String, Vec<String>)>,
    /// A text over the main view.
    pub pane: Option<Pane>,
    /// The bottom line's message.
    pub message: Option<String>,
}

impl App {
    /// A dashboard at `now`, nothing looked at yet.
    pub(super) fn new(now: Timestamp, tz: jiff::tz::TimeZone, color: bool, fleet: bool) -> Self {
        Self {
            view: View::Sessions,
            mode: Mode::Normal,
            filter: String::new(),
            selected: 0,
            snapshot: Snapshot::default(),
            history: History::default(),
            now,
            tz,
            color,
            fleet,
            screen: None,
            pane: None,
            message: None,
        }
    }

    /// The keys of the rows of the view that pass the filter (session, account or inbox
    /// name; an event's object), in order. Each row's text is made only to be matched
    /// against a filter.
    pub(super) fn rows(&self) -> Vec<String> {
        let needle = self.filter.to_lowercase();
        let pass = |text: &dyn Fn() -> String| {
            needle.is_empty() || text().to_lowercase().contains(&needle)
        };
        match self.view {
            View::Sessions => self
                .snapshot
                .sessions
                .iter()
                .filter(|s| {
                    let r = &s.row;
                    pass(&|| {
                        format!(
                            "{} {} {} {} {} {}",
                            r.name,
                            r.role,
                            r.account,
                            s.activity.word(),
                            r.task,
                            s.conversation
                        )
                    })
                })
                .map(|s| s.row.name.clone())
                .collect(),
            View::Accounts => self
                .snapshot
                .accounts
                .iter()
                .filter(|a| pass(&|| format!("{} {}", a.row.name, a.row.state)))
                .map(|a| a.row.name.clone())
                .collect(),
            View::Inboxes => self
                .snapshot
                .inboxes
                .iter()
                .filter(|i| pass(&|| format!("{} {}", i.row.name, i.row.pool)))
                .map(|i| i.row.name.clone())
                .collect(),
            View::Events => self
                .history
                .events
                .iter()
                .rev()
                .filter_map(|t| {
                    let object = t.object().map(ToString::to_string).unwrap_or_default();
                    pass(&|| format!("{object} {} {}", t.event, t.message)).then_some(object)
                })
                .collect(),
            View::Nodes => self
                .snapshot
                .nodes
                .iter()
                .flat_map(|t| &t.rows)
                .filter(|r| pass(&|| r.to_string()))
                .map(|r| r["name"].as_str().unwrap_or_default().to_owned())
                .collect(),
        }
    }

    /// The key of the selected row, if any.
    pub(super) fn selection(&self) -> Option<String> {
        self.rows().into_iter().nth(self.selected)
    }

    /// Takes in what happened; what the loop is to do about it.
    pub(super) fn update(&mut self, msg: Msg) -> Option<Effect> {
        match msg {
            Msg::Key(key) => self.key(key),
            Msg::Data(snapshot) => {
                self.history.note(&snapshot, self.now);
                let before = self.selection();
                self.snapshot = *snapshot;
                self.clamp();
                self.captured_if_moved(before)
            }
            Msg::Journal(lines) => {
                self.history.fold(&lines);
                None
            }
            Msg::Tick(now) => {
                self.now = now;
                None
            }
            Msg::Screen { session, text } => {
                self.screen = Some((session, text.lines().map(str::to_owned).collect()));
                None
            }
            Msg::Text { title, text, end } => {
                let lines: Vec<String> = text.lines().map(str::to_owned).collect();
                let scroll = if end {
                    lines.len().saturating_sub(20)
                } else {
                    0
                };
                self.pane = Some(Pane {
                    title,
                    lines,
                    scroll,
                });
                None
            }
            Msg::Say(text) => {
                self.message = Some(text);
                None
            }
        }
    }

    fn key(&mut self, key: KeyEvent) -> Option<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Effect::Quit);
        }
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                None
            }
            Mode::Confirm { question, effect } => {
                self.mode = Mode::Normal;
                if key.code == KeyCode::Char('y') {
                    self.message = None;
                    Some(effect)
                } else {
                    self.message = Some(format!("{} not done", question.trim_end_matches("? y/n")));
                    None
                }
            }
            Mode::Filter => {
                let before = self.selection();
                match key.code {
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) => self.filter.push(c),
                    _ => {}
                }
                self.selected = 0;
                self.captured_if_moved(before)
            }
            Mode::Command(mut text) => {
                match key.code {
                    KeyCode::Enter => {
                        self.mode = Mode::Normal;
                        return self.switch(&text);
                    }
                    KeyCode::Esc => self.mode = Mode::Normal,
                    KeyCode::Backspace => {
                        text.pop();
                        self.mode = Mode::Command(text);
                    }
                    KeyCode::Char(c) => {
                        text.push(c);
                        self.mode = Mode::Command(text);
                    }
                    _ => {}
                }
                None
            }
            Mode::Normal if self.pane.is_some() => {
                self.pane_key(key);
                None
            }
            Mode::Normal => self.normal_key(key),
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> Option<Effect> {
        self.message = None;
        let before = self.selection();
        match key.code {
            KeyCode::Char('q') => return Some(Effect::Quit),
            KeyCode::Char('j') | KeyCode::Down => self.selected += 1,
            KeyCode::Char('k') | KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('g') | KeyCode::Home => self.selected = 0,
            KeyCode::Char('G') | KeyCode::End => self.selected = usize::MAX,
            KeyCode::PageDown => self.selected = self.selected.saturating_add(10),
            KeyCode::PageUp => self.selected = self.selected.saturating_sub(10),
            KeyCode::Char('/') => {
                self.mode = Mode::Filter;
                self.filter.clear();
            }
            KeyCode::Char(':') => self.mode = Mode::Command(String::new()),
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Char('d') => return self.describe(),
            KeyCode::Char('l') => return self.session_effect(Effect::History),
            KeyCode::Enter => return self.session_effect(Effect::Attach),
            KeyCode::Char('x') => self.confirm_restart(),
            KeyCode::Char('r') => self.confirm_return(),
            _ => {}
        }
        self.clamp();
        self.captured_if_moved(before)
    }

    fn pane_key(&mut self, key: KeyEvent) {
        let Some(pane) = &mut self.pane else {
            return;
        };
        let last = pane.lines.len().saturating_sub(1);
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.pane = None,
            KeyCode::Char('j') | KeyCode::Down => pane.scroll = (pane.scroll + 1).min(last),
            KeyCode::Char('k') | KeyCode::Up => pane.scroll = pane.scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => pane.scroll = (pane.scroll + 20).min(last),
            KeyCode::PageUp => pane.scroll = pane.scroll.saturating_sub(20),
            KeyCode::Char('g') | KeyCode::Home => pane.scroll = 0,
            KeyCode::Char('G') | KeyCode::End => pane.scroll = last,
            _ => {}
        }
    }

    /// `:name`: another main view.
    fn switch(&mut self, name: &str) -> Option<Effect> {
        match View::named(name) {
            Some(View::Nodes) if !self.fleet => {
                self.message = Some("no fleet: start top with --fleet".to_owned());
                None
            }
            Some(view) => {
                self.view = view;
                self.selected = 0;
                self.filter.clear();
                self.pane = None;
                self.captured_if_moved(None)
            }
            None => {
                self.message = Some(format!(
                    "no view {name:?}: sessions, accounts, inboxes, events or nodes"
                ));
                None
            }
        }
    }

    /// `d`: the selection's description.
    fn describe(&mut self) -> Option<Effect> {
        use super::super::describe::Kind;
        let key = self.selection()?;
        let (kind, name) = match self.view {
            View::Sessions => (Kind::Session, key),
            View::Accounts => (Kind::Account, key),
            View::Inboxes => (Kind::Inbox, key),
            View::Events => {
                let (kind, name) = key.split_once('/')?;
                let kind = match kind {
                    "session" => Kind::Session,
                    "account" => Kind::Account,
                    "inbox" => Kind::Inbox,
                    "task" => Kind::Task,
                    _ => return None,
                };
                (kind, name.to_owned())
            }
            View::Nodes => {
                self.message = Some("nodes are described by `failover get nodes`".to_owned());
                return None;
            }
        };
        Some(Effect::Describe(kind, name))
    }

    /// `x`: the question before restarting the selected session.
    fn confirm_restart(&mut self) {
        let Some(s) = self.selected_session() else {
            return;
        };
        let name = s.row.name.clone();
        if s.activity == Activity::NotOurs {
            self.message = Some(format!(
                "{name} is not ours: a person's session is never restarted"
            ));
            return;
        }
        self.mode = Mode::Confirm {
            question: format!("restart {name}? y/n"),
            effect: Effect::Request(Verb::Restart, ObjectRef::Session(name)),
        };
    }

    /// `r`: the question before returning the selected session's task to its inbox.
    fn confirm_return(&mut self) {
        let Some(s) = self.selected_session() else {
            return;
        };
        let (name, task) = (s.row.name.clone(), s.row.task.clone());
        if s.row.role == "dedicated" {
            self.message = Some(format!(
                "{name} is dedicated: its work is a person's, not a task to return"
            ));
            return;
        }
        if task.is_empty() {
            self.message = Some(format!("no task runs on {name}"));
            return;
        }
        self.mode = Mode::Confirm {
            question: format!("return {task} from {name} to its inbox? y/n"),
            effect: Effect::Request(
                Verb::Return,
                ObjectRef::Task {
                    inbox: None,
                    name: task,
                },
            ),
        };
    }

    /// The selected session (sessions view only; else a word on the bottom line).
    fn selected_session(&mut self) -> Option<&super::model::SessionView> {
        if self.view != View::Sessions {
            self.message = Some("select a session first (:sessions)".to_owned());
            return None;
        }
        let name = self.selection()?;
        self.snapshot.sessions.iter().find(|s| s.row.name == name)
    }

    /// An effect on the selected session (sessions view only).
    fn session_effect(&mut self, effect: fn(String) -> Effect) -> Option<Effect> {
        if self.view != View::Sessions {
            self.message = Some("select a session first (:sessions)".to_owned());
            return None;
        }
        self.selection().map(effect)
    }

    fn clamp(&mut self) {
        let n = self.rows().len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    /// A capture of the selected session's screen when the selection moved to another.
    fn captured_if_moved(&mut self, before: Option<String>) -> Option<Effect> {
        if self.view != View::Sessions {
            return None;
        }
        let now = self.selection();
        if now == before && self.screen.as_ref().map(|(s, _)| s) == now.as_ref() {
            return None;
        }
        now.map(Effect::Capture)
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
