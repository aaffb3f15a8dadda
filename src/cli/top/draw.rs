//! Drawing the dashboard, purely from an [`App`]: the accounts with a bar per use
//! window, the queues, the main view (a table whose columns drop by priority when the
//! terminal is narrow), the newest events and the key line. Nothing wraps; without
//! colours (`NO_COLOR`) glyphs and bars still tell everything.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Row, Table, TableState};

use super::app::{App, Mode, View};
use super::model::{self, Activity};
use crate::journal::story::Told;

/// The width of a use bar, in cells.
const BAR: usize = 10;
/// The hours an account's use chart covers, and its cells.
const CHART_CELLS: usize = 12;

/// Draws the whole dashboard.
pub(super) fn draw(app: &App, f: &mut Frame<'_>) {
    let area = f.area();
    let accounts = accounts_lines(app, area.width);
    let queue = queue_lines(app);
    let tall = area.height >= 12;
    let events_height = match area.height {
        h if h >= 34 => 6,
        h if h >= 24 => 4,
        _ => 0,
    };
    let top_budget = area.height.saturating_sub(8) / 2;
    let accounts_height = if tall {
        u16::try_from(accounts.len())
            .unwrap_or(u16::MAX)
            .min(top_budget)
    } else {
        0
    };
    let queue_height = if tall {
        u16::try_from(queue.len())
            .unwrap_or(u16::MAX)
            .min(top_budget.saturating_sub(accounts_height).max(1))
    } else {
        0
    };
    let [header, accounts_area, queue_area, main, events_area, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(accounts_height),
        Constraint::Length(queue_height),
        Constraint::Min(3),
        Constraint::Length(events_height),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(header_line(app)), header);
    f.render_widget(Paragraph::new(accounts), accounts_area);
    f.render_widget(Paragraph::new(queue), queue_area);
    main_view(app, f, main);
    if events_height > 0 {
        events_panel(app, f, events_area);
    }
    f.render_widget(Paragraph::new(footer_line(app)), footer);
    if let Some(pane) = &app.pane {
        f.render_widget(Clear, main);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(format!(" {} (↑↓ scroll, esc back) ", pane.title));
        let lines: Vec<Line<'_>> = pane
            .lines
            .iter()
            .skip(pane.scroll)
            .map(|l| Line::raw(l.as_str()))
            .collect();
        f.render_widget(Paragraph::new(lines).block(block), main);
    }
    if app.mode == Mode::Help {
        f.render_widget(Clear, main);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(" keys (any key to close) ");
        let lines: Vec<Line<'_>> = HELP.iter().map(|l| Line::raw(*l)).collect();
        f.render_widget(Paragraph::new(lines).block(block), main);
    }
}

/// The key help, as `?` shows it and docs/operations.md lists it.
pub(super) const HELP: &[&str] = &[
    "↑ ↓ j k     move (g G first, last; PgUp PgDn)",
    "/text       filter the rows (enter keeps it, esc clears it)",
    ":view       sessions, accounts, inboxes, events, nodes (--fleet)",
    "d           describe the selection (as failover describe)",
    "l           the selected session's screen history",
    "enter       attach to the selected session; detach comes back",
    "x           restart the selected session's agent, resuming (y to confirm)",
    "r           return the selected session's task to its inbox (y to confirm)",
    "esc         close a pane, clear the filter",
    "?           this help",
    "q           quit (ctrl-c too)",
];

/// A style, or none without colours.
fn paint(app: &App, style: Style) -> Style {
    if app.color {
        style
    } else {
        Style::default().add_modifier(style.add_modifier)
    }
}

fn header_line(app: &App) -> Line<'static> {
    let mut spans = vec![
        Span::styled(
            "failover top",
            paint(
                app,
                Style::new().add_modifier(Modifier::BOLD).fg(Color::Cyan),
            ),
        ),
        Span::raw(format!(" · {} · ", app.view.name())),
        Span::raw(app.snapshot.controller.clone()),
    ];
    if let Some(e) = &app.snapshot.error {
        spans.push(Span::styled(
            format!(" · {e}"),
            paint(app, Style::new().fg(Color::Red)),
        ));
    }
    Line::from(spans)
}

