//! `failover validate` and `failover schema` as an operator runs them.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_failover");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn run(args: &[&str], stdin: &str) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("NO_COLOR", "1");
    failover::testbed::run_with_stdin(cmd, stdin.as_bytes())
}

#[test]
fn validate_should_accept_the_example_folder() {
    let out = run(&["validate", "-f", &format!("{ROOT}/manifests/")], "");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .contains("accounts 2, pools 1 (10 sessions at most), dedicated sessions 2, inboxes 2"),
        "{stdout}"
    );
}

#[test]
fn validate_should_name_file_line_and_column_of_every_problem_and_exit_1() {
    let text = "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {name: a}\nspec: {home: /a}\n---\n\
                apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {name: p}\nspec:\n  prefix: p-\n  mni: 1\n  min: x\n  max: 0\n  workdir: /w\n";
    let out = run(&["validate", "-f", "-"], text);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "error: -:11:3: spec.mni: unknown field `mni`, did you mean `min`?",
        "error: -:12:8: spec.min: \"x\" is not of type \"integer\"",
        "error: -:13:8: spec.max: 0 is less than the minimum of 1",
        "3 problems found",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains("12 │   min: x"), "no snippet in:\n{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colours despite NO_COLOR:\n{stderr}"
    );
}

#[test]
fn validate_should_exit_2_on_unreadable_input_and_usage_errors() {
    let out = run(&["validate", "-f", "/no/such/file.yaml"], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.yaml"));
    let out = run(&["validate"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn schema_should_print_the_committed_schema() {
    let out = run(&["schema"], "");
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(format!("{ROOT}/schema/failover.schema.json")).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

#[test]
fn every_example_manifest_should_carry_the_schema_modeline() {
    for entry in std::fs::read_dir(format!("{ROOT}/manifests")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schema/failover.schema.json\n"),
            "{} lacks the modeline",
            path.display()
        );
    }
}
