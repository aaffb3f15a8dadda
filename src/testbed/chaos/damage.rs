//! The state folder's damage, made during live work (issue 28, item 2): the facts file
//! cut short or overwritten with garbage, the journal ending in a torn line or holding
//! garbage lines, a file in `reports/` that is not a report. The files are damaged
//! between a controller's SIGKILL and its restart (as a machine's crash mid-write
//! leaves them), a report at once while the controller runs. What the controller did
//! about it is counted from the state folder: its `stateDamaged` lines and the files it
//! kept aside.

use std::io::Write;
use std::path::Path;

use crate::state::paths::{FACTS_FILE, JOURNAL_FILE, REPORTS_DIR};

/// One kind of damage to the state folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `facts.json` cut short at a random byte (an empty file at times).
    FactsTruncated,
    /// `facts.json` overwritten with bytes that are not JSON, nor UTF-8.
    FactsGarbage,
    /// The journal's last line cut at a random byte: the journal ends in a torn line.
    JournalTorn,
    /// Two garbage lines put among the journal's lines (one not UTF-8).
    JournalGarbage,
    /// A file in `reports/` that is not JSON, named as a pool session's report.
    ReportGarbage,
    /// The whole state folder read-only for a few seconds while the controller runs
    /// (see [`ReadOnly`]); made by the run, not by [`Fault::make`].
    ReadOnly,
    /// The disk holding the state folder full for a few seconds while the controller
    /// runs (see [`DiskFull`]); made by the run. Not among [`Fault::ALL`]: it needs the
    /// state folder on a small file system of its own (`--disk-full`).
    DiskFull,
    /// The wall clock of every process of the bed set forward by two hours or back by
    /// ten minutes, and a few seconds later back to the real one, while the controller
    /// runs (see [`super::clock::Clock`]); made by the run. Not among [`Fault::ALL`]
    /// (`--clock-jumps`): it needs libfaketime, and it damages nothing.
    ClockJump,
}

impl Fault {
    /// Every fault, in the order a run with `--state-damage` makes them in turn.
    pub const ALL: [Fault; 6] = [
        Fault::FactsTruncated,
        Fault::FactsGarbage,
        Fault::JournalTorn,
        Fault::JournalGarbage,
        Fault::ReportGarbage,
        Fault::ReadOnly,
    ];

    /// Whether it is made while the controller runs (not between a kill and a restart).
    pub fn live(self) -> bool {
        matches!(
            self,
            Fault::ReportGarbage | Fault::ReadOnly | Fault::DiskFull | Fault::ClockJump
        )
    }

    /// Makes it in the state folder `state`, `pick` choosing where; whether it was
    /// made (there was a file to damage).
    pub fn make(self, state: &Path, pick: u64) -> bool {
        match self {
            Fault::FactsTruncated => rewrite(&state.join(FACTS_FILE), |bytes| {
                let at = usize::try_from(pick).unwrap_or(0) % bytes.len().max(1);
                bytes.truncate(at);
            }),
            Fault::FactsGarbage => rewrite(&state.join(FACTS_FILE), |bytes| {
                *bytes = b"\x00\xff{\"sessions\": garbage\x01\n".to_vec();
            }),
            Fault::JournalTorn => rewrite(&state.join(JOURNAL_FILE), |bytes| {
                // The last line with something in it (a blank line after it would be
                // no line to tear), cut after its first byte and before its last.
                let end = bytes
                    .iter()
                    .rposition(|b| !b.is_ascii_whitespace())
                    .map_or(0, |i| i + 1);
                let start = bytes[..end]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1);
                let len = end - start;
                if len > 1 {
                    bytes.truncate(start + 1 + usize::try_from(pick).unwrap_or(0) % (len - 1));
                }
            }),
            Fault::JournalGarbage => rewrite(&state.join(JOURNAL_FILE), |bytes| {
                let starts: Vec<usize> = std::iter::once(0)
                    .chain(
                        bytes
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| **b == b'\n')
                            .map(|(i, _)| i + 1),
                    )
                    .filter(|i| *i < bytes.len())
                    .collect();
                let at = starts[usize::try_from(pick).unwrap_or(0) % starts.len()];
                let garbage: &[u8] = b"\x00\xfe\xff not a journal line\n{\"event\": \"noTime\"}\n";
                bytes.splice(at..at, garbage.iter().copied());
            }),
            Fault::ReportGarbage => {
                let path = state
                    .join(REPORTS_DIR)
                    .join(format!("f-0.{pick:020}.1.json"));
                std::fs::File::create(&path)
                    .and_then(|mut f| f.write_all(b"{\"event\": \"Stop\", \"sess"))
                    .is_ok()
            }
            Fault::ReadOnly | Fault::DiskFull | Fault::ClockJump => false,
        }
    }
}

/// Rewrites the file at `path` in place (not atomically: a crash's damage), changed by
/// `change`; whether it was there, not empty, to damage.
fn rewrite(path: &Path, change: impl FnOnce(&mut Vec<u8>)) -> bool {
    let Ok(mut bytes) = std::fs::read(path) else {
        return false;
    };
    if bytes.is_empty() {
        return false;
    }
    let before = bytes.clone();
    change(&mut bytes);
    bytes != before && std::fs::write(path, &bytes).is_ok()
}

