//! Listing the server's panes, in full only when something may have changed. tmux
//! pays for every format field of every pane it lists (about half a microsecond each),
//! and for the size of its answer: it writes at most 16 KiB per turn of its event loop,
//! and each turn walks every window and pane of the server, so an answer of many
//! kilobytes costs it more than linearly. A full `list-panes -a` of 1000 panes with our
//! eleven fields costs it about 9 ms.
//!
//! Between full listings, tmux is asked only for the panes that moved: a filtered
//! `list-panes` (`-f`) names the panes that are dead, had output since the last
//! listing, or share their window with other panes, so a quiet server of one-pane
//! windows answers with no line at all. The filter is one string comparison, its
//! cheapest form: `#{pane_dead}`, then `1` for a shared window and `0` for a pane alone,
//! then `#{window_activity}`, against `00` and the second of the last listing (a dead
//! pane starts with `1`, a shared one with `01`, a pane alone with `00` and compares on
//! its stamp, ten digits either side).
//!
//! The connection keeps the last listing. The next one lists only what moved when
//! nothing may have changed what only a full listing shows (sessions, names, options,
//! start folders): no notification arrived but output, this connection sent no command
//! that changes the server, it did not reconnect, and the full listing is younger than
//! [`FULL_EVERY`]. A moved pane that is new, has another pid, another death or another
//! number of panes in its window, or a pane of a shared window that is missing, gives
//! way to a full listing in the same observation, as does a wall clock gone back. What
//! neither a notification nor output tells (a person's `set-option` on a session, a
//! silent process respawned by a person in a pane of its own, panes or windows swapped
//! between sessions) is seen within [`FULL_EVERY`]; kills and respawns check the owner
//! mark in tmux itself when they run, whatever the listing said.

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
    /// How many panes its window has.
    pub window_panes: u32,
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
        "#{window_panes}",
        "#{window_activity}",
        "#{?pane_start_path,#{pane_start_path},#{pane_current_path}}",
    ]
    .join(&SEP.to_string())
}

/// The format of a moved pane: what changes without a notification.
fn lean_format() -> String {
    [
        "#{pane_id}",
        "#{pane_pid}",
        "#{pane_dead}",
        "#{window_panes}",
        "#{window_activity}",
    ]
    .join(&SEP.to_string())
}

/// The filter of the panes that moved: dead, with output since second `since`, or in
/// a window of several panes, as one string comparison (see the module's doc).
fn moved_filter(since: u64) -> String {
    format!("#{{>=:#{{pane_dead}}#{{!=:#{{window_panes}},1}}#{{window_activity}},00{since}}}")
}

/// The wall-clock second, floored: tmux stamps output (`#{window_activity}`) with the
/// same clock.
pub(super) fn wall_second() -> u64 {
    jiff::Timestamp::now().as_second().max(0).unsigned_abs()
}

/// Reads one full line; `None` for a line that is not one.
pub fn parse_full(line: &str) -> Option<Listed> {
    let f: Vec<&str> = line.splitn(11, SEP).collect();
    let [
        session,
        id,
        pid,
        dead,
        status,
        owner,
        account,
        agent_pane,
        window_panes,
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
        window_panes: window_panes.parse().unwrap_or(1),
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
    window_panes: u32,
    activity: u64,
}

fn parse_lean(line: &str) -> Option<Lean<'_>> {
    let mut f = line.split(SEP);
    let (id, pid, dead) = (f.next()?, f.next()?, f.next()?);
    let (window_panes, activity) = (f.next()?, f.next()?);
    Some(Lean {
        id,
        pid: pid.parse().ok()?,
        dead: dead == "1",
        window_panes: window_panes.parse().ok()?,
        activity: activity.parse().ok()?,
    })
}

