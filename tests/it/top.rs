//! `failover top` in a pane of the bed's private tmux server, next to a live pool of
//! stand-in agents: keys sent with `send-keys`, the dashboard read with `capture-pane`.

use std::time::Duration;

use failover::api::ControllerConfigSpec;
use failover::testbed::manifest::{Manifest, duration};
use failover::testbed::wait_for;

use crate::bed::{self, BIN};

const WAIT: Duration = Duration::from_secs(20);
/// The dashboard's pane.
const DASH: &str = "=dash:";

#[test]
fn top_should_redraw_a_swap_by_itself_filter_describe_attach_restart_return_and_restore_the_terminal()
 {
    let bed = bed::new(&["a", "b", "shared", "work", "p/.agent-queue/inbox"]);
    let r = &bed.root;
    // What each account's status line reports once a turn succeeded: 69 % and 12 % of
    // the 5-hour window used.
    std::fs::write(r.join("a/.sim-usage"), "69 20").unwrap();
    std::fs::write(r.join("b/.sim-usage"), "12 3").unwrap();
    // The stand-ins' control file: a line written there scripts the next turn.
    let control = r.join("control");
    std::fs::write(&control, "").unwrap();
    let m = Manifest::new()
        .account("a", r.join("a"))
        .account("b", r.join("b"))
        .priority(1)
        .shared_state("s", r.join("shared"))
        .agent("claude", &[BIN, "sim-agent"])
        .env("FAILOVER_SIM_TURN", "200ms")
        .env("FAILOVER_SIM_CONTROL", &control.to_string_lossy())
        .controller("c")
        .with(|c: &mut ControllerConfigSpec| {
            c.poll_interval = duration("200ms");
            c.dispatch.submit_delay = duration("50ms");
        })
        .pool("auto", "w-", 2..=2, r.join("work"))
        .inbox("p", r.join("p/.agent-queue/inbox"), "auto", r.join("work"));
    let manifest = bed.write("pool.yaml", &m.yaml());
    let _controller = bed.controller(&manifest, "controller", None);
    wait_for(WAIT, "two sessions on account a", || {
        ["w-0", "w-1"]
            .iter()
            .all(|s| bed.account(s) == "a" && bed.t.capture(&format!("={s}:")).contains('❯'))
            .then_some(())
    });

    // The operator's shell, in a pane of the same server.
    let state = bed.state().to_string_lossy().into_owned();
    let socket = bed.t.socket().to_string_lossy().into_owned();
    bed.t.new_session(
        "dash",
        r,
        &[
            ("PS1", "operator$ "),
            ("TZ", "UTC"),
            ("FAILOVER_STATE_DIR", &state),
            ("FAILOVER_TMUX_SOCKET", &socket),
            ("FAILOVER_TMUX_CONFIG", "/dev/null"),
        ],
        &["bash", "--norc", "--noprofile"],
    );
    bed.t
        .wait_screen(DASH, WAIT, "the prompt", |s| s.contains("operator$"));
    bed.t.type_text(
        DASH,
        &format!("{BIN} top -f {}", manifest.to_string_lossy()),
    );
    bed.t.keys(DASH, &["Enter"]);
    bed.t.wait_screen(DASH, WAIT, "the dashboard", |s| {
        s.contains("failover top") && s.contains("w-0") && s.contains("w-1")
    });
    // What it draws, the controller publishes after its rounds: the dashboard reads it
    // instead of looking at tmux itself.
    let board = std::fs::read_to_string(bed.state().join("board.json")).unwrap();
    assert!(
        board.contains(r#""name":"w-0""#) && board.contains(r#""name":"w-1""#),
        "{board}"
    );

    // A first task under a: its status line reports a's use, drawn as a bar.
    bed.drop_task("p", "warm.md", "a first task");
    let screen = bed.t.wait_screen(DASH, WAIT, "a's use", |s| {
        s.contains("5h ███████░░░ 31 % left · resets in")
    });
    assert!(screen.contains("a  active"), "{screen}");

    // Account a runs out: the accounts' states change on screen, no key pressed.
    std::fs::write(r.join("a/.sim-limit"), "11:59pm (UTC)").unwrap();
    bed.drop_task("p", "quota.md", "a task that meets the limit");
    let screen = bed.t.wait_screen(DASH, WAIT, "the swap", |s| {
        s.contains("a  exhausted until 23:59") && s.contains("b  active")
    });
    assert!(screen.contains("last swap: "), "{screen}");
    assert!(screen.contains("a -> b"), "{screen}");

    // `/w-1` keeps w-1's row only.
    bed.t.keys(DASH, &["/"]);
    bed.t.type_text(DASH, "w-1");
    bed.t.keys(DASH, &["Enter"]);
    let row = |s: &str, name: &str| {
        s.lines()
            .any(|l| l.contains(&format!(" {name} ")) && l.contains("pool auto"))
    };
    // Rows are filtered as it is typed; after Enter the key line shows the filter.
    bed.t.wait_screen(DASH, WAIT, "the filter", |s| {
        row(s, "w-1") && !row(s, "w-0") && s.contains("[/w-1]")
    });

    // `d` describes the selection as `failover describe` does.
    bed.t.keys(DASH, &["d"]);
    bed.t.wait_screen(DASH, WAIT, "the description", |s| {
        s.contains("describe session w-1") && s.contains("Name:            w-1")
    });
    bed.t.keys(DASH, &["Escape"]);
    bed.t
        .wait_screen(DASH, WAIT, "the description closed", |s| {
            !s.contains("describe session w-1") && row(s, "w-1")
        });

    // Enter attaches to w-1 (the agent's screen fills the pane); a detach comes back.
    bed.t.keys(DASH, &["Enter"]);
    bed.t.wait_screen(DASH, WAIT, "w-1's own screen", |s| {
        s.contains("Claude Code") && !s.contains("failover top")
    });
    bed.t.keys(DASH, &["C-b", "d"]);
    bed.t.wait_screen(DASH, WAIT, "the dashboard again", |s| {
        s.contains("failover top") && s.contains("back from w-1")
    });

    // `x`, then `y`: w-1's agent restarts, as `failover restart session w-1` does.
    bed.t.keys(DASH, &["x"]);
    bed.t.wait_screen(DASH, WAIT, "the question", |s| {
        s.contains("restart w-1? y/n")
    });
    bed.t.keys(DASH, &["y"]);
    bed.t.wait_screen(DASH, WAIT, "the answer", |s| {
        s.contains("asked the controller") && s.contains("to restart session w-1")
    });
    wait_for(WAIT, "w-1 restarted at the operator's request", || {
        bed.events("action")
            .iter()
            .any(|e| {
                e["action"]["action"] == "restartSession"
                    && e["action"]["session"]["name"] == "w-1"
                    && e["action"]["reason"] == "restarted at the operator's request"
            })
            .then_some(())
    });

    // `r`, then `y`: a task whose turn hangs goes back to its inbox, and runs again to
    // its end, once. The earlier tasks end first: the control line scripts the next
    // turn of any stand-in, and quota.md's, resumed on b, could take it.
    wait_for(WAIT, "warm.md and quota.md done", || {
        let done = bed.files("p", "done");
        ["warm.md", "quota.md"]
            .iter()
            .all(|t| done.contains(&(*t).to_owned()))
            .then_some(())
    });
    std::fs::write(&control, "hang\n").unwrap();
    bed.drop_task("p", "hang.md", "a task whose first turn hangs");
    let session = wait_for(WAIT, "hang.md's turn under way", || {
        let facts: serde_json::Value =
            serde_json::from_slice(&std::fs::read(bed.state().join("facts.json")).ok()?).ok()?;
        let (name, _) = facts["sessions"]
            .as_object()?
            .iter()
            .find(|(_, f)| f["task"]["task"] == "hang.md" && f["task"]["stage"] == "running")?;
        Some(name.clone())
    });
    bed.t.keys(DASH, &["/"]);
    bed.t.type_text(DASH, &session);
    bed.t.keys(DASH, &["Enter"]);
    bed.t
        .wait_screen(DASH, WAIT, "its row, with its task", |s| {
            // The session's row, not the journal's line that names both.
            s.lines().any(|l| row(l, &session) && l.contains("hang.md"))
        });
    bed.t.keys(DASH, &["r"]);
    bed.t.wait_screen(DASH, WAIT, "the question", |s| {
        s.contains(&format!("return hang.md from {session} to its inbox? y/n"))
    });
    bed.t.keys(DASH, &["y"]);
    wait_for(WAIT, "hang.md done", || {
        bed.files("p", "done")
            .contains(&"hang.md".to_owned())
            .then_some(())
    });
    let about = |event: &str| {
        bed.events(event)
            .into_iter()
            .filter(|e| e["action"]["task"]["name"] == "hang.md")
            .count()
    };
    assert_eq!((about("taskRequeued"), about("taskDone")), (1, 1));

    // `q` gives the terminal back as it was: the shell's prompt, no escape codes.
    bed.t.keys(DASH, &["q"]);
    let screen = bed.t.wait_screen(DASH, WAIT, "the shell again", |s| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::trim)
            == Some("operator$")
    });
    assert!(!screen.contains("failover top ·"), "{screen}");
    assert!(
        !screen.contains("[?") && !screen.contains("^[") && !screen.contains('\u{1b}'),
        "{screen}"
    );
}
