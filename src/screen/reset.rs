//! Reset times as Claude Code prints them, turned into instants: `7:11am (UTC)`,
//! `1pm (Etc/GMT+5)`, `Jan 18, 11:30am (Asia/Calcutta)`, `Mar 17, 2030, 5:46pm (UTC)`
//! (2.1.x, a reset more than a day away), `Sep 15 at 7pm`, `5:30am`
//! (local time), or an epoch; and as Codex prints them, `10:07 AM` and
//! `Dec 5th, 2025 3:53 PM` (local time). A time of day already past means tomorrow; a date
//! already past means next year.

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::{Date, Time};

use super::Local;
use regex::Regex;

static TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?P<mon>[a-z]{3})[a-z]* (?P<day>\d{1,2})(?:st|nd|rd|th)?(?:, (?P<year>\d{4}))?(?:,| at)?\s+)?(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ap>[ap]m)(?:\s*\((?P<tz>[^)]+)\))?$",
    )
    .expect("the reset time regex is valid")
});

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The instant a reset text names, seen at `local` (whose zone is the local one).
pub(crate) fn parse(text: &str, local: &Local) -> Option<Timestamp> {
    let now = &local.now;
    let text = text.trim().trim_end_matches(['.', ',']);
    if text.len() == 10 && text.bytes().all(|b| b.is_ascii_digit()) {
        return Timestamp::from_second(text.parse().ok()?).ok();
    }
    let c = TIME.captures(text)?;
    let hour12: i8 = c.name("h")?.as_str().parse().ok()?;
    let minute: i8 = c.name("m").map_or(Some(0), |m| m.as_str().parse().ok())?;
    if !(1..=12).contains(&hour12) || minute > 59 {
        return None;
    }
    let pm = c.name("ap")?.as_str().eq_ignore_ascii_case("pm");
    let hour = hour12 % 12 + if pm { 12 } else { 0 };
    let tz = match c.name("tz") {
        Some(name) => local.zones.get(name.as_str()).ok()?,
        None => now.time_zone().clone(),
    };
    let here = now.with_time_zone(tz.clone());
    let time = Time::new(hour, minute, 0, 0).ok()?;
    match (c.name("mon"), c.name("day")) {
        (Some(mon), Some(day)) => {
            let month = MONTHS
                .iter()
                .position(|m| m.eq_ignore_ascii_case(mon.as_str()))? as i8
                + 1;
            let day: i8 = day.as_str().parse().ok()?;
            let at = |year: i16| -> Option<Timestamp> {
                let date = Date::new(year, month, day).ok()?;
                Some(
                    date.to_datetime(time)
                        .to_zoned(tz.clone())
                        .ok()?
                        .timestamp(),
                )
            };
            if let Some(year) = c.name("year") {
                return at(year.as_str().parse().ok()?);
            }
            let this_year = at(here.year())?;
            if this_year < now.timestamp() - jiff::SignedDuration::from_hours(24) {
                at(here.year() + 1)
            } else {
                Some(this_year)
            }
        }
        _ => {
            let today = here.date().to_datetime(time).to_zoned(tz.clone()).ok()?;
            if today.timestamp() > now.timestamp() {
                Some(today.timestamp())
            } else {
                Some(today.tomorrow().ok()?.timestamp())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Local {
        // 06:00 UTC on 2026-11-21, seen from a machine in Berlin (07:00 local).
        Local {
            now: "2026-11-21T07:00:00+01:00[Europe/Berlin]".parse().unwrap(),
            zones: jiff::tz::db().clone(),
        }
    }

    fn at(text: &str) -> String {
        parse(text, &now())
            .map(|t| t.to_string())
            .unwrap_or_else(|| "-".into())
    }

    #[test]
    fn reset_times_should_become_instants() {
        let cases = [
            ("7:11am (UTC)", "2026-11-21T07:11:00Z"),
            ("5:59am (UTC)", "2026-11-22T05:59:00Z"),
            ("1pm (Etc/GMT+5)", "2026-11-21T18:00:00Z"),
            ("Jan 18, 11:30am (Asia/Calcutta)", "2027-01-18T06:00:00Z"),
            ("Nov 20, 9pm (America/New_York)", "2026-11-21T02:00:00Z"),
            ("Sep 15 at 7pm", "2027-09-15T17:00:00Z"),
            ("Mar 17, 2030, 5:46pm (UTC)", "2030-03-17T17:46:00Z"),
            ("5:30am", "2026-11-22T04:30:00Z"),
            ("11pm", "2026-11-21T22:00:00Z"),
            ("12am (UTC)", "2026-11-22T00:00:00Z"),
            ("12pm (UTC)", "2026-11-21T12:00:00Z"),
            ("1749924000", "2025-06-14T18:00:00Z"),
            ("3pm (America/New_York).", "2026-11-21T20:00:00Z"),
            // Codex: local time, upper case, the day's ordinal and the year.
            ("10:07 AM.", "2026-11-21T09:07:00Z"),
            ("Dec 5th, 2026 3:53 PM", "2026-12-05T14:53:00Z"),
            ("Aug 8th, 2027 12:30 PM", "2027-08-08T10:30:00Z"),
        ];
        for (text, expected) in cases {
            assert_eq!(at(text), expected, "{text}");
        }
    }

    #[test]
    fn reset_times_should_refuse_nonsense() {
        for text in [
            "soon",
            "13pm",
            "7:61am",
            "3pm (Not/AZone)",
            "Foo 40, 3pm",
            "",
        ] {
            assert_eq!(at(text), "-", "{text}");
        }
    }
}