/// The files kept aside in the state folder `state` and in its reports' folder.
pub fn kept_aside(state: &Path) -> Vec<std::path::PathBuf> {
    crate::state::damage::kept_aside_with_reports(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"time":"2026-12-06T03:15:00Z","event":"stopped","pid":10}"#;

    #[test]
    fn a_torn_journal_should_end_in_part_of_its_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        for pick in 0..80 {
            std::fs::write(&path, format!("{LINE}\n{LINE}\n")).unwrap();
            assert!(Fault::JournalTorn.make(dir.path(), pick));
            let text = std::fs::read_to_string(&path).unwrap();
            let (first, rest) = text.split_once('\n').unwrap();
            assert_eq!(first, LINE);
            assert!(
                !rest.is_empty() && rest.len() < LINE.len(),
                "{pick}: {rest}"
            );
            let read = crate::journal::read_checked(dir.path()).unwrap();
            assert_eq!((read.lines.len(), read.torn), (1, true), "{pick}: {rest}");
        }
    }

    #[test]
    fn a_torn_journal_should_tear_its_last_line_even_after_a_blank_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        for pick in 0..20 {
            std::fs::write(&path, format!("{LINE}\n{LINE}\n\n")).unwrap();
            assert!(Fault::JournalTorn.make(dir.path(), pick));
            let read = crate::journal::read_checked(dir.path()).unwrap();
            assert_eq!((read.lines.len(), read.torn), (1, true), "{pick}");
        }
        std::fs::write(&path, "\n").unwrap();
        assert!(!Fault::JournalTorn.make(dir.path(), 0), "nothing to tear");
    }

    #[test]
    fn garbage_should_go_among_the_journal_lines_and_leave_them_whole() {
        let dir = tempfile::tempdir().unwrap();
        for pick in 0..3 {
            std::fs::write(dir.path().join(JOURNAL_FILE), format!("{LINE}\n{LINE}\n")).unwrap();
            assert!(Fault::JournalGarbage.make(dir.path(), pick));
            let read = crate::journal::read_checked(dir.path()).unwrap();
            assert_eq!((read.lines.len(), read.damaged.len()), (2, 2), "{pick}");
        }
        assert!(!Fault::FactsTruncated.make(dir.path(), 0), "no facts yet");
    }
}

/// The state folder made read-only while a controller runs, until dropped: as root
/// (where `chmod` stops no write) with `chattr -R +i` (the immutable flag: no file
/// made, renamed, removed or written, through open descriptors too), else with
/// `chmod -R a-w` (a descriptor open before keeps writing: the journal).
#[derive(Debug)]
pub struct ReadOnly {
    dir: std::path::PathBuf,
    chattr: bool,
}

impl ReadOnly {
    /// Makes `dir` read-only; `Err` says why it could not be (the test is skipped).
    pub fn make(dir: &Path) -> Result<Self, String> {
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        });
        let made = Self {
            dir: dir.to_path_buf(),
            chattr: root,
        };
        let (tool, args): (&str, &[&str]) = if root {
            ("chattr", &["-R", "+i"])
        } else {
            ("chmod", &["-R", "a-w"])
        };
        let status = std::process::Command::new(tool)
            .args(args)
            .arg(dir)
            .status()
            .map_err(|e| format!("{tool}: {e}"))?;
        if !status.success() {
            return Err(format!("{tool} {args:?} failed: {status}"));
        }
        match crate::state::probe_writable(dir) {
            Ok(()) => Err(format!("{tool} {args:?} left {} writable", dir.display())),
            Err(_) => Ok(made),
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let (tool, args): (&str, &[&str]) = if self.chattr {
            ("chattr", &["-R", "-i"])
        } else {
            ("chmod", &["-R", "u+w"])
        };
        let _ = std::process::Command::new(tool)
            .args(args)
            .arg(&self.dir)
            .status();
    }
}

/// A small file system of its own (tmpfs) mounted on a folder, unmounted when dropped:
/// where a disk can be filled without filling the machine's.
#[derive(Debug)]
pub struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (`mount`'s form: `32m`) on `dir`, made if missing;
    /// `Err` says why it could not be (not root, no `mount` in a container).
    pub fn mount(dir: &Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if out.status.success() {
            Ok(Self {
                dir: dir.to_path_buf(),
            })
        } else {
            Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a process still holding a file there (a hook) does not keep it.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// The disk under a folder filled up, until dropped: a file written there in ever
/// smaller pieces until not one byte more fits (what a runaway log does).
#[derive(Debug)]
pub struct DiskFull {
    filler: std::path::PathBuf,
}

/// The filler's name in the folder.
const FILLER: &str = ".disk-filler";

impl DiskFull {
    /// Fills the disk under `dir`; `Err` when it could not (the folder is missing).
    pub fn make(dir: &Path) -> Result<Self, String> {
        let filler = dir.join(FILLER);
        let mut file =
            std::fs::File::create(&filler).map_err(|e| format!("{}: {e}", filler.display()))?;
        for piece in [1 << 20, 1 << 12, 1] {
            let chunk = vec![0u8; piece];
            while file.write_all(&chunk).is_ok() {}
        }
        Ok(Self { filler })
    }
}

impl Drop for DiskFull {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.filler);
    }
}
