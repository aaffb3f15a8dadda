//! The journal's line format, pinned: lines written before the journal was typed read
//! back typed, and write back byte for byte. From d0c5e61: one line of every kind and
//! action (and one of each action or event added since: `endDaemons`, `stateDamaged`, `stateUnwritable`), and lines real controllers wrote in the integration tests; from f944075: a
//! whole `failover demo --keep --tasks 8` run, with an empty task, a killed agent and
//! `failover delete` after it.

use super::*;

const EVERY_KIND: &str = include_str!("testdata/every-kind-d0c5e61.jsonl");
const RECORDED: &str = include_str!("testdata/recorded-d0c5e61.jsonl");
const DEMO_F944075: &str = include_str!("testdata/recorded-f944075.jsonl");

fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty())
}

#[test]
fn every_line_written_before_the_typed_journal_should_read_typed_and_write_back_byte_for_byte() {
    for text in [EVERY_KIND, RECORDED, DEMO_F944075] {
        for (n, written) in lines(text).enumerate() {
            let line: Line = serde_json::from_str(written)
                .unwrap_or_else(|e| panic!("line {}: {e}: {written}", n + 1));
            assert!(
                !matches!(line.entry, Entry::Unknown(_)),
                "line {} read as unknown: {written}",
                n + 1
            );
            let again = serde_json::to_string(&line).unwrap();
            let replayed = matches!(&line.entry, Entry::Acted(a) if a.replayed);
            if replayed {
                // An older controller replayed an ending with only part of the task's
                // fields: every one of them is kept, the typed action adds its own.
                let old: Value = serde_json::from_str(written).unwrap();
                let new: Value = serde_json::from_str(&again).unwrap();
                assert_eq!(old["event"], new["event"]);
                assert_eq!(old["replayed"], new["replayed"]);
                for (k, v) in old["action"]["task"].as_object().unwrap() {
                    assert_eq!(&new["action"]["task"][k], v, "{k}");
                }
            } else {
                assert_eq!(again, written, "line {}", n + 1);
            }
        }
    }
}

#[test]
fn the_every_kind_lines_should_hold_every_kind_and_every_action() {
    let read: Vec<Line> = lines(EVERY_KIND)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for kind in Kind::ALL {
        assert!(
            read.iter().any(|l| l.entry.kind() == Some(kind)),
            "no line of {kind}"
        );
    }
    let verbs: std::collections::BTreeSet<&str> = read
        .iter()
        .filter_map(|l| match &l.entry {
            Entry::Acted(a) => Some(a.action.verb()),
            _ => None,
        })
        .collect();
    use crate::plan::{FsAction, SessionAction, TaskAction};
    use strum::VariantNames;
    let every = [
        FsAction::VARIANTS,
        SessionAction::VARIANTS,
        TaskAction::VARIANTS,
    ];
    for verb in every.into_iter().flatten() {
        assert!(
            verbs.contains(verb),
            "no line of {verb}: add one to testdata"
        );
    }
}

#[test]
fn a_line_of_an_unknown_event_should_be_kept_whole_as_unknown() {
    let written =
        r#"{"time":"2027-01-01T00:00:00Z","event":"quotaForecast","account":"a","in":{"h":3}}"#;
    let line: Line = serde_json::from_str(written).unwrap();
    let Entry::Unknown(u) = &line.entry else {
        panic!("{line:?}");
    };
    assert_eq!(u.event, "quotaForecast");
    assert_eq!(u.fields["account"], "a");
    assert_eq!(line.entry.kind(), None);
    assert_eq!(serde_json::to_string(&line).unwrap(), written);
}

#[test]
fn a_known_event_with_fields_it_cannot_read_should_be_unknown_not_fatal() {
    let written = r#"{"time":"2027-01-01T00:00:00Z","event":"swap","from":["a"]}"#;
    let line: Line = serde_json::from_str(written).unwrap();
    assert!(matches!(&line.entry, Entry::Unknown(u) if u.event == "swap"));
    let action = r#"{"time":"2027-01-01T00:00:00Z","event":"action","action":{"action":"teleportSession"},"ok":true,"error":null}"#;
    let line: Line = serde_json::from_str(action).unwrap();
    assert!(matches!(&line.entry, Entry::Unknown(u) if u.event == "action"));
}

#[test]
fn a_line_without_a_time_should_not_read() {
    assert!(serde_json::from_str::<Line>(r#"{"event":"stopped"}"#).is_err());
    assert!(serde_json::from_str::<Line>(r#"{"time":"soon","event":"stopped"}"#).is_err());
}

#[test]
fn an_action_should_be_journaled_under_the_event_its_result_makes() {
    use crate::plan::{Outcome, TaskAction};
    let reject = Action::from(TaskAction::RejectTask {
        inbox: "q".into(),
        path: "/q".into(),
        name: "e.md".into(),
        reason: "empty".into(),
    });
    assert_eq!(
        Acted::new(&reject, &Ok(Outcome::Done), None).event,
        Kind::TaskFailed
    );
    let failed = Acted::new(&reject, &Err("gone".into()), Some(Origin::Apply));
    assert!(!failed.ok());
    let fields = Entry::from(failed).fields().unwrap();
    assert_eq!(fields["origin"], "apply");
    assert_eq!(fields["error"], "gone");
}