/// `███████░░░`: `used` percent of the bar filled.
pub(super) fn bar(used: f64, width: usize) -> String {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let filled = ((used.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    "█".repeat(filled) + &"░".repeat(width - filled)
}

/// How an account's state reads: `exhausted until 14:05` with its time.
fn account_state(app: &App, a: &model::AccountView) -> String {
    match a.until {
        Some(t) if a.row.state == "exhausted" => format!(
            "exhausted until {}",
            t.to_zoned(app.tz.clone()).strftime("%H:%M")
        ),
        _ => a.row.state.to_owned(),
    }
}

fn state_color(state: &str) -> Color {
    match state {
        s if s.starts_with("exhausted") => Color::Red,
        s if s.contains("moveAt") => Color::Yellow,
        "active" => Color::Green,
        _ => Color::Reset,
    }
}

fn accounts_lines(app: &App, width: u16) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let name_width = app
        .snapshot
        .accounts
        .iter()
        .map(|a| a.row.name.chars().count())
        .max()
        .unwrap_or(0);
    // With several families, each family's accounts under its name.
    let families = app
        .snapshot
        .accounts
        .iter()
        .map(|a| a.row.agent.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut family = None;
    for a in &app.snapshot.accounts {
        if families > 1 && family != Some(a.row.agent.as_str()) {
            family = Some(a.row.agent.as_str());
            out.push(Line::from(Span::styled(
                a.row.agent.clone(),
                paint(app, Style::new().add_modifier(Modifier::UNDERLINED)),
            )));
        }
        let state = account_state(app, a);
        let sessions = match a.sessions.len() {
            0 => "no sessions".to_owned(),
            n if width >= 100 => format!("{n} sessions: {}", a.sessions.join(" ")),
            n => format!("{n} sessions"),
        };
        let mut spans = vec![
            Span::styled(
                format!("{:<name_width$}  ", a.row.name),
                paint(app, Style::new().add_modifier(Modifier::BOLD)),
            ),
            Span::styled(
                state.clone(),
                paint(app, Style::new().fg(state_color(&state))),
            ),
            Span::raw(format!(" · {sessions}")),
        ];
        if let Some(series) = app.history.usage.get(&a.row.name) {
            let levels = model::levels(
                series,
                app.now,
                jiff::SignedDuration::from_mins(30),
                CHART_CELLS,
            );
            spans.push(Span::raw(format!(
                " · use 6h {}",
                model::sparkline(&levels, 100.0)
            )));
        }
        out.push(Line::from(spans));
        for (name, w) in [("5h", a.row.five_hour), ("7d", a.row.seven_day)] {
            let Some(w) = w else { continue };
            let left = (100.0 - w.used).max(0.0);
            let color = match left {
                l if l < 10.0 => Color::Red,
                l if l < 30.0 => Color::Yellow,
                _ => Color::Green,
            };
            out.push(Line::from(vec![
                Span::raw(format!("  {:<name_width$}{name} ", "")),
                Span::styled(bar(w.used, BAR), paint(app, Style::new().fg(color))),
                Span::raw(format!(
                    " {left:.0} % left · resets in {}",
                    super::super::get::countdown(app.now, w.resets_at)
                )),
            ]));
        }
    }
    if !app.snapshot.accounts.is_empty() {
        out.push(Line::raw(app.snapshot.last_swap.clone()));
    }
    out
}

fn queue_lines(app: &App) -> Vec<Line<'static>> {
    let mut out: Vec<Line<'static>> = app
        .snapshot
        .inboxes
        .iter()
        .map(|i| {
            let r = &i.row;
            let mut text = format!(
                "{}  {} waiting · {} running · {} done · {} failed",
                r.name, r.waiting, r.active, r.done, r.failed
            );
            if let Some(t) = i.oldest {
                text.push_str(&format!(
                    " · oldest {}",
                    super::super::get::countdown(t, app.now)
                ));
            }
            if let Some(times) = app.history.done.get(&r.name) {
                let c = model::counts(
                    times,
                    app.now,
                    jiff::SignedDuration::from_mins(10),
                    CHART_CELLS,
                );
                let max = c.iter().copied().fold(0.0, f64::max);
                text.push_str(&format!(" · done/10m {}", model::sparkline(&c, max)));
            }
            Line::raw(text)
        })
        .collect();
    if let Some(t) = app.snapshot.resumes {
        out.push(Line::styled(
            format!(
                "every account exhausted: the queue resumes at {} (in {})",
                t.to_zoned(app.tz.clone()).strftime("%H:%M"),
                super::super::get::countdown(app.now, t)
            ),
            paint(app, Style::new().fg(Color::Red)),
        ));
    }
    out
}

/// A column: its header and priority (the higher, the sooner it drops).
struct Col {
    header: &'static str,
    drop: u8,
}

const fn col(header: &'static str, drop: u8) -> Col {
    Col { header, drop }
}

/// Which columns fit in `width`: the widest content of each, dropping the columns of
/// highest `drop` first; the last kept column takes the rest.
fn fit(cols: &[Col], rows: &[Vec<String>], width: u16) -> Vec<(usize, u16)> {
    let widths: Vec<u16> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let content = rows
                .iter()
                .map(|r| r.get(i).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0);
            u16::try_from(content.max(c.header.len()).min(60)).unwrap_or(60)
        })
        .collect();
    let mut kept: Vec<usize> = (0..cols.len()).collect();
    // Two cells of the selection mark, one between columns.
    let total = |kept: &[usize]| -> u16 { kept.iter().map(|i| widths[*i] + 1).sum::<u16>() + 2 };
    while kept.len() > 1 && total(&kept) > width {
        let worst = kept
            .iter()
            .enumerate()
            .max_by_key(|(_, i)| cols[**i].drop)
            .map(|(at, _)| at)
            .unwrap_or(0);
        kept.remove(worst);
    }
    kept.into_iter().map(|i| (i, widths[i])).collect()
}

