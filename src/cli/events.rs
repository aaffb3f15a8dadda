//! `failover get events`: the journal as a table (time, object, event, message), each
//! event told in words; `--since`, `--for` and `-w` to follow.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use super::follow::{Follow, JournalTail};
use super::table::Format;
use crate::journal::story::{Teller, Told};
use crate::object::ObjectRef;

/// What `get events` shows.
#[derive(Debug)]
pub(super) struct Query<'a> {
    /// Only events younger than this.
    pub since: Option<std::time::Duration>,
    /// Only events about this object (`session/w-7`).
    pub object: Option<&'a ObjectRef>,
    /// How to print.
    pub format: Format,
    /// Whether to follow the journal after printing what it holds.
    pub watch: bool,
}

impl Query<'_> {
    fn wants(&self, told: &Told, now: jiff::Timestamp) -> bool {
        let recent = self.since.is_none_or(|since| {
            told.time
                .parse::<jiff::Timestamp>()
                .ok()
                .and_then(|t| jiff::SignedDuration::try_from(since).ok().map(|s| (t, s)))
                .is_none_or(|(t, since)| now.duration_since(t) <= since)
        });
        recent && self.object.is_none_or(|o| told.concerns(o))
    }
}

/// Runs `get events` on the state folder `dir`.
pub(super) fn run(dir: &Path, query: &Query<'_>) -> ExitCode {
    warn_damaged(dir);
    let mut tail = JournalTail::new(dir);
    let mut teller = Teller::default();
    let mut out = std::io::stdout().lock();
    let tz = jiff::tz::TimeZone::system();
    let follow = if query.watch {
        match Follow::new(dir) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let told = select(&mut tail, &mut teller, query);
    let mut widths = Widths::default();
    let written = match query.format {
        Format::Table => {
            if told.is_empty() && follow.is_none() {
                writeln!(out, "No events found.")
            } else {
                widths = Widths::of(&told);
                writeln!(out, "{}", widths.line("TIME", "OBJECT", "EVENT", "MESSAGE")).and_then(
                    |()| {
                        told.iter()
                            .try_for_each(|t| writeln!(out, "{}", widths.row(t, &tz)))
                    },
                )
            }
        }
        Format::Json if follow.is_none() => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&told).unwrap_or_default()
        ),
        Format::Yaml if follow.is_none() => {
            write!(
                out,
                "{}",
                serde_saphyr::to_string(&told).unwrap_or_default()
            )
        }
        // Followed, JSON and YAML are one document per event.
        Format::Json | Format::Yaml => told
            .iter()
            .try_for_each(|t| write_one(&mut out, t, query.format)),
    };
    if written.and_then(|()| out.flush()).is_err() {
        return ExitCode::SUCCESS;
    }
    let Some(follow) = follow else {
        return ExitCode::SUCCESS;
    };
    while follow.wait() {
        for t in select(&mut tail, &mut teller, query) {
            let written = match query.format {
                Format::Table => writeln!(out, "{}", widths.row(&t, &tz)),
                other => write_one(&mut out, &t, other),
            };
            if written.and_then(|()| out.flush()).is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
    ExitCode::SUCCESS
}

/// The new entries of the journal, told, that the query wants.
fn select(tail: &mut JournalTail, teller: &mut Teller, query: &Query<'_>) -> Vec<Told> {
    let now = jiff::Timestamp::now();
    tail.read()
        .iter()
        .map(|e| teller.tell(e))
        .filter(|t| query.wants(t, now))
        .collect()
}

fn write_one(out: &mut impl Write, told: &Told, format: Format) -> std::io::Result<()> {
    match format {
        Format::Yaml => write!(
            out,
            "---\n{}",
            serde_saphyr::to_string(told).unwrap_or_default()
        ),
        _ => writeln!(out, "{}", serde_json::to_string(told).unwrap_or_default()),
    }
}

/// The widths of the table's object and event columns: as wide as the widest of the
/// rows printed at once (a path can be long), never narrower than the defaults. Rows
/// followed later keep them, so that the columns do not move.
#[derive(Debug, Clone, Copy)]
struct Widths {
    object: usize,
    event: usize,
}

impl Default for Widths {
    fn default() -> Self {
        Self {
            object: 24,
            event: 16,
        }
    }
}

impl Widths {
    fn of(told: &[Told]) -> Self {
        let d = Self::default();
        Self {
            object: told
                .iter()
                .map(|t| object_text(t).chars().count())
                .fold(d.object, usize::max),
            event: told
                .iter()
                .map(|t| t.event.chars().count())
                .fold(d.event, usize::max),
        }
    }

    fn line(&self, time: &str, object: &str, event: &str, message: &str) -> String {
        let (ow, ew) = (self.object, self.event);
        format!("{time:<19}  {object:<ow$}  {event:<ew$}  {message}")
    }

    fn row(&self, told: &Told, tz: &jiff::tz::TimeZone) -> String {
        self.line(
            &local(&told.time, tz),
            &object_text(told),
            &told.event,
            &told.message,
        )
    }
}

fn object_text(told: &Told) -> String {
    told.object().map(ToString::to_string).unwrap_or_default()
}

/// `2026-12-01 14:05:09` in the local time zone; the text as it is when it is not a
/// time.
pub(super) fn local(time: &str, tz: &jiff::tz::TimeZone) -> String {
    time.parse::<jiff::Timestamp>().map_or_else(
        |_| time.to_owned(),
        |t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}

/// Says on stderr, naming the journal, that lines of it are not journal lines and are
/// not shown (the controller keeps them aside at its next start).
pub(super) fn warn_damaged(dir: &Path) {
    if let Ok(read) = crate::journal::read_checked(dir)
        && !read.damaged.is_empty()
    {
        eprintln!(
            "warning: state file {}: {}; not shown (the controller keeps the journal aside \
             and writes its whole lines back at its next start)",
            dir.join(crate::state::paths::JOURNAL_FILE).display(),
            read.problem()
        );
    }
}

/// Every event of the journal in `dir` that concerns `object`, told, oldest first.
pub(super) fn about(dir: &Path, object: &ObjectRef) -> Vec<Told> {
    warn_damaged(dir);
    let lines = crate::journal::read(dir).unwrap_or_default();
    Teller::tell_all(&lines)
        .into_iter()
        .filter(|t| t.concerns(object))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn told(time: &str, object: &str) -> Told {
        Told {
            time: time.to_owned(),
            objects: vec![object.parse().unwrap()],
            event: "action".to_owned(),
            message: "m".to_owned(),
            failed: false,
        }
    }

    #[test]
    fn a_query_should_keep_recent_events_about_its_object() {
        let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        let q = Query {
            since: Some(std::time::Duration::from_secs(3600)),
            object: Some(&"session/w-7".parse().unwrap()),
            format: Format::Table,
            watch: false,
        };
        assert!(q.wants(&told("2026-12-01T11:30:00Z", "session/w-7"), now));
        assert!(
            !q.wants(&told("2026-12-01T10:30:00Z", "session/w-7"), now),
            "too old"
        );
        assert!(
            !q.wants(&told("2026-12-01T11:30:00Z", "session/w-8"), now),
            "another"
        );
    }

    #[test]
    fn a_long_object_should_widen_its_column_not_shift_the_next() {
        let tz = jiff::tz::TimeZone::UTC;
        let rows = [
            told("2026-12-01T11:30:00Z", "session/w-7"),
            told(
                "2026-12-01T11:30:00Z",
                "/home/operator/accounts/backup/.claude/projects",
            ),
        ];
        let widths = Widths::of(&rows);
        let lines: Vec<String> = rows.iter().map(|t| widths.row(t, &tz)).collect();
        let at = |l: &str| l.find("action").unwrap();
        assert_eq!(at(&lines[0]), at(&lines[1]), "{lines:#?}");
        assert!(lines[1].contains("/home/operator"), "no path// prefix");
    }
}
