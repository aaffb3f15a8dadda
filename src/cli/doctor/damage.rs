//! Damaged state files: a facts file or journal lines that do not read now (the
//! controller keeps them aside at its next start), and the files kept aside so far
//! (`<name>.damaged-<time>`), which wait for the operator to look at them.

use std::path::{Path, PathBuf};

use super::{Check, Fixes};
use crate::state::paths::{FACTS_FILE, JOURNAL_FILE};

/// What doctor found of damage in the state folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Damage {
    /// The state folder.
    pub dir: PathBuf,
    /// What is wrong with the facts file now, if anything.
    pub facts: Option<String>,
    /// What is wrong with the journal now, if anything.
    pub journal: Option<String>,
    /// The files kept aside so far.
    pub kept: Vec<PathBuf>,
    /// Why the folder cannot be written now, if it cannot.
    pub unwritable: Option<String>,
}

/// Reads the facts and the journal of the state folder `dir`, and lists what was kept
/// aside there.
pub(super) fn gather(dir: &Path) -> Damage {
    let journal = crate::journal::read_checked(dir)
        .map_err(|e| e.to_string())
        .map(|r| (!r.damaged.is_empty()).then(|| r.problem()))
        .unwrap_or_else(Some);
    Damage {
        dir: dir.to_path_buf(),
        facts: crate::state::Facts::load(dir).err().map(|e| e.to_string()),
        journal,
        kept: crate::state::damage::kept_aside(dir),
        unwritable: crate::state::probe_writable(dir)
            .err()
            .map(|e| e.to_string()),
    }
}

/// A failure when the folder cannot be written, one for each file damaged now (restarting the controller keeps it aside), a
/// warning for the files kept aside (look, then delete them); one ✓ when neither.
pub(super) fn judge(d: &Damage, holder: Option<u32>, fixes: &Fixes) -> Vec<Check> {
    let restart = || match holder {
        Some(pid) => fixes.restart_controller(pid),
        None => fixes.start_controller(),
    };
    let mut checks = Vec::new();
    if let Some(error) = &d.unwritable {
        let quoted = shell_words::quote(&d.dir.to_string_lossy()).into_owned();
        checks.push(Check::fail(
            "damage",
            d.dir.display().to_string(),
            format!(
                "cannot be written ({error}): the controller keeps its sessions running, \
                 claims no new task and holds its journal lines until it can"
            ),
            if error.contains("No space left") {
                format!(
                    "free space on the disk under it (`df -h {quoted}` says how full it is); \
                     the controller catches up by itself"
                )
            } else {
                format!(
                    "make it writable again (a filesystem remounted read-only: `mount -o \
                     remount,rw`; `lsattr -d {quoted}` for the immutable flag; `chmod u+w \
                     {quoted}`)"
                )
            },
        ));
    }
    if let Some(problem) = &d.facts {
        checks.push(Check::fail(
            "damage",
            d.dir.join(FACTS_FILE).display().to_string(),
            format!("{problem}: the controller keeps it aside and rebuilds the facts at its start"),
            restart(),
        ));
    }
    if let Some(problem) = &d.journal {
        checks.push(Check::fail(
            "damage",
            d.dir.join(JOURNAL_FILE).display().to_string(),
            format!(
                "{problem}: the controller keeps the journal aside and writes its whole lines back at its start"
            ),
            restart(),
        ));
    }
    if !d.kept.is_empty() {
        let names: Vec<String> = d
            .kept
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .collect();
        let quoted: Vec<String> = d
            .kept
            .iter()
            .map(|p| shell_words::quote(&p.to_string_lossy()).into_owned())
            .collect();
        checks.push(Check::warn(
            "damage",
            d.dir.display().to_string(),
            format!(
                "{} damaged file{} kept aside (the controller journaled what it did: \
                 `failover get events`): {}",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
            format!("look at them, then: rm {}", quoted.join(" ")),
        ));
    }
    if checks.is_empty() {
        checks.push(Check::ok(
            "damage",
            d.dir.display().to_string(),
            "facts and journal read whole; nothing kept aside",
        ));
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::doctor::Status;

    fn fixes() -> Fixes {
        Fixes::new(&["m/".to_owned()], false)
    }

    #[test]
    fn doctor_should_fail_damaged_facts_and_warn_of_files_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let none = judge(&gather(dir.path()), None, &fixes());
        assert_eq!(none.len(), 1);
        assert_eq!(none[0].status, Status::Ok, "{none:?}");
        std::fs::write(dir.path().join(FACTS_FILE), "{\"sessions\": {").unwrap();
        std::fs::write(dir.path().join("facts.json.damaged-20261206T031500Z"), "x").unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), "garbage\n").unwrap();
        let c = judge(&gather(dir.path()), Some(42), &fixes());
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c[0].status, Status::Fail);
        assert!(c[0].object.ends_with("facts.json"), "{c:?}");
        assert!(c[0].found.contains("keeps it aside"), "{}", c[0].found);
        assert_eq!(
            c[0].fix.as_deref(),
            Some(fixes().restart_controller(42).as_str())
        );
        assert_eq!(c[1].status, Status::Fail);
        assert!(
            c[1].found.contains("1 line that is not a journal line"),
            "{}",
            c[1].found
        );
        assert_eq!(c[2].status, Status::Warn);
        assert!(
            c[2].found.contains("facts.json.damaged-20261206T031500Z"),
            "{}",
            c[2].found
        );
    }

    #[test]
    fn doctor_should_tell_a_full_disk_to_free_space_not_to_remount() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = gather(dir.path());
        d.unwritable = Some("No space left on device (os error 28)".into());
        let c = judge(&d, Some(42), &fixes());
        assert_eq!(c[0].status, Status::Fail);
        let fix = c[0].fix.as_deref().unwrap_or_default();
        assert!(fix.starts_with("free space on the disk under it"), "{fix}");
        d.unwritable = Some("Permission denied (os error 13)".into());
        let c = judge(&d, Some(42), &fixes());
        let fix = c[0].fix.as_deref().unwrap_or_default();
        assert!(fix.contains("remount,rw"), "{fix}");
    }
}
