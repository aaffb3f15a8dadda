//! The exclusive lock that keeps a second controller out of a state folder. The lock
//! file holds the holder's pid, so the refusal can name it.

use crate::state::paths::LOCK_FILE;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::state::create_private_dir;

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct Lock {
    _file: File,
}

/// The lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    /// Another controller holds it.
    #[error("another controller (pid {pid}) is running on state folder {}", dir.display())]
    Held {
        /// The holder's pid (0 when it could not be read).
        pid: u32,
        /// The state folder.
        dir: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("lock file {}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Lock {
    /// Takes the lock in `dir` without waiting, and writes our pid into it.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, LockError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    pid: read_pid(&mut file),
                    dir: dir.to_path_buf(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self { _file: file })
    }

    /// The pid of the controller running on `dir`, if one is.
    pub(crate) fn holder(dir: &Path) -> Option<u32> {
        let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
        match file.try_lock_shared() {
            Err(TryLockError::WouldBlock) => Some(read_pid(&mut file)),
            _ => None,
        }
    }
}

fn read_pid(file: &mut File) -> u32 {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    text.trim().parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_should_keep_a_second_holder_out_and_name_the_first() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Lock::holder(dir.path()), None);
        let lock = Lock::acquire(dir.path()).unwrap();
        assert_eq!(Lock::holder(dir.path()), Some(std::process::id()));
        match Lock::acquire(dir.path()) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id()),
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop(lock);
        // A process another test forks at this moment shares the lock's descriptor
        // until it execs (close-on-exec): the lock is free once it has.
        let _ = crate::testbed::wait_for_or_none(std::time::Duration::from_secs(5), || {
            Lock::holder(dir.path()).is_none().then_some(())
        });
        assert_eq!(Lock::holder(dir.path()), None);
        Lock::acquire(dir.path()).unwrap();
    }
}
