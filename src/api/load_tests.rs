//! Table tests for loading and validation: good and bad manifests, asserting the
//! reported locations.

use super::*;
use crate::api::{AgentKind, AgentProfileSpec, Duration};

const HEAD: &str = "apiVersion: failover/v1alpha1\n";

fn account(name: &str, home: &str) -> String {
    format!("{HEAD}kind: Account\nmetadata: {{name: {name}}}\nspec: {{home: {home}}}\n")
}

/// Loads `text` as one file `m.yaml` and returns the problems as `line:col field: message`.
pub(super) fn problems(text: &str) -> Vec<String> {
    match load_str("m.yaml", text) {
        Ok(_) => Vec::new(),
        Err(LoadError::Invalid(p)) => p
            .items
            .iter()
            .map(|p| {
                let pos = p.pos.map(|p| p.to_string()).unwrap_or_default();
                format!("{pos} {}: {}", p.field, p.message)
            })
            .collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn assert_problem(text: &str, at: &str, contains: &str) {
    let found = problems(text);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with(at) && p.contains(contains)),
        "expected a problem at {at} containing {contains:?}, got {found:#?}"
    );
}

#[test]
fn load_should_accept_the_example_manifests() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests");
    let m = load(&[dir.into()]).unwrap();
    assert_eq!(m.accounts.len(), 2);
    assert_eq!(m.pools.len(), 1);
    let names: Vec<String> = m.pools[0].spec.session_names().collect();
    assert_eq!(names.first().map(String::as_str), Some("ccl-auto-11"));
    assert_eq!(names.last().map(String::as_str), Some("ccl-auto-20"));
    assert_eq!(names.len(), 10);
    assert_eq!(m.dedicated.len(), 2);
    assert_eq!(m.inboxes.len(), 2);
    assert_eq!(m.agents[0].name, "claude");
    assert_eq!(
        m.controller.spec.dispatch.submit_delay,
        Duration::from_millis(500)
    );
    assert_eq!(m.accounts_by_priority()[0].name, "main");
}

#[test]
fn load_should_fill_defaults() {
    let text = account("a", "/h/a")
        + &format!(
            "---\n{HEAD}kind: Pool\nmetadata: {{name: p}}\nspec: {{prefix: p-, min: 1, max: 2, workdir: /w}}\n"
        );
    let m = load_str("m.yaml", &text).unwrap();
    let pool = &m.pools[0].spec;
    assert_eq!((pool.start_index, pool.agent.as_str()), (0, "claude"));
    assert_eq!(m.controller.spec.poll_interval, Duration::from_secs(1));
    assert_eq!(m.controller.spec.quota.confirmations, 2);
    assert_eq!(m.controller.spec.owner, "failover");
}

#[test]
fn accounts_and_profiles_should_be_for_claude_code_unless_they_say_otherwise() {
    let text = account("a", "/h/a")
        + &format!(
            "---\n{HEAD}kind: Account\nmetadata: {{name: b}}\nspec: {{home: /h/b, agent: claude-code}}\n\
             ---\n{HEAD}kind: AgentProfile\nmetadata: {{name: mine}}\nspec: {{kind: claude-code, command: [claude]}}\n"
        );
    let m = load_str("m.yaml", &text).unwrap();
    assert!(
        m.accounts
            .iter()
            .all(|a| a.spec.agent == AgentKind::ClaudeCode)
    );
    assert_eq!(m.kind_of("mine"), AgentKind::ClaudeCode);
    assert_eq!(
        m.kind_of("claude"),
        AgentKind::ClaudeCode,
        "the built-in profile"
    );
    assert_eq!(m.agents[0].spec, AgentProfileSpec::default());
    assert_eq!(m.family_by_priority(AgentKind::ClaudeCode).len(), 2);
}

