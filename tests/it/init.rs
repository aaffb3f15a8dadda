//! `failover init` on a made-up `$HOME` holding Claude Code homes shaped as the real CLI
//! writes them (`.claude.json` with `oauthAccount`, `.credentials.json` 0600).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::bed::{BIN, run};

/// Tokens written into the fixtures: none may appear in anything init prints or writes.
const SECRETS: [&str; 2] = ["sk-ant-oat01-FIXTURE", "sk-ant-ort01-FIXTURE"];

/// Makes `home` an account home logged in as `account` (`email`), as Claude Code leaves it.
fn logged_in(home: &Path, account: &str, email: &str) {
    std::fs::create_dir_all(home).unwrap();
    let config = serde_json::json!({
        "hasCompletedOnboarding": true,
        "lastOnboardingVersion": "2.1.329",
        "theme": "dark",
        "oauthAccount": {
            "accountUuid": account,
            "emailAddress": email,
            "organizationUuid": "0f9e8d7c-org",
            "organizationName": "Example Org",
        },
    });
    std::fs::write(home.join(".claude.json"), config.to_string()).unwrap();
    let credentials = serde_json::json!({"claudeAiOauth": {
        "accessToken": format!("{}-{account}", SECRETS[0]),
        "refreshToken": format!("{}-{account}", SECRETS[1]),
        "expiresAt": 4_102_444_800_000_i64,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max",
    }});
    let path = home.join(".credentials.json");
    std::fs::write(&path, credentials.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `failover init args…` with `$HOME` at `user`, run from `cwd`.
fn init(user: &Path, cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .arg("init")
        .args(args)
        .current_dir(cwd)
        .env("HOME", user)
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("XDG_CONFIG_HOME")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    for secret in SECRETS {
        let printed = [&out.stdout, &out.stderr].map(|b| String::from_utf8_lossy(b).into_owned());
        assert!(!printed.iter().any(|p| p.contains(secret)), "{printed:?}");
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn init_should_write_one_account_per_login_that_validate_accepts_and_never_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let user = tmp.path().join("home");
    let work = tmp.path().join("src");
    std::fs::create_dir_all(&work).unwrap();
    logged_in(&user.join(".claude-main"), "4f1c-main", "ops@example.com");
    logged_in(&user.join(".claude-spare"), "4f1c-main", "ops@example.com");
    logged_in(&user.join(".claude-work"), "77aa-work", "work@example.com");
    let dir = tmp.path().join("out");
    let dir_arg = dir.to_str().unwrap();

    let out = init(&user, &work, &[dir_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in [
        "/.claude-main: ops@example.com (max): account main (priority 0)",
        "/.claude-spare: ops@example.com (max): same login as",
        "/.claude-work: work@example.com (max): account work (priority 1)",
        &format!("failover apply -f {dir_arg}"),
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    let manifest = std::fs::read_to_string(dir.join("failover.yaml")).unwrap();
    let schema = std::fs::read_to_string(dir.join("failover.schema.json")).unwrap();
    assert_eq!(schema, text(&run(&["schema"], "").stdout));
    for secret in SECRETS {
        assert!(!manifest.contains(secret) && !schema.contains(secret));
    }
    assert_eq!(
        manifest.matches("\nkind: Account\n").count(),
        2,
        "{manifest}"
    );
    let spare = user.join(".claude-spare");
    assert!(
        manifest.contains(&format!("# Also found {}: same login", spare.display())),
        "{manifest}"
    );
    assert!(work.join(".agent-queue/inbox").is_dir());

    let valid = run(&["validate", "-f", dir_arg], "");
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stderr));
    assert!(
        text(&valid.stdout).contains("valid: accounts 2, pools 1 (4 sessions at most)"),
        "{}",
        text(&valid.stdout)
    );
    assert_eq!(
        text(&valid.stderr),
        "",
        "no advice expected: the homes share"
    );

    let again = init(&user, &work, &[dir_arg]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = text(&again.stderr);
    assert!(
        stderr.contains(&format!(
            "{}/failover.yaml exists; init never overwrites (--force replaces it)",
            dir_arg
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("failover.yaml")).unwrap(),
        manifest
    );

    std::fs::write(dir.join("failover.yaml"), "# edited by hand\n").unwrap();
    let forced = init(&user, &work, &["--force", dir_arg]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("failover.yaml")).unwrap(),
        manifest
    );
}

#[test]
fn init_should_leave_a_home_with_its_own_conversations_out_of_the_sharing_and_say_how_to_bring_it_in()
 {
    let tmp = tempfile::tempdir().unwrap();
    let user = tmp.path().join("home");
    logged_in(&user.join(".claude-a"), "aaaa", "a@example.com");
    logged_in(&user.join(".claude-b"), "bbbb", "b@example.com");
    let used = user.join(".claude-b/projects/-srv-x");
    std::fs::create_dir_all(&used).unwrap();
    std::fs::write(used.join("1b2c.jsonl"), "{}\n").unwrap();
    let dir = tmp.path().join("out");
    let out = init(&user, tmp.path(), &[dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("conversations are not shared with b yet"),
        "{}",
        text(&out.stderr)
    );
    let manifest = std::fs::read_to_string(dir.join("failover.yaml")).unwrap();
    assert!(manifest.contains("  accounts: [a]\n"), "{manifest}");
    // apply plans the links of a only, and refuses nothing: b's folder is left alone.
    let state = tmp.path().join("state");
    let diff = Command::new(BIN)
        .args(["diff", "-f", dir.to_str().unwrap()])
        .env("FAILOVER_TMUX_SOCKET", tmp.path().join("sock"))
        .env("FAILOVER_STATE_DIR", &state)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let plan = text(&diff.stdout);
    assert_eq!(diff.status.code(), Some(1), "{plan}{}", text(&diff.stderr));
    assert!(plan.contains(".claude-a/projects -> "), "{plan}");
    assert!(!plan.contains(".claude-b/projects"), "{plan}");

    // Moved as the comment says, a second init shares b too.
    let line = manifest
        .lines()
        .find(|l| l.starts_with("#   mkdir -p"))
        .expect("the command that moves b's conversations");
    let status = Command::new("sh")
        .args(["-c", &line[4..]])
        .status()
        .unwrap();
    assert!(status.success(), "{line}");
    let again = init(&user, tmp.path(), &["--force", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(0));
    let manifest = std::fs::read_to_string(dir.join("failover.yaml")).unwrap();
    assert!(!manifest.contains("  accounts: ["), "{manifest}");
    assert!(
        user.join(".claude-shared/projects/-srv-x/1b2c.jsonl")
            .is_file()
    );
}

#[test]
fn init_should_write_placeholders_that_validate_accepts_when_no_home_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let user = tmp.path().join("home");
    std::fs::create_dir_all(&user).unwrap();
    let out = init(&user, tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dir = user.join(".config/failover");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no home holding a login was found; the accounts written are placeholders"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("found no Claude Code home"));
    let valid = run(&["validate", "-f", dir.to_str().unwrap()], "");
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid.stderr));
}

#[test]
fn init_dry_run_should_print_each_file_under_its_path_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let user = tmp.path().join("home");
    logged_in(&user.join(".claude"), "aaaa", "a@example.com");
    let dir = tmp.path().join("out");
    let out = init(&user, tmp.path(), &["--dry-run", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "==> {}/failover.yaml <==\n# yaml-language-server: $schema=failover.schema.json\n",
            dir.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("==> {}/failover.schema.json <==", dir.display())));
    assert!(text(&out.stderr).contains("account default (priority 0)"));
    assert!(!dir.exists(), "dry run wrote {dir:?}");
    assert!(!tmp.path().join(".agent-queue").exists());
}
