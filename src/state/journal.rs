//! The append-only event journal: one JSON object per line in `journal.jsonl`, saying
//! what the controller did and decided, and why.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{Error, create_private_dir};

/// The journal file's name inside the state folder.
pub const JOURNAL_FILE: &str = "journal.jsonl";

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
        Ok(Self { file, path })
    }

    /// Appends `{"time": …, "event": event, …fields}` as one line.
    pub fn record(&mut self, event: &str, fields: Value) -> Result<(), Error> {
        let mut entry = Map::new();
        entry.insert(
            "time".into(),
            Value::String(jiff::Timestamp::now().to_string()),
        );
        entry.insert("event".into(), Value::String(event.to_owned()));
        if let Value::Object(fields) = fields {
            entry.extend(fields);
        }
        let mut line = Value::Object(entry).to_string();
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })
    }
}

/// The time of the journal's last entry in `dir`, read from its end; `None` when it is
/// empty, missing or unreadable.
pub fn last_time(dir: &Path) -> Option<jiff::Timestamp> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let mut file = File::open(dir.join(JOURNAL_FILE)).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["time"].as_str()?.parse().ok())
}

/// Every entry of the journal in `dir`, oldest first; lines that are not JSON are
/// skipped.
pub fn read(dir: &Path) -> Result<Vec<Value>, Error> {
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
    use serde_json::json;

    #[test]
    fn journal_should_append_one_json_line_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.record("action", json!({"action": "createSession", "session": "a"}))
            .unwrap();
        drop(j);
        let mut j = Journal::open(dir.path()).unwrap();
        j.record("stopped", json!({})).unwrap();
        let entries = read(dir.path()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0]["event"], "action");
        assert_eq!(entries[0]["session"], "a");
        assert!(entries[1]["time"].as_str().unwrap().ends_with('Z'));
    }
}
