//! File watches: folders, not files (editors save by rename), each event routed to the
//! work-queue key it concerns. Debouncing is the queue's: it coalesces a stream of
//! events into a handful of runs without delaying a lone one. A folder that does not
//! exist yet is watched from its nearest existing parent until it appears; when the OS
//! watch limit is hit, that folder is polled instead, with a clear warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};
use tracing::{debug, warn};

use super::queue::Key;
use super::queue::WorkQueue;

/// How often folders are polled when they cannot be watched.
const POLL: Duration = Duration::from_secs(1);

type Routes = Arc<Mutex<Vec<(PathBuf, Key)>>>;

/// The controller's watches.
pub(super) struct Watches {
    watcher: RecommendedWatcher,
    poller: Option<PollWatcher>,
    queue: Arc<WorkQueue<Key>>,
    routes: Routes,
    /// Watched folder → polled instead of watched.
    watched: BTreeMap<PathBuf, bool>,
}

impl std::fmt::Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches")
            .field("watched", &self.watched)
            .finish()
    }
}

/// The keys for an event at `path`: the most specific watched folder holding it; for
/// an event on a parent (a watched folder being created), every folder under it. An
/// event elsewhere in a parent watched in a folder's stead (a project's files, while
/// its inbox does not exist yet) concerns nothing.
fn route(routes: &[(PathBuf, Key)], path: &Path) -> Vec<Key> {
    let holder = routes
        .iter()
        .filter(|(folder, _)| path.starts_with(folder))
        .max_by_key(|(folder, _)| folder.components().count());
    if let Some((_, key)) = holder {
        return vec![*key];
    }
    let mut keys: Vec<Key> = routes
        .iter()
        .filter(|(folder, _)| folder.starts_with(path))
        .map(|(_, key)| *key)
        .collect();
    keys.dedup();
    keys
}

fn deliver(queue: &WorkQueue<Key>, routes: &Routes, paths: impl Iterator<Item = PathBuf>) {
    let routes = routes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for path in paths {
        for key in route(&routes, &path) {
            tracing::trace!(path = %path.display(), ?key, "file event");
            queue.add_streaming(key);
        }
    }
}

impl Watches {
    /// Watches that add to `queue`.
    pub(super) fn new(queue: Arc<WorkQueue<Key>>) -> Result<Self, notify::Error> {
        let routes: Routes = Arc::default();
        let (q, r) = (queue.clone(), routes.clone());
        let watcher =
            notify::recommended_watcher(
                move |result: notify::Result<notify::Event>| match result {
                    Ok(event) if changes(&event.kind) => deliver(&q, &r, event.paths.into_iter()),
                    Ok(_) => {}
                    Err(e) => {
                        warn!(error = %e, "file watch error; everything is looked at again");
                        q.add(Key::Manifests);
                        q.add(Key::World);
                    }
                },
            )?;
        Ok(Self {
            watcher,
            poller: None,
            queue,
            routes,
            watched: BTreeMap::new(),
        })
    }

