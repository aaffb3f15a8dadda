//! The control-mode connection against a real, private tmux server.

use std::time::Duration;

use failover::testbed::manifest::Manifest;
use failover::testbed::{TmuxServer, wait_for};
use failover::tmux::{Cmd, Error, Event, Mode, Tmux};

async fn connect(t: &TmuxServer) -> Tmux {
    t.manage().await
}

#[tokio::test]
async fn connect_should_start_the_server_with_an_idle_control_session() {
    let t = TmuxServer::start();
    assert!(t.sessions().is_empty());
    let tmux = connect(&t).await;
    assert_eq!(t.sessions(), vec!["_failover-control".to_owned()]);
    // The pane is "tmux" until its process has exec'd the command.
    wait_for(
        Duration::from_secs(5),
        "the control session to run sleep",
        || {
            let command = t.tmux(&[
                "display-message",
                "-p",
                "-t",
                "=_failover-control:",
                "#{pane_current_command}",
            ]);
            (command.trim() == "sleep").then_some(())
        },
    );
    let out = tmux
        .run(Cmd::new("list-sessions").args(["-F", "#{session_name}"]))
        .await
        .unwrap();
    assert_eq!(out, vec!["_failover-control"]);
}

#[tokio::test]
async fn observe_should_not_start_a_server() {
    let t = TmuxServer::start();
    let observe = Mode::Observe {
        owner: "failover".into(),
    };
    let tmux = Tmux::connect(t.server(), observe.clone()).await.unwrap();
    assert!(tmux.is_none());
    assert!(t.sessions().is_empty());
    // With a person's session only, it attaches to that one and creates nothing.
    t.new_session("mine", t.dir(), &[], &["sleep", "1000"]);
    let tmux = Tmux::connect(t.server(), observe).await.unwrap().unwrap();
    let out = tmux
        .run(Cmd::new("list-sessions").args(["-F", "#{session_name}"]))
        .await
        .unwrap();
    assert_eq!(out, vec!["mine"]);
}

#[tokio::test]
async fn arguments_should_reach_tmux_byte_exact() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    let tricky =
        "a \"b\" $HOME ; kill-server \\ `x` $(y) 'z'\n#{session_name} ~ \t\u{1b}[0m é ❯\u{a0}";
    tmux.run(Cmd::new("set-option").args(["-t", "=_failover-control:", "@tricky", tricky]))
        .await
        .unwrap();
    let out = tmux
        .run(Cmd::new("show-options").args(["-v", "-t", "=_failover-control:", "@tricky"]))
        .await
        .unwrap();
    assert_eq!(out.join("\n"), tricky);
    assert_eq!(
        t.sessions(),
        vec!["_failover-control".to_owned()],
        "nothing was run"
    );
}

#[tokio::test]
async fn pipelined_lines_should_get_their_own_answers_in_order() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    let lines: Vec<Vec<Cmd>> = (0..200)
        .map(|i| vec![Cmd::new("display-message").args(["-p", &format!("answer {i}")])])
        .collect();
    let before = tmux.processes_started();
    let answers = tmux.pipeline(&lines).await.unwrap();
    assert_eq!(tmux.processes_started(), before, "no process per command");
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), vec![vec![format!("answer {i}")]]);
    }
}

