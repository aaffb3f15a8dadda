//! A wall clock that jumps (issue 28, item 3), made with libfaketime: every process of
//! the bed (the controllers, the tmux server and so the agents and their hooks, the
//! operator's `failover` commands) reads the wall clock through `LD_PRELOAD`, offset by
//! what a file says, read again at each call. The monotonic clock is left alone, as a
//! real jump leaves it. File times stay the kernel's: the run puts the offset back to
//! nothing before a controller is killed, so that the next start's replay (which reads
//! them) sees a clock that agrees with them.

use std::path::{Path, PathBuf};

/// Where Debian, Fedora and a build from source put libfaketime.
const LIBRARIES: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib64/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
];

/// The bed's wall clock: the file holding its offset and the environment that makes a
/// process read it.
#[derive(Debug)]
pub struct Clock {
    file: PathBuf,
    library: PathBuf,
}

impl Clock {
    /// A clock with no offset whose file lives in `dir`; why not when libfaketime is
    /// not installed (`apt-get install faketime`).
    pub fn install(dir: &Path) -> Result<Self, String> {
        let library = LIBRARIES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or_else(|| {
                format!(
                    "libfaketime is not installed (apt-get install faketime): none of {}",
                    LIBRARIES.join(", ")
                )
            })?;
        let clock = Self {
            file: dir.join("clock-offset"),
            library,
        };
        clock.set(0)?;
        Ok(clock)
    }

    /// Sets the wall clock `minutes` away from the real one (negative: behind).
    pub fn set(&self, minutes: i64) -> Result<(), String> {
        std::fs::write(&self.file, format!("{minutes:+}m\n"))
            .map_err(|e| format!("clock offset {}: {e}", self.file.display()))
    }

    /// The environment that makes a process read this clock.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("LD_PRELOAD", self.library.to_string_lossy().into_owned()),
            (
                "FAKETIME_TIMESTAMP_FILE",
                self.file.to_string_lossy().into_owned(),
            ),
            ("FAKETIME_NO_CACHE", "1".to_owned()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_set_forward_should_move_the_wall_clock_of_a_process_and_not_its_monotonic_one() {
        let dir = tempfile::tempdir().unwrap();
        let clock = match Clock::install(dir.path()) {
            Ok(c) => c,
            Err(why) => {
                eprintln!("SKIPPED: {why}");
                return;
            }
        };
        let now = |clock: &Clock| -> i64 {
            let out = std::process::Command::new("date")
                .arg("+%s")
                .envs(clock.env())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let real = jiff::Timestamp::now().as_second();
        assert!((now(&clock) - real).abs() < 5);
        clock.set(120).unwrap();
        assert!((now(&clock) - real - 7200).abs() < 5);
        clock.set(-10).unwrap();
        assert!((now(&clock) - real + 600).abs() < 5);
    }
}