    /// Makes the watches match `wanted` (folder, key): new folders are watched (or their
    /// nearest existing parent), folders no longer wanted are dropped.
    pub(super) fn sync(&mut self, wanted: &[(PathBuf, Key)]) {
        // Events name absolute paths: a relative folder (`-f pool.yaml` gives `.`) would
        // match none of them.
        let wanted: Vec<(PathBuf, Key)> = wanted
            .iter()
            .map(|(p, k)| (std::path::absolute(p).unwrap_or_else(|_| p.clone()), *k))
            .collect();
        let wanted = wanted.as_slice();
        *self.routes.lock().unwrap_or_else(|p| p.into_inner()) = wanted.to_vec();
        let mut effective: BTreeMap<PathBuf, ()> = BTreeMap::new();
        for (folder, _) in wanted {
            if let Some(existing) = nearest_existing(folder) {
                effective.insert(existing, ());
            }
        }
        let stale: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|p| !effective.contains_key(*p))
            .cloned()
            .collect();
        for path in stale {
            let polled = self.watched.remove(&path).unwrap_or(false);
            let result = match (&mut self.poller, polled) {
                (Some(poller), true) => poller.unwatch(&path),
                _ => self.watcher.unwatch(&path),
            };
            if let Err(e) = result {
                debug!(path = %path.display(), error = %e, "unwatch");
            }
        }
        for path in effective.into_keys() {
            if self.watched.contains_key(&path) {
                continue;
            }
            match self.watcher.watch(&path, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    debug!(path = %path.display(), "watching");
                    self.watched.insert(path, false);
                }
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    warn!(
                        path = %path.display(),
                        "the inotify watch limit is reached (raise fs.inotify.max_user_watches); \
                         polling this folder every second instead"
                    );
                    if self.poll(&path) {
                        self.watched.insert(path, true);
                    }
                }
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot watch; relying on the periodic resync")
                }
            }
        }
    }

    fn poll(&mut self, path: &Path) -> bool {
        if self.poller.is_none() {
            let (q, r) = (self.queue.clone(), self.routes.clone());
            let handler = move |result: notify::Result<notify::Event>| {
                if let Ok(event) = result
                    && changes(&event.kind)
                {
                    deliver(&q, &r, event.paths.into_iter());
                }
            };
            match PollWatcher::new(handler, notify::Config::default().with_poll_interval(POLL)) {
                Ok(p) => self.poller = Some(p),
                Err(e) => {
                    warn!(error = %e, "cannot poll either; relying on the periodic resync");
                    return false;
                }
            }
        }
        self.poller
            .as_mut()
            .is_some_and(|p| p.watch(path, RecursiveMode::NonRecursive).is_ok())
    }

    /// The folders actually watched (or polled), for diagnostics and tests.
    pub(super) fn watched(&self) -> Vec<PathBuf> {
        self.watched.keys().cloned().collect()
    }
}

/// Whether an event says something changed. Opening or reading a file is not a change,
/// and the controller's own reads of an inbox must not trigger it again.
fn changes(kind: &notify::EventKind) -> bool {
    !matches!(kind, notify::EventKind::Access(_))
}

/// `path` itself when it is a folder, else its nearest existing ancestor.
fn nearest_existing(path: &Path) -> Option<PathBuf> {
    path.ancestors().find(|p| p.is_dir()).map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_should_pick_the_most_specific_folder_or_a_parent_on_its_way() {
        let routes = vec![
            (PathBuf::from("/srv"), Key::Manifests),
            (PathBuf::from("/srv/p/inbox"), Key::World),
        ];
        assert_eq!(
            route(&routes, Path::new("/srv/pool.yaml")),
            [Key::Manifests]
        );
        assert_eq!(
            route(&routes, Path::new("/srv/p/inbox/t.md")),
            [Key::World],
            "the inbox, not its ancestor"
        );
        assert_eq!(route(&routes, Path::new("/")), [Key::Manifests, Key::World]);
        assert_eq!(route(&routes, Path::new("/elsewhere/x")), []);
    }

    #[tokio::test]
    async fn sync_should_route_events_of_a_relative_folder_by_its_absolute_path() {
        // `-f pool.yaml` watches `.`; events name absolute paths. Tests run in the
        // package's folder.
        let queue = Arc::new(WorkQueue::new());
        let mut w = Watches::new(queue).unwrap();
        w.sync(&[(PathBuf::from("."), Key::Manifests)]);
        let routes = w.routes.lock().unwrap().clone();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            route(&routes, &cwd.join("controller.log")),
            [Key::Manifests]
        );
    }

    #[tokio::test]
    async fn sync_should_watch_the_nearest_parent_until_the_folder_exists() {
        let dir = tempfile::tempdir().unwrap();
        let queue = Arc::new(WorkQueue::new());
        let mut w = Watches::new(queue.clone()).unwrap();
        let inbox = dir.path().join("project/.agent-queue/inbox");
        w.sync(&[(inbox.clone(), Key::World)]);
        assert_eq!(w.watched(), vec![dir.path().to_path_buf()]);
        std::fs::create_dir_all(&inbox).unwrap();
        let key = tokio::time::timeout(Duration::from_secs(5), queue.next())
            .await
            .unwrap();
        assert_eq!(key, Key::World, "creating the folder is an event");
        queue.done(&key, true);
        w.sync(&[(inbox.clone(), Key::World)]);
        assert_eq!(w.watched(), vec![inbox.clone()]);
        std::fs::write(inbox.join("task.md"), "x").unwrap();
        let key = tokio::time::timeout(Duration::from_secs(5), queue.next())
            .await
            .unwrap();
        assert_eq!(key, Key::World);
    }
}
