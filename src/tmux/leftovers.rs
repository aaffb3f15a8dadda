//! Control-mode clients a killed process left behind.
//!
//! tmux serves a control client's output from the server itself, on the client's own
//! pipes: a client whose controller was SIGKILLed lives on (its parent is gone, it is
//! never told to exit) and can hold a server that was told to exit half alive, closing
//! every new connection at once. So each process that starts control clients records
//! their pids in `<state>/clients/<its own pid>`, and the next controller or `apply` ends
//! the clients of processes that are gone, after checking that each still is a tmux
//! control client of this very server and control session: never anything else.

use std::path::Path;

use super::client::{Server, control_session};

/// Records that this process started the control client `pid`.
pub(super) fn record(dir: &Path, pid: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    crate::state::create_private_dir(dir)?;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(std::process::id().to_string()))?;
    writeln!(file, "{pid}")
}

/// Ends the control clients that processes now gone left behind on `server` (those
/// recorded in `dir`), for the control session of `owner`; the pids it ended.
pub fn end_leftovers(dir: &Path, server: &Server, owner: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut ended = Vec::new();
    for entry in entries.flatten() {
        let Some(starter) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A live process other than this one still owns its clients.
        if starter != me && crate::procfs::alive(starter) {
            continue;
        }
        let pids = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for pid in pids.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
            if is_control_client(pid, server, owner) && kill(pid) {
                ended.push(pid);
            }
        }
        let _ = std::fs::remove_file(entry.path());
    }
    ended
}

/// Whether `pid` is a tmux control client of `server` attached to `owner`'s control
/// session, by its command line.
fn is_control_client(pid: u32, server: &Server, owner: &str) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let has = |a: &str| argv.iter().any(|x| x == a);
    let tmux = argv
        .first()
        .is_some_and(|p| Path::new(p).file_name().is_some_and(|n| n == "tmux"));
    let socket = match &server.socket {
        Some(s) => argv
            .windows(2)
            .any(|w| w[0] == "-S" && Path::new(&w[1]) == s.as_path()),
        None => !has("-S"),
    };
    let session = control_session(owner);
    tmux && socket
        && has("-C")
        && argv
            .iter()
            .any(|a| a == &session || *a == format!("={session}"))
}

/// SIGKILLs `pid`; whether the signal was sent.
fn kill(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-s", "KILL", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_control_client_of_this_server_and_session_should_be_ended() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let server = Server::new(Some(socket.clone()));
        // Not tmux at all, under a recorded pid of a process that is gone.
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let records = dir.path().join("clients");
        std::fs::create_dir_all(&records).unwrap();
        std::fs::write(records.join("999999999"), format!("{}\n", other.id())).unwrap();
        assert!(end_leftovers(&records, &server, "failover").is_empty());
        assert!(other.try_wait().unwrap().is_none(), "never anything else");
        assert!(
            !records.join("999999999").exists(),
            "the record is done with"
        );
        // The records of a live process are left alone.
        std::fs::write(records.join("1"), format!("{}\n", other.id())).unwrap();
        assert!(end_leftovers(&records, &server, "failover").is_empty());
        assert!(records.join("1").exists());
        let _ = other.kill();
        let _ = other.wait();
    }
}
