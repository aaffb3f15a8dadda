//! The operator's requests to a running controller — `failover restart session`,
//! `failover return task`, and `top`'s `x` and `r` — one JSON file each in the state
//! folder's `requests/` (`{"verb", "object", "at"}`), written atomically by the verb,
//! read by the controller's observation, turned into ordinary actions by the pure
//! planner (`plan::requests`) and deleted once carried out or refused. The controller
//! owns its sessions and their claims: another process asks it rather than acting
//! beside it.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::object::ObjectRef;
use crate::state::paths::REQUESTS_DIR;

/// What the operator asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verb {
    /// Restart a session's agent under its account, resuming its conversation.
    Restart,
    /// Stop a running task's turn and put the task back in its inbox.
    Return,
}

impl Verb {
    /// The verb as the command line writes it.
    pub fn word(self) -> &'static str {
        match self {
            Verb::Restart => "restart",
            Verb::Return => "return",
        }
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// What to do.
    pub verb: Verb,
    /// To what: `session/NAME` to restart, `task/NAME` or `task/INBOX/NAME` to return.
    pub object: ObjectRef,
    /// When it was asked.
    pub at: Timestamp,
}

/// A request file found in `requests/`: the request, or why it does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file, deleted once the request is carried out or refused.
    pub path: PathBuf,
    /// The request, or why the file is not one.
    pub request: Result<Request, String>,
}

/// A request that could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The file could not be written.
    #[error("cannot write the request {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: crate::state::Error,
    },
}

/// Writes `request` into the state folder `dir` (atomically, mode 0600); its file.
pub(crate) fn write(dir: &Path, request: &Request) -> Result<PathBuf, Error> {
    let path = dir
        .join(REQUESTS_DIR)
        .join(format!("{}.json", uuid::Uuid::new_v4()));
    crate::state::write_json(&path, request).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The requests in the state folder `dir`, oldest first (by the time they say, then by
/// file name); temp files of a write under way are skipped.
pub(crate) fn read(dir: &Path) -> Vec<Found> {
    let Ok(entries) = std::fs::read_dir(dir.join(REQUESTS_DIR)) else {
        return Vec::new();
    };
    let mut found: Vec<Found> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
        })
        .map(|path| {
            let request = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string()));
            Found { path, request }
        })
        .collect();
    found.sort_by(|a, b| {
        let at = |f: &Found| f.request.as_ref().ok().map(|r| r.at);
        at(a).cmp(&at(b)).then_with(|| a.path.cmp(&b.path))
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_should_read_back_as_written_and_a_broken_one_say_why() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).is_empty(), "no folder: no request");
        let request = Request {
            verb: Verb::Return,
            object: ObjectRef::task("q", "t.md"),
            at: "2026-12-06T01:00:00Z".parse().unwrap(),
        };
        let path = write(dir.path(), &request).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\n  \"verb\": \"return\",\n  \"object\": \"task/q/t.md\",\n  \"at\": \"2026-12-06T01:00:00Z\"\n}"
        );
        std::fs::write(dir.path().join("requests/b.json"), "{\"verb\": \"reboot\"}").unwrap();
        std::fs::write(dir.path().join("requests/.tmp-x.json"), "half").unwrap();
        let found = read(dir.path());
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].request, Err(found[0].request.clone().unwrap_err()));
        assert!(
            found[0]
                .request
                .as_ref()
                .unwrap_err()
                .contains("unknown variant `reboot`"),
            "{found:?}"
        );
        assert_eq!(found[1].path, path);
        assert_eq!(found[1].request, Ok(request));
    }
}
