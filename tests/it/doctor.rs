//! `failover doctor` on a live pool of stand-in agents whose account homes hold logins
//! shaped as the real CLI writes them: every line ✓ while the pool is healthy; each
//! fault, made one at a time, shows ✗ with its fix, and doing that fix (run here as the
//! operator would) makes the line ✓ again.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use failover::api::ControllerConfigSpec;
use failover::testbed::Spawned;
use failover::testbed::manifest::{Manifest, duration};
use serde_json::{Value, json};

use crate::bed::{self, BIN, Bed};

/// A login in `home` as Claude Code writes it: the account in `.claude.json`, the tokens
/// in `.credentials.json` (0600), expiring at `expires_ms`.
fn log_in(home: &Path, account: &str, email: &str, expires_ms: i64) {
    std::fs::create_dir_all(home).unwrap();
    let config = json!({
        "hasCompletedOnboarding": true,
        "oauthAccount": {
            "accountUuid": account,
            "emailAddress": email,
            "organizationUuid": "0d7e4c1a-org",
            "organizationName": "Ops",
        },
    });
    std::fs::write(home.join(".claude.json"), config.to_string()).unwrap();
    let credentials = json!({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-fixture",
        "refreshToken": "sk-ant-ort01-fixture",
        "expiresAt": expires_ms,
        "scopes": ["user:inference", "user:profile"],
        "subscriptionType": "max",
    }});
    let path = home.join(".credentials.json");
    std::fs::write(&path, credentials.to_string()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// 2100-01-01 in ms.
const FAR: i64 = 4_102_444_800_000;

/// Two accounts with different logins sharing `projects`, and a pool of two stand-ins;
/// `controller` changes the ControllerConfig.
fn pool(bed: &Bed, controller: impl FnOnce(&mut ControllerConfigSpec)) -> PathBuf {
    let r = &bed.root;
    std::fs::create_dir_all(r.join("work")).unwrap();
    std::fs::create_dir_all(r.join("shared")).unwrap();
    log_in(&r.join("a"), "4f1c-a", "a@example.com", FAR);
    log_in(&r.join("b"), "77aa-b", "b@example.com", FAR);
    let m = Manifest::new()
        .account("a", r.join("a"))
        .account("b", r.join("b"))
        .priority(1)
        .shared_state("shared", r.join("shared"))
        .agent("claude", &[BIN, "sim-agent"])
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("250ms");
            controller(c);
        })
        .pool("p", "w-", 2..=2, r.join("work"));
    bed.save("pool.yaml", &m.yaml())
}

/// `failover doctor -f file -o json`: its exit code and its checks. No systemd unit is
/// looked for but the bed's own (`XDG_CONFIG_HOME`).
fn doctor(bed: &Bed, file: &Path) -> (i32, Vec<Value>) {
    let out = bed
        .command(&["doctor", "-f", &file.to_string_lossy(), "-o", "json"])
        .env("XDG_CONFIG_HOME", &bed.root)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        v["checks"].as_array().cloned().unwrap_or_default(),
    )
}

/// The check `check` about `object`, if doctor printed one.
fn line<'a>(checks: &'a [Value], check: &str, object: &str) -> Option<&'a Value> {
    checks
        .iter()
        .find(|c| c["check"] == check && c["object"] == object)
}

/// Runs doctor until its `check` line about `object` has `status`; that line and the
/// exit code.
fn wait_line(bed: &Bed, file: &Path, check: &str, object: &str, status: &str) -> (i32, Value) {
    let mut last = Vec::new();
    let found = failover::testbed::wait_for_or_none(Duration::from_secs(30), || {
        let (code, checks) = doctor(bed, file);
        let found = line(&checks, check, object)
            .filter(|l| l["status"] == status)
            .cloned();
        last = checks;
        found.map(|l| (code, l))
    });
    found.unwrap_or_else(|| {
        panic!(
            "no {status} {check} line about {object}; doctor said:\n{}",
            serde_json::to_string_pretty(&last).unwrap()
        )
    })
}

