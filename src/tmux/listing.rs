//! Listing the server's panes, in full only when something may have changed. tmux
//! pays for every format field of every pane it lists (about a microsecond each): a
//! full `list-panes -a` of 1000 panes with our ten fields costs it about 9 ms, a lean
//! one of the four fields that move on their own (pane, pid, death, the window's last
//! output) about 4 ms.
//!
//! The connection keeps the last full listing. The next one is lean when nothing may
//! have changed what only a full listing shows (sessions, names, options, start
//! folders): no notification arrived but output, this connection sent no command that
//! changes the server, it did not reconnect, and the full listing is younger than
//! [`FULL_EVERY`]. A lean listing that shows a pane new or gone, another pid or another
//! death falls back to a full one in the same observation. What no notification tells
//! (a person's `set-option` on a session, a pane moved between sessions of a window
//! that stays) is seen within [`FULL_EVERY`]; kills and respawns check the owner mark
//! in tmux itself when they run, whatever the listing said.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Cmd;

/// The tmux user option that marks a session as the controller's.
pub const OWNER_OPTION: &str = "@failover-owner";
/// The tmux user option naming the account a session runs under.
pub const ACCOUNT_OPTION: &str = "@failover-account";
/// The tmux user option holding the id of the pane the agent runs in.
pub const PANE_OPTION: &str = "@failover-pane";

/// A full listing is asked for at least this often.
pub const FULL_EVERY: Duration = Duration::from_secs(10);

/// The commands that only read: any other one sent on the connection may change what
/// a full listing shows.
const READERS: [&str; 6] = [
    "list-panes",
    "list-sessions",
    "list-windows",
    "capture-pane",
    "display-message",
    "show-options",
];

/// Whether `cmd` only reads the server.
pub(super) fn reads_only(cmd: &Cmd) -> bool {
    cmd.argv()
        .first()
        .is_some_and(|name| READERS.contains(&name.as_str()))
}

/// One pane as `list-panes -a` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its session's name.
    pub session: String,
    /// `%N`.
    pub id: String,
    /// The pid of the process tmux started in it.
    pub pid: u32,
    /// Its process has exited (the pane stays with remain-on-exit).
    pub dead: bool,
    /// The exit status, when tmux knows it.
    pub dead_status: Option<i32>,
    /// The session's `@failover-owner`, when set.
    pub owner: Option<String>,
    /// The session's `@failover-account`, when set.
    pub account: Option<String>,
    /// The session's `@failover-pane`, when set.
    pub agent_pane: Option<String>,
    /// `#{window_activity}`: the second of its window's last output.
    pub activity: u64,
    /// The folder its process was started in.
    pub path: PathBuf,
}

const SEP: char = '\u{1f}';

/// The full format: one line per pane, fields separated by U+001F, the free-text path
/// last so that a separator inside it cannot shift the other fields. tmux before 3.3
/// knows no start path: the foreground process's folder stands in.
fn full_format() -> String {
    [
        "#{session_name}",
        "#{pane_id}",
        "#{pane_pid}",
        "#{pane_dead}",
        "#{pane_dead_status}",
        &format!("#{{{OWNER_OPTION}}}"),
        &format!("#{{{ACCOUNT_OPTION}}}"),
        &format!("#{{{PANE_OPTION}}}"),
        "#{window_activity}",
        "#{?pane_start_path,#{pane_start_path},#{pane_current_path}}",
    ]
    .join(&SEP.to_string())
}

/// The lean format: what moves without a notification.
fn lean_format() -> String {
    [
        "#{pane_id}",
        "#{pane_pid}",
        "#{pane_dead}",
        "#{window_activity}",
    ]
    .join(&SEP.to_string())
}

/// Reads one full line; `None` for a line that is not one.
pub fn parse_full(line: &str) -> Option<Listed> {
    let f: Vec<&str> = line.splitn(10, SEP).collect();
    let [
        session,
        id,
        pid,
        dead,
        status,
        owner,
        account,
        agent_pane,
        activity,
        path,
    ] = f[..]
    else {
        return None;
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    Some(Listed {
        session: session.to_owned(),
        id: id.to_owned(),
        pid: pid.parse().unwrap_or(0),
        dead: dead == "1",
        dead_status: status.parse().ok(),
        owner: some(owner),
        account: some(account),
        agent_pane: some(agent_pane),
        activity: activity.parse().unwrap_or(0),
        path: PathBuf::from(path),
    })
}

/// What a lean line shows of a pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Lean<'a> {
    id: &'a str,
    pid: u32,
    dead: bool,
    activity: u64,
}

