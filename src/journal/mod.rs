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
use crate::state::damage::Damage;
use crate::state::paths::JOURNAL_FILE;
use crate::state::{Error, create_private_dir};

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    /// The last write failed, perhaps halfway, and could not be taken back: the next
    /// line starts on a new one.
    torn: bool,
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
        Ok(Self {
            file,
            path,
            torn: false,
        })
    }

    /// Appends `entry`, written now, as one line.
    pub fn record(&mut self, entry: impl Into<Entry>) -> Result<(), Error> {
        self.write(&Line {
            time: jiff::Timestamp::now(),
            entry: entry.into(),
        })
    }

    /// The journal's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` as it is; a line that cannot be written as JSON is not written.
    pub fn write(&mut self, line: &Line) -> Result<(), Error> {
        let mut line = serde_json::to_string(line).map_err(|source| Error::Unencodable {
            path: self.path.clone(),
            source,
        })?;
        line.push('\n');
        if self.torn {
            line.insert(0, '\n');
        }
        let before = self.file.metadata().map(|m| m.len());
        let written = self.file.write_all(line.as_bytes());
        // A write that failed halfway (the disk filled up) is taken back, so the file
        // holds whole lines only; when it cannot be, the next line starts on a new one.
        self.torn = written.is_err() && before.and_then(|len| self.file.set_len(len)).is_err();
        written.map_err(|source| Error::Io {
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
    read_checked(dir).map(|r| r.lines)
}

/// The journal, read: its lines, and where the lines that are not journal lines were.
#[derive(Debug, Default)]
pub struct Read {
    /// The journal lines, oldest first.
    pub lines: Vec<Line>,
    /// The numbers (from 1) of the lines that are not journal lines: garbage, or cut
    /// short by a crash.
    pub damaged: Vec<usize>,
    /// Whether the last line is cut short (no newline ends it, and it does not read).
    pub torn: bool,
}

impl Read {
    /// The damaged lines in words: `2 lines that are not journal lines (lines 5, 9;
    /// the last cut short)`.
    pub fn problem(&self) -> String {
        let n = self.damaged.len();
        let mut at: Vec<String> = self.damaged.iter().take(5).map(usize::to_string).collect();
        if n > 5 {
            at.push("…".to_owned());
        }
        let torn = if self.torn {
            "; the last cut short"
        } else {
            ""
        };
        let (s, what) = if n == 1 {
            ("", "is not a journal line")
        } else {
            ("s", "are not journal lines")
        };
        format!("{n} line{s} that {what} (line{s} {}{torn})", at.join(", "))
    }
}

/// Reads the journal in `dir` line by line, as bytes (a line of garbage need not be
/// UTF-8), telling the lines that do not read apart.
pub fn read_checked(dir: &Path) -> Result<Read, Error> {
    let path = dir.join(JOURNAL_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(split(&bytes).0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Read::default()),
        Err(source) => Err(Error::Io { path, source }),
    }
}

/// `bytes` read as journal lines, with the whole lines' bytes (each with its newline).
fn split(bytes: &[u8]) -> (Read, Vec<u8>) {
    let mut read = Read::default();
    let mut whole = Vec::with_capacity(bytes.len());
    let count = bytes.split(|b| *b == b'\n').count();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Line>(raw) {
            Ok(line) => {
                read.lines.push(line);
                whole.extend_from_slice(raw);
                whole.push(b'\n');
            }
            Err(_) => {
                read.damaged.push(i + 1);
                read.torn |= i + 1 == count;
            }
        }
    }
    (read, whole)
}

/// At a controller's start, before it writes: a journal holding lines that are not
/// journal lines (garbage, or a line cut short by a crash) is copied aside (see
/// [`crate::state::damage`]) and its whole lines written back in its place, so that
/// every reader sees only journal lines; what was done, when anything was.
pub fn repair(dir: &Path, now: jiff::Timestamp) -> Result<Option<Damage>, Error> {
    let path = dir.join(JOURNAL_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path, source }),
    };
    let (read, whole) = split(&bytes);
    if read.damaged.is_empty() {
        return Ok(None);
    }
    let kept = crate::state::damage::copy_aside(&path, now)?;
    crate::state::write_atomic(&path, &whole)?;
    Ok(Some(Damage {
        problem: read.problem(),
        done: format!(
            "its {} journal lines written back, the others left out",
            read.lines.len()
        ),
        file: path,
        kept,
    }))
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

    const GOOD: &str = r#"{"time":"2026-12-06T03:15:00Z","event":"stopped","pid":10}"#;

    #[test]
    fn a_journal_with_garbage_lines_should_be_kept_aside_and_its_whole_lines_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        let mut text = format!("{GOOD}\n").into_bytes();
        text.extend_from_slice(b"\x00\xff\xfe garbage\n{\"no\": \"time\"}\n");
        text.extend_from_slice(format!("{GOOD}\n").as_bytes());
        std::fs::write(&path, &text).unwrap();
        let checked = read_checked(dir.path()).unwrap();
        assert_eq!(
            (checked.lines.len(), &checked.damaged[..]),
            (2, &[2, 3][..])
        );
        assert!(!checked.torn);
        let now = "2026-12-06T03:15:00Z".parse().unwrap();
        let damage = repair(dir.path(), now).unwrap().expect("damage said");
        assert_eq!(std::fs::read(&damage.kept).unwrap(), text, "kept whole");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{GOOD}\n{GOOD}\n")
        );
        let said = damage.to_string();
        assert!(
            said.contains("journal.jsonl: 2 lines that are not journal lines (lines 2, 3)"),
            "{said}"
        );
        assert!(said.contains("kept aside as "), "{said}");
        assert!(repair(dir.path(), now).unwrap().is_none(), "repaired once");
    }

    #[test]
    fn a_journal_ending_in_a_torn_line_should_be_kept_aside_and_the_line_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_FILE);
        std::fs::write(&path, format!("{GOOD}\n{}", &GOOD[..20])).unwrap();
        let checked = read_checked(dir.path()).unwrap();
        assert!(checked.torn);
        let damage = repair(dir.path(), jiff::Timestamp::now()).unwrap().unwrap();
        assert!(
            damage.problem.contains("the last cut short"),
            "{}",
            damage.problem
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{GOOD}\n"));
        let mut j = Journal::open(dir.path()).unwrap();
        j.record(Life::Stopped { pid: None }).unwrap();
        assert_eq!(
            read_checked(dir.path()).unwrap().damaged,
            Vec::<usize>::new()
        );
        assert_eq!(read(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn a_whole_journal_should_not_be_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let now = jiff::Timestamp::now();
        assert!(repair(dir.path(), now).unwrap().is_none(), "no journal yet");
        std::fs::write(dir.path().join(JOURNAL_FILE), format!("{GOOD}\n\n{GOOD}\n")).unwrap();
        assert!(repair(dir.path(), now).unwrap().is_none());
        assert!(crate::state::damage::kept_aside(dir.path()).is_empty());
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
