//! Damaged state files. A file of the state folder that cannot be read, or does not
//! hold what failover writes there (a crash mid-write on a filesystem without ordered
//! data, a person's edit, a disk error), is kept aside under a timestamped name beside
//! it (`facts.json.damaged-20261206T031500Z`), never deleted, and said by name: the
//! [`Damage`] says what was wrong, where the file went and what was done instead.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

/// The part of a kept-aside file's name after the original name.
pub(crate) const MARK: &str = ".damaged-";

/// A state file found damaged, and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Damage {
    /// The file.
    pub file: PathBuf,
    /// What is wrong with it (`not JSON: EOF while parsing … at line 3 column 5`).
    pub problem: String,
    /// Where it was kept aside.
    pub kept: PathBuf,
    /// What was done instead (`facts rebuilt from tmux and the inboxes`).
    pub done: String,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "state file {}: {}; kept aside as {}; {}",
            self.file.display(),
            self.problem,
            self.kept.display(),
            self.done
        )
    }
}

/// What is wrong with a file that did not parse, in words: cut short, not JSON, or
/// JSON of another shape.
pub(crate) fn problem_of(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => format!("cut short: {e}"),
        Category::Syntax | Category::Io => format!("not JSON: {e}"),
        Category::Data => format!("not what failover writes there: {e}"),
    }
}

/// The name `path` is kept aside under at `now`: `<name>.damaged-<UTC time>`, with
/// `-2`, `-3`, … when that is taken (two damages within a second).
pub(crate) fn aside_name(path: &Path, now: jiff::Timestamp) -> PathBuf {
    let stamp = now.strftime("%Y%m%dT%H%M%SZ").to_string();
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let base = path.with_file_name(format!("{name}{MARK}{stamp}"));
    let mut candidate = base.clone();
    let mut n = 2;
    while candidate.symlink_metadata().is_ok() {
        candidate = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    candidate
}

/// Moves the damaged file at `path` aside (a rename within its folder); where it went.
pub(crate) fn keep_aside(path: &Path, now: jiff::Timestamp) -> Result<PathBuf, Error> {
    aside(path, now, |from, to| std::fs::rename(from, to))
}

/// Copies the damaged file at `path` aside, leaving it where it is (its whole lines are
/// written back by the caller); where the copy went.
pub(crate) fn copy_aside(path: &Path, now: jiff::Timestamp) -> Result<PathBuf, Error> {
    aside(path, now, |from, to| std::fs::copy(from, to).map(drop))
}

/// Puts `path` aside under its timestamped name with `how` (rename or copy).
fn aside(
    path: &Path,
    now: jiff::Timestamp,
    how: impl FnOnce(&Path, &Path) -> std::io::Result<()>,
) -> Result<PathBuf, Error> {
    let to = aside_name(path, now);
    how(path, &to).map_err(|source| Error::KeepAside {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(to)
}

/// The files kept aside in the state folder `dir`, oldest name first.
pub(crate) fn kept_aside(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut kept: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(MARK))
        .map(|e| e.path())
        .collect();
    kept.sort();
    kept
}

/// The files kept aside in the state folder `dir` and in its `reports/`.
pub(crate) fn kept_aside_with_reports(dir: &Path) -> Vec<PathBuf> {
    let mut kept = kept_aside(dir);
    kept.extend(kept_aside(&dir.join(super::paths::REPORTS_DIR)));
    kept
}

/// The files kept aside in the state folder `dir` and its `reports/` whose names are
/// not in `told` (the kept-aside names the journal's `stateDamaged` lines carry): a
/// controller stopped between putting a file aside and saying so. Each as a damage, to
/// be said now.
pub(crate) fn untold(
    dir: &Path,
    told: &std::collections::BTreeSet<std::ffi::OsString>,
) -> Vec<Damage> {
    kept_aside_with_reports(dir)
        .into_iter()
        .filter(|path| path.file_name().is_none_or(|name| !told.contains(name)))
        .map(|kept| {
            let name = kept
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let original = name.split(MARK).next().unwrap_or(&name).to_owned();
            Damage {
                file: kept.with_file_name(original),
                problem: "kept aside by a controller stopped before it could say why".to_owned(),
                kept,
                done: "said at the next controller's start; the kept file holds what was there"
                    .to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> jiff::Timestamp {
        "2026-12-06T03:15:00Z".parse().unwrap()
    }

    #[test]
    fn a_damaged_file_should_be_kept_aside_under_its_name_and_the_utc_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("facts.json");
        std::fs::write(&path, "{").unwrap();
        let kept = keep_aside(&path, at()).unwrap();
        assert_eq!(kept, dir.path().join("facts.json.damaged-20261206T031500Z"));
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "{");
        assert!(!path.exists());
        std::fs::write(&path, "[").unwrap();
        let second = keep_aside(&path, at()).unwrap();
        assert_eq!(
            second,
            dir.path().join("facts.json.damaged-20261206T031500Z-2"),
            "a second damage within the second must not replace the first"
        );
        assert_eq!(kept_aside(dir.path()), vec![kept, second]);
    }

    #[test]
    fn a_problem_should_say_cut_short_not_json_or_another_shape() {
        let cut = serde_json::from_str::<serde_json::Value>("{\"a\": [1,").unwrap_err();
        assert!(
            problem_of(&cut).starts_with("cut short"),
            "{}",
            problem_of(&cut)
        );
        let garbage = serde_json::from_str::<serde_json::Value>("\u{1}xz").unwrap_err();
        assert!(problem_of(&garbage).starts_with("not JSON"));
        let shape = serde_json::from_str::<Vec<u8>>("{}").unwrap_err();
        assert!(problem_of(&shape).starts_with("not what failover writes"));
    }

    #[test]
    fn a_file_kept_aside_but_never_said_should_be_told_once_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join(super::super::paths::REPORTS_DIR);
        std::fs::create_dir(&reports).unwrap();
        for path in [dir.path().join("facts.json"), reports.join("r.json")] {
            std::fs::write(&path, "{").unwrap();
            keep_aside(&path, at()).unwrap();
        }
        std::fs::write(dir.path().join("journal.jsonl"), "{}\n").unwrap();
        let said = |names: &[&str]| {
            let told = names.iter().map(std::ffi::OsString::from).collect();
            untold(dir.path(), &told)
        };
        let all = said(&[]);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[0].file, dir.path().join("facts.json"));
        assert_eq!(
            all[0].kept,
            dir.path().join("facts.json.damaged-20261206T031500Z")
        );
        assert_eq!(all[1].file, reports.join("r.json"));
        assert!(
            all[0]
                .to_string()
                .contains("stopped before it could say why"),
            "{}",
            all[0]
        );
        let one = said(&["facts.json.damaged-20261206T031500Z"]);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].kept, reports.join("r.json.damaged-20261206T031500Z"));
        assert!(
            said(&[
                "facts.json.damaged-20261206T031500Z",
                "r.json.damaged-20261206T031500Z"
            ])
            .is_empty()
        );
    }
}
