//! A fleet of controllers on one machine standing in for three: three private tmux
//! servers, three state folders and three sets of account homes, one real etcd cluster
//! on loopback. Skipped, loudly, where etcd is not installed.

use std::path::PathBuf;
use std::time::Duration;

use failover::api::{ControllerConfigSpec, FleetSpec};
use failover::testbed::etcd::Cluster;
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::proxy::Proxy;
use failover::testbed::wait_for;

use crate::bed::{self, BIN, Bed};
use failover::testbed::Spawned;

/// Node `node`'s manifests: accounts a and b (homes of its own), a pool of 2 taking
/// tasks from an inbox, stand-in agents, and the fleet.
fn node(bed: &Bed, node: &str, endpoints: &[String]) -> PathBuf {
    node_with(bed, node, endpoints, |_| {})
}

/// [`node`], with `fleet` changing the fleet settings (a user and password).
fn node_with(
    bed: &Bed,
    node: &str,
    endpoints: &[String],
    fleet: impl FnOnce(&mut FleetSpec),
) -> PathBuf {
    manifest(bed, node, endpoints, &["a", "b"], Some(95), fleet)
}

/// Node `node`'s manifests with `accounts` (by priority), their sessions moving at
/// `move_at` percent of use.
fn manifest(
    bed: &Bed,
    node: &str,
    endpoints: &[String],
    accounts: &[&str],
    move_at: Option<u32>,
    fleet: impl FnOnce(&mut FleetSpec),
) -> PathBuf {
    let r = &bed.root;
    std::fs::create_dir_all(r.join("work/.agent-queue/inbox")).unwrap();
    let mut m = Manifest::new();
    for (i, a) in (0..).zip(accounts) {
        std::fs::create_dir_all(r.join(a)).unwrap();
        m = m.account(a, r.join(a)).priority(i);
    }
    let m = m
        .agent("claude", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", "300ms")
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("250ms");
            c.dispatch.submit_delay = duration("100ms");
            c.quota.move_at = move_at;
            c.fleet.endpoints = endpoints.to_vec();
            c.fleet.node = node.into();
            c.fleet.prefix = "/t/".into();
            c.fleet.lease_ttl = duration("3s");
            fleet(&mut c.fleet);
        })
        .pool("p", "w-", 2..=2, r.join("work"))
        .inbox(
            "work",
            r.join("work/.agent-queue/inbox"),
            "p",
            r.join("work"),
        );
    bed.write("manifests/pool.yaml", &m.yaml())
}

/// The nodes of [`start_nodes`] and [`start_nodes_with`]: beds, manifests, controllers.
type Nodes = (Vec<Bed>, Vec<PathBuf>, Vec<Option<Spawned>>);

/// `n` nodes on `endpoints`, each with its controller started and its pool up on a.
fn start_nodes(n: usize, endpoints: &[String]) -> Nodes {
    start_nodes_with(n, endpoints, &["a", "b"], Some(95))
}

/// [`start_nodes`], with `accounts` and `moveAt` (none: only a used-up quota moves).
fn start_nodes_with(
    n: usize,
    endpoints: &[String],
    accounts: &[&str],
    move_at: Option<u32>,
) -> Nodes {
    let beds: Vec<Bed> = (0..n).map(|_| bed::new(&["manifests"])).collect();
    let files: Vec<PathBuf> = beds
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let node = format!("n{}", i + 1);
            manifest(b, &node, endpoints, accounts, move_at, |_| {})
        })
        .collect();
    let controllers = beds
        .iter()
        .zip(&files)
        .map(|(b, f)| Some(b.controller(f, "controller", None)))
        .collect();
    for b in &beds {
        wait_for(Duration::from_secs(30), "every pool up on a", || {
            all_on(b, "a").then_some(())
        });
    }
    (beds, files, controllers)
}

/// The time of a journal entry.
fn time(entry: &serde_json::Value) -> jiff::Timestamp {
    entry["time"].as_str().unwrap().parse().unwrap()
}

/// Every pool session of `bed` runs under `account`.
fn all_on(bed: &Bed, account: &str) -> bool {
    let sessions = bed.sessions("w-");
    sessions.len() == 2 && sessions.iter().all(|s| bed.account(s) == account)
}

