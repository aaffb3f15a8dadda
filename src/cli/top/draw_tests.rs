use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use super::super::app::{App, Msg};
use super::super::model::{AccountView, Activity, InboxView, SessionView, Snapshot};
use super::*;
use crate::cli::get::{AccountRow, InboxRow, SessionRow};
use crate::cli::table::WindowCell;

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-12-01T12:00:00Z";

fn session(name: &str, account: &str, activity: Activity, task: &str) -> SessionView {
    SessionView {
        row: SessionRow {
            name: name.into(),
            role: "pool auto".into(),
            kind: "claude-code".into(),
            account: account.into(),
            state: "running".into(),
            pid: Some(7),
            task: task.into(),
        },
        activity,
        since: (!task.is_empty()).then(|| at("2026-12-01T11:48:00Z")),
        conversation: "c64d59db-d119-4d91-99db-c35c96fd5f28".into(),
        pane: Some("%1".into()),
    }
}

fn account(name: &str, state: &'static str, used: Option<f64>) -> AccountView {
    AccountView {
        row: AccountRow {
            name: name.into(),
            agent: "claude-code".into(),
            priority: 0,
            state: state.into(),
            resets: String::new(),
            resets_in: String::new(),
            five_hour: used.map(|used| WindowCell {
                used,
                resets_at: at("2026-12-01T13:42:00Z"),
            }),
            seven_day: None,
            sessions: 0,
            home: format!("/home/op/{name}"),
        },
        until: (state == "exhausted").then(|| at("2026-12-01T14:05:00Z")),
        sessions: vec![],
    }
}

fn pool() -> Snapshot {
    Snapshot {
        controller: "controller: running (pid 42), converged".into(),
        last_swap: "last swap: none".into(),
        accounts: vec![
            account("a", "exhausted", Some(100.0)),
            account("b", "active", Some(69.0)),
        ],
        sessions: vec![
            session("w-0", "b", Activity::Working, "fix-login.md"),
            session("w-1", "b", Activity::Idle, ""),
            session("w-10", "b", Activity::Waiting, ""),
            session("desk", "b", Activity::QuotaBlocked, ""),
        ],
        inboxes: vec![InboxView {
            row: InboxRow {
                name: "work".into(),
                pool: "auto".into(),
                waiting: 3,
                active: 1,
                done: 9,
                failed: 0,
                path: "/p".into(),
                queue: "open".into(),
            },
            oldest: Some(at("2026-12-01T11:56:00Z")),
        }],
        ..Snapshot::default()
    }
}

fn app(color: bool) -> App {
    let mut app = App::new(at(NOW), jiff::tz::TimeZone::UTC, color, false);
    app.update(Msg::Data(Box::new(pool())));
    app
}

/// The screen as text lines, and the buffer.
fn render(app: &App, width: u16, height: u16) -> (Vec<String>, ratatui::buffer::Buffer) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(app, f)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let lines = (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_owned())
                .collect::<String>()
        })
        .collect();
    (lines, buffer)
}

#[test]
fn accounts_should_show_a_bar_the_percent_left_and_a_countdown_per_window() {
    let (lines, _) = render(&app(true), 140, 40);
    let text = lines.join("\n");
    assert!(
        text.contains("5h ███████░░░ 31 % left · resets in 1h42m"),
        "{text}"
    );
    assert!(text.contains("exhausted until 14:05"), "{text}");
    assert!(
        text.contains("work  3 waiting · 1 running · 9 done · 0 failed · oldest 4m"),
        "{text}"
    );
}

#[test]
fn accounts_should_be_grouped_under_their_family_once_there_are_several() {
    let (lines, _) = render(&app(true), 140, 40);
    assert!(
        !lines.iter().any(|l| l.trim() == "claude-code"),
        "one family: no heading"
    );
    let mut app = app(true);
    let mut x = account("x", "active", Some(10.0));
    x.row.agent = "codex".into();
    app.snapshot.accounts.push(x);
    let (lines, _) = render(&app, 140, 40);
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| l.trim() == text || l.starts_with(&format!("{text}  ")))
            .unwrap_or_else(|| panic!("no line {text}:\n{}", lines.join("\n")))
    };
    assert!(at("claude-code") < at("a") && at("a") < at("b"));
    assert!(at("b") < at("codex") && at("codex") < at("x"));
}