/// Which of `n` rows fit in `area` under the header, the selected one among them, as a
/// table scrolled just enough to show it: only those are made into cells (a view of 500
/// sessions is redrawn at the cost of the 40 on screen, columns as wide as theirs).
fn visible(app: &App, area: Rect, n: usize) -> std::ops::Range<usize> {
    let room = usize::from(area.height.saturating_sub(1)).max(1);
    let start = (app.selected.min(n.saturating_sub(1)) + 1).saturating_sub(room);
    start..n.min(start + room)
}

/// A table of `rows` under `cols`, the row at `selected` marked, in `area`.
fn grid(
    app: &App,
    f: &mut Frame<'_>,
    area: Rect,
    cols: &[Col],
    rows: Vec<(Vec<String>, Style)>,
    selected: usize,
) {
    let cells: Vec<Vec<String>> = rows.iter().map(|(r, _)| r.clone()).collect();
    let kept = fit(cols, &cells, area.width);
    let header = Row::new(kept.iter().map(|(i, _)| cols[*i].header))
        .style(paint(app, Style::new().add_modifier(Modifier::BOLD)));
    let n = kept.len();
    let widths: Vec<Constraint> = kept
        .iter()
        .enumerate()
        .map(|(at, (_, w))| {
            if at + 1 == n {
                Constraint::Min(*w)
            } else {
                Constraint::Length(*w)
            }
        })
        .collect();
    let empty = rows.is_empty();
    let body: Vec<Row<'_>> = rows
        .into_iter()
        .map(|(r, style)| {
            Row::new(
                kept.iter()
                    .map(|(i, _)| r.get(*i).cloned().unwrap_or_default()),
            )
            .style(paint(app, style))
        })
        .collect();
    let highlight = if app.color {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    };
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(highlight)
        .highlight_symbol("› ")
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always);
    let mut state = TableState::default().with_selected((!empty).then_some(selected));
    f.render_stateful_widget(table, area, &mut state);
    if empty {
        let y = area
            .y
            .saturating_add(1)
            .min(area.bottom().saturating_sub(1));
        let text = if app.filter.is_empty() {
            "nothing to show".to_owned()
        } else {
            format!("nothing matches /{}", app.filter)
        };
        f.render_widget(
            Paragraph::new(format!("  {text}")),
            Rect::new(area.x, y, area.width, 1),
        );
    }
}

fn activity_color(a: Activity) -> Color {
    match a {
        Activity::Working => Color::Green,
        Activity::Waiting => Color::Magenta,
        Activity::QuotaBlocked | Activity::Exited => Color::Red,
        Activity::Missing => Color::Yellow,
        Activity::Idle | Activity::NotOurs | Activity::Running => Color::Reset,
    }
}