#[tokio::test]
async fn a_failing_command_should_stop_its_list_and_name_itself() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    t.new_session("taken", t.dir(), &[], &["sleep", "1000"]);
    let err = tmux
        .run_list(&[
            Cmd::new("new-session").args(["-d", "-s", "taken", "--", "sleep", "1"]),
            Cmd::new("set-option").args(["-t", "=taken:", "@failover-owner", "failover"]),
        ])
        .await
        .unwrap_err();
    match err {
        Error::Command { command, message } => {
            assert!(command.starts_with("new-session"), "{command}");
            assert!(message.contains("duplicate session"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let mark = t.tmux(&["show-options", "-qv", "-t", "=taken:", "@failover-owner"]);
    assert_eq!(mark.trim(), "", "the person's session must not be marked");
    // The connection still answers afterwards.
    tmux.run(Cmd::new("display-message").args(["-p", "ok"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn notifications_should_be_events_not_answers() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    let mut events = tmux.events();
    let out = tmux
        .run_list(&[
            Cmd::new("new-session").args(["-d", "-s", "n1", "--", "sleep", "1000"]),
            Cmd::new("display-message").args(["-p", "after"]),
        ])
        .await
        .unwrap();
    assert_eq!(out, vec![Vec::<String>::new(), vec!["after".to_owned()]]);
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::SessionsChanged) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(event.is_ok(), "no sessions-changed notification");
}

#[tokio::test]
async fn a_killed_server_should_be_reported_and_reconnected() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    let mut events = tmux.events();
    t.tmux(&["kill-server"]);
    let exit = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(Event::Exit(_)) = events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(exit.is_ok(), "no exit event");
    let out = tmux
        .run(Cmd::new("list-sessions").args(["-F", "#{session_name}"]))
        .await
        .unwrap();
    assert_eq!(
        out,
        vec!["_failover-control"],
        "reconnecting starts a new server"
    );
}

/// A session `cat` whose input (echo off) lands in the file it returns.
fn cat_session(t: &TmuxServer) -> std::path::PathBuf {
    let out = t.dir().join("out");
    let out_arg = out.to_string_lossy().into_owned();
    t.new_session(
        "cat",
        t.dir(),
        &[],
        &["sh", "-c", &format!("stty -echo; cat > '{out_arg}'")],
    );
    out
}

#[tokio::test]
async fn paste_should_deliver_text_through_a_buffer() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    let out = cat_session(&t);
    let text = "line $(one) `two`\n'three' \"four\" \\ ; end\n";
    assert!(tmux.paste("=cat:", text, t.dir(), None).await.unwrap());
    let got = wait_for(Duration::from_secs(5), "the pasted text", || {
        let got = std::fs::read_to_string(&out).ok()?;
        (got.len() >= text.len()).then_some(got)
    });
    // paste-buffer sends a newline as CR, which the terminal hands to cat as LF.
    assert_eq!(got.replace('\r', "\n"), text);
    let left: Vec<_> = std::fs::read_dir(t.dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("failover-"))
        .collect();
    assert!(left.is_empty(), "the buffer file must be removed");
    let big = "x".repeat(failover::tmux::MAX_PASTE + 1);
    assert!(matches!(
        tmux.paste("=cat:", &big, t.dir(), None).await,
        Err(Error::TooLarge { .. })
    ));
}

#[tokio::test]
async fn a_guarded_paste_should_reach_only_a_session_that_passes_the_guard() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    let out = cat_session(&t);
    let refused = tmux
        .paste("=cat:", "not for you\n", t.dir(), Some("0"))
        .await
        .unwrap();
    assert!(!refused, "a false condition pastes nothing");
    let pasted = tmux
        .paste("=cat:", "for you\n", t.dir(), Some("1"))
        .await
        .unwrap();
    assert!(pasted);
    let got = wait_for(Duration::from_secs(5), "the pasted text", || {
        let got = std::fs::read_to_string(&out).ok()?;
        got.contains("for you").then_some(got)
    });
    assert!(!got.contains("not for you"), "{got:?}");
    let buffers = t.tmux(&["list-buffers", "-F", "#{buffer_name}"]);
    assert!(buffers.trim().is_empty(), "buffers left: {buffers}");
}

#[tokio::test]
async fn observation_should_start_no_process_once_connected() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    for i in 0..30 {
        t.new_session(&format!("s{i}"), t.dir(), &[], &["sleep", "1000"]);
    }
    let text = Manifest::new().account("a", t.dir()).yaml();
    let m = failover::api::load_str("m.yaml", &text).unwrap();
    let before = tmux.processes_started();
    for _ in 0..10 {
        let o = failover::observe(Some(&tmux), &m, Default::default(), None)
            .await
            .unwrap();
        assert_eq!(o.sessions.len(), 30, "the control session is not listed");
    }
    assert_eq!(tmux.processes_started(), before);
}

#[tokio::test]
async fn commands_a_guard_runs_should_not_shift_the_answers_of_the_next_lines() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    t.new_session("g", t.dir(), &[], &["sleep", "1000"]);
    t.tmux(&["set-option", "-t", "=g:", "@failover-owner", "me"]);
    let guard = |owner: &str, inner: &str| {
        Cmd::new("if-shell").args([
            "-F",
            "-t",
            "=g:",
            &format!("#{{==:#{{@failover-owner}},{owner}}}"),
            inner,
        ])
    };
    let show = |i: u32| vec![Cmd::new("display-message").args(["-p", &format!("plain {i}")])];
    let lines = vec![
        show(0),
        vec![guard(
            "me",
            "display-message -p inner-a ; display-message -p inner-b",
        )],
        show(1),
        vec![guard("someone-else", "display-message -p never")],
        show(2),
        vec![guard("me", "kill-session -t =no-such-session")],
        show(3),
    ];
    let answers = tmux.pipeline(&lines).await.unwrap();
    let plain = |i: usize| answers[i].as_ref().unwrap().last().cloned().unwrap();
    assert_eq!(plain(0), vec!["plain 0"]);
    assert_eq!(
        answers[1].as_ref().unwrap()[1..],
        [vec!["inner-a".to_owned()], vec!["inner-b".to_owned()]]
    );
    assert_eq!(plain(2), vec!["plain 1"]);
    assert_eq!(
        answers[3].as_ref().unwrap().len(),
        1,
        "a false guard runs nothing"
    );
    assert_eq!(plain(4), vec!["plain 2"]);
    assert!(
        matches!(&answers[5], Err(Error::Command { message, .. }) if message.contains("can't find session"))
    );
    assert_eq!(plain(6), vec!["plain 3"]);
}

