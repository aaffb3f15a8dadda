//! What an account home's agent settings held before failover first wrote its entries
//! there: kept in the state folder's `originals/` (one JSON file per settings file,
//! named by a hash of its path), so that `failover delete` can put back the very bytes,
//! or no file at all, when nothing else changed since.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::paths::ORIGINALS_DIR;
use super::{Error, read_json, write_json};

/// A settings file as it was before failover's first write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Original {
    /// The settings file.
    pub path: PathBuf,
    /// Its text; `None` when there was no file.
    pub text: Option<String>,
}

fn record_path(dir: &Path, settings: &Path) -> PathBuf {
    let hash = super::hash::stable_hash(settings.as_os_str().as_encoded_bytes().iter().copied());
    dir.join(ORIGINALS_DIR).join(format!("{hash:016x}.json"))
}

/// Keeps what `settings` holds now, unless an earlier write already kept it.
pub(crate) fn keep(dir: &Path, settings: &Path) -> Result<(), Error> {
    let record = record_path(dir, settings);
    if record.exists() {
        return Ok(());
    }
    let text = match std::fs::read_to_string(settings) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Io {
                path: settings.to_path_buf(),
                source,
            });
        }
    };
    super::create_private_dir(&dir.join(ORIGINALS_DIR)).map_err(|source| Error::Io {
        path: dir.join(ORIGINALS_DIR),
        source,
    })?;
    write_json(
        &record,
        &Original {
            path: settings.to_path_buf(),
            text,
        },
    )
}

/// What `settings` held before failover's first write, if that was kept.
pub(crate) fn find(dir: &Path, settings: &Path) -> Result<Option<Original>, Error> {
    read_json(&record_path(dir, settings))
}

/// Forgets what was kept for `settings` (once it is put back).
pub(crate) fn forget(dir: &Path, settings: &Path) -> Result<(), Error> {
    let record = record_path(dir, settings);
    match std::fs::remove_file(&record) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            path: record,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_kept_text_should_stand() {
        let dir = tempfile::tempdir().unwrap();
        let settings = dir.path().join("settings.json");
        keep(dir.path(), &settings).unwrap();
        std::fs::write(&settings, "{ \"model\": 1 }").unwrap();
        keep(dir.path(), &settings).unwrap();
        let original = find(dir.path(), &settings).unwrap().unwrap();
        assert_eq!(original.text, None, "there was no file at first");
        forget(dir.path(), &settings).unwrap();
        assert_eq!(find(dir.path(), &settings).unwrap(), None);
        keep(dir.path(), &settings).unwrap();
        let again = find(dir.path(), &settings).unwrap().unwrap();
        assert_eq!(again.text.as_deref(), Some("{ \"model\": 1 }"));
    }
}
