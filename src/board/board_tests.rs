use super::*;
use crate::plan::fixtures::{
    self, BUSY_SCREEN, IDLE_SCREEN, POOL_AND_DEDICATED, add, manifests, now, observed, session,
};

/// Pool `auto` (min 3) with two sessions of ours, one on a turn and one at its prompt,
/// and a person's session named as the dedicated one.
fn pool() -> (Manifests, Observed) {
    let m = manifests(POOL_AND_DEDICATED);
    let mut o = observed();
    fixtures::home_dirs(&mut o, &m);
    o.facts.family_mut(fixtures::CLAUDE).active_account = Some("main".into());
    add(&mut o, session("ccl-auto-11", "failover", "main", 101));
    add(&mut o, session("ccl-auto-12", "failover", "main", 102));
    add(&mut o, session("ccl-1-x", "", "", 103));
    o.screens.insert("ccl-auto-11".into(), BUSY_SCREEN.into());
    o.screens.insert("ccl-auto-12".into(), IDLE_SCREEN.into());
    (m, o)
}

fn board(m: &Manifests, o: &Observed) -> Board {
    let plan = fixtures::plan_with_tasks(m, o, "failover", now());
    Board::of(m, "failover", o, &plan, now())
}

#[test]
fn a_board_should_tell_each_session_s_activity_from_the_planner_s_reading() {
    let (m, mut o) = pool();
    fixtures::claimed(&mut o, "ccl-auto-11", fixtures::task_facts("ccl-auto-11"));
    let b = board(&m, &o);
    let by_name = |n: &str| {
        b.sessions
            .iter()
            .find(|s| s.row.name == n)
            .unwrap_or_else(|| panic!("{n} in {b:#?}"))
    };
    let working = by_name("ccl-auto-11");
    assert_eq!(working.activity, Activity::Working);
    assert_eq!(working.row.task, "t.md");
    assert_eq!(working.since, Some(now()));
    assert_eq!(working.pane.as_deref(), Some("%101"));
    assert_eq!(by_name("ccl-auto-12").activity, Activity::Idle);
    assert_eq!(by_name("ccl-1-x").activity, Activity::NotOurs);
    assert_eq!(by_name("ccl-auto-13").activity, Activity::Missing);
    let main = b.accounts.iter().find(|a| a.row.name == "main").unwrap();
    assert_eq!(main.row.state, "active");
    assert_eq!(main.sessions, ["ccl-auto-11", "ccl-auto-12"]);
    assert_eq!(b.last_swaps, ["last swap: none"]);
}

#[test]
fn a_board_should_read_back_as_it_was_published() {
    let (m, o) = pool();
    let dir = tempfile::tempdir().unwrap();
    let mut publisher = Publisher::new(dir.path());
    let plan = fixtures::plan_with_tasks(&m, &o, "failover", now());
    assert!(publisher.publish(&m, "failover", &o, &plan, now()));
    let read = read(dir.path()).unwrap().expect("a board");
    assert_eq!(read.pid, std::process::id());
    assert_eq!(read.board, Board::of(&m, "failover", &o, &plan, now()));
}

#[test]
fn a_board_should_be_written_only_when_it_changed() {
    let (m, mut o) = pool();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(BOARD_FILE);
    let mut publisher = Publisher::new(dir.path());
    let publish = |p: &mut Publisher, o: &Observed| {
        let plan = fixtures::plan_with_tasks(&m, o, "failover", now());
        p.publish(&m, "failover", o, &plan, now())
    };
    assert!(publish(&mut publisher, &o), "the first round's");
    std::fs::remove_file(&path).unwrap();
    assert!(!publish(&mut publisher, &o), "the same board: not written");
    assert!(!path.exists());
    o.screens.insert("ccl-auto-12".into(), BUSY_SCREEN.into());
    assert!(publish(&mut publisher, &o), "a session went to work");
    let read = read(dir.path()).unwrap().expect("a board");
    assert!(
        read.board
            .sessions
            .iter()
            .filter(|s| s.activity == Activity::Working)
            .count()
            == 2,
        "{read:#?}"
    );
}

#[test]
fn a_board_that_cannot_be_written_should_be_tried_again_next_round() {
    let (m, o) = pool();
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    let mut publisher = Publisher::new(&gone);
    let plan = fixtures::plan_with_tasks(&m, &o, "failover", now());
    assert!(!publisher.publish(&m, "failover", &o, &plan, now()));
    std::fs::create_dir(&gone).unwrap();
    assert!(publisher.publish(&m, "failover", &o, &plan, now()));
}