/// Carries the moved panes' new activity stamps from `lean` into `panes`; `false`
/// (and `panes` left in any state) when `lean` shows what only a full listing tells: a
/// pane new, another pid, another death, another number of panes in its window, or a
/// pane of a shared window missing (killed, or moved away).
fn refresh(panes: &mut [Listed], by_id: &HashMap<String, usize>, lean: &[String]) -> bool {
    let mut shared = 0;
    for line in lean {
        let Some(pane) = parse_lean(line) else {
            return false;
        };
        let Some(listed) = by_id.get(pane.id).and_then(|&i| panes.get_mut(i)) else {
            return false;
        };
        if (listed.pid, listed.dead, listed.window_panes)
            != (pane.pid, pane.dead, pane.window_panes)
        {
            return false;
        }
        listed.activity = pane.activity;
        shared += usize::from(pane.window_panes > 1);
    }
    shared == panes.iter().filter(|p| p.window_panes > 1).count()
}

/// The last full listing with the activity stamps of the listings since, and what
/// stood when it was asked for.
#[derive(Debug)]
struct Full {
    panes: Vec<Listed>,
    by_id: HashMap<String, usize>,
    /// The connection's change count just before it was asked for.
    changes: u64,
    at: Instant,
    /// The wall-clock second just before the last listing of any kind was asked for:
    /// output after it is stamped with it or a later second.
    second: u64,
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
    /// One listing at a time: an older answer stored after a newer one would carry
    /// older stamps past the second the newer one moved on to.
    serial: tokio::sync::Mutex<()>,
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

