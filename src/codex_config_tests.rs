//! The merge into an operator's `config.toml`: every key, comment and order of theirs
//! kept, ours added once, an operator's own `notify` left alone, bad TOML refused.

use super::*;

fn want() -> Want {
    Want {
        exe: Some("/usr/local/bin/failover".into()),
        projects: vec!["/srv/work".into(), "/srv/other dir".into()],
    }
}

/// As an operator writes one: comments, a provider, a profile, an inline table.
const OPERATORS: &str = r#"# my Codex settings
model = "gpt-5.1-codex" # the default model

[model_providers.mock]
name = "mock"
base_url = "http://127.0.0.1:8080/v1" # local
wire_api = "responses"

[projects."/home/me/code"]
trust_level = "trusted"
"#;

#[test]
fn merge_should_write_every_entry_into_a_missing_file_once() {
    let m = merge(None, Some(&want())).unwrap();
    assert_eq!(
        m.changes,
        [
            "set notify",
            "turn off the update check",
            "keep the login in auth.json",
            "hide the rate-limit nudge",
            "trust /srv/work, /srv/other dir"
        ]
    );
    let doc: DocumentMut = m.text.parse().unwrap();
    let notify: Vec<&str> = doc["notify"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        notify,
        ["/usr/local/bin/failover", "hook", "--agent", "codex"]
    );
    assert_eq!(doc["check_for_update_on_startup"].as_bool(), Some(false));
    assert_eq!(doc["cli_auth_credentials_store"].as_str(), Some("file"));
    assert_eq!(
        doc["notice"]["hide_rate_limit_model_nudge"].as_bool(),
        Some(true)
    );
    assert_eq!(
        doc["projects"]["/srv/other dir"]["trust_level"].as_str(),
        Some("trusted")
    );
    assert!(
        m.text
            .contains("[projects.\"/srv/work\"]\ntrust_level = \"trusted\""),
        "{}",
        m.text
    );
    let again = merge(Some(&m.text), Some(&want())).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.text, m.text);
}

#[test]
fn merge_should_keep_the_operators_lines_comments_and_order() {
    let m = merge(Some(OPERATORS), Some(&want())).unwrap();
    let mut rest = m.text.as_str();
    for line in OPERATORS.lines().filter(|l| !l.trim().is_empty()) {
        let at = rest
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} lost or moved in:\n{}", m.text));
        rest = &rest[at + line.len()..];
    }
    // Ours go at the top level before the first table, and as tables after theirs.
    assert!(m.text.find("notify = ").unwrap() < m.text.find("[model_providers.mock]").unwrap());
    assert!(!m.foreign_notify);
}

#[test]
fn merge_should_leave_an_operators_notify_alone_and_say_so() {
    let text = "notify = [\"notify-send\", \"codex\"]\n";
    let m = merge(Some(text), Some(&want())).unwrap();
    assert!(m.foreign_notify);
    assert!(
        !m.changes.iter().any(|c| c.contains("notify")),
        "{:?}",
        m.changes
    );
    assert!(m.text.starts_with(text), "{}", m.text);
    let gone = merge(Some(&m.text), None).unwrap();
    assert!(
        gone.changes.is_empty(),
        "not ours to take out: {:?}",
        gone.changes
    );
}

#[test]
fn merge_should_update_our_notify_when_the_binary_moved_and_take_it_out_when_unwanted() {
    let old = merge(
        None,
        Some(&Want {
            exe: Some("/opt/old/failover".into()),
            projects: vec![],
        }),
    )
    .unwrap();
    let m = merge(Some(&old.text), Some(&want())).unwrap();
    assert_eq!(m.changes[0], "update notify");
    let out = merge(Some(&m.text), None).unwrap();
    assert_eq!(out.changes, ["remove notify"]);
    assert!(!out.text.contains("notify ="), "{}", out.text);
    assert!(
        out.text.contains("hide_rate_limit_model_nudge = true"),
        "the rest stays"
    );
    let no_reports = Want {
        exe: None,
        ..want()
    };
    let m = merge(Some(&m.text), Some(&no_reports)).unwrap();
    assert_eq!(m.changes, ["remove notify"]);
}

#[test]
fn merge_should_override_keys_codex_needs_to_run_unattended() {
    let text = "check_for_update_on_startup = true\ncli_auth_credentials_store = \"keyring\"\n\n[notice]\nhide_rate_limit_model_nudge = false\nother = 1\n";
    let m = merge(Some(text), Some(&want())).unwrap();
    assert!(m.changes.contains(&"turn off the update check".to_owned()));
    assert!(
        m.changes
            .contains(&"keep the login in auth.json".to_owned())
    );
    assert!(m.text.contains("other = 1"));
    let doc: DocumentMut = m.text.parse().unwrap();
    assert_eq!(
        doc["notice"]["hide_rate_limit_model_nudge"].as_bool(),
        Some(true)
    );
}

#[test]
fn merge_should_refuse_bad_toml_and_keys_of_another_type() {
    assert!(matches!(
        merge(Some("model = \n"), Some(&want())),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        merge(Some("notice = 3\n"), Some(&want())),
        Err(Error::Shape(..))
    ));
    let inline = merge(Some("notice = { other = 1 }\n"), Some(&want())).unwrap();
    let doc: DocumentMut = inline.text.parse().unwrap();
    assert_eq!(doc["notice"]["other"].as_integer(), Some(1));
}

#[test]
fn is_ours_should_know_our_notify_only() {
    let argv = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert!(is_ours(
        &argv(&["/usr/bin/failover", "hook", "--agent", "codex"]),
        None
    ));
    assert!(is_ours(
        &argv(&["/opt/fo", "hook", "--agent", "codex"]),
        Some(Path::new("/opt/fo"))
    ));
    assert!(!is_ours(
        &argv(&["/opt/fo", "hook", "--agent", "codex"]),
        None
    ));
    assert!(!is_ours(&argv(&["/usr/bin/failover", "hook"]), None));
    assert!(!is_ours(&argv(&["notify-send", "failover"]), None));
    assert!(!is_ours(&[], None));
}

#[test]
fn observed_should_name_what_is_wrong_with_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CONFIG_FILE);
    assert_eq!(Observed::read(&path), Observed::Missing);
    std::fs::write(&path, "model = \"a\"\nmodel = \"b\"\n").unwrap();
    let Observed::Invalid(why) = Observed::read(&path) else {
        panic!("{:?}", Observed::read(&path))
    };
    assert!(why.contains("line 2"), "{why}");
    assert!(!why.contains('\n'));
    std::fs::write(&path, OPERATORS).unwrap();
    assert_eq!(Observed::read(&path), Observed::Toml(OPERATORS.into()));
}