#[test]
fn an_exhaustion_on_one_node_should_move_every_node_within_a_second() {
    let Some(mut cluster) = Cluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let (beds, files, mut controllers) = start_nodes(3, &endpoints);
    let (code, nodes) = beds[0].run(&["get", "nodes", "-f", &files[0].to_string_lossy()]);
    assert_eq!(code, 0, "{nodes}");
    wait_for(Duration::from_secs(10), "three nodes up", || {
        let (_, nodes) = beds[0].run(&["get", "nodes", "-f", &files[0].to_string_lossy()]);
        (nodes.matches(" up ").count() == 3).then_some(())
    });

    // One etcd member killed first: what follows holds on the two left.
    cluster.kill(0);
    // Account a runs out on node 1: its next turn there hits the limit.
    std::fs::write(beds[0].root.join("a/.sim-limit"), "11:59pm (UTC)\n").unwrap();
    beds[0].drop_task("work", "t0.md", "do the thing");
    for b in &beds {
        wait_for(Duration::from_secs(30), "every session on b", || {
            all_on(b, "b").then_some(())
        });
    }
    let ledger = serde_json::Value::from(ledger(&beds[2], &files[2]));
    assert_eq!(ledger[0]["name"], "a", "{ledger}");
    assert_eq!(ledger[0]["seenBy"], "n1", "{ledger}");
    assert!(
        ledger[0]["reading"]
            .as_str()
            .is_some_and(|r| r.contains("You've hit your")),
        "the reading behind it: {ledger}"
    );
    wait_for(
        Duration::from_secs(5),
        "node 2's last swap in the fleet view",
        || {
            let (_, nodes) = beds[0].run(&["get", "nodes", "-f", &files[0].to_string_lossy()]);
            nodes
                .lines()
                .any(|l| l.starts_with("n2") && l.contains("a -> b at"))
                .then_some(())
        },
    );
    let seen = beds[0]
        .events("quotaDetected")
        .first()
        .map(time)
        .expect("node 1 saw the limit");
    for (i, b) in beds.iter().enumerate().skip(1) {
        let learnt = b.events("fleetLedger");
        assert!(
            !learnt.is_empty(),
            "node {} learnt it from the ledger",
            i + 1
        );
        let last_move = b
            .journal()
            .iter()
            .filter(|e| e["action"]["action"] == "moveSession" && e["ok"] == true)
            .map(time)
            .max()
            .expect("moves");
        let took = last_move.duration_since(seen);
        assert!(
            took <= jiff::SignedDuration::from_secs(1),
            "node {}: its last move {took:?} after node 1 saw the limit",
            i + 1
        );
        assert!(
            b.events("quotaDetected").is_empty(),
            "node {}: none of its turns met the limit",
            i + 1
        );
    }

    // Still one member down: tasks go on.
    beds[1].drop_task("work", "t1.md", "do the thing");
    wait_for(Duration::from_secs(30), "t1 done on node 2", || {
        (beds[1].files("work", "done") == ["t1.md"]).then_some(())
    });

    // Node 3 killed with SIGKILL: gone after its lease, its sessions left alone.
    let sessions_3 = beds[2].sessions("w-");
    let mut killed = controllers[2].take().unwrap();
    let _ = killed.child.kill();
    let _ = killed.child.wait();
    let gone = wait_for(Duration::from_secs(15), "node 3 gone", || {
        let (_, nodes) = beds[1].run(&["get", "nodes", "-f", &files[1].to_string_lossy()]);
        nodes
            .lines()
            .any(|l| l.starts_with("n3") && l.contains(" gone "))
            .then_some(nodes)
    });
    assert!(
        gone.lines()
            .any(|l| l.starts_with("n1") && l.contains(" up ")),
        "{gone}"
    );
    assert_eq!(beds[2].sessions("w-"), sessions_3, "node 3's sessions stay");

    // Every member killed: nodes 1 and 2 run on, and say degraded.
    cluster.kill(1);
    cluster.kill(2);
    wait_for(Duration::from_secs(15), "node 2 degraded", || {
        let (_, out) = beds[1].run(&["get", "sessions", "-f", &files[1].to_string_lossy()]);
        out.contains("degraded").then_some(())
    });
    beds[1].drop_task("work", "t2.md", "do the thing");
    wait_for(
        Duration::from_secs(30),
        "t2 done on node 2 without etcd",
        || {
            beds[1]
                .files("work", "done")
                .contains(&"t2.md".to_owned())
                .then_some(())
        },
    );
    // etcd back: the fleet view is whole again within 5 s.
    for i in 0..3 {
        cluster.restart(i);
    }
    cluster.wait_healthy(Duration::from_secs(30));
    wait_for(Duration::from_secs(5), "nodes 1 and 2 up again", || {
        let (_, nodes) = beds[1].run(&["get", "nodes", "-f", &files[1].to_string_lossy()]);
        (nodes.matches(" up ").count() == 2).then_some(())
    });
    wait_for(
        Duration::from_secs(5),
        "node 2 journals the fleet back",
        || (!beds[1].events("fleetRestored").is_empty()).then_some(()),
    );
    let (_, out) = beds[1].run(&["get", "sessions", "-f", &files[1].to_string_lossy()]);
    assert!(!out.contains("degraded"), "{out}");
    drop(controllers);
}

