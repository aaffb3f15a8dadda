use super::*;
use crate::agent_settings::Commands;
use crate::cli::doctor::Status;

fn login(id: &str, email: &str, expires: Option<i64>) -> Login {
    Login::fixture(id, email, expires)
}

fn home(account: &str, login: Result<Login, String>) -> Home {
    Home {
        account: account.to_owned(),
        home: PathBuf::from(format!("/h/{account}")),
        exists: true,
        login,
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("time")
}

#[test]
fn homes_should_pass_distinct_live_logins() {
    let checks = judge_homes(
        &[
            home("a", Ok(login("1", "a@x", Some(1_900_000_000)))),
            home("b", Ok(login("2", "b@x", None))),
        ],
        now(),
    );
    assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");
    assert_eq!(checks[0].found, "/h/a: a@x (max)");
    assert_eq!(checks[2].found, "2 accounts, each its own login");
}

#[test]
fn doctor_should_name_both_accounts_of_a_duplicate_login() {
    let checks = judge_homes(
        &[
            home("a", Ok(login("1", "a@x", None))),
            home("b", Ok(login("1", "a@x", None))),
        ],
        now(),
    );
    let dup = checks.last().expect("a line");
    assert_eq!(dup.status, Status::Fail);
    assert_eq!(dup.object, "account/a, account/b");
    assert!(dup.found.contains("a@x"), "{dup:?}");
    assert_eq!(
        dup.fix.as_deref(),
        Some(
            "log in: CLAUDE_CONFIG_DIR=/h/b claude, then /login to another account, or remove Account b from the manifests"
        )
    );
}

#[test]
fn doctor_should_fail_an_expired_login_by_the_injected_clock() {
    let h = home("a", Ok(login("1", "a@x", Some(1_799_999_999))));
    let c = judge_home(&h, now());
    assert_eq!(c.status, Status::Fail);
    assert!(c.found.contains("expired at"), "{c:?}");
    assert!(c.fix.expect("fix").contains("/login"));
    let before = Timestamp::from_second(1_799_999_998).expect("time");
    assert_eq!(judge_home(&h, before).status, Status::Ok);
}

#[test]
fn a_home_that_cannot_tell_its_account_should_warn_not_fail() {
    let mut l = login("1", "a@x", None);
    l.account_id = None;
    l.email = None;
    let c = judge_home(&home("a", Ok(l)), now());
    assert_eq!(c.status, Status::Warn, "{c:?}");
    let none = judge_home(&home("a", Ok(Login::default())), now());
    assert_eq!(none.status, Status::Fail);
    assert_eq!(none.found, "/h/a holds no login");
    let missing = Home {
        exists: false,
        ..home("a", Ok(Login::default()))
    };
    assert_eq!(judge_home(&missing, now()).found, "/h/a does not exist");
    let broken = judge_home(
        &home("a", Err("/h/a/.claude.json: not valid JSON".into())),
        now(),
    );
    assert_eq!(broken.status, Status::Fail);
}

const THIS: &str = concat!("failover ", env!("CARGO_PKG_VERSION"));

fn hooks(exe: &str, version: Result<&str, &str>) -> Hooks {
    let merged =
        agent_settings::merge(None, Some(&Commands::for_exe(exe.as_ref()))).expect("merge");
    Hooks {
        account: "a".to_owned(),
        path: PathBuf::from("/h/a/settings.json"),
        wanted: true,
        settings: Settings::Json(merged.value),
        programs: [(
            PathBuf::from(exe),
            version.map(str::to_owned).map_err(str::to_owned),
        )]
        .into(),
    }
}

fn fixes() -> Fixes {
    Fixes::new(&["m/".to_owned()], false)
}

#[test]
fn hooks_should_pass_when_they_run_this_version() {
    let c = judge_hooks(&[hooks("/bin/failover", Ok(THIS))], &fixes(), None);
    assert_eq!(c[0].status, Status::Ok, "{c:?}");
    assert_eq!(
        c[0].found,
        format!("hooks and status line run /bin/failover ({THIS})")
    );
}

#[test]
fn doctor_should_name_the_fix_for_a_hook_pointing_at_a_removed_binary() {
    let h = hooks("/gone/failover", Err("does not exist"));
    let c = judge_hooks(std::slice::from_ref(&h), &fixes(), None);
    assert_eq!(c[0].status, Status::Fail);
    assert_eq!(
        c[0].found,
        "/h/a/settings.json: its hooks run /gone/failover, which does not exist"
    );
    assert_eq!(c[0].fix.as_deref(), Some("failover apply -f m/"));
    // A controller running from the removed binary cannot write them again.
    let c = judge_hooks(&[h], &fixes(), Some(42));
    assert_eq!(
        c[0].fix.as_deref(),
        Some("kill 42; failover controller -f m/")
    );
}

#[test]
fn hooks_should_fail_another_version_and_missing_entries() {
    let old = judge_hooks(
        &[hooks("/bin/failover", Ok("failover 0.0.1"))],
        &fixes(),
        None,
    );
    assert_eq!(old[0].status, Status::Fail);
    assert!(old[0].found.contains("failover 0.0.1; this is"), "{old:?}");
    let mut none = hooks("/bin/failover", Ok(THIS));
    if let Settings::Json(v) = &mut none.settings {
        v["hooks"].as_object_mut().expect("hooks").remove("Stop");
    }
    let c = judge_hooks(&[none.clone()], &fixes(), None);
    assert_eq!(c[0].status, Status::Fail);
    assert_eq!(
        c[0].found, "/h/a/settings.json lacks failover's Stop",
        "{c:?}"
    );
    none.settings = Settings::Missing;
    let c = judge_hooks(&[none.clone()], &fixes(), None);
    assert_eq!(c[0].found, "/h/a/settings.json does not exist", "{c:?}");
    none.wanted = false;
    assert!(
        judge_hooks(&[none], &fixes(), None).is_empty(),
        "no profile reports"
    );
}

#[test]
fn an_operators_own_status_line_should_be_a_warning() {
    let mut h = hooks("/bin/failover", Ok(THIS));
    if let Settings::Json(v) = &mut h.settings {
        v["statusLine"]["command"] = Value::String("my-status".to_owned());
    }
    let c = judge_hooks(&[h], &fixes(), None);
    assert_eq!(c[0].status, Status::Warn, "{c:?}");
}
