//! `failover validate` and `failover schema` as an operator runs them.

use crate::bed::{BIN, run};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

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
fn validate_should_accept_the_example_with_both_vendors() {
    let out = run(
        &["validate", "-f", &format!("{ROOT}/manifests/families/")],
        "",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("accounts 4, pools 1"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
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
    // The semantic check, with its place too.
    let crossed = text.replace("  mni: 1\n  min: x\n  max: 0\n", "  min: 5\n  max: 2\n");
    let out = run(&["validate", "-f", "-"], &crossed);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: -:11:8: spec.min: min (5) is greater than max (2)"),
        "{stderr}"
    );
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
fn the_manifest_reference_in_docs_should_be_current() {
    let out = run(&["schema", "-o", "markdown"], "");
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(format!("{ROOT}/docs/manifests.md")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "docs/manifests.md is stale: run `failover schema -o markdown > docs/manifests.md`"
    );
}

#[test]
fn completions_should_generate_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _failover"),
        ("zsh", "#compdef failover"),
        ("fish", "complete -c failover"),
    ] {
        let out = run(&["completions", shell], "");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("controller"),
            "{shell} lacks the subcommands"
        );
    }
    let out = run(&["completions", "tcsh"], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_page_should_generate_from_the_cli_definition() {
    let out = run(&["man"], "");
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);

    for section in [
        ".TH failover 1",
        ".SH NAME",
        ".SH SUBCOMMANDS",
        r"failover\-apply",
    ] {
        assert!(page.contains(section), "{section} missing:\n{page}");
    }
    let dir = tempfile::tempdir().unwrap();
    let man1 = dir.path().join("share/man/man1");
    let out = run(&["man", "--dir", &man1.to_string_lossy()], "");
    assert_eq!(out.status.code(), Some(0));
    let apply = std::fs::read_to_string(man1.join("failover-apply.1")).unwrap();
    assert!(apply.contains("Exit codes: 0 converged"), "{apply}");
    assert!(!man1.join("failover-sim-agent.1").exists(), "hidden");
}

#[test]
fn version_and_help_should_answer_with_examples_on_every_subcommand() {
    let out = run(&["--version"], "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        concat!("failover ", env!("CARGO_PKG_VERSION"))
    );
    for sub in [
        "validate",
        "diff",
        "apply",
        "controller",
        "get",
        "classify",
        "demo",
        "schema",
        "completions",
        "man",
    ] {
        let out = run(&[sub, "--help"], "");
        assert_eq!(out.status.code(), Some(0), "{sub}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Example"),
            "{sub} --help has no example:\n{help}"
        );
        assert!(
            !help.contains('\x1b'),
            "{sub} --help is coloured off a terminal"
        );
    }
}

#[test]
fn every_example_manifest_should_carry_the_schema_modeline() {
    // The examples, and those of the folders beside them (one level down).
    for (dir, up) in [("manifests", ".."), ("manifests/families", "../..")] {
        for entry in std::fs::read_dir(format!("{ROOT}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let modeline =
                format!("# yaml-language-server: $schema={up}/schema/failover.schema.json\n");
            assert!(
                text.starts_with(&modeline),
                "{} lacks the modeline",
                path.display()
            );
        }
    }
}

#[test]
fn printing_commands_should_end_quietly_when_their_reader_goes_away() {
    use std::process::{Command, Stdio};
    for args in [&["schema"][..], &["schema", "-o", "markdown"], &["man"]] {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end at once, as `| head -1` does after its line.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
