use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::*;

/// Screens, reports and rollouts of the real Codex 0.171.0 (tests/it/real_codex.rs
/// writes them with `FAILOVER_CODEX_FIXTURES`), the temp folder written as
/// `/tmp/failover-test-codex`.
const REAL_LIMIT: &str = include_str!("../../../tests/fixtures/codex/limit.txt");
const REAL_BUSY: &str = include_str!("../../../tests/fixtures/codex/busy.txt");
const REAL_STARTING: &str = include_str!("../../../tests/fixtures/codex/starting.txt");
const REAL_TRUST: &str = include_str!("../../../tests/fixtures/codex/trust.txt");
const REAL_NOTIFY: &str = include_str!("../../../tests/fixtures/codex/notify.jsonl");
const REAL_ROLLOUTS: [&str; 2] = [
    include_str!("../../../tests/fixtures/codex/rollout-limit-resumed.jsonl"),
    include_str!("../../../tests/fixtures/codex/rollout-answered.jsonl"),
];

const WORK: &str = "/tmp/failover-test-codex/work";

/// A screen as compared: trailing blanks and the warnings count gone, clock times as
/// `HH:MM`.
fn normal(screen: &str) -> Vec<String> {
    let clock = regex::Regex::new(r"• \d\d:\d\d$").unwrap();
    let warnings = regex::Regex::new(r"\s+⚠ \d+ warnings? · f2 to view$").unwrap();
    screen
        .lines()
        .map(|l| {
            let l = warnings.replace(l.trim_end(), "");
            clock.replace(&l, "• HH:MM").into_owned()
        })
        .collect()
}

fn draw_at(history: &[String], input: &str, mode: Mode, title: Option<&str>) -> Vec<String> {
    let view = View {
        workdir: WORK,
        model: "mock-model",
        title,
        history,
        input,
        mode,
    };
    screen::draw(&view, 120, 40)
        .iter()
        .map(|l| l.trim_end().to_owned())
        .collect()
}

#[test]
fn limit_screen_should_match_the_real_one_line_for_line() {
    let mut history = Vec::new();
    for prompt in ["remember the word kumquat", "and the colour teal"] {
        history.extend(prompt_lines(prompt));
        history.extend(answer_lines(&format!("Done: {prompt}"), Some(0), "HH:MM"));
    }
    history.extend(prompt_lines("Write the summary."));
    history.extend(failure_lines(&limit_message(Some("4:13 AM"))));
    let title = Some("remember the word kumquat");
    let drawn = draw_at(&history, "", Mode::Ready(None), title);
    let real = normal(REAL_LIMIT);
    assert_eq!(drawn, real[..drawn.len()], "real:\n{}", real.join("\n"));
}

#[test]
fn busy_screen_should_match_the_real_one_but_for_the_warnings() {
    let history = prompt_lines("Fix the parser: echo $(whoami) id \"quoted\"");
    let drawn = draw_at(&history, "", Mode::Ready(Some(0)), None);
    assert_eq!(drawn, normal(REAL_BUSY)[..drawn.len()]);
}

#[test]
fn starting_screen_should_have_the_real_ones_header_and_bottom() {
    let drawn = draw_at(&[], "", Mode::Starting, None);
    let real = normal(REAL_STARTING);
    assert_eq!(drawn[..3], real[..3]);
    assert_eq!(drawn[drawn.len() - 3..], real[real.len() - 3..]);
}

#[test]
fn trust_dialog_should_match_the_real_one() {
    let view = View {
        workdir: "/tmp/failover-test-codex/g",
        model: "mock-model",
        title: None,
        history: &[],
        input: "",
        mode: Mode::Trust(0),
    };
    let drawn = screen::draw(&view, 120, 40);
    let real: Vec<String> = normal(REAL_TRUST);
    assert_eq!(drawn, real[..drawn.len()]);
}

