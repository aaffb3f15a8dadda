//! The append-only event journal: one JSON object per line in `journal.jsonl`, saying
//! what the controller did and decided, and why. Lines are typed ([`Line`], [`Entry`])
//! on the way in and on the way out; [`story`] tells them in words.

mod entry;
pub mod story;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use entry::{Acted, Entry, Kind, Life, Line, Origin, Unknown};

use crate::plan::TaskKey;
use crate::state::paths::JOURNAL_FILE;
use crate::state::{Error, create_private_dir};

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Opens (creating, mode 0600) the journal in `dir` for appending.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(JOURNAL_FILE);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        let mut file = file;
        // A line cut short by a crash is ended, so that the next one stays whole.
        if !ends_with_newline(&path) {
            file.write_all(b"\n").map_err(io)?;
        }
        Ok(Self { file, path })
    }

    /// Appends `entry`, written now, as one line.
    pub fn record(&mut self, entry: impl Into<Entry>) -> Result<(), Error> {
        self.write(&Line {
            time: jiff::Timestamp::now(),
            entry: entry.into(),
        })
    }

    /// Appends `line` as it is; a line that cannot be written as JSON is not written.
    pub fn write(&mut self, line: &Line) -> Result<(), Error> {
        let mut line = serde_json::to_string(line).map_err(|source| Error::Unencodable {
            path: self.path.clone(),
            source,
        })?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// The lines in the last `bytes` of the journal in `dir`, oldest first: a line cut
/// by the start of that window, and lines that are not JSON, are skipped. Empty when
/// the journal is missing or unreadable.
pub fn tail(dir: &Path, bytes: u64) -> Vec<Line> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(dir.join(JOURNAL_FILE)) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let from = len.saturating_sub(bytes);
    let mut text = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut text).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    if from > 0 {
        lines.next();
    }
    lines.filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// The successful task endings among `lines`, counted by task and ending (`true` for
/// done).
pub fn endings(lines: &[Line]) -> std::collections::BTreeMap<(TaskKey, bool), usize> {
    let mut counts = std::collections::BTreeMap::new();
    for line in lines {
        let Entry::Acted(acted) = &line.entry else {
            continue;
        };
        let done = match acted.event {
            Kind::TaskDone => true,
            Kind::TaskFailed => false,
            _ => continue,
        };
        if acted.ok()
            && let Some(task) = acted.task()
        {
            *counts.entry((task, done)).or_insert(0) += 1;
        }
    }
    counts
}

/// Whether the file at `path` is empty or ends with a newline.
fn ends_with_newline(path: &Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return true;
    };
    let mut last = [0u8; 1];
    match file.seek(SeekFrom::End(-1)) {
        Ok(_) => file.read_exact(&mut last).is_err() || last[0] == b'\n',
        Err(_) => true,
    }
}

/// Every line of the journal in `dir`, oldest first; lines that are not JSON objects
/// with a time are skipped (a line of an unknown event is kept, as [`Unknown`]).
pub fn read(dir: &Path) -> Result<Vec<Line>, Error> {
    let path = dir.join(JOURNAL_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, SessionAction};

    #[test]
    fn journal_should_append_one_json_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let action = Action::from(SessionAction::DeleteSession {
            name: "a".into(),
            reason: "surplus".into(),
        });
        j.record(Acted::new(&action, &Ok(crate::plan::Outcome::Done), None))
            .unwrap();
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        j.record(Life::Stopped { pid: None }).unwrap();
        let lines = read(dir.path()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].entry.kind(), Some(Kind::Action));
        assert!(matches!(&lines[0].entry, Entry::Acted(a) if a.action == action));
        assert_eq!(
            lines[1].entry,
            Entry::Controller(Life::Stopped { pid: None })
        );
        let text = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap();
        assert!(text.ends_with("\"event\":\"stopped\"}\n"), "{text}");
    }

    #[test]
    fn kinds_should_serialize_as_their_journal_name() {
        for kind in Kind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
            assert_eq!(Kind::named(kind.as_str()), Some(kind));
        }
    }
}