fn parse_lean(line: &str) -> Option<Lean<'_>> {
    let mut f = line.split(SEP);
    let (id, pid, dead, activity) = (f.next()?, f.next()?, f.next()?, f.next()?);
    Some(Lean {
        id,
        pid: pid.parse().ok()?,
        dead: dead == "1",
        activity: activity.parse().ok()?,
    })
}

/// The last full listing, with its panes' new activity stamps from `lean`; `None`
/// when `lean` shows what only a full listing tells: a pane new or gone, another pid,
/// another death.
fn refresh(
    full: &[Listed],
    by_id: &HashMap<String, usize>,
    lean: &[String],
) -> Option<Vec<Listed>> {
    if lean.len() != full.len() {
        return None;
    }
    let mut panes = full.to_vec();
    for line in lean {
        let pane = parse_lean(line)?;
        let listed = panes.get_mut(*by_id.get(pane.id)?)?;
        if (listed.pid, listed.dead) != (pane.pid, pane.dead) {
            return None;
        }
        listed.activity = pane.activity;
    }
    Some(panes)
}

/// The last full listing, and what stood when it was asked for.
#[derive(Debug)]
struct Full {
    panes: Vec<Listed>,
    by_id: HashMap<String, usize>,
    /// The connection's change count just before it was asked for.
    changes: u64,
    at: Instant,
}

impl Full {
    /// Whether a lean listing may stand on it.
    fn stands(&self, changes: u64, now: Instant) -> bool {
        self.changes == changes && now.saturating_duration_since(self.at) < FULL_EVERY
    }
}

/// The listing state a connection keeps.
#[derive(Debug, Default)]
pub(super) struct Cache {
    /// Bumped by every notification but output, every command that may change the
    /// server, every new client.
    changes: AtomicU64,
    full: Mutex<Option<Full>>,
    fulls: AtomicU64,
}

impl Cache {
    /// Notes that something may have changed what a full listing shows.
    pub(super) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// How many full listings were asked for so far.
    pub(super) fn fulls(&self) -> u64 {
        self.fulls.load(Ordering::Relaxed)
    }

