//! The Claude Code versions failover's tests cover: the pinned one the suite is written
//! against and the newest one CI also runs. `failover doctor` compares an installed CLI
//! with them; the test bed re-exports them; `.ci/run` reads them from this file (its
//! `claude_version()` takes `pub const NAME: &str = "…";` lines), so keep that shape.

/// The version the suite is written against (`../shared/reference`).
pub const VERSION: &str = "2.1.329";

/// The newest version on the npm registry the suite is known to pass on; CI runs it too.
pub const NEWEST: &str = "2.1.332";