#[test]
fn two_nodes_at_the_limit_at_once_should_swap_once_each_through_flapping_reports() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let (beds, _, controllers) = start_nodes(2, &endpoints);
    // Both nodes meet account a's limit at the same moment.
    for b in &beds {
        std::fs::write(b.root.join("a/.sim-limit"), "11:59pm (UTC)\n").unwrap();
    }
    for b in &beds {
        b.drop_task("work", "t0.md", "do the thing");
    }
    for b in &beds {
        wait_for(Duration::from_secs(30), "every session on b", || {
            all_on(b, "b").then_some(())
        });
    }
    // Then 20 s (FAILOVER_FLAP_SECS) of flapping reports in the ledger: a reset
    // already past, then one to come, again and again, as a confused node would write
    // them.
    let flaps = std::env::var("FAILOVER_FLAP_SECS")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(20)
        * 2;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let etcd = failover::Etcd::new(&endpoints, std::path::Path::new("")).unwrap();
    let (entries, _) = runtime.block_on(etcd.range("/t/accounts/")).unwrap();
    assert_eq!(
        entries.iter().map(|kv| kv.key.as_str()).collect::<Vec<_>>(),
        ["/t/accounts/a"],
        "one ledger entry: {entries:?}"
    );
    let now = jiff::Timestamp::now();
    for i in 0..flaps {
        let until = if i % 2 == 0 {
            now - jiff::SignedDuration::from_mins(1)
        } else {
            now + jiff::SignedDuration::from_mins(30 + i)
        };
        let entry = serde_json::json!({"exhausted": {"until": until, "node": "n9"}});
        runtime
            .block_on(etcd.put("/t/accounts/a", &entry.to_string(), None))
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
    }
    for (i, b) in beds.iter().enumerate() {
        assert_eq!(b.events("swap").len(), 1, "node {}: one swap", i + 1);
        assert!(all_on(b, "b"), "node {}: no ping-pong", i + 1);
    }
    drop(controllers);
}

#[test]
fn a_use_over_move_at_on_one_node_should_move_the_others_before_their_turns_reach_it() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let (beds, _, controllers) = start_nodes(2, &endpoints);
    // Node 1's status line says account a is at 96 % from its next answer on.
    std::fs::write(beds[0].root.join("a/.sim-usage"), "96 20").unwrap();
    beds[0].drop_task("work", "t0.md", "the task that reads 96 %");
    for b in &beds {
        wait_for(Duration::from_secs(30), "every session on b", || {
            all_on(b, "b").then_some(())
        });
    }
    let swap = &beds[1].events("swap")[0];
    assert_eq!(swap["reason"], "usage 96% reached moveAt 95%", "{swap}");
    let reported = beds[0].events("usageCrossed");
    let first = reported.first().map(time).expect("node 1 read 96 %");
    let moved = time(swap);
    assert!(
        moved.duration_since(first) <= jiff::SignedDuration::from_secs(1),
        "node 2 swapped {:?} after node 1's reading",
        moved.duration_since(first)
    );
    assert!(
        beds[1].events("usageCrossed").is_empty(),
        "node 2's own agents read nothing"
    );
    drop(controllers);
}