#[tokio::test]
async fn actions_should_leave_a_session_alone_that_lost_our_mark() {
    use failover::plan::Action;
    use failover::{self as act, Context};
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    t.new_session("x", t.dir(), &[], &["sleep", "1000"]);
    t.tmux(&["set-option", "-t", "=x:", "@failover-owner", "failover"]);
    // Observed as ours, then handed to a person before the action runs.
    t.tmux(&["set-option", "-u", "-t", "=x:", "@failover-owner"]);
    let pid = t.pane_pid("=x:");
    let ctx = Context {
        tmux: Some(&tmux),
        owner: "failover",
        state_dir: None,
    };
    let delete = Action::Session(failover::plan::SessionAction::DeleteSession {
        name: "x".into(),
        reason: "test".into(),
    });
    let err = act::execute(&delete, ctx).await.unwrap_err();
    assert!(
        err.to_string().contains("no longer carries our owner mark"),
        "{err}"
    );
    assert_eq!(t.pane_pid("=x:"), pid, "the session must survive");
    // With the mark, the same action kills it.
    t.tmux(&["set-option", "-t", "=x:", "@failover-owner", "failover"]);
    act::execute(&delete, ctx).await.unwrap();
    assert!(!t.sessions().contains(&"x".to_owned()));
}

/// Looks at the agent's screen as observation does: its pane, pid and activity stamp
/// from `list-panes`, then its screen; with how many panes that look captured.
async fn look(tmux: &Tmux) -> (Option<String>, u64) {
    let line = tmux
        .run(Cmd::new("list-panes").args([
            "-t",
            "=agent:",
            "-F",
            "#{pane_id} #{pane_pid} #{window_activity}",
        ]))
        .await
        .unwrap()
        .remove(0);
    let f: Vec<&str> = line.split(' ').collect();
    let pane = failover::tmux::PaneRef {
        id: f[0],
        pid: f[1].parse().unwrap(),
        activity: f[2].parse().unwrap(),
    };
    let before = tmux.screens_captured();
    let screen = tmux.screens(&[pane]).await.unwrap().remove(0);
    (screen, tmux.screens_captured() - before)
}