#[test]
fn sessions_should_carry_a_glyph_for_their_state() {
    let (lines, _) = render(&app(true), 140, 40);
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.contains(&format!(" {name} ")) && l.contains("pool auto"))
            .cloned()
            .unwrap_or_else(|| panic!("no row {name}:\n{}", lines.join("\n")))
    };
    assert!(row("w-0").contains("● w-0") && row("w-0").contains("working"));
    assert!(row("w-0").contains("fix-login.md") && row("w-0").contains("12m"));
    assert!(row("w-1").contains("○ w-1"));
    assert!(row("w-10").contains("◆ w-10"));
    assert!(row("desk").contains("⊘ desk") && row("desk").contains("quota-blocked"));
}

#[test]
fn a_narrow_terminal_should_drop_columns_by_priority_and_never_wrap() {
    let (wide, _) = render(&app(true), 220, 40);
    assert!(wide.iter().any(|l| l.contains("CONVERSATION")));
    let (narrow, _) = render(&app(true), 40, 20);
    let text = narrow.join("\n");
    assert!(
        !text.contains("CONVERSATION") && !text.contains("ROLE"),
        "{text}"
    );
    assert!(text.contains("SESSION") && text.contains("STATE"), "{text}");
    assert!(text.contains("● w-0"), "{text}");
    // Every line is one screen line: the 40 cells, nothing carried to the next.
    assert!(narrow.iter().all(|l| l.chars().count() == 40));
    // A tiny one still draws the rows, without the panels.
    let (tiny, _) = render(&app(true), 20, 6);
    assert!(tiny.join("\n").contains("w-0"), "{tiny:#?}");
}

#[test]
fn no_color_should_draw_every_cell_in_the_default_colours() {
    let (_, buffer) = render(&app(false), 140, 40);
    for cell in buffer.content() {
        assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset), "{cell:?}");
    }
    let (_, colored) = render(&app(true), 140, 40);
    assert!(colored.content().iter().any(|c| c.fg != Color::Reset));
}

#[test]
fn a_filter_should_keep_the_rows_that_match() {
    let mut app = app(true);
    for c in "/w-1".chars() {
        app.update(Msg::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        )));
    }
    let (lines, _) = render(&app, 140, 40);
    let text = lines.join("\n");
    assert!(text.contains("○ w-1") && text.contains("◆ w-10"), "{text}");
    assert!(
        !text.contains("● w-0") && !text.contains("⊘ desk"),
        "{text}"
    );
    assert!(text.contains("/w-1▏"), "the filter being typed: {text}");
}

#[test]
fn help_and_every_view_should_draw() {
    let mut app = app(true);
    app.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('?'),
    )));
    let (lines, _) = render(&app, 100, 30);
    assert!(lines.join("\n").contains("describe the selection"));
    app.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('x'),
    )));
    for (view, header) in [
        ("accounts", "5H LEFT"),
        ("inboxes", "WAITING"),
        ("events", "MESSAGE"),
    ] {
        for c in format!(":{view}").chars() {
            app.update(Msg::Key(crossterm::event::KeyEvent::from(
                crossterm::event::KeyCode::Char(c),
            )));
        }
        app.update(Msg::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Enter,
        )));
        let (lines, _) = render(&app, 100, 30);
        let text = lines.join("\n");
        assert!(text.contains(header), "{view}: {text}");
    }
}

#[test]
fn a_bar_should_fill_with_the_use() {
    assert_eq!(bar(0.0, 4), "░░░░");
    assert_eq!(bar(50.0, 4), "██░░");
    assert_eq!(bar(130.0, 4), "████");
}

#[test]
fn a_long_list_should_scroll_to_the_selection_and_mark_it() {
    let mut app = App::new(at(NOW), jiff::tz::TimeZone::UTC, false, false);
    let snapshot = Snapshot {
        sessions: (0..500)
            .map(|i| session(&format!("p-{i:03}"), "b", Activity::Idle, ""))
            .collect(),
        ..Snapshot::default()
    };
    app.update(Msg::Data(Box::new(snapshot)));
    app.selected = 321;
    let (lines, _) = render(&app, 140, 40);
    let text = lines.join("\n");
    let marked = lines
        .iter()
        .find(|l| l.contains("› "))
        .unwrap_or_else(|| panic!("no row marked:\n{text}"));
    assert!(marked.contains("p-321"), "{text}");
    assert!(
        !text.contains("p-000"),
        "scrolled past the first rows:\n{text}"
    );
    app.selected = 0;
    let (lines, _) = render(&app, 140, 40);
    let marked = lines.iter().find(|l| l.contains("› ")).unwrap();
    assert!(marked.contains("p-000"), "{}", lines.join("\n"));
}
