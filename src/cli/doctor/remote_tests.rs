use super::*;
use crate::cli::doctor::Status;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(1_800_000_000_000 + ms).expect("time")
}

fn answer(date_ms: i64) -> Answer {
    Answer {
        lease_live: true,
        date: Some(t(date_ms)),
        sent: t(0),
        received: t(20),
    }
}

fn fixes() -> Fixes {
    Fixes::new(&["m/".to_owned()], false)
}

#[test]
fn doctor_should_name_the_fix_for_a_dead_etcd_endpoint() {
    let fleet = Fleet {
        node: "n".into(),
        endpoints: vec![
            ("http://127.0.0.1:1".into(), Err("etcd unreachable".into())),
            ("http://127.0.0.1:2379".into(), Ok(answer(0))),
        ],
    };
    let checks = judge_fleet(&fleet, true, &fixes());
    assert_eq!(checks[0].status, Status::Fail);
    assert!(
        checks[0]
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("spec.fleet.endpoints"))
    );
    assert_eq!(checks[1].status, Status::Ok);
    assert_eq!(checks[2].found, "its lease is live");
    assert_eq!(checks[3].status, Status::Ok, "{checks:?}");
    let dead = Fleet {
        endpoints: vec![fleet.endpoints[0].clone()],
        ..fleet
    };
    assert_eq!(
        judge_fleet(&dead, true, &fixes()).len(),
        1,
        "nothing else to tell"
    );
}

#[test]
fn a_clock_off_etcds_by_more_than_a_second_should_fail() {
    let fleet = |date_ms| Fleet {
        node: "n".into(),
        endpoints: vec![("e".into(), Ok(answer(date_ms)))],
    };
    // The header says 12:00:00 for anything in 12:00:00.000–12:00:00.999.
    assert_eq!(
        judge_fleet(&fleet(-900), true, &fixes())[2].status,
        Status::Ok
    );
    let behind = judge_fleet(&fleet(3000), true, &fixes());
    assert_eq!(behind[2].status, Status::Fail);
    assert!(behind[2].found.contains("3.5s behind"), "{behind:?}");
    let ahead = judge_fleet(&fleet(-3000), true, &fixes());
    assert!(ahead[2].found.contains("ahead of"), "{ahead:?}");
}

#[test]
fn a_lost_lease_should_name_its_cause() {
    let mut a = answer(0);
    a.lease_live = false;
    let fleet = Fleet {
        node: "n".into(),
        endpoints: vec![("e".into(), Ok(a))],
    };
    assert_eq!(
        judge_fleet(&fleet, false, &fixes())[1].fix.as_deref(),
        Some("failover controller -f m/")
    );
}

#[test]
fn notification_targets_should_be_reachable_without_a_message() {
    let facts = Facts {
        webhook: Some(("hooks.example.com".into(), Err("connection refused".into()))),
        command: Some(("notify-send".into(), false)),
        metrics: Some(("127.0.0.1:9464".into(), Ok(200))),
        fleet: None,
    };
    let checks = judge(&facts, true, &fixes());
    assert_eq!(checks[0].status, Status::Ok);
    assert_eq!(
        checks[1].found,
        "hooks.example.com does not answer: connection refused"
    );
    assert_eq!(checks[2].status, Status::Fail);
}

#[test]
fn the_wildcard_should_be_reached_on_loopback() {
    assert_eq!(loopback("0.0.0.0:9464"), "127.0.0.1:9464");
    assert_eq!(loopback("[::]:1"), "[::1]:1");
    assert_eq!(loopback("10.0.0.1:1"), "10.0.0.1:1");
}
