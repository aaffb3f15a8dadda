//! `failover get events`: the journal as a table (time, object, event, message), each
//! event told in words; `--since`, `--for` and `-w` to follow.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use super::follow::{Follow, JournalTail};
use super::get::Format;
use crate::state::story::{Teller, Told};

/// What `get events` shows.
#[derive(Debug)]
pub struct Query<'a> {
    /// Only events younger than this.
    pub since: Option<std::time::Duration>,
    /// Only events about this object (`session/w-7`).
    pub object: Option<&'a str>,
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
pub fn run(dir: &Path, query: &Query<'_>) -> ExitCode {
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
    let written = match query.format {
        Format::Table => {
            if told.is_empty() && follow.is_none() {
                writeln!(out, "No events found.")
            } else {
                writeln!(out, "{}", line("TIME", "OBJECT", "EVENT", "MESSAGE")).and_then(|()| {
                    told.iter()
                        .try_for_each(|t| writeln!(out, "{}", table_line(t, &tz)))
                })
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
                Format::Table => writeln!(out, "{}", table_line(&t, &tz)),
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

fn line(time: &str, object: &str, event: &str, message: &str) -> String {
    format!("{time:<19}  {object:<24}  {event:<16}  {message}")
}

fn table_line(told: &Told, tz: &jiff::tz::TimeZone) -> String {
    line(
        &local(&told.time, tz),
        told.object(),
        &told.event,
        &told.message,
    )
}

/// `2026-12-01 14:05:09` in the local time zone; the text as it is when it is not a
/// time.
pub fn local(time: &str, tz: &jiff::tz::TimeZone) -> String {
    time.parse::<jiff::Timestamp>().map_or_else(
        |_| time.to_owned(),
        |t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}

/// Every event of the journal in `dir` that concerns `object`, told, oldest first.
pub fn about(dir: &Path, object: &str) -> Vec<Told> {
    let entries: Vec<Value> = crate::state::journal::read(dir).unwrap_or_default();
    Teller::tell_all(&entries)
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
            objects: vec![object.to_owned()],
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
            object: Some("session/w-7"),
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
}