#[test]
fn a_codex_profile_should_take_codex_defaults_for_every_field_it_leaves_out() {
    let text = account("a", "/h/a")
        + &format!(
            "---\n{HEAD}kind: Account\nmetadata: {{name: x}}\nspec: {{home: /h/x, agent: codex}}\n\
             ---\n{HEAD}kind: AgentProfile\nmetadata: {{name: cx}}\n\
             spec:\n  kind: codex\n  exitCommand: /quit\n  screen:\n    busy: Thinking\n"
        );
    let m = load_str("m.yaml", &text).unwrap();
    let cx = &m.agent("cx").unwrap().spec;
    let codex = AgentProfileSpec::of_kind(AgentKind::Codex);
    assert_eq!(cx.command, codex.command);
    assert_eq!(cx.home_env, "CODEX_HOME");
    assert_eq!(cx.resume_args, ["resume", "{sessionId}"]);
    assert_eq!(cx.exit_command, "/quit", "what the profile says stays");
    assert_eq!(cx.screen.busy, "Thinking");
    assert_eq!(
        cx.screen.prompt, codex.screen.prompt,
        "each pattern left out"
    );
    assert_eq!(cx.screen.quota, codex.screen.quota);
    assert_eq!(
        m.agent("codex").unwrap().spec,
        codex,
        "the built-in profile"
    );
    assert_eq!(m.kind_of("codex"), AgentKind::Codex);
    // A Claude Code profile still gets Claude Code's.
    assert_eq!(m.agent("claude").unwrap().spec, AgentProfileSpec::default());
}

#[test]
fn validate_should_refuse_a_pool_whose_profile_kind_has_no_account_naming_the_field() {
    let text = format!(
        "{HEAD}kind: Account\nmetadata: {{name: x}}\nspec: {{home: /h/x, agent: codex-cli}}\n\
         ---\n{HEAD}kind: Pool\nmetadata: {{name: p}}\n\
         spec:\n  prefix: p-\n  min: 1\n  max: 2\n  workdir: /w\n  agent: claude\n\
         ---\n{HEAD}kind: DedicatedSession\nmetadata: {{name: desk}}\nspec: {{workdir: /w}}\n"
    );
    // The account's unknown kind is the schema's problem; that leaves no account for
    // the pool's and the session's Claude Code.
    assert_problem(&text, "4:27 spec.agent", "\"codex-cli\" is not one of");
    assert_problem(
        &text,
        "14:10 spec.agent",
        "Pool `p` runs AgentProfile `claude` of kind claude-code, but no Account is for claude-code",
    );
    assert_problem(
        &text,
        "19:7 spec.agent",
        "DedicatedSession `desk` runs AgentProfile `claude` of kind claude-code",
    );
}

#[test]
fn load_should_report_a_misspelt_field_a_string_for_a_number_and_min_above_max_in_one_run() {
    let text = account("a", "/h/a")
        + "---\n"
        + HEAD
        + "kind: Pool\n" // 7
        + "metadata: {name: p}\n" // 8
        + "spec:\n" // 9
        + "  prefix: p-\n" // 10
        + "  strtIndex: 3\n" // 11
        + "  min: 5\n" // 12
        + "  max: 2\n" // 13
        + "  workdir: /w\n" // 14
        + "---\n"
        + HEAD // 16
        + "kind: Pool\n"
        + "metadata: {name: q}\n"
        + "spec:\n" // 19
        + "  prefix: q-\n"
        + "  min: three\n" // 21
        + "  max: 4\n"
        + "  workdir: /w\n";
    let found = problems(&text);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with(
            "11:3 spec.strtIndex: unknown field `strtIndex`, did you mean `startIndex`?"
        ),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with("12:8 spec.min: min (5) is greater than max (2)"),
        "{found:#?}"
    );
    assert!(
        found[2].starts_with("21:8 spec.min: \"three\" is not of type \"integer\""),
        "{found:#?}"
    );
}

#[test]
fn load_should_report_every_unknown_field() {
    let text = format!(
        "{HEAD}kind: Account\nmetadata: {{name: a}}\nspec:\n  home: /a\n  prio: 1\n  colour: red\n"
    );
    let found = problems(&text);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        found[0].starts_with("6:3 spec.prio: unknown field `prio`, did you mean `priority`?"),
        "{found:#?}"
    );
    assert!(
        found[1].starts_with(
            "7:3 spec.colour: unknown field `colour`, expected one of: home, priority, env"
        ),
        "{found:#?}"
    );
}

