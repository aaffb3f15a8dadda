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

/// When `pid` started, in clock ticks since boot: with the pid, it names one process
/// (pids are reused, start times with them are not).
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    fields(pid)?.get(19)?.parse().ok()
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
