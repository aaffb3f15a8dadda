//! Following the state folder for `get -w`: a watch on the folder (not its subfolders)
//! that wakes the command when the controller writes its journal, facts or status, and
//! the journal read on from where the last read stopped.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use crate::state::paths::JOURNAL_FILE;

/// How long a burst of writes may go quiet before the command wakes: one wake for a
/// round's journal lines, facts and status, not one per file.
const QUIET: Duration = Duration::from_millis(40);

/// A watch on the state folder.
pub(super) struct Follow {
    _watcher: RecommendedWatcher,
    rx: mpsc::Receiver<()>,
}

impl Follow {
    /// Watches `dir`, which must exist.
    pub(super) fn new(dir: &Path) -> Result<Self, String> {
        if !dir.is_dir() {
            return Err(format!(
                "state folder {}: not found (has a controller or apply run here?)",
                dir.display()
            ));
        }
        let (tx, rx) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Opening and reading a file (our own reads of the journal and the
                // facts among them) is not a change.
                if event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_))) {
                    let _ = tx.send(());
                }
            })
            .map_err(|e| format!("state folder {}: cannot watch: {e}", dir.display()))?;
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("state folder {}: cannot watch: {e}", dir.display()))?;
        Ok(Self {
            _watcher: watcher,
            rx,
        })
    }

    /// Whether something in the folder changed since the last call; never waits
    /// (`top` asks between keys).
    pub(super) fn changed(&self) -> bool {
        let mut any = false;
        while self.rx.try_recv().is_ok() {
            any = true;
        }
        any
    }

    /// Blocks until something in the folder changed and the writes went quiet; false
    /// when the watch ended.
    pub(super) fn wait(&self) -> bool {
        if self.rx.recv().is_err() {
            return false;
        }
        while self.rx.recv_timeout(QUIET).is_ok() {}
        true
    }
}

/// The journal read on from where the last read stopped: whole lines only (a line
/// being written waits for its end); a journal that shrank is read from the start.
#[derive(Debug)]
pub(super) struct JournalTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl JournalTail {
    /// The journal of the state folder `dir`, read from its start.
    pub(super) fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(JOURNAL_FILE),
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The journal of the state folder `dir`, read from its end now: only the lines
    /// written from now on.
    pub(super) fn at_end(dir: &Path) -> Self {
        let path = dir.join(JOURNAL_FILE);
        let offset = std::fs::metadata(&path).map_or(0, |m| m.len());
        Self {
            path,
            offset,
            partial: Vec::new(),
        }
    }

    /// The lines written since the last call, oldest first; lines that are not journal
    /// lines are skipped.
    pub(super) fn read(&mut self) -> Vec<crate::journal::Line> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
        }
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut bytes).is_err()
        {
            return Vec::new();
        }
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let whole: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&whole)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_journal_tail_should_give_whole_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut file = std::fs::File::create(&path).unwrap();
        let mut tail = JournalTail::new(dir.path());
        assert!(tail.read().is_empty());
        let line = |pid: u32| {
            format!("{{\"time\":\"2026-12-01T00:00:00Z\",\"event\":\"stopped\",\"pid\":{pid}}}")
        };
        let pids = |lines: Vec<crate::journal::Line>| -> Vec<Option<u32>> {
            lines
                .into_iter()
                .map(|l| match l.entry {
                    crate::journal::Entry::Controller(crate::journal::Life::Stopped { pid }) => pid,
                    _ => None,
                })
                .collect()
        };
        let (one, two) = (line(1), line(2));
        let (two_a, two_b) = two.split_at(20);
        write!(file, "{one}\n{two_a}").unwrap();
        assert_eq!(pids(tail.read()), [Some(1)]);
        write!(file, "{two_b}\nnot json\n").unwrap();
        assert_eq!(pids(tail.read()), [Some(2)]);
        assert!(tail.read().is_empty(), "nothing new");
        std::fs::write(&path, format!("{}\n", line(3))).unwrap();
        assert_eq!(pids(tail.read()), [Some(3)], "a new journal");
    }
}