#[test]
fn load_should_report_bad_values_where_they_are() {
    let a = account("a", "/h/a") + "---\n";
    let pool = |spec: &str| format!("{a}{HEAD}kind: Pool\nmetadata: {{name: p}}\nspec:\n{spec}");
    // (text, position, words)
    let cases: Vec<(String, &str, &str)> = vec![
        (
            pool("  prefix: p-\n  min: 1\n  max: 2\n  workdir: rel/dir\n"),
            "13:12",
            "path `rel/dir` is not absolute",
        ),
        (
            pool("  prefix: p-\n  min: 1\n  max: 2\n  workdir: ~/w\n"),
            "13:12",
            "`~` is not expanded",
        ),
        (
            pool("  prefix: p.x\n  min: 1\n  max: 2\n  workdir: /w\n"),
            "10:11",
            "'.' is not allowed",
        ),
        (
            pool("  prefix: p-\n  min: 1\n  max: 2\n  workdir: /w\n  scaleDownAfter: 5 minutes\n"),
            "14:19",
            "does not match",
        ),
        (
            pool("  prefix: p-\n  min: 1\n  workdir: /w\n"),
            "9:1",
            "missing field `max`",
        ),
        (
            pool("  prefix: p-\n  min: 1\n  max: 2\n  workdir: /w\n  agent: gemini\n"),
            "14:10",
            "AgentProfile `gemini` does not exist (known: claude, codex)",
        ),
        (
            pool("  prefix: p-\n  min: -1\n  max: 2\n  workdir: /w\n"),
            "11:8",
            "minimum",
        ),
        (
            format!("{a}{HEAD}kind: Pod\nmetadata: {{name: p}}\nspec: {{}}\n"),
            "7:7",
            "\"Pod\" is not one of",
        ),
        (
            format!(
                "{a}apiVersion: failover/v1\nkind: Account\nmetadata: {{name: b}}\nspec: {{home: /b}}\n"
            ),
            "6:13",
            "failover/v1alpha1",
        ),
        (
            format!("{a}{HEAD}kind: Account\nmetadata: {{name: 'a b'}}\nspec: {{home: /b}}\n"),
            "8:18",
            "' ' is not allowed",
        ),
        (
            format!(
                "{a}{HEAD}kind: AgentProfile\nmetadata: {{name: x}}\nspec:\n  screen:\n    quota: ['(unclosed']\n"
            ),
            "11:13",
            "regex does not compile",
        ),
        (
            format!(
                "{a}{HEAD}kind: AgentProfile\nmetadata: {{name: x}}\nspec:\n  screen:\n    reset: ['resets (.*)']\n"
            ),
            "11:13",
            "named group `time` or `epoch`",
        ),
        (
            format!(
                "{a}{HEAD}kind: Inbox\nmetadata: {{name: i}}\nspec: {{path: /i, pool: nope, workdir: /w}}\n"
            ),
            "9:24",
            "Pool `nope` does not exist",
        ),
        (
            format!(
                "{a}{HEAD}kind: SharedState\nmetadata: {{name: s}}\nspec: {{target: /s, links: [ok, a/b], accounts: [a, zz]}}\n"
            ),
            "9:32",
            "plain name",
        ),
        (
            format!(
                "{a}{HEAD}kind: SharedState\nmetadata: {{name: s}}\nspec: {{target: /s, accounts: [a, zz]}}\n"
            ),
            "9:34",
            "Account `zz` does not exist",
        ),
        (
            format!(
                "{a}{HEAD}kind: ControllerConfig\nmetadata: {{name: c}}\nspec: {{pollInterval: 1 s}}\n"
            ),
            "9:22",
            "does not match",
        ),
        (
            format!(
                "{a}{HEAD}kind: ControllerConfig\nmetadata: {{name: c}}\nspec: {{quota: {{failback: sometimes}}}}\n"
            ),
            "9:26",
            "\"sometimes\" is not one of",
        ),
    ];
    for (text, at, words) in cases {
        assert_problem(&text, at, words);
    }
}

