//! The Codex CLI versions failover's tests cover: the pinned one the real-Codex suite is
//! written against and the newest one CI also runs. The test bed re-exports them;
//! `.ci/run` reads them from this file (its `codex_version()` takes `pub const NAME:
//! &str = "…";` lines, as it does for [`crate::claude_versions`]), so keep that shape.

/// The version the suite is written against (`../shared/reference/codex-cli.md`).
pub const VERSION: &str = "0.171.0";

/// The newest version on the npm registry the suite is known to pass on; CI runs it too
/// (once only while it is the pinned one).
pub const NEWEST: &str = "0.171.0";