    /// Every pane of the server: `run` answers one `list-panes` command. Lean when
    /// `lean_ok` (the connection hears notifications), the last full listing stands and
    /// the lean one shows nothing it cannot tell.
    pub(super) async fn panes<F, Fut>(
        &self,
        lean_ok: bool,
        run: F,
    ) -> Result<Vec<Listed>, super::Error>
    where
        F: Fn(Cmd) -> Fut,
        Fut: Future<Output = Result<Vec<String>, super::Error>>,
    {
        let changes = self.changes.load(Ordering::Acquire);
        if lean_ok {
            let lean = Cmd::new("list-panes").args(["-a", "-F", &lean_format()]);
            let standing = self
                .lock()
                .as_ref()
                .is_some_and(|f| f.stands(changes, Instant::now()));
            if standing {
                let lines = run(lean).await?;
                let fresh = self.changes.load(Ordering::Acquire) == changes;
                let refreshed = self
                    .lock()
                    .as_ref()
                    .and_then(|f| refresh(&f.panes, &f.by_id, &lines));
                if let (true, Some(panes)) = (fresh, refreshed) {
                    return Ok(panes);
                }
            }
        }
        let at = Instant::now();
        let full = Cmd::new("list-panes").args(["-a", "-F", &full_format()]);
        let lines = run(full).await?;
        self.fulls.fetch_add(1, Ordering::Relaxed);
        let panes: Vec<Listed> = lines.iter().filter_map(|l| parse_full(l)).collect();
        let by_id = panes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        *self.lock() = lean_ok.then(|| Full {
            panes: panes.clone(),
            by_id,
            changes,
            at,
        });
        Ok(panes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Full>> {
        // A poisoned lock only means another task panicked mid-update; the listing is
        // then asked for in full.
        self.full.lock().unwrap_or_else(|p| {
            let mut guard = p.into_inner();
            *guard = None;
            guard
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_line(session: &str, id: &str, pid: u32, dead: bool) -> String {
        let dead = if dead { "1" } else { "0" };
        [
            session,
            id,
            &pid.to_string(),
            dead,
            "",
            "failover",
            "a",
            id,
            "100",
            "/w",
        ]
        .join("\u{1f}")
    }

    fn lean_line(id: &str, pid: u32, dead: bool, activity: u64) -> String {
        let dead = if dead { "1" } else { "0" };
        [id, &pid.to_string(), dead, &activity.to_string()].join("\u{1f}")
    }

    fn listing(lines: &[String]) -> (Vec<Listed>, HashMap<String, usize>) {
        let panes: Vec<Listed> = lines.iter().filter_map(|l| parse_full(l)).collect();
        let by_id = panes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        (panes, by_id)
    }

    #[test]
    fn a_full_line_should_keep_a_separator_inside_the_path() {
        let line = [
            "s",
            "%1",
            "11",
            "1",
            "3",
            "failover",
            "main",
            "%1",
            "1796068204",
            "/srv/a\u{1f}b",
        ]
        .join("\u{1f}");
        let p = parse_full(&line).unwrap();
        assert_eq!(p.path, PathBuf::from("/srv/a\u{1f}b"));
        assert_eq!(
            (p.pid, p.dead, p.dead_status, p.activity),
            (11, true, Some(3), 1_796_068_204)
        );
        assert_eq!(p.owner.as_deref(), Some("failover"));
        assert_eq!(parse_full("garbage"), None);
        let unowned = ["s", "%2", "12", "0", "", "", "", "", "5", "/"].join("\u{1f}");
        let p = parse_full(&unowned).unwrap();
        assert_eq!(
            (p.owner, p.account, p.agent_pane, p.dead_status),
            (None, None, None, None)
        );
    }

    #[test]
    fn a_lean_listing_should_carry_only_the_activity_stamps() {
        let (panes, by_id) = listing(&[
            full_line("a", "%1", 11, false),
            full_line("b", "%2", 12, true),
        ]);
        let lean = [
            lean_line("%2", 12, true, 150),
            lean_line("%1", 11, false, 170),
        ];
        let fresh = refresh(&panes, &by_id, &lean).unwrap();
        assert_eq!((fresh[0].activity, fresh[1].activity), (170, 150));
        assert_eq!(fresh[0].session, "a", "the rest as listed in full");
    }

    #[test]
    fn a_lean_listing_should_give_way_to_a_full_one_on_any_change_it_cannot_tell() {
        let (panes, by_id) = listing(&[
            full_line("a", "%1", 11, false),
            full_line("b", "%2", 12, false),
        ]);
        let cases = [
            ("a pane gone", vec![lean_line("%1", 11, false, 1)]),
            (
                "a pane new",
                vec![
                    lean_line("%1", 11, false, 1),
                    lean_line("%2", 12, false, 1),
                    lean_line("%3", 13, false, 1),
                ],
            ),
            (
                "one pane for another",
                vec![lean_line("%1", 11, false, 1), lean_line("%3", 13, false, 1)],
            ),
            (
                "respawned",
                vec![lean_line("%1", 11, false, 1), lean_line("%2", 99, false, 1)],
            ),
            (
                "died",
                vec![lean_line("%1", 11, true, 1), lean_line("%2", 12, false, 1)],
            ),
            (
                "unreadable",
                vec![lean_line("%1", 11, false, 1), "garbage".to_owned()],
            ),
        ];
        for (what, lean) in cases {
            assert_eq!(refresh(&panes, &by_id, &lean), None, "{what}");
        }
    }

    #[test]
    fn a_full_listing_should_stand_only_without_changes_and_while_young() {
        let at = Instant::now();
        let full = Full {
            panes: Vec::new(),
            by_id: HashMap::new(),
            changes: 4,
            at,
        };
        assert!(full.stands(4, at + Duration::from_secs(9)));
        assert!(
            !full.stands(5, at + Duration::from_secs(1)),
            "something changed"
        );
        assert!(!full.stands(4, at + FULL_EVERY), "too old");
    }

    #[test]
    fn only_reading_commands_should_leave_a_full_listing_standing() {
        assert!(reads_only(&Cmd::new("list-panes").args(["-a"])));
        assert!(reads_only(&Cmd::new("capture-pane")));
        for writer in [
            "set-option",
            "new-session",
            "respawn-pane",
            "kill-session",
            "paste-buffer",
            "if-shell",
        ] {
            assert!(!reads_only(&Cmd::new(writer)), "{writer}");
        }
    }
}