#[test]
fn a_node_should_join_an_etcd_that_asks_for_a_user_and_password() {
    let Some(cluster) = Cluster::start(1) else {
        return;
    };
    cluster.enable_auth("s3cret");
    let endpoints = cluster.endpoints();
    let bed = bed::new(&["manifests"]);
    let password = bed.write("etcd-password", "s3cret\n");
    let file = node_with(&bed, "n1", &endpoints, |f| {
        f.username = "root".into();
        f.password_file = password.clone();
    });
    let controller = bed.controller(&file, "controller", None);
    let nodes = wait_for(Duration::from_secs(30), "the node up", || {
        let (code, nodes) = bed.run(&["get", "nodes", "-f", &file.to_string_lossy()]);
        (code == 0
            && nodes
                .lines()
                .any(|l| l.starts_with("n1") && l.contains(" up ")))
        .then_some(nodes)
    });
    assert!(!nodes.contains("s3cret"));
    // Without the user, etcd says why, and so does get.
    let anonymous = node(&bed, "n1", &endpoints);
    let (code, out) = bed.run(&["get", "nodes", "-f", &anonymous.to_string_lossy()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("user name is empty"), "{out}");
    assert!(
        !bed.log("controller").contains("s3cret"),
        "no password in the log"
    );
    drop(controller);
}

/// When the last move of `bed` to `account` happened.
fn last_move_to(bed: &Bed, account: &str) -> jiff::Timestamp {
    bed.journal()
        .iter()
        .filter(|e| {
            e["action"]["action"] == "moveSession"
                && e["ok"] == true
                && e["action"]["session"]["account"] == account
        })
        .map(time)
        .max()
        .unwrap_or_else(|| panic!("no move to {account}"))
}

#[test]
fn exhaustions_seen_on_two_nodes_should_move_every_node_on_at_once_cooldown_or_not() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();
    // Three accounts, the default quota settings (a five-minute cooldown).
    let (beds, _, _controllers) = start_nodes_with(3, &endpoints, &["a", "b", "c"], None);
    for (account, next, seer) in [("a", "b", 0), ("b", "c", 2)] {
        std::fs::write(
            beds[seer].root.join(account).join(".sim-limit"),
            "11:59pm (UTC)\n",
        )
        .unwrap();
        beds[seer].drop_task("work", &format!("{account}.md"), "do the thing");
        for (i, b) in beds.iter().enumerate() {
            wait_for(
                Duration::from_secs(30),
                &format!("node {} on {next}", i + 1),
                || all_on(b, next).then_some(()),
            );
        }
        let seen = beds[seer]
            .events("quotaDetected")
            .iter()
            .find(|e| e["account"] == account)
            .map(time)
            .unwrap_or_else(|| panic!("node {} saw {account}'s limit", seer + 1));
        for (i, b) in beds.iter().enumerate() {
            let took = last_move_to(b, next).duration_since(seen);
            eprintln!("{account} -> {next}: node {} moved {took:#} after", i + 1);
            assert!(
                took <= jiff::SignedDuration::from_secs(1),
                "node {}: its last move to {next} {took:#} after node {} saw {account}'s limit",
                i + 1,
                seer + 1
            );
        }
    }
    for b in &beds {
        assert!(
            b.events("allExhausted").is_empty(),
            "{}",
            b.log("controller")
        );
    }
}

/// Claude Code's wording of a reset `hours` from now, as its limit line says it.
fn reset_in(hours: i64) -> String {
    let t = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(hours))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC);
    let h = t.hour();
    let h12 = if h % 12 == 0 { 12 } else { h % 12 };
    let half = if h < 12 { "am" } else { "pm" };
    format!("{h12}:{:02}{half} (UTC)\n", t.minute())
}

/// What node `bed` holds of account `account`'s reset, in its facts.
fn local_until(bed: &Bed, account: &str) -> Option<String> {
    let facts = std::fs::read_to_string(bed.state().join("facts.json")).ok()?;
    let facts: serde_json::Value = serde_json::from_str(&facts).ok()?;
    facts["exhaustedUntil"][account].as_str().map(str::to_owned)
}

