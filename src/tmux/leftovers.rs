//! Control-mode clients a killed process left behind.
//!
//! tmux serves a control client's output from the server itself, on the client's own
//! pipes: a client whose controller was SIGKILLed lives on (its parent is gone, it is
//! never told to exit) and can hold a server that was told to exit half alive, closing
//! every new connection at once. So each process that starts control clients records
//! them in `<state>/clients/<its pid>.<its start time>` (a line `<pid> <start time>` a
//! client; the start time tells a reused pid apart), removes the record when it ends
//! well, and the next controller or `apply` ends the clients of processes that are gone,
//! after checking that each still is that very process and a tmux control client of
//! this server and control session: never anything else.

use std::path::Path;

use super::server::{Server, control_session};

/// This process's record in `dir`.
fn own_record(dir: &Path) -> std::path::PathBuf {
    let me = std::process::id();
    let started = crate::procfs::start_time(me).unwrap_or(0);
    dir.join(format!("{me}.{started}"))
}

/// Records that this process started the control client `pid`.
pub(super) fn record(dir: &Path, pid: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    crate::state::create_private_dir(dir)?;
    let started = crate::procfs::start_time(pid).unwrap_or(0);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(own_record(dir))?;
    writeln!(file, "{pid} {started}")
}

/// Removes this process's record: its clients end with it.
pub(super) fn forget(dir: &Path) {
    let _ = std::fs::remove_file(own_record(dir));
}

/// Ends the control clients that processes now gone left behind on `server` (those
/// recorded in `dir`), for the control session of `owner`; the pids it ended.
pub fn end_leftovers(dir: &Path, server: &Server, owner: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut ended = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((starter, started)) = name
            .split_once('.')
            .and_then(|(p, t)| Some((p.parse::<u32>().ok()?, t.parse::<u64>().ok()?)))
        else {
            continue;
        };
        // A live process (this one included) still owns its clients.
        if crate::procfs::alive(starter) && crate::procfs::start_time(starter) == Some(started) {
            continue;
        }
        let lines = std::fs::read_to_string(entry.path()).unwrap_or_default();
        for line in lines.lines() {
            let mut fields = line
                .split_whitespace()
                .filter_map(|f| f.parse::<u64>().ok());
            let (Some(pid), Some(started)) = (fields.next(), fields.next()) else {
                continue;
            };
            let Ok(pid) = u32::try_from(pid) else {
                continue;
            };
            let same = crate::procfs::start_time(pid) == Some(started);
            if same && is_control_client(pid, server, owner) && kill(pid) {
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
    let Some(argv) = crate::procfs::argv(pid) else {
        return false;
    };
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
    use std::process::{Command, Stdio};

    /// A real control client of `socket` on its own server, as a controller starts one.
    fn control_client(socket: &Path) -> std::process::Child {
        Command::new("tmux")
            .arg("-S")
            .arg(socket)
            .args(["-f", "/dev/null", "-C", "new-session", "-A", "-s"])
            .arg(control_session("failover"))
            .args(["--", "sleep", "infinity"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn started(pid: u32) -> u64 {
        crate::procfs::start_time(pid).unwrap()
    }

    /// A socket and a records folder in a test tmux server's temp folder. Its drop
    /// kills the server and every process still naming the socket: a client SIGKILLed
    /// here may have forked its server a moment before, which `kill-server` alone can
    /// miss.
    struct Bed {
        t: crate::testbed::TmuxServer,
        server: Server,
        records: std::path::PathBuf,
    }

    impl Bed {
        fn new() -> Self {
            let t = crate::testbed::TmuxServer::start();
            let server = Server::new(Some(t.socket().to_path_buf()));
            let records = t.dir().join("clients");
            std::fs::create_dir_all(&records).unwrap();
            Self { t, server, records }
        }

        fn socket(&self) -> std::path::PathBuf {
            self.t.socket().to_path_buf()
        }

        fn end(&self) -> Vec<u32> {
            end_leftovers(&self.records, &self.server, "failover")
        }
    }

    #[test]
    fn the_control_clients_of_a_gone_process_should_be_ended_and_nothing_else() {
        let bed = Bed::new();
        let mut client = control_client(&bed.socket());
        let mut other = Command::new("sleep").arg("30").spawn().unwrap();
        // A starter that is gone (no process has pid 999999999): its records are ended,
        // but only the tmux control client of this socket and session.
        let lines = format!(
            "{} {}\n{} {}\n",
            client.id(),
            started(client.id()),
            other.id(),
            started(other.id())
        );
        // The same, under a live starter (pid 1 with its start time): left alone.
        let live = bed.records.join(format!("1.{}", started(1)));
        std::fs::write(&live, &lines).unwrap();
        assert!(bed.end().is_empty());
        let gone = bed.records.join("999999999.5");
        let ended =
            crate::testbed::wait_for(std::time::Duration::from_secs(5), "the client", || {
                // The client may still be starting its server: try until it is a client.
                std::fs::write(&gone, &lines).ok()?;
                let ended = bed.end();
                (!ended.is_empty()).then_some(ended)
            });
        assert_eq!(ended, [client.id()]);
        assert!(client.wait().is_ok(), "ended");
        assert!(other.try_wait().unwrap().is_none(), "never anything else");
        assert!(!gone.exists(), "the record is done with");
        assert!(live.exists());
        let _ = other.kill();
        let _ = other.wait();
    }

    #[test]
    fn a_reused_pid_should_not_be_taken_for_a_recorded_client() {
        let bed = Bed::new();
        let mut client = control_client(&bed.socket());
        // Recorded with another start time: the pid now names another process.
        let record = format!("{} 1\n", client.id());
        std::fs::write(bed.records.join("999999999.5"), record).unwrap();
        assert!(bed.end().is_empty());
        assert!(client.try_wait().unwrap().is_none());
        let _ = client.kill();
        let _ = client.wait();
    }
}