#[test]
fn reset_should_be_written_as_codex_writes_it() {
    let now = jiff::Zoned::now();
    let later = now.timestamp().as_second() + 60;
    let today = jiff::Timestamp::from_second(later)
        .unwrap()
        .to_zoned(now.time_zone().clone());
    if today.date() == now.date() {
        assert_eq!(
            reset_text(&later.to_string()),
            today.strftime("%-I:%M %p").to_string()
        );
    }
    // 2025-12-05 15:53 UTC, another day.
    let other = reset_text("1764949980");
    assert!(
        other.starts_with("Dec 5th, 2025 ") || other.contains(", 2025 "),
        "{other}"
    );
    assert_eq!(reset_text("7am (UTC)"), "7:00 AM");
    assert_eq!(reset_text("11pm (UTC)"), "11:00 PM");
    assert_eq!(reset_text("4:13 AM"), "4:13 AM");
    assert_eq!(
        limit_message(None),
        "You’ve hit your usage limit. Try again later."
    );
}

#[test]
fn endings_should_report_answers_and_fail_limits_without_a_report() {
    assert_eq!(
        ending(&Outcome::Say("hi".into())),
        Ending::Answer("hi".into())
    );
    let Ending::Failed(message, info) = ending(&Outcome::Limit(Some("4:13 AM".into()))) else {
        panic!("a limit is a failure");
    };
    assert_eq!(info, "usage_limit_exceeded");
    assert!(message.ends_with("try again at 4:13 AM."), "{message}");
}

/// The payload keys of each kind of line (`type`, `payload.type`, role) in `text`.
fn shapes(text: &str) -> HashMap<String, BTreeSet<String>> {
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let top: BTreeSet<String> = v.as_object().unwrap().keys().cloned().collect();
        assert!(
            top.is_superset(
                &["timestamp", "ordinal", "type", "payload"]
                    .map(String::from)
                    .into()
            ),
            "{line}"
        );
        let p = &v["payload"];
        let kind = format!("{} {} {}", v["type"], p["type"], p["role"]);
        let keys = out.entry(kind).or_default();
        keys.extend(p.as_object().unwrap().keys().cloned());
        if let Some(error) = p["error"].as_object() {
            keys.extend(error.keys().map(|k| format!("error.{k}")));
        }
        if let Some(limits) = p["rate_limits"].as_object() {
            keys.extend(limits.keys().map(|k| format!("rate_limits.{k}")));
        }
        if let Some(window) = p["rate_limits"]["primary"].as_object() {
            keys.extend(window.keys().map(|k| format!("rate_limits.primary.{k}")));
        }
    }
    out
}