fn main_view(app: &App, f: &mut Frame<'_>, area: Rect) {
    let keys: std::collections::BTreeSet<String> = app.rows().into_iter().collect();
    match app.view {
        View::Sessions => {
            let (table_area, side) = if area.width >= 110 {
                let [a, b] =
                    Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
                        .areas(area);
                (a, Some(b))
            } else {
                (area, None)
            };
            let node = app.fleet.then(|| app.snapshot.node.clone()).flatten();
            let mut cols = vec![
                col("SESSION", 0),
                col("STATE", 1),
                col("ACCOUNT", 2),
                col("TASK", 3),
                col("FOR", 4),
                col("ROLE", 5),
                col("CONVERSATION", 7),
            ];
            if node.is_some() {
                cols.push(col("NODE", 6));
            }
            let shown: Vec<_> = app
                .snapshot
                .sessions
                .iter()
                .filter(|s| keys.contains(&s.row.name))
                .collect();
            let range = visible(app, table_area, shown.len());
            let rows = shown[range.clone()]
                .iter()
                .map(|s| {
                    let mut r = vec![
                        format!("{} {}", s.activity.glyph(), s.row.name),
                        s.activity.word().to_owned(),
                        s.row.account.clone(),
                        s.row.task.clone(),
                        s.since
                            .map(|t| super::super::get::countdown(t, app.now))
                            .unwrap_or_default(),
                        s.row.role.clone(),
                        s.conversation.clone(),
                    ];
                    if let Some(n) = &node {
                        r.push(n.clone());
                    }
                    (r, Style::new().fg(activity_color(s.activity)))
                })
                .collect();
            grid(app, f, table_area, &cols, rows, app.selected - range.start);
            if let Some(side) = side {
                screen_pane(app, f, side);
            }
        }
        View::Accounts => {
            let cols = [
                col("ACCOUNT", 0),
                col("AGENT", 4),
                col("STATE", 1),
                col("5H LEFT", 2),
                col("7D LEFT", 3),
                col("SESSIONS", 4),
                col("PRIORITY", 5),
                col("HOME", 6),
            ];
            let window = |w: Option<super::super::table::WindowCell>| {
                w.map(|w| {
                    format!(
                        "{:.0} % · {}",
                        (100.0 - w.used).max(0.0),
                        super::super::get::countdown(app.now, w.resets_at)
                    )
                })
                .unwrap_or_default()
            };
            let shown: Vec<_> = app
                .snapshot
                .accounts
                .iter()
                .filter(|a| keys.contains(&a.row.name))
                .collect();
            let range = visible(app, area, shown.len());
            let rows = shown[range.clone()]
                .iter()
                .map(|a| {
                    let state = account_state(app, a);
                    let color = state_color(&state);
                    (
                        vec![
                            a.row.name.clone(),
                            a.row.agent.clone(),
                            state,
                            window(a.row.five_hour),
                            window(a.row.seven_day),
                            a.sessions.len().to_string(),
                            a.row.priority.to_string(),
                            a.row.home.clone(),
                        ],
                        Style::new().fg(color),
                    )
                })
                .collect();
            grid(app, f, area, &cols, rows, app.selected - range.start);
        }
        View::Inboxes => {
            let cols = [
                col("INBOX", 0),
                col("WAITING", 1),
                col("RUNNING", 2),
                col("DONE", 3),
                col("FAILED", 4),
                col("OLDEST", 5),
                col("POOL", 6),
                col("QUEUE", 7),
                col("PATH", 8),
            ];
            let shown: Vec<_> = app
                .snapshot
                .inboxes
                .iter()
                .filter(|i| keys.contains(&i.row.name))
                .collect();
            let range = visible(app, area, shown.len());
            let rows = shown[range.clone()]
                .iter()
                .map(|i| {
                    let r = &i.row;
                    (
                        vec![
                            r.name.clone(),
                            r.waiting.to_string(),
                            r.active.to_string(),
                            r.done.to_string(),
                            r.failed.to_string(),
                            i.oldest
                                .map(|t| super::super::get::countdown(t, app.now))
                                .unwrap_or_default(),
                            r.pool.clone(),
                            r.queue.clone(),
                            r.path.clone(),
                        ],
                        Style::new(),
                    )
                })
                .collect();
            grid(app, f, area, &cols, rows, app.selected - range.start);
        }
        View::Events => {
            let cols = [
                col("TIME", 1),
                col("OBJECT", 0),
                col("EVENT", 2),
                col("MESSAGE", 0),
            ];
            let shown: Vec<_> = app
                .history
                .events
                .iter()
                .rev()
                .filter(|t| {
                    let text = format!(
                        "{} {} {}",
                        t.object().map(ToString::to_string).unwrap_or_default(),
                        t.event,
                        t.message
                    );
                    app.filter.is_empty()
                        || text.to_lowercase().contains(&app.filter.to_lowercase())
                })
                .collect();
            let range = visible(app, area, shown.len());
            let rows = shown[range.clone()]
                .iter()
                .map(|t| (event_cells(app, t), Style::new().fg(severity(t))))
                .collect();
            grid(app, f, area, &cols, rows, app.selected - range.start);
        }
        View::Nodes => {
            let table = app.snapshot.nodes.clone().unwrap_or_default();
            let cols: Vec<Col> = table
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| Col {
                    header: c,
                    drop: u8::try_from(i).unwrap_or(u8::MAX),
                })
                .collect();
            let shown: Vec<_> = table
                .rows
                .iter()
                .filter(|r| r["name"].as_str().is_some_and(|n| keys.contains(n)))
                .collect();
            let range = visible(app, area, shown.len());
            let rows = shown[range.clone()]
                .iter()
                .map(|r| {
                    let cells = table
                        .columns
                        .iter()
                        .map(|c| match &r[*c] {
                            serde_json::Value::String(s) => s.clone(),
                            serde_json::Value::Null => String::new(),
                            v => v.to_string(),
                        })
                        .collect();
                    (cells, Style::new())
                })
                .collect();
            grid(app, f, area, &cols, rows, app.selected - range.start);
        }
    }
}