/// Waits until doctor exits 0 with every line ✓; those lines.
fn wait_healthy(bed: &Bed, file: &Path) -> Vec<Value> {
    let mut last = Vec::new();
    let checks = failover::testbed::wait_for_or_none(Duration::from_secs(30), || {
        let (code, checks) = doctor(bed, file);
        let healthy = code == 0 && checks.iter().all(|c| c["status"] == "ok");
        last.clone_from(&checks);
        healthy.then_some(checks)
    });
    checks.unwrap_or_else(|| {
        panic!(
            "doctor never found the pool healthy:\n{}",
            serde_json::to_string_pretty(&last).unwrap()
        )
    })
}

/// Runs a fix doctor named, as the operator would paste it into a shell, with this
/// build's `failover` first on PATH and the bed's tmux server and state folder.
fn run_fix(bed: &Bed, fix: &str) {
    let dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", fix])
        .envs(bed.t.env())
        .env("FAILOVER_STATE_DIR", bed.state())
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the fix `{fix}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fix_of(l: &Value) -> String {
    l["fix"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn doctor_should_pass_a_healthy_pool_and_name_a_working_fix_for_each_fault() {
    let bed = bed::new(&[]);
    let file = pool(&bed, |_| {});
    let quoted = file.to_string_lossy().into_owned();
    let mut controller = bed.controller(&file, "controller", None);
    let checks = wait_healthy(&bed, &file);
    for (check, object) in [
        ("tmux", "tmux"),
        ("agent", "agent/claude"),
        ("home", "account/a"),
        ("login", "accounts"),
        ("hooks", "account/b"),
        ("links", "account/a"),
        ("controller", "controller"),
        ("round", "controller"),
    ] {
        assert!(line(&checks, check, object).is_some(), "no {check} line");
    }
    // The text form: aligned lines, all ✓.
    let (code, text) = bed.run(&["doctor", "-f", &quoted]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.lines().rev().skip(1).all(|l| l.starts_with("✓ ")),
        "{text}"
    );

    // A duplicate login: b's home holds a's account. Fixed by logging b in again.
    log_in(&bed.root.join("b"), "4f1c-a", "a@example.com", FAR);
    let (code, l) = wait_line(&bed, &file, "login", "account/a, account/b", "fail");
    assert_eq!(code, 1);
    assert!(fix_of(&l).contains("/login"), "{l}");
    log_in(&bed.root.join("b"), "77aa-b", "b@example.com", FAR);
    wait_line(&bed, &file, "login", "accounts", "ok");

    // An expired login. Fixed by logging in again.
    log_in(
        &bed.root.join("a"),
        "4f1c-a",
        "a@example.com",
        1_600_000_000_000,
    );
    let (code, l) = wait_line(&bed, &file, "home", "account/a", "fail");
    assert_eq!(code, 1);
    assert!(l["found"].as_str().unwrap().contains("expired at"), "{l}");
    assert!(fix_of(&l).contains("/login"), "{l}");
    log_in(&bed.root.join("a"), "4f1c-a", "a@example.com", FAR);
    wait_line(&bed, &file, "home", "account/a", "ok");

    // A stale link: b's projects leads to an old place.
    let old = bed.root.join("old-projects");
    std::fs::create_dir(&old).unwrap();
    let link = bed.root.join("b/projects");
    // Replaced in one rename: the running controller puts back a link it finds missing,
    // so a remove then a symlink would race it.
    let stale = bed.root.join("b/projects.stale");
    std::os::unix::fs::symlink(&old, &stale).unwrap();
    std::fs::rename(&stale, &link).unwrap();
    let (code, l) = wait_line(&bed, &file, "links", "account/b", "fail");
    assert_eq!(code, 1);
    assert_eq!(
        fix_of(&l),
        format!("rm {} && failover apply -f {quoted}", link.display())
    );
    run_fix(&bed, &fix_of(&l));
    wait_line(&bed, &file, "links", "account/b", "ok");

    // The state folder opened to everyone.
    let state = bed.state();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, l) = wait_line(&bed, &file, "state", &state.to_string_lossy(), "fail");
    assert_eq!(code, 1);
    assert_eq!(fix_of(&l), format!("chmod 700 {}", state.display()));
    run_fix(&bed, &fix_of(&l));
    wait_line(&bed, &file, "state", &state.to_string_lossy(), "ok");

    // A fleet section naming an endpoint nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    pool(&bed, |c| c.fleet.endpoints = vec![endpoint.clone()]);
    let (code, l) = wait_line(&bed, &file, "etcd", &endpoint, "fail");
    assert_eq!(code, 1);
    assert!(fix_of(&l).contains("spec.fleet.endpoints"), "{l}");
    pool(&bed, |_| {});
    let (code, checks) = doctor(&bed, &file);
    assert_eq!(code, 0, "{checks:?}");
    assert!(line(&checks, "etcd", &endpoint).is_none(), "{checks:?}");

    // No controller.
    controller.signal("TERM");
    assert_eq!(controller.exit_code(Duration::from_secs(20)), Some(0));
    let (code, l) = wait_line(&bed, &file, "controller", "controller", "fail");
    assert_eq!(code, 1);
    assert_eq!(fix_of(&l), format!("failover controller -f {quoted}"));
    let _controller = bed.controller(&file, "controller-2", None);
    wait_healthy(&bed, &file);
}

#[test]
fn doctor_should_name_the_fix_for_a_hook_pointing_at_a_removed_binary() {
    let bed = bed::new(&["old"]);
    let file = pool(&bed, |_| {});
    let quoted = file.to_string_lossy().into_owned();
    // The controller runs from a copy of failover, which writes the copy's path into the
    // agents' hooks; the copy then goes, as after `cargo clean` or an uninstall.
    let copy = bed.root.join("old/failover");
    std::fs::copy(BIN, &copy).unwrap();
    let mut cmd = Command::new(&copy);
    cmd.args(["controller", "-f", &quoted])
        .envs(bed.t.env())
        .env("FAILOVER_STATE_DIR", bed.state());
    let mut controller = Spawned::start(cmd, bed.root.join("old.log"));
    let pid = controller.pid();
    let checks = wait_healthy(&bed, &file);
    let hooks = line(&checks, "hooks", "account/a").unwrap();
    assert!(
        hooks["found"].as_str().unwrap().contains("old/failover"),
        "{hooks}"
    );
    std::fs::remove_file(&copy).unwrap();

    // The running controller cannot write them again: the fix is its restart.
    let (code, l) = wait_line(&bed, &file, "hooks", "account/a", "fail");
    assert_eq!(code, 1);
    assert!(
        l["found"]
            .as_str()
            .unwrap()
            .ends_with("which does not exist"),
        "{l}"
    );
    assert_eq!(
        fix_of(&l),
        format!("kill {pid}; failover controller -f {quoted}")
    );
    let (_, checks) = doctor(&bed, &file);
    let c = line(&checks, "controller", "controller").unwrap();
    assert_eq!(c["status"], "fail", "{c}");

    // Its first half stops it; with no controller, apply writes the hooks again.
    run_fix(&bed, &format!("kill {pid}"));
    assert_eq!(controller.exit_code(Duration::from_secs(20)), Some(0));
    let (code, l) = wait_line(&bed, &file, "hooks", "account/b", "fail");
    assert_eq!(code, 1);
    assert_eq!(fix_of(&l), format!("failover apply -f {quoted}"));
    run_fix(&bed, &fix_of(&l));
    wait_line(&bed, &file, "hooks", "account/a", "ok");
    wait_line(&bed, &file, "hooks", "account/b", "ok");

    // And the controller again, from this build.
    let _controller = bed.controller(&file, "controller", None);
    wait_healthy(&bed, &file);
}
