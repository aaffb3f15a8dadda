//! Rollouts as Codex 0.171.0 wrote them (`testdata/rollout.jsonl`: three turns against a
//! mock of the Responses API, the third refused at the usage limit; long instructions
//! trimmed, the folder renamed).

use super::*;
use crate::conversation::{Turn, TurnEnd, turn};

const ROLLOUT: &str = include_str!("testdata/rollout.jsonl");
const THREAD: &str = "01a2491a-3bf7-7d30-ace9-5b4397d89eb8";

fn home_with_rollout() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let day = home.path().join("sessions/2026/12/06");
    std::fs::create_dir_all(&day).unwrap();
    let name = format!("rollout-2026-12-06T02-06-25-{THREAD}.jsonl");
    std::fs::write(day.join(name), ROLLOUT).unwrap();
    home
}

#[test]
fn a_rollout_should_read_as_prompts_and_ends_of_turns() {
    let home = home_with_rollout();
    let found = recent(home.path(), Path::new("/srv/work"), SystemTime::UNIX_EPOCH);
    let [rollout] = &found[..] else {
        panic!("{found:?}")
    };
    assert_eq!(rollout.thread, THREAD);
    let read = read(&rollout.path).unwrap();
    let roles: Vec<(&str, &str)> = read
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        roles[..5],
        [
            ("user", "fix the bug"),
            ("assistant", "Done."),
            ("user", "second task"),
            ("assistant", "Done."),
            ("user", "third task"),
        ],
        "the environment context is no prompt"
    );
    let is = |text: &'static str| move |t: &str| t == text;
    assert_eq!(
        turn(&read.messages, is("fix the bug")),
        Some(Turn {
            prompt_id: Some("01a2491a-7bc0-7fb1-b809-692a8aadb563".into()),
            end: Some(TurnEnd::Reply("Done.".into()))
        })
    );
    let Some(Turn {
        end: Some(TurnEnd::Error(kind, message)),
        ..
    }) = turn(&read.messages, is("third task"))
    else {
        panic!("{:?}", turn(&read.messages, is("third task")));
    };
    assert_eq!(kind, USAGE_LIMIT);
    assert!(
        message.starts_with("You’ve hit your usage limit."),
        "{message}"
    );
}

#[test]
fn a_rollout_should_give_the_last_use_reported_by_window_length() {
    let home = home_with_rollout();
    let rollout = &recent(home.path(), Path::new("/srv/work"), SystemTime::UNIX_EPOCH)[0];
    // The refused turn's `token_count` has no windows: the one before it counts.
    let (at, usage) = read(&rollout.path).unwrap().usage.unwrap();
    assert_eq!(at.to_string(), "2026-12-06T02:07:01.763Z");
    assert_eq!(usage.five_hour.unwrap().used, 42.0);
    assert_eq!(usage.seven_day.unwrap().used, 17.0);
    // Slots swapped, or a week alone: the length decides.
    let swapped = serde_json::json!({
        "primary": {"used_percent": 80.0, "window_minutes": 10080, "resets_at": 1796526413},
        "secondary": null
    });
    let u = usage_of(&swapped).unwrap();
    assert_eq!((u.five_hour, u.seven_day.unwrap().used), (None, 80.0));
    let unknown =
        serde_json::json!({"primary": {"used_percent": 5.0, "window_minutes": 60, "resets_at": 1}});
    assert_eq!(usage_of(&unknown), None);
}

#[test]
fn recent_should_keep_rollouts_of_the_folder_written_since_newest_first() {
    let home = home_with_rollout();
    let day = home.path().join("sessions/2026/12/06");
    let other = ROLLOUT.replacen("/srv/work", "/srv/other", 1);
    std::fs::write(
        day.join("rollout-2026-12-06T03-00-00-0b9f5d8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b.jsonl"),
        other,
    )
    .unwrap();
    let newer = ROLLOUT.replace(THREAD, "0b9f5d8e-1c2d-4e5f-8a9b-0c1d2e3f4a5c");
    std::fs::write(
        day.join("rollout-2026-12-06T04-00-00-0b9f5d8e-1c2d-4e5f-8a9b-0c1d2e3f4a5c.jsonl"),
        newer,
    )
    .unwrap();
    std::fs::write(
        day.join("rollout-broken.jsonl"),
        "{\"type\":\"session_meta\"",
    )
    .unwrap();
    let threads: Vec<String> = recent(home.path(), Path::new("/srv/work"), SystemTime::UNIX_EPOCH)
        .into_iter()
        .map(|r| r.thread)
        .collect();
    assert_eq!(threads, ["0b9f5d8e-1c2d-4e5f-8a9b-0c1d2e3f4a5c", THREAD]);
    let future = SystemTime::now() + std::time::Duration::from_secs(60);
    assert!(recent(home.path(), Path::new("/srv/work"), future).is_empty());
    assert!(
        recent(
            Path::new("/nonexistent"),
            Path::new("/srv/work"),
            SystemTime::UNIX_EPOCH
        )
        .is_empty()
    );
}