/// The selected session's last screen lines, beside the sessions.
fn screen_pane(app: &App, f: &mut Frame<'_>, area: Rect) {
    let selected = app.selection();
    let (title, lines) = match (&app.screen, &selected) {
        (Some((s, lines)), Some(sel)) if s == sel => {
            // The last non-empty lines that fit.
            let end = lines
                .iter()
                .rposition(|l| !l.trim().is_empty())
                .map_or(0, |i| i + 1);
            let room = usize::from(area.height.saturating_sub(2));
            let start = end.saturating_sub(room);
            (
                format!(" {s} "),
                lines[start..end]
                    .iter()
                    .map(|l| Line::raw(l.clone()))
                    .collect(),
            )
        }
        (_, Some(sel)) => (format!(" {sel} "), vec![Line::raw("…")]),
        _ => (" screen ".to_owned(), Vec::new()),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    f.render_widget(Paragraph::new(lines).block(block), area);
}

/// How bad an event is: red for failures, yellow for limits, swaps and refusals.
fn severity(t: &Told) -> Color {
    let warn = [
        "quota",
        "swap",
        "exhausted",
        "refused",
        "stall",
        "failed",
        "requeue",
        "over",
    ];
    if t.failed {
        Color::Red
    } else if warn.iter().any(|w| t.event.to_lowercase().contains(w)) {
        Color::Yellow
    } else {
        Color::Reset
    }
}

fn event_cells(app: &App, t: &Told) -> Vec<String> {
    let time = t
        .time
        .parse::<jiff::Timestamp>()
        .map(|at| at.to_zoned(app.tz.clone()).strftime("%H:%M:%S").to_string())
        .unwrap_or_else(|_| t.time.clone());
    vec![
        time,
        t.object().map(ToString::to_string).unwrap_or_default(),
        t.event.clone(),
        t.message.clone(),
    ]
}

fn events_panel(app: &App, f: &mut Frame<'_>, area: Rect) {
    let room = usize::from(area.height.saturating_sub(1));
    let start = app.history.events.len().saturating_sub(room);
    let mut lines = vec![Line::styled(
        "events",
        paint(app, Style::new().add_modifier(Modifier::BOLD)),
    )];
    lines.extend(app.history.events.iter().skip(start).map(|t| {
        let c = event_cells(app, t);
        Line::styled(
            format!("{} {} {}", c[0], c[1], c[3]),
            paint(app, Style::new().fg(severity(t))),
        )
    }));
    f.render_widget(Paragraph::new(lines), area);
}

fn footer_line(app: &App) -> Line<'static> {
    match &app.mode {
        Mode::Filter => Line::raw(format!("/{}▏", app.filter)),
        Mode::Command(text) => Line::raw(format!(":{text}▏")),
        Mode::Confirm { question, .. } => Line::styled(
            format!("{question} "),
            paint(
                app,
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
        ),
        _ => {
            if let Some(m) = &app.message {
                return Line::styled(m.clone(), paint(app, Style::new().fg(Color::Yellow)));
            }
            let mut text = String::new();
            if !app.filter.is_empty() {
                text.push_str(&format!("[/{}] ", app.filter));
            }
            text.push_str(
                "↑↓ move  / filter  : view  d describe  l history  enter attach  x restart  r return  ? help  q quit",
            );
            Line::raw(text)
        }
    }
}

#[cfg(test)]
#[path = "draw_tests.rs"]
mod tests;
