use super::*;
use crate::cli::doctor::Status;

fn fixes() -> Fixes {
    Fixes::new(&["m/".to_owned()], false)
}

fn dir(path: &str) -> Entry {
    Entry::Dir {
        entries: 0,
        real: PathBuf::from(path),
    }
}

fn link(entry: Entry, target_entry: Entry) -> Link {
    Link {
        shared: "s".into(),
        account: "a".into(),
        link: "/h/a/projects".into(),
        target: "/shared/projects".into(),
        entry,
        target_entry,
    }
}

#[test]
fn links_should_pass_when_each_leads_to_its_target() {
    let ok = link(
        Entry::Link {
            to: "/shared/projects".into(),
            resolved: Some("/shared/projects".into()),
        },
        dir("/shared/projects"),
    );
    let c = judge_links(&[ok], &fixes());
    assert_eq!(c[0].status, Status::Ok, "{c:?}");
    assert_eq!(c[0].found, "1 link to /shared (SharedState s)");
}

#[test]
fn doctor_should_name_the_fix_for_a_stale_link() {
    let stale = link(
        Entry::Link {
            to: "/old/projects".into(),
            resolved: None,
        },
        dir("/shared/projects"),
    );
    let c = judge_links(&[stale], &fixes());
    assert_eq!(c[0].status, Status::Fail);
    assert_eq!(
        c[0].found,
        "/h/a/projects is a stale link to /old/projects, not /shared/projects"
    );
    assert_eq!(
        c[0].fix.as_deref(),
        Some("rm /h/a/projects && failover apply -f m/")
    );
}

#[test]
fn missing_links_and_targets_should_be_fixed_by_apply() {
    let missing = judge_links(&[link(Entry::Absent, dir("/shared/projects"))], &fixes());
    assert_eq!(missing[0].fix.as_deref(), Some("failover apply -f m/"));
    let dangling = link(
        Entry::Link {
            to: "/shared/projects".into(),
            resolved: None,
        },
        Entry::Absent,
    );
    let c = judge_links(&[dangling], &fixes());
    assert!(c[0].found.contains("does not exist"), "{c:?}");
    let folder = judge_links(&[link(dir("/h/a/projects"), Entry::Absent)], &fixes());
    assert!(
        folder[0]
            .fix
            .as_deref()
            .is_some_and(|f| f.starts_with("move"))
    );
}

fn state(meta: Option<(u32, u32)>) -> StateDir {
    StateDir {
        path: "/s".into(),
        meta,
        me: Some(1000),
        user: "me".into(),
    }
}

#[test]
fn doctor_should_name_the_fix_for_wrong_state_folder_modes() {
    assert_eq!(
        judge_state_dir(&state(Some((1000, 0o700)))).status,
        Status::Ok
    );
    let open = judge_state_dir(&state(Some((1000, 0o777))));
    assert_eq!(open.status, Status::Fail);
    assert_eq!(open.fix.as_deref(), Some("chmod 700 /s"));
    assert_eq!(
        judge_state_dir(&state(Some((1000, 0o755)))).status,
        Status::Warn
    );
    let theirs = judge_state_dir(&state(Some((0, 0o700))));
    assert_eq!(theirs.status, Status::Fail);
    assert_eq!(theirs.fix.as_deref(), Some("sudo chown -R me /s"));
    assert_eq!(judge_state_dir(&state(None)).status, Status::Ok);
}
