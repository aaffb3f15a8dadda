//! The state folder's layout, in one place: every file and folder failover keeps there,
//! relative to the folder (`stateDir`, `FAILOVER_STATE_DIR`, or
//! `$XDG_STATE_HOME/failover`).

/// The persisted facts (atomic, 0600).
pub(crate) const FACTS_FILE: &str = "facts.json";
/// The append-only journal.
pub(crate) const JOURNAL_FILE: &str = "journal.jsonl";
/// The running controller's lock (its pid inside).
pub(crate) const LOCK_FILE: &str = "controller.lock";
/// Where `apply` hands manifests to a running controller (watched).
pub(crate) const HANDOFF_DIR: &str = "handoff";
/// The manifests `apply` handed over, until the controller takes them.
pub(crate) const APPLIED_FILE: &str = "handoff/applied.json";
/// The manifests the controller runs.
pub(crate) const RUNNING_FILE: &str = "manifests.json";
/// The controller's status after its last round.
pub(crate) const STATUS_FILE: &str = "status.json";
/// The board of the controller's last round, for `failover top`; rewritten when it
/// changed.
pub(crate) const BOARD_FILE: &str = "board.json";
/// The operator's requests to the running controller, one file each (watched).
pub(crate) const REQUESTS_DIR: &str = "requests";
/// The agents' reports, one file per hook call (watched).
pub(crate) const REPORTS_DIR: &str = "reports";
/// The pids of the tmux control clients of each failover process.
pub(crate) const CLIENTS_DIR: &str = "clients";
/// Paste buffers: a task's text on its way into tmux.
pub(crate) const BUFFERS_DIR: &str = "buffers";
/// The agent settings files as they were before failover first wrote to them.
pub(crate) const ORIGINALS_DIR: &str = "originals";