#[test]
fn rollout_should_write_lines_shaped_as_the_real_ones_and_read_them_back() {
    let home = tempfile::tempdir().unwrap();
    let thread = "01a24921-143c-7152-b539-e245cd2ed6a5";
    let mut rollout = Rollout::create(home.path(), thread, Path::new(WORK)).unwrap();
    let usage = crate::sim::SimUsage {
        five_hour: (42.0, 1_900_000_000),
        seven_day: (7.0, 1_900_000_000),
    };
    rollout
        .start_turn("t1", "remember the word kumquat", Some(Path::new(WORK)))
        .unwrap();
    let answer = Some("Done: remember the word kumquat");
    rollout
        .end_turn("t1", 1, answer, None, Some(usage))
        .unwrap();
    rollout
        .start_turn("t2", "Write the summary.", None)
        .unwrap();
    let message = limit_message(Some("4:13 AM"));
    let failed = Some((message.as_str(), "usage_limit_exceeded"));
    rollout.end_turn("t2", 2, None, failed, None).unwrap();

    let name = rollout
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let stamp = regex::Regex::new(r"^rollout-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-").unwrap();
    assert!(
        stamp.is_match(&name) && name.ends_with(&format!("{thread}.jsonl")),
        "{name}"
    );
    let text = std::fs::read_to_string(rollout.path()).unwrap();
    let mut real = shapes(REAL_ROLLOUTS[0]);
    for (kind, keys) in shapes(REAL_ROLLOUTS[1]) {
        real.entry(kind).or_default().extend(keys);
    }
    for (kind, keys) in shapes(&text) {
        let known = real
            .get(&kind)
            .unwrap_or_else(|| panic!("no real line of kind {kind}"));
        let extra: Vec<_> = keys.difference(known).collect();
        assert!(
            extra.is_empty(),
            "{kind}: keys Codex does not write: {extra:?}"
        );
    }
    let ours = shapes(&text);
    let complete = &ours[r#""event_msg" "task_complete" null"#];
    assert!(complete.contains("error.codex_error_info"), "{complete:?}");
    let count = &ours[r#""event_msg" "token_count" null"#];
    assert!(
        count.contains("rate_limits.primary.window_minutes"),
        "{count:?}"
    );

    let again = Rollout::find(home.path(), thread).unwrap();
    assert_eq!(
        again.said(),
        [
            Said::User("remember the word kumquat".into()),
            Said::Assistant("Done: remember the word kumquat".into()),
            Said::User("Write the summary.".into()),
            Said::Failed(message),
        ]
    );
}

#[test]
fn reports_should_carry_the_real_ones_keys() {
    let real: Value = serde_json::from_str(REAL_NOTIFY.lines().next().unwrap()).unwrap();
    let keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reports");
    let argv = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        format!("printf '%s\\n' \"$1\" >> '{}'", file.display()),
        "sh".to_owned(),
    ];
    notify(
        &argv,
        &json!({"thread-id": "x", "turn-id": "y"}).to_string(),
    );
    let written = crate::testbed::wait_for(Duration::from_secs(5), "the report", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    let got: Value = serde_json::from_str(written.trim()).unwrap();
    assert_eq!(got["thread-id"], "x");
    // The report the agent builds has exactly the real one's keys.
    let report = turn_report("t", "u", Path::new(WORK), &["p".into()], "a");
    assert_eq!(keys(&report), keys(&real));
}

#[test]
fn rollout_should_be_read_by_failover_as_a_real_one_is() {
    let home = tempfile::tempdir().unwrap();
    let thread = "01a24921-143c-7152-b539-e245cd2ed6a5";
    let mut rollout = Rollout::create(home.path(), thread, Path::new(WORK)).unwrap();
    let usage = crate::sim::SimUsage {
        five_hour: (42.0, 1_900_000_000),
        seven_day: (7.0, 1_900_000_000),
    };
    rollout
        .start_turn("t1", "fix the bug", Some(Path::new(WORK)))
        .unwrap();
    rollout
        .end_turn("t1", 1, Some("Done."), None, Some(usage))
        .unwrap();
    rollout.start_turn("t2", "second task", None).unwrap();
    let message = limit_message(Some("4:13 AM"));
    let failed = Some((message.as_str(), "usage_limit_exceeded"));
    rollout.end_turn("t2", 2, None, failed, None).unwrap();

    use crate::conversation::{TurnEnd, codex};
    assert_eq!(
        codex::meta(rollout.path()),
        Some((thread.to_owned(), PathBuf::from(WORK)))
    );
    let read = codex::read(rollout.path()).unwrap();
    let first = crate::conversation::turn(&read.messages, |t| t == "fix the bug").unwrap();
    assert_eq!(first.prompt_id.as_deref(), Some("t1"));
    assert!(matches!(first.end, Some(TurnEnd::Reply(_))), "{first:?}");
    let second = crate::conversation::turn(&read.messages, |t| t == "second task").unwrap();
    assert_eq!(second.prompt_id.as_deref(), Some("t2"));
    assert!(
        matches!(&second.end, Some(TurnEnd::Error(kind, _)) if kind == "usage_limit_exceeded"),
        "{second:?}"
    );
    let (_, used) = read.usage.unwrap();
    assert_eq!(used.five_hour.unwrap().used, 42.0);
    // The real rollout, read the same way, gives the same shape.
    let real = home.path().join("real.jsonl");
    std::fs::write(&real, REAL_ROLLOUTS[0]).unwrap();
    let real_read = codex::read(&real).unwrap();
    let cut = crate::conversation::turn(&real_read.messages, |t| t == "Write the summary.");
    assert!(
        matches!(cut.and_then(|t| t.end), Some(TurnEnd::Error(kind, _)) if kind == "usage_limit_exceeded")
    );
}
