//! What `/proc/<pid>/stat` says of a process: its state and its parent (and, beside it,
//! its command line and executable). The command
//! name is in parentheses and may hold spaces and parentheses itself, so the fields are
//! read after its last `)`.

/// The fields of `/proc/<pid>/stat` after the command name: state, parent pid, …
fn fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// The parent of `pid`.
pub(crate) fn parent(pid: u32) -> Option<u32> {
    fields(pid)?.get(1)?.parse().ok()
}

/// The session `pid` belongs to (its id is its leader's pid). Only the test bed asks.
#[cfg(any(test, feature = "testbed"))]
pub(crate) fn session(pid: u32) -> Option<u32> {
    fields(pid)?.get(3)?.parse().ok()
}

/// When `pid` started, in clock ticks since boot: with the pid, it names one process
/// (pids are reused, start times with them are not).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    fields(pid)?.get(19)?.parse().ok()
}

/// The clock ticks per second `/proc` counts start times in (`USER_HZ`, 100 on every
/// architecture Linux runs on: the kernel converts to it for user space).
const TICKS_PER_SECOND: u64 = 100;

/// When `pid` started, as wall-clock time: the boot time `/proc/stat` gives (`btime`)
/// plus its start ticks. To the second at best: for "written since it started" with a
/// margin, not for ordering close events.
pub(crate) fn started_at(pid: u32) -> Option<std::time::SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let boot: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let ticks = start_time(pid)?;
    let since_boot = std::time::Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND);
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(boot) + since_boot)
}

/// The command line of `pid` (`/proc/<pid>/cmdline`), its arguments split.
pub(crate) fn argv(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut argv: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // The command line ends with a NUL: no empty last argument.
    if argv.last().is_some_and(String::is_empty) {
        argv.pop();
    }
    Some(argv)
}

/// The executable `pid` runs (`/proc/<pid>/exe`), as Linux names it: a file removed or
/// replaced since it started ends in ` (deleted)`.
pub(crate) fn exe(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The working folder of `pid` (`/proc/<pid>/cwd`).
pub(crate) fn cwd(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// Whether `pid` runs (exists and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    fields(pid)
        .and_then(|f| f.into_iter().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_at_should_place_this_process_start_before_now_and_after_boot() {
        let now = std::time::SystemTime::now();
        let started = started_at(std::process::id()).expect("this process's start");
        assert!(
            started <= now + std::time::Duration::from_secs(2),
            "{started:?}"
        );
        let age = now.duration_since(started).unwrap_or_default();
        assert!(age < std::time::Duration::from_secs(3600), "{age:?}");
        assert_eq!(started_at(u32::MAX), None);
    }

    #[test]
    fn this_process_should_run_under_its_parent() {
        let me = std::process::id();
        assert!(alive(me));
        assert_eq!(parent(me), Some(std::os::unix::process::parent_id()));
        assert!(!alive(0));
        assert!(start_time(me).is_some());
        let argv = argv(me).unwrap();
        assert_eq!(argv, std::env::args().collect::<Vec<_>>());
        assert!(start_time(me) >= start_time(std::os::unix::process::parent_id()));
        assert_eq!(parent(0), None);
    }
}