    /// Every pane of the server: `run` answers one `list-panes` command. Only the
    /// moved panes are listed when the connection `hears` notifications, the last full
    /// listing stands and the moved ones show nothing it cannot tell.
    pub(super) async fn panes<F, Fut>(
        &self,
        hears: bool,
        run: F,
    ) -> Result<Vec<Listed>, super::Error>
    where
        F: Fn(Cmd) -> Fut,
        Fut: Future<Output = Result<Vec<String>, super::Error>>,
    {
        let _one_at_a_time = self.serial.lock().await;
        let changes = self.changes.load(Ordering::Acquire);
        let second = wall_second();
        if hears {
            // One second back: output in the last listing's own second may have come
            // after it. A clock gone back would hide output stamped by it: listed in
            // full then.
            let since = self
                .lock()
                .as_ref()
                .filter(|f| f.stands(changes, Instant::now()) && second + 1 >= f.second)
                .map(|f| f.second.saturating_sub(1));
            if let Some(since) = since {
                let moved = Cmd::new("list-panes").args([
                    "-a",
                    "-f",
                    &moved_filter(since),
                    "-F",
                    &lean_format(),
                ]);
                let lines = run(moved).await?;
                let fresh = self.changes.load(Ordering::Acquire) == changes;
                let mut guard = self.lock();
                if let Some(f) = guard.as_mut().filter(|_| fresh)
                    && refresh(&mut f.panes, &f.by_id, &lines)
                {
                    f.second = f.second.max(second);
                    return Ok(f.panes.clone());
                }
                // Whatever it held is not to be trusted now.
                *guard = None;
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
        *self.lock() = hears.then(|| Full {
            panes: panes.clone(),
            by_id,
            changes,
            at,
            second,
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

    fn full_line(session: &str, id: &str, pid: u32, dead: bool, window_panes: u32) -> String {
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
            &window_panes.to_string(),
            "100",
            "/w",
        ]
        .join("\u{1f}")
    }

    fn lean_line(id: &str, pid: u32, dead: bool, window_panes: u32, activity: u64) -> String {
        let dead = if dead { "1" } else { "0" };
        let (pid, panes) = (pid.to_string(), window_panes.to_string());
        [id, &pid, dead, &panes, &activity.to_string()].join("\u{1f}")
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
            "2",
            "1796068204",
            "/srv/a\u{1f}b",
        ]
        .join("\u{1f}");
        let p = parse_full(&line).unwrap();
        assert_eq!(p.path, PathBuf::from("/srv/a\u{1f}b"));
        assert_eq!(
            (p.pid, p.dead, p.dead_status, p.window_panes, p.activity),
            (11, true, Some(3), 2, 1_796_068_204)
        );
        assert_eq!(p.owner.as_deref(), Some("failover"));
        assert_eq!(parse_full("garbage"), None);
        let unowned = ["s", "%2", "12", "0", "", "", "", "", "1", "5", "/"].join("\u{1f}");
        let p = parse_full(&unowned).unwrap();
        assert_eq!(
            (p.owner, p.account, p.agent_pane, p.dead_status),
            (None, None, None, None)
        );
    }

    #[test]
    fn a_moved_listing_should_carry_only_the_activity_stamps_of_the_panes_it_names() {
        let (mut panes, by_id) = listing(&[
            full_line("a", "%1", 11, false, 1),
            full_line("b", "%2", 12, true, 1),
            full_line("c", "%3", 13, false, 1),
        ]);
        let moved = [
            lean_line("%2", 12, true, 1, 150),
            lean_line("%1", 11, false, 1, 170),
        ];
        assert!(refresh(&mut panes, &by_id, &moved));
        let stamps: Vec<u64> = panes.iter().map(|p| p.activity).collect();
        assert_eq!(stamps, [170, 150, 100], "%3 did not move");
        assert_eq!(panes[0].session, "a", "the rest as listed in full");
        assert!(refresh(&mut panes, &by_id, &[]), "a quiet server");
    }

    #[test]
    fn a_moved_listing_should_give_way_to_a_full_one_on_any_change_it_cannot_tell() {
        let lines = [
            full_line("a", "%1", 11, false, 1),
            full_line("b", "%2", 12, false, 2),
            full_line("b", "%3", 13, false, 2),
        ];
        let shared = || {
            vec![
                lean_line("%2", 12, false, 2, 1),
                lean_line("%3", 13, false, 2, 1),
            ]
        };
        let with = |extra: String| {
            let mut v = shared();
            v.push(extra);
            v
        };
        let cases = [
            ("a pane new", with(lean_line("%4", 14, false, 1, 1))),
            ("respawned", with(lean_line("%1", 99, false, 1, 1))),
            ("died", with(lean_line("%1", 11, true, 1, 1))),
            ("split", with(lean_line("%1", 11, false, 2, 1))),
            (
                "a pane of a shared window killed",
                vec![lean_line("%2", 12, false, 1, 1)],
            ),
            (
                "a pane of a shared window missing",
                vec![lean_line("%2", 12, false, 2, 1)],
            ),
            ("unreadable", with("garbage".to_owned())),
        ];
        for (what, moved) in cases {
            let (mut panes, by_id) = listing(&lines);
            assert!(!refresh(&mut panes, &by_id, &moved), "{what}");
        }
        let (mut panes, by_id) = listing(&lines);
        assert!(
            refresh(&mut panes, &by_id, &shared()),
            "the shared window as it was"
        );
    }

    #[test]
    fn the_moved_filter_should_compare_as_numbers_for_every_pane_it_must_name() {
        let since = 1_796_068_200_u64;
        assert_eq!(
            moved_filter(since),
            "#{>=:#{pane_dead}#{!=:#{window_panes},1}#{window_activity},001796068200}"
        );
        // What tmux compares, byte by byte, for a pane: its death, whether its window
        // is shared, its stamp.
        let named = |dead: bool, window_panes: u32, activity: u64| {
            let shared = u8::from(window_panes != 1);
            format!("{}{shared}{activity}", u8::from(dead)) >= format!("00{since}")
        };
        assert!(
            named(false, 1, since),
            "output in the last listing's second"
        );
        assert!(named(false, 1, since + 70), "output since");
        assert!(!named(false, 1, since - 1), "quiet since");
        assert!(named(true, 1, 5), "dead");
        for panes in [2, 9, 10, 120] {
            assert!(named(false, panes, 5), "a window of {panes} panes");
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
            second: 0,
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
