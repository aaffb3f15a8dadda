use crossterm::event::{KeyCode, KeyEvent};

use super::super::model::{Activity, SessionView, Snapshot};
use super::*;
use crate::cli::describe::Kind;
use crate::cli::get::SessionRow;

fn session(name: &str) -> SessionView {
    SessionView {
        row: SessionRow {
            name: name.into(),
            role: "pool auto".into(),
            kind: "claude-code".into(),
            account: "a".into(),
            state: "running".into(),
            pid: Some(1),
            task: String::new(),
        },
        activity: Activity::Idle,
        since: None,
        conversation: String::new(),
        pane: Some("%1".into()),
    }
}

fn app(names: &[&str]) -> App {
    let mut app = App::new(
        "2026-12-01T12:00:00Z".parse().unwrap(),
        jiff::tz::TimeZone::UTC,
        false,
        false,
    );
    let snapshot = Snapshot {
        sessions: names.iter().map(|n| session(n)).collect(),
        ..Snapshot::default()
    };
    app.update(Msg::Data(Box::new(snapshot)));
    app
}

fn press(app: &mut App, code: KeyCode) -> Option<Effect> {
    app.update(Msg::Key(KeyEvent::from(code)))
}

fn typed(app: &mut App, text: &str) -> Option<Effect> {
    text.chars()
        .map(|c| press(app, KeyCode::Char(c)))
        .last()
        .flatten()
}

#[test]
fn the_first_look_should_capture_the_selected_sessions_screen_and_moving_the_next() {
    let mut app = App::new(
        "2026-12-01T12:00:00Z".parse().unwrap(),
        jiff::tz::TimeZone::UTC,
        false,
        false,
    );
    let snapshot = Snapshot {
        sessions: vec![session("w-0"), session("w-1")],
        ..Snapshot::default()
    };
    assert_eq!(
        app.update(Msg::Data(Box::new(snapshot))),
        Some(Effect::Capture("w-0".into()))
    );
    app.update(Msg::Screen {
        session: "w-0".into(),
        text: "❯".into(),
    });
    assert_eq!(
        press(&mut app, KeyCode::Char('j')),
        Some(Effect::Capture("w-1".into()))
    );
    app.update(Msg::Screen {
        session: "w-1".into(),
        text: "❯".into(),
    });
    assert_eq!(press(&mut app, KeyCode::Down), None, "the last row stays");
    assert_eq!(
        press(&mut app, KeyCode::Up),
        Some(Effect::Capture("w-0".into()))
    );
}

#[test]
fn keys_should_ask_for_describe_history_attach_and_quit() {
    let mut app = app(&["w-0", "w-1"]);
    assert_eq!(
        press(&mut app, KeyCode::Char('d')),
        Some(Effect::Describe(Kind::Session, "w-0".into()))
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('l')),
        Some(Effect::History("w-0".into()))
    );
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Attach("w-0".into()))
    );
    assert_eq!(press(&mut app, KeyCode::Char('q')), Some(Effect::Quit));
}

#[test]
fn a_filter_should_narrow_the_rows_and_escape_should_clear_it() {
    let mut app = app(&["w-0", "w-1", "w-10", "desk"]);
    typed(&mut app, "/w-1");
    assert_eq!(app.mode, Mode::Filter);
    let names: Vec<String> = app.rows();
    assert_eq!(names, ["w-1", "w-10"]);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.rows().len(), 2, "the filter stays after enter");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.rows().len(), 4);
}

#[test]
fn a_colon_should_switch_views_by_name_or_prefix_and_refuse_others() {
    let mut app = app(&["w-0"]);
    typed(&mut app, ":acc");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Accounts);
    typed(&mut app, ":event");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Events);
    typed(&mut app, ":nodes");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Events, "no fleet");
    assert!(app.message.as_deref().unwrap().contains("--fleet"));
    typed(&mut app, ":pods");
    press(&mut app, KeyCode::Enter);
    assert!(app.message.as_deref().unwrap().contains("no view \"pods\""));
    typed(&mut app, ":s");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.view, View::Sessions);
}

#[test]
fn a_pane_should_scroll_and_close_on_escape() {
    let mut app = app(&["w-0"]);
    app.update(Msg::Text {
        title: "describe session w-0".into(),
        text: "a\nb\nc".into(),
        end: false,
    });
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.pane.as_ref().unwrap().scroll, 2, "not past the end");
    assert_eq!(
        press(&mut app, KeyCode::Char('d')),
        None,
        "keys go to the pane"
    );
    press(&mut app, KeyCode::Esc);
    assert!(app.pane.is_none());
}

#[test]
fn attach_and_history_should_want_a_session_selected() {
    let mut app = app(&["w-0"]);
    typed(&mut app, ":inboxes");
    press(&mut app, KeyCode::Enter);
    assert_eq!(press(&mut app, KeyCode::Enter), None);
    assert!(app.message.is_some());
}

#[test]
fn x_should_ask_before_restarting_and_only_y_should_ask_the_controller() {
    use crate::object::ObjectRef;
    use crate::request::Verb;
    let mut app = app(&["w-0", "w-1"]);
    press(&mut app, KeyCode::Char('j'));
    press(&mut app, KeyCode::Char('x'));
    assert!(matches!(&app.mode, Mode::Confirm { question, .. } if question == "restart w-1? y/n"));
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        Some(Effect::Request(
            Verb::Restart,
            ObjectRef::Session("w-1".into())
        ))
    );
    assert_eq!(app.mode, Mode::Normal);
    press(&mut app, KeyCode::Char('x'));
    assert_eq!(
        press(&mut app, KeyCode::Char('n')),
        None,
        "any other key cancels"
    );
    assert_eq!(app.message.as_deref(), Some("restart w-1 not done"));
}

#[test]
fn r_should_ask_to_return_the_selected_sessions_task_and_say_why_not_otherwise() {
    use crate::object::ObjectRef;
    use crate::request::Verb;
    let mut app = app(&["w-0", "w-1"]);
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.message.as_deref(), Some("no task runs on w-0"));
    assert_eq!(app.mode, Mode::Normal);
    app.snapshot.sessions[0].row.task = "t.md".into();
    press(&mut app, KeyCode::Char('r'));
    assert!(
        matches!(&app.mode, Mode::Confirm { question, .. } if question == "return t.md from w-0 to its inbox? y/n")
    );
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        Some(Effect::Request(
            Verb::Return,
            ObjectRef::Task {
                inbox: None,
                name: "t.md".into()
            }
        ))
    );
    app.snapshot.sessions[0].row.role = "dedicated".into();
    press(&mut app, KeyCode::Char('r'));
    assert_eq!(app.mode, Mode::Normal);
    assert!(app.message.as_deref().unwrap().contains("is dedicated"));
}
