use super::*;
use crate::cli::doctor::Status;

fn agent(command: &[&str], path: Option<&str>, version: Result<&str, &str>) -> Agent {
    Agent {
        profile: "claude".to_owned(),
        command: command.iter().map(|w| (*w).to_owned()).collect(),
        path: path.map(PathBuf::from),
        version: version.map(str::to_owned).map_err(str::to_owned),
    }
}

#[test]
fn tmux_should_pass_from_3_2_and_name_the_install_below() {
    assert_eq!(judge_tmux(&Ok("tmux 3.3a".into())).status, Status::Ok);
    let old = judge_tmux(&Ok("tmux 3.1c".into()));
    assert_eq!(old.status, Status::Fail);
    assert!(old.fix.expect("fix").contains("3.2 or newer"));
    assert_eq!(
        judge_tmux(&Err("no `tmux` on PATH".into())).status,
        Status::Fail
    );
}

#[test]
fn agent_should_say_whether_the_tests_cover_its_version() {
    let pinned = format!("{VERSION} (Claude Code)");
    let ok = judge_agent(&agent(&["claude"], Some("/usr/bin/claude"), Ok(&pinned)));
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    let old = judge_agent(&agent(
        &["claude"],
        Some("/usr/bin/claude"),
        Ok("1.0.3 (Claude Code)"),
    ));
    assert_eq!(old.status, Status::Warn);
    assert!(old.found.contains(NEWEST) && old.fix.expect("fix").contains(NEWEST));
}

#[test]
fn agent_should_fail_when_its_program_is_missing_and_pass_the_stand_in() {
    let missing = judge_agent(&agent(&["claude", "--x"], None, Err("not found")));
    assert_eq!(missing.status, Status::Fail);
    assert!(missing.fix.expect("fix").contains("spec.command"));
    let sim = judge_agent(&agent(
        &["/opt/failover", "sim-agent"],
        Some("/opt/failover"),
        Ok("failover 1.0"),
    ));
    assert_eq!(sim.status, Status::Ok);
    assert!(sim.found.contains("stand-in"));
}

#[test]
fn covered_should_take_the_range_between_pinned_and_newest() {
    assert!(covered(VERSION) && covered(NEWEST));
    assert!(!covered("2.0.0") && !covered("9.0.0") && !covered("x"));
}

#[test]
fn version_should_read_the_first_line_of_a_real_program() {
    let sh = find("sh").expect("sh on PATH");
    assert!(version(&sh, "-c").is_err(), "sh -c without a command fails");
    let tmux = find("tmux").expect("tmux on PATH");
    assert!(version(&tmux, "-V").expect("tmux -V").starts_with("tmux "));
}
