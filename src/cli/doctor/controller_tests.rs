use super::*;
use crate::cli::doctor::Status as Verdict;

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("time")
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

fn status(pid: u32, updated: Timestamp) -> Status {
    Status {
        pid,
        generation: "g".into(),
        converged: true,
        pending: vec![],
        refused: vec![],
        error: None,
        updated,
        fleet: None,
    }
}

fn files() -> Vec<(String, String)> {
    vec![("pool.yaml".into(), "kind: Pool\n".into())]
}

fn running() -> Facts {
    Facts {
        holder: Some(7),
        exe_removed: None,
        status: Some(status(7, now() - secs(2))),
        running: Some(files()),
        these: Some(files()),
        reports_wanted: true,
        busy_since: vec![],
        last_report: None,
        now: now(),
    }
}

fn fixes() -> Fixes {
    Fixes::new(&["m/".to_owned()], false)
}

#[test]
fn a_healthy_controller_should_pass_every_line() {
    let checks = judge(&running(), &fixes());
    assert!(checks.iter().all(|c| c.status == Verdict::Ok), "{checks:?}");
    assert_eq!(checks[0].found, "running (pid 7)");
    assert_eq!(checks[2].found, "last round 2s ago, converged");
}

#[test]
fn doctor_should_name_the_fix_for_no_controller() {
    let f = Facts {
        holder: None,
        ..running()
    };
    let checks = judge(&f, &fixes());
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].status, Verdict::Fail);
    assert_eq!(checks[0].fix.as_deref(), Some("failover controller -f m/"));
    let unit = Fixes::new(&["m/".to_owned()], true);
    assert_eq!(
        judge(&f, &unit)[0].fix.as_deref(),
        Some("systemctl --user start failover")
    );
}

#[test]
fn a_controller_whose_binary_was_removed_should_be_restarted() {
    let f = Facts {
        exe_removed: Some("/old/failover (deleted)".into()),
        ..running()
    };
    let c = &judge(&f, &fixes())[0];
    assert_eq!(c.status, Verdict::Fail);
    assert_eq!(c.fix.as_deref(), Some("kill 7; failover controller -f m/"));
}

#[test]
fn a_status_older_than_three_heartbeats_should_mean_a_stuck_controller() {
    let mut f = running();
    f.status = Some(status(7, now() - STALE));
    assert_eq!(judge_round(&f, 7, &fixes()).status, Verdict::Ok);
    f.status = Some(status(7, now() - STALE - secs(1)));
    let c = judge_round(&f, 7, &fixes());
    assert_eq!(c.status, Verdict::Fail, "{c:?}");
    assert!(c.found.starts_with("no round for 1m31s"), "{c:?}");
    f.status = Some(status(6, now()));
    assert_eq!(
        judge_round(&f, 7, &fixes()).status,
        Verdict::Warn,
        "an earlier controller's"
    );
}

#[test]
fn other_manifests_should_be_a_warning_fixed_by_apply() {
    let f = Facts {
        these: Some(vec![("pool.yaml".into(), "kind: Pool # edited\n".into())]),
        ..running()
    };
    let c = &judge(&f, &fixes())[1];
    assert_eq!(c.status, Verdict::Warn);
    assert_eq!(
        c.fix.as_deref(),
        Some("failover apply -f m/ hands these to it")
    );
}

#[test]
fn busy_agents_without_reports_should_be_a_warning() {
    let mut f = running();
    f.busy_since = vec![now() - secs(600)];
    f.last_report = Some(now() - secs(400));
    let c = judge_reports(&f, &fixes()).expect("a line");
    assert_eq!(c.status, Verdict::Warn, "{c:?}");
    f.last_report = Some(now() - secs(20));
    assert_eq!(
        judge_reports(&f, &fixes()).expect("a line").status,
        Verdict::Ok
    );
    f.busy_since = vec![];
    assert_eq!(
        judge_reports(&f, &fixes()),
        None,
        "nobody works: nothing to expect"
    );
}

#[test]
fn an_installed_unit_should_be_enabled_and_linger() {
    let none = Unit {
        installed: None,
        enabled: Err("not asked".into()),
        linger: None,
    };
    assert_eq!(judge_unit(&none, &fixes())[0].status, Verdict::Ok);
    let off = Unit {
        installed: Some("/u/failover.service".into()),
        enabled: Ok("disabled".into()),
        linger: Some(false),
    };
    let checks = judge_unit(&off, &fixes());
    assert_eq!(checks[0].status, Verdict::Fail);
    assert!(
        checks[0]
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("enable --now"))
    );
    assert_eq!(
        checks[1].fix.as_deref(),
        Some("loginctl enable-linger $USER")
    );
    let on = Unit {
        enabled: Ok("enabled".into()),
        linger: Some(true),
        ..off
    };
    assert!(
        judge_unit(&on, &fixes())
            .iter()
            .all(|c| c.status == Verdict::Ok)
    );
}