#[tokio::test]
async fn a_screen_should_be_captured_again_only_after_it_changed() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    t.new_session("agent", t.dir(), &[], &["cat"]);
    // Once a capture was taken a second after the pane's last output, asking again
    // captures nothing: the capture stands.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (screen, captured) = look(&tmux).await;
        assert!(screen.is_some());
        if captured == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never reused a capture"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Output: the next looks capture that one pane, and see the text well before a
    // capture would be taken again for its age.
    t.tmux(&["send-keys", "-t", "=agent:", "-l", "hello there"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (screen, captured) = look(&tmux).await;
        assert!(captured <= 1);
        if screen.is_some_and(|s| s.contains("hello there")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the typed text never showed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The panes of `session` as the connection lists them, and whether that listing was
/// a full one.
async fn listed(tmux: &Tmux, session: &str) -> (Vec<failover::tmux::Listed>, bool) {
    let before = tmux.full_listings();
    let panes = tmux.panes().await.unwrap();
    let mine = panes.into_iter().filter(|p| p.session == session).collect();
    (mine, tmux.full_listings() > before)
}

/// Lists until a listing names only the panes that moved: the notifications of the last
/// changes were heard, and a full listing taken after them stands.
async fn settle(tmux: &Tmux) {
    for _ in 0..10 {
        if !listed(tmux, "").await.1 {
            return;
        }
    }
    panic!("every listing was a full one");
}

#[tokio::test]
async fn a_moved_listing_should_never_hide_what_a_person_changed() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    t.new_session_kept("work", t.dir(), &[], &["cat"]);
    let (panes, full) = listed(&tmux, "work").await;
    assert!(full, "the first listing is a full one");
    assert_eq!(panes.len(), 1);
    assert_eq!(panes[0].path, t.dir(), "the folder it was started in");
    settle(&tmux).await;
    let (panes, full) = listed(&tmux, "work").await;
    assert!(!full, "nothing changed: only what moved is listed");
    assert_eq!(panes.len(), 1);
    // Output shows as a later activity stamp, without a full listing (the window keeps
    // its name: tmux tells a rename, which makes the next listing a full one).
    t.tmux(&[
        "set-option",
        "-w",
        "-t",
        "=work:",
        "automatic-rename",
        "off",
    ]);
    settle(&tmux).await;
    let quiet = listed(&tmux, "work").await.0[0].activity;
    // tmux stamps output with the second: type once the clock is past the last stamp.
    while jiff::Timestamp::now().as_second().unsigned_abs() <= quiet {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.tmux(&["send-keys", "-t", "=work:", "-l", "x"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (panes, full) = listed(&tmux, "work").await;
        assert!(!full, "output alone lists only what moved");
        if panes[0].activity > quiet {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the output never showed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each change a person makes on the command line shows in the very next listing: a
    // session or a pane made or killed, a rename, a respawned process that draws.
    t.tmux(&["new-session", "-d", "-s", "other", "cat"]);
    let (panes, full) = listed(&tmux, "other").await;
    assert!(full && panes.len() == 1, "a session created");
    t.tmux(&["split-window", "-d", "-t", "=work:", "cat"]);
    let (panes, _) = listed(&tmux, "work").await;
    assert_eq!(panes.len(), 2, "a pane split");
    t.tmux(&["kill-pane", "-t", "=work:.1"]);
    let (panes, _) = listed(&tmux, "work").await;
    assert_eq!(panes.len(), 1, "a pane killed");
    t.tmux(&["rename-session", "-t", "=work", "renamed"]);
    let (panes, _) = listed(&tmux, "renamed").await;
    assert_eq!(panes.len(), 1, "the session renamed");
    let pid = panes[0].pid;
    t.tmux(&[
        "respawn-pane",
        "-k",
        "-t",
        "=renamed:",
        "sh -c 'echo respawned; exec cat'",
    ]);
    // Seen as soon as tmux has read the new process's output.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while listed(&tmux, "renamed").await.0[0].pid == pid {
        assert!(
            std::time::Instant::now() < deadline,
            "the respawn never showed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The agent exits: its death shows as soon as tmux has seen it.
    settle(&tmux).await;
    t.tmux(&["send-keys", "-t", "=renamed:", "C-d"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !t
        .tmux(&["display-message", "-p", "-t", "=renamed:", "#{pane_dead}"])
        .starts_with('1')
    {
        assert!(std::time::Instant::now() < deadline, "cat never exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (panes, full) = listed(&tmux, "renamed").await;
    assert!(full && panes[0].dead, "the agent died");
    // A command of ours that changes the server makes the next listing a full one: a
    // mark set through the connection shows at once.
    tmux.run(Cmd::new("set-option").args(["-t", "=renamed:", "@failover-owner", "me"]))
        .await
        .unwrap();
    let (panes, full) = listed(&tmux, "renamed").await;
    assert!(full, "after a command of ours");
    assert_eq!(panes[0].owner.as_deref(), Some("me"));
}

#[tokio::test]
async fn a_window_split_into_ten_panes_should_show_whole_at_the_next_listing() {
    let t = TmuxServer::start();
    let tmux = connect(&t).await;
    t.new_session_kept("many", t.dir(), &[], &["cat"]);
    settle(&tmux).await;
    // Nine silent splits between two listings: tmux tells no other session of them.
    for _ in 0..9 {
        t.tmux(&["split-window", "-d", "-t", "=many:", "-l", "1", "cat"]);
    }
    let (panes, _) = listed(&tmux, "many").await;
    assert_eq!(panes.len(), 10, "every pane of the split window");
    settle(&tmux).await;
    let (panes, full) = listed(&tmux, "many").await;
    assert!(!full, "a quiet window of ten panes lists only what moved");
    assert_eq!(panes.len(), 10);
    t.tmux(&["kill-pane", "-t", "=many:.9"]);
    let (panes, _) = listed(&tmux, "many").await;
    assert_eq!(panes.len(), 9, "a pane killed");
}