/// The fleet ledger's entries, as node `bed` (manifests `file`) reads them.
fn ledger(bed: &Bed, file: &std::path::Path) -> Vec<serde_json::Value> {
    let (code, out) = bed.run(&[
        "get",
        "accounts",
        "--fleet",
        "-o",
        "json",
        "-f",
        &file.to_string_lossy(),
    ]);
    assert_eq!(code, 0, "{out}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_node_cut_off_from_etcd_should_run_alone_and_its_later_reset_should_win_when_it_is_back() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();
    // Node 3 reaches every member through a proxy the test cuts: a partition, while
    // nodes 1 and 2 keep the whole cluster.
    let proxies: Vec<Proxy> = endpoints.iter().map(|e| Proxy::start(e)).collect();
    let cut_off: Vec<String> = proxies.iter().map(Proxy::endpoint).collect();
    let beds: Vec<Bed> = (0..3).map(|_| bed::new(&["manifests"])).collect();
    let files: Vec<PathBuf> = beds
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let eps = if i == 2 { &cut_off } else { &endpoints };
            manifest(b, &format!("n{}", i + 1), eps, &["a", "b"], None, |_| {})
        })
        .collect();
    let _controllers: Vec<Spawned> = beds
        .iter()
        .zip(&files)
        .map(|(b, f)| b.controller(f, "controller", None))
        .collect();
    let nodes = |i: usize| {
        beds[i]
            .run(&["get", "nodes", "-f", &files[i].to_string_lossy()])
            .1
    };
    wait_for(Duration::from_secs(30), "three nodes up", || {
        (nodes(0).matches(" up ").count() == 3).then_some(())
    });
    for b in &beds {
        wait_for(Duration::from_secs(30), "every pool on a", || {
            all_on(b, "a").then_some(())
        });
    }

    for p in &proxies {
        p.cut();
    }
    let cut = std::time::Instant::now();
    wait_for(Duration::from_secs(15), "node 3 degraded", || {
        let (_, out) = beds[2].run(&["get", "sessions", "-f", &files[2].to_string_lossy()]);
        out.contains("degraded").then_some(())
    });
    eprintln!("node 3 said degraded {:?} after the cut", cut.elapsed());
    wait_for(Duration::from_secs(15), "node 3 gone for node 1", || {
        nodes(0)
            .lines()
            .any(|l| l.starts_with("n3") && l.contains(" gone "))
            .then_some(())
    });
    // Both sides of the partition see account a run out, node 3 with the later reset.
    std::fs::write(beds[0].root.join("a/.sim-limit"), reset_in(1)).unwrap();
    beds[0].drop_task("work", "t1.md", "do the thing on node 1");
    for b in &beds[..2] {
        wait_for(Duration::from_secs(30), "nodes 1 and 2 on b", || {
            all_on(b, "b").then_some(())
        });
    }
    let early = local_until(&beds[0], "a").expect("node 1 holds a's reset");
    assert!(
        all_on(&beds[2], "a"),
        "node 3 heard nothing through the cut"
    );
    assert!(local_until(&beds[2], "a").is_none(), "node 3 heard nothing");
    let late_line = reset_in(2);
    std::fs::write(beds[2].root.join("a/.sim-limit"), &late_line).unwrap();
    beds[2].drop_task("work", "t3.md", "do the thing on node 3");
    wait_for(Duration::from_secs(30), "node 3 on b, alone", || {
        all_on(&beds[2], "b").then_some(())
    });
    let late = local_until(&beds[2], "a").expect("node 3 holds a's reset");
    assert!(late > early, "{late} after {early}");
    let a = |entries: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        entries.into_iter().filter(|e| e["name"] == "a").collect()
    };
    let before = a(ledger(&beds[0], &files[0]));
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["seenBy"], "n1", "{before:?}");

    for p in &proxies {
        p.heal();
    }
    let healed = std::time::Instant::now();
    wait_for(Duration::from_secs(15), "node 3 back", || {
        (!beds[2].events("fleetRestored").is_empty()).then_some(())
    });
    // One entry, the later reset; every node takes it.
    let entry = wait_for(
        Duration::from_secs(10),
        "the later reset in the ledger",
        || {
            let entries = a(ledger(&beds[1], &files[1]));
            (entries.len() == 1 && entries[0]["exhaustedUntil"].as_str() == Some(late.as_str()))
                .then(|| entries[0].clone())
        },
    );
    eprintln!(
        "the ledger after the heal ({:?}): {entry}",
        healed.elapsed()
    );
    assert_eq!(
        entry["seenBy"], "n3",
        "the later reset with its node: {entry}"
    );
    assert!(
        entry["reading"]
            .as_str()
            .is_some_and(|r| r.contains(late_line.trim().trim_end_matches(" (UTC)"))),
        "the reading behind the later reset: {entry}"
    );
    for (i, b) in beds.iter().enumerate() {
        wait_for(
            Duration::from_secs(10),
            "every node on the later reset",
            || (local_until(b, "a").as_deref() == Some(late.as_str())).then_some(()),
        );
        eprintln!(
            "node {} holds a's reset at {late} {:?} after the heal",
            i + 1,
            healed.elapsed()
        );
    }
    wait_for(Duration::from_secs(10), "three nodes up again", || {
        (nodes(1).matches(" up ").count() == 3).then_some(())
    });
    // Each task done once, on its own node; none of node 2's turns met the limit.
    for (i, task) in [(0, "t1.md"), (2, "t3.md")] {
        wait_for(
            Duration::from_secs(30),
            "each task done on its node",
            || (beds[i].files("work", "done") == [task]).then_some(()),
        );
    }
    assert!(beds[1].files("work", "done").is_empty());
    assert!(beds[1].events("quotaDetected").is_empty());
    for b in &beds {
        assert!(b.files("work", "failed").is_empty());
        assert!(
            b.events("allExhausted").is_empty(),
            "{}",
            b.log("controller")
        );
        assert!(!b.log("controller").contains("panicked"));
    }
}