#[test]
fn load_should_report_duplicates_and_collisions_with_both_places() {
    let text = account("a", "/h/a")
        + "---\n"
        + &account("a", "/h/b")
        + "---\n"
        + &format!(
            "{HEAD}kind: Pool\nmetadata: {{name: p}}\nspec: {{prefix: s-, startIndex: 1, min: 1, max: 3, workdir: /w}}\n"
        )
        + "---\n"
        + &format!(
            "{HEAD}kind: DedicatedSession\nmetadata: {{name: s-2}}\nspec: {{workdir: /w}}\n"
        );
    assert_problem(
        &text,
        "8:18",
        "Account `a` is defined twice; first at m.yaml:3:18",
    );
    assert_problem(
        &text,
        "18:18",
        "session `s-2` of DedicatedSession `s-2` is also a session of Pool `p`",
    );
}

#[test]
fn load_should_report_overlapping_pool_ranges() {
    let text = account("a", "/h/a")
        + "---\n"
        + &format!(
            "{HEAD}kind: Pool\nmetadata: {{name: p}}\nspec: {{prefix: s-1, min: 1, max: 3, workdir: /w}}\n"
        )
        + "---\n"
        + &format!(
            "{HEAD}kind: Pool\nmetadata: {{name: q}}\nspec: {{prefix: s-, startIndex: 10, min: 1, max: 3, workdir: /w}}\n"
        );
    assert_problem(
        &text,
        "14:16",
        "session `s-10` of Pool `q` is also a session of Pool `p`",
    );
}

#[test]
fn load_should_require_an_account_and_at_most_one_controller_config() {
    let found = problems(&format!(
        "{HEAD}kind: Pool\nmetadata: {{name: p}}\nspec: {{prefix: p-, min: 1, max: 1, workdir: /w}}\n"
    ));
    assert!(found.iter().any(|p| p.contains("no Account")), "{found:#?}");
    let cc =
        |n: &str| format!("{HEAD}kind: ControllerConfig\nmetadata: {{name: {n}}}\nspec: {{}}\n");
    let text = account("a", "/h/a") + "---\n" + &cc("one") + "---\n" + &cc("two");
    assert_problem(&text, "12:7", "only one ControllerConfig");
}

#[test]
fn load_should_report_yaml_syntax_and_duplicate_keys_with_a_position() {
    assert_problem(
        &(account("a", "/h/a") + "extra: [unclosed\n"),
        "5:8",
        "invalid YAML",
    );
    let dup =
        format!("{HEAD}kind: Account\nmetadata: {{name: a}}\nspec:\n  home: /a\n  home: /b\n");
    let found = problems(&dup);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].starts_with("6:") && found[0].contains("invalid YAML"),
        "{found:#?}"
    );
}

#[test]
fn load_should_read_folders_sorted_and_name_each_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yml"), account("b", "/h/b")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), account("a", "/h/a")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
    let m = load(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<&str> = m.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(m.files.len(), 2);

    std::fs::write(dir.path().join("c.yaml"), account("c", "/h/a")).unwrap();
    let Err(LoadError::Invalid(p)) = load(&[dir.path().to_path_buf()]) else {
        panic!("expected a duplicate home");
    };
    assert!(p.items[0].file.ends_with("c.yaml"), "{p}");
    assert!(
        p.items[0]
            .message
            .contains("is also the home of Account `a`"),
        "{p}"
    );
}

#[test]
fn load_should_fail_on_a_missing_file_as_a_read_error() {
    let err = load(&["/definitely/not/here.yaml".into()]).unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
    assert!(err.to_string().contains("/definitely/not/here.yaml"));
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = include_str!("../../manifests/pool.yaml");

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn load_should_never_panic_on_arbitrary_text(text in "\\PC{0,400}") {
            let _ = load_str("fuzz.yaml", &text);
        }

        #[test]
        fn load_should_never_panic_on_a_mangled_manifest(cut in 0usize..VALID.len(), insert in "[ :\\-\\[\\]{}'\"a-z0-9\n]{0,8}") {
            let mut text = VALID.to_owned();
            let at = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            text.insert_str(at, &insert);
            if let Err(LoadError::Invalid(p)) = load_str("m.yaml", &text) {
                prop_assert!(!p.items.is_empty());
                let _ = p.render(false);
            }
        }
    }
}
