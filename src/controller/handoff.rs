//! What the controller and one-shot commands exchange through the state folder: the
//! manifest set `apply` hands to a running controller (`handoff/applied.json`), the set the
//! controller runs with (`manifests.json`, read by `get`), and the controller's status
//! after each reconcile (`status.json`, read by `apply --wait` and `get`).

use crate::state::paths::STATUS_FILE;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::{self, LoadError, Manifests};
use crate::state::{self, read_json, write_json};

/// A set of manifest texts with their file names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestSet {
    /// A stable hash of the names and texts: the same set has the same generation.
    pub generation: String,
    /// (file name, text) in load order.
    pub files: Vec<(String, String)>,
    /// When the set was read.
    pub at: jiff::Timestamp,
}

impl ManifestSet {
    /// A set of texts.
    pub(crate) fn new(files: Vec<(String, String)>) -> Self {
        Self {
            generation: generation(&files),
            files,
            at: jiff::Timestamp::now(),
        }
    }

    /// Reads the `-f` inputs.
    pub(crate) fn read(inputs: &[PathBuf]) -> Result<Self, LoadError> {
        Ok(Self::new(api::read_inputs(inputs)?))
    }

    /// Validates the set into manifests.
    pub(crate) fn load(&self) -> Result<Manifests, LoadError> {
        let mut m = api::load_texts(&self.files)?;
        m.files = self.files.iter().map(|(n, _)| PathBuf::from(n)).collect();
        Ok(m)
    }

    /// Reads a set stored as `name` in the state folder, if there is one.
    pub(crate) fn stored(dir: &Path, name: &str) -> Result<Option<Self>, state::Error> {
        read_json(&dir.join(name))
    }

    /// Stores the set as `name` in the state folder, atomically.
    pub(crate) fn store(&self, dir: &Path, name: &str) -> Result<(), state::Error> {
        write_json(&dir.join(name), self)
    }
}

/// A stable hash of the names and texts, each closed by a NUL.
fn generation(files: &[(String, String)]) -> String {
    let bytes = files
        .iter()
        .flat_map(|(name, text)| name.bytes().chain([0]).chain(text.bytes()).chain([0]));
    format!("{:016x}", state::hash::stable_hash(bytes))
}

/// The controller's view after a reconcile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    /// The controller's pid.
    pub pid: u32,
    /// The generation of the manifests it runs with.
    pub generation: String,
    /// Whether the last reconcile found nothing to do and nothing refused.
    pub converged: bool,
    /// What is still to be done, as plan lines.
    pub pending: Vec<String>,
    /// What is refused, as `object: reason`.
    pub refused: Vec<String>,
    /// The last error (an invalid manifest edit, tmux unreachable), if any.
    pub error: Option<String>,
    /// When this status was written.
    pub updated: jiff::Timestamp,
    /// With a fleet: `node NAME`, and `, degraded: …` while etcd cannot be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<String>,
}

impl Status {
    /// Reads the status in the state folder, if any.
    pub(crate) fn read(dir: &Path) -> Result<Option<Self>, state::Error> {
        read_json(&dir.join(STATUS_FILE))
    }

    /// Writes it atomically.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), state::Error> {
        write_json(&dir.join(STATUS_FILE), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_should_be_stable_and_sensitive_to_names_and_texts() {
        let a = ManifestSet::new(vec![("a.yaml".into(), "x: 1\n".into())]);
        let b = ManifestSet::new(vec![("a.yaml".into(), "x: 1\n".into())]);
        let c = ManifestSet::new(vec![("b.yaml".into(), "x: 1\n".into())]);
        let d = ManifestSet::new(vec![("a.yaml".into(), "x: 2\n".into())]);
        assert_eq!(a.generation, b.generation);
        assert_ne!(a.generation, c.generation);
        assert_ne!(a.generation, d.generation);
        assert_eq!(ManifestSet::new(vec![]).generation, "cbf29ce484222325");
    }

    #[test]
    fn sets_should_round_trip_through_the_state_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            ManifestSet::stored(dir.path(), crate::state::paths::APPLIED_FILE).unwrap(),
            None
        );
        let set = ManifestSet::new(vec![("a.yaml".into(), "x: 1\n".into())]);
        set.store(dir.path(), crate::state::paths::APPLIED_FILE)
            .unwrap();
        assert_eq!(
            ManifestSet::stored(dir.path(), crate::state::paths::APPLIED_FILE).unwrap(),
            Some(set)
        );
    }
}
