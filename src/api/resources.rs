//! The resource kinds operators write in manifests, and their defaults.
//!
//! Every kind has the Kubernetes shape `apiVersion`, `kind`, `metadata`, `spec`; this
//! module owns the `spec` types. Field names are camelCase and unknown fields are
//! rejected. Doc comments here become the JSON Schema's descriptions.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;
pub use crate::agents::AgentKind;

/// The only `apiVersion` this release reads.
pub const API_VERSION: &str = "failover/v1alpha1";

/// The name of the agent profile that is always there, without a manifest: the first
/// of the built-in profiles ([`crate::agents::BUILTIN`]).
pub const BUILTIN_AGENT: &str = crate::agents::BUILTIN[0].name;

/// Environment variables, name to value.
pub type Env = BTreeMap<String, String>;

/// A subscription account: the config home its agent runs under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccountSpec {
    /// The account's config home, given to the agent in the profile's `homeEnv`
    /// (`CLAUDE_CONFIG_DIR` for Claude Code). Absolute.
    pub home: PathBuf,
    /// Order of preference: the available account with the lowest priority is active;
    /// ties go by name. Default 0.
    #[serde(default)]
    pub priority: i32,
    /// Extra environment for every agent run under this account. Default none.
    #[serde(default)]
    pub env: Env,
    /// The kind of agent this home is for: its family. Sessions run under the accounts
    /// of their profile's kind only. Default `claude-code`.
    #[serde(default)]
    pub agent: AgentKind,
}

/// The folder every account home shares, and the links each home must expose into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SharedStateSpec {
    /// The shared folder the links point into. Absolute.
    pub target: PathBuf,
    /// Names linked as `<home>/<name> -> <target>/<name>`. The default is Claude Code's:
    /// the homes of a Codex family share their rollouts in a SharedState of their own
    /// that names their `accounts`, with `links: [sessions]` (and `packages` when the
    /// profile's command leaves out `--no-daemon`), so that a thread resumes under
    /// another account. Default `[projects, file-history, session-env]`.
    #[serde(default = "default_links")]
    pub links: Vec<String>,
    /// The accounts that share this state, by name. Default: every account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
}

pub(crate) fn default_links() -> Vec<String> {
    ["projects", "file-history", "session-env"]
        .map(String::from)
        .to_vec()
}

/// Autonomous sessions named `prefix + i` for `i` in `[startIndex, startIndex + max)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSpec {
    /// The session name prefix, e.g. `ccl-auto-`.
    pub prefix: String,
    /// The index of the first session. Default 0.
    #[serde(default)]
    pub start_index: u32,
    /// Sessions kept alive at all times.
    pub min: u32,
    /// Sessions at most, grown toward while tasks wait.
    #[schemars(range(min = 1, max = 1000))]
    pub max: u32,
    /// The agent profile to run. Default `claude`. Set `agents` instead to run several
    /// families in turn; not both.
    #[serde(default = "default_agent")]
    pub agent: String,
    /// The agent profiles to run, by name, first preferred, each of another kind (a
    /// family): while a family has a usable account the pool runs the first such; when
    /// every account of it is used up, idle sessions restart under the next family
    /// and a task cut by the limit is handed to it as a fresh task (its inbox's
    /// `handOffNote` first). Sessions return at idle points once the preferred family
    /// is usable again. Default: `[agent]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// The folder sessions start in. Absolute.
    pub workdir: PathBuf,
    /// Extra environment for this pool's agents. Default none.
    #[serde(default)]
    pub env: Env,
    /// Idle sessions above `min` are removed after this long. Default `10m`.
    #[serde(default = "default_scale_down_after")]
    pub scale_down_after: Duration,
}

fn default_agent() -> String {
    BUILTIN_AGENT.to_owned()
}

fn default_scale_down_after() -> Duration {
    Duration::from_secs(600)
}

/// One of the operator's own interactive sessions; `metadata.name` is its tmux name.
/// It never receives tasks nor the exit command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DedicatedSessionSpec {
    /// The folder the session runs in. Absolute.
    pub workdir: PathBuf,
    /// The agent profile to run. Default `claude`.
    #[serde(default = "default_agent")]
    pub agent: String,
    /// Resume the conversation under the new account after a swap. Default true.
    #[serde(default = "default_true")]
    pub resume: bool,
    /// Extra environment for this session's agent. Default none.
    #[serde(default)]
    pub env: Env,
}

fn default_true() -> bool {
    true
}

/// A folder of task files that feeds a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboxSpec {
    /// The inbox folder, e.g. `<project>/.agent-queue/inbox`. Absolute. Claimed,
    /// finished and failed tasks go to its siblings `active/`, `done/` and `failed/`.
    pub path: PathBuf,
    /// The pool that runs these tasks, by name.
    pub pool: String,
    /// The folder each task runs in (the project). Absolute.
    pub workdir: PathBuf,
    /// Which files are tasks. Default `*.md`.
    #[serde(default = "default_glob")]
    pub glob: String,
    /// Tries before a task goes to `failed/`. Default 3.
    #[serde(default = "default_max_tries")]
    #[schemars(range(min = 1))]
    pub max_tries: u32,
    /// The line put before a task's text when it is handed to another family's agent
    /// (its pool's `agents`) after its own stopped at a usage limit; empty for none.
    /// Default: a line saying so, and that its work may be partly done in the folder.
    #[serde(default = "default_hand_off_note")]
    pub hand_off_note: String,
}

/// The line a handed-off task's text follows, unless its inbox says otherwise.
pub const HAND_OFF_NOTE: &str = "Another agent started this task and stopped at a usage limit; its work may be partly done in this folder. The task follows.";

fn default_hand_off_note() -> String {
    HAND_OFF_NOTE.to_owned()
}

fn default_glob() -> String {
    "*.md".to_owned()
}

fn default_max_tries() -> u32 {
    3
}

/// How to start, resume and stop an agent, and how to read its screen. Every field left
/// out takes its `kind`'s default (Claude Code's given below; Codex's in
/// docs/agent-families.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentProfileSpec {
    /// The kind of agent it runs: which accounts its sessions run under (those whose
    /// `agent` is this kind). Default `claude-code`.
    #[serde(default)]
    pub kind: AgentKind,
    /// The agent's argv; no shell is involved. Default
    /// `[claude, --dangerously-skip-permissions]`; for `codex`,
    /// `[codex, --dangerously-bypass-approvals-and-sandbox, --no-daemon]`.
    #[serde(default = "default_command")]
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Extra environment for the agent. Default none.
    #[serde(default)]
    pub env: Env,
    /// The variable that carries the account's home. Default `CLAUDE_CONFIG_DIR`; for
    /// `codex`, `CODEX_HOME`.
    #[serde(default = "default_home_env")]
    pub home_env: String,
    /// Arguments appended to `command` to resume a conversation; `{sessionId}` is
    /// replaced by its UUID. Default `[--resume, "{sessionId}"]`; for `codex`,
    /// `[resume, "{sessionId}"]`.
    #[serde(default = "default_resume_args")]
    pub resume_args: Vec<String>,
    /// Typed into a pool session to end its context after a task. Default `/exit`.
    #[serde(default = "default_exit_command")]
    pub exit_command: String,
    /// Regexes that read the agent's screen. Default: its kind's.
    #[serde(default)]
    pub screen: ScreenPatterns,
    /// Read the agent's own reports: failover keeps its hooks and status line (which run
    /// `failover hook`) in every account home's `settings.json` (Codex: its `notify` in
    /// `config.toml`), and ends a task on the agent's word that its turn ended. Set
    /// false for agents of another make; their tasks end on the transcript or the
    /// screen. Default true.
    #[serde(default = "default_true")]
    pub reports: bool,
}

/// Claude Code's defaults: a field's default cannot see the profile's `kind`.
fn claude_code() -> &'static crate::agents::Defaults {
    AgentKind::ClaudeCode.defaults()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn default_command() -> Vec<String> {
    strings(claude_code().command)
}

fn default_home_env() -> String {
    claude_code().home_env.to_owned()
}

fn default_resume_args() -> Vec<String> {
    strings(claude_code().resume_args)
}

fn default_exit_command() -> String {
    claude_code().exit_command.to_owned()
}

impl Default for AgentProfileSpec {
    fn default() -> Self {
        Self {
            kind: AgentKind::default(),
            command: default_command(),
            env: Env::new(),
            home_env: default_home_env(),
            resume_args: default_resume_args(),
            exit_command: default_exit_command(),
            screen: ScreenPatterns::default(),
            reports: true,
        }
    }
}

impl AgentProfileSpec {
    /// A profile of `kind` with every default of that kind: the built-in profiles, and
    /// what a manifest profile's left-out fields are filled from (`api::load`).
    pub fn of_kind(kind: AgentKind) -> Self {
        let d = kind.defaults();
        Self {
            kind,
            command: strings(d.command),
            env: Env::new(),
            home_env: d.home_env.to_owned(),
            resume_args: strings(d.resume_args),
            exit_command: d.exit_command.to_owned(),
            screen: ScreenPatterns::of(&d.screen),
            reports: true,
        }
    }
}

/// Regexes (Rust `regex` syntax) matched against the lines of an agent's screen.
/// Each field left out keeps its profile's kind's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ScreenPatterns {
    /// The input prompt line. Drawn while busy too: it means idle only without `busy`.
    pub prompt: String,
    /// The agent is working on a turn.
    pub busy: String,
    /// A dialog that waits for a person (trust, permission, API key).
    pub waiting: String,
    /// What the input box shows on its own when nothing is typed (a hint), read as
    /// empty.
    pub placeholder: String,
    /// The account's quota is used up.
    pub quota: Vec<String>,
    /// Server errors: they win over quota words, and never cause a swap.
    pub veto: Vec<String>,
    /// Transient rate limits that are not a quota.
    pub transient: Vec<String>,
    /// Reset times; the named group `time` (or `epoch`) holds the instant.
    pub reset: Vec<String>,
}

impl Default for ScreenPatterns {
    fn default() -> Self {
        Self::of(&claude_code().screen)
    }
}

impl ScreenPatterns {
    /// A kind's default patterns.
    pub(crate) fn of(screen: &crate::agents::Screen) -> Self {
        Self {
            prompt: screen.prompt.to_owned(),
            busy: screen.busy.to_owned(),
            waiting: screen.waiting.to_owned(),
            placeholder: screen.placeholder.to_owned(),
            quota: strings(screen.quota),
            veto: strings(screen.veto),
            transient: strings(screen.transient),
            reset: strings(screen.reset),
        }
    }
}

/// How the controller itself runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ControllerConfigSpec {
    /// The owner mark put on every session the controller creates (tmux option
    /// `@failover-owner`). Default `failover`.
    pub owner: String,
    /// The tmux server to drive.
    pub tmux: TmuxSpec,
    /// Where persisted facts, the journal and the agents' reports live. Absolute; empty means
    /// `$XDG_STATE_HOME/failover` (else `~/.local/state/failover`). `FAILOVER_STATE_DIR`
    /// overrides it. Default empty.
    pub state_dir: PathBuf,
    /// How often agents' screens are read. Default `1s`.
    pub poll_interval: Duration,
    /// How often everything is re-observed even without events. Default `15s`.
    pub resync_period: Duration,
    /// Quota detection and swaps.
    pub quota: QuotaSpec,
    /// Sending tasks to agents.
    pub dispatch: DispatchSpec,
    /// Detecting that a task is finished.
    pub completion: CompletionSpec,
    /// Pruning finished tasks.
    pub janitor: JanitorSpec,
    /// Telling the operator about swaps and exhaustion.
    pub notifications: NotificationsSpec,
    /// Serving Prometheus metrics over HTTP. Off by default.
    pub metrics: MetricsSpec,
    /// Joining a fleet of controllers on other machines that share the accounts
    /// through etcd. Off (one machine) by default.
    pub fleet: FleetSpec,
}

/// A fleet of controllers sharing accounts through etcd: each node holds a lease and
/// publishes its status; exhaustion and use of each account live in one ledger that
/// every node watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FleetSpec {
    /// etcd client URLs (`http://10.0.0.1:2379`, or `https://…`). Empty: no fleet.
    /// Default empty.
    pub endpoints: Vec<String>,
    /// This machine's name in the fleet: letters, digits, `-`, `_` and `.`. Empty: the
    /// host name. Default empty.
    pub node: String,
    /// The prefix of every key failover writes. Default `/failover/`.
    pub prefix: String,
    /// How long a node stays listed without being heard from. Default `10s`.
    pub lease_ttl: Duration,
    /// A PEM file of certificate authorities for `https://` endpoints (absolute).
    /// Empty: the system's. Default empty.
    pub ca_file: PathBuf,
    /// The etcd user, when etcd's authentication is on. Empty: none. Default empty.
    pub username: String,
    /// A file holding that user's password (absolute; its first line). Default empty.
    pub password_file: PathBuf,
}

impl Default for FleetSpec {
    fn default() -> Self {
        Self {
            endpoints: Vec::new(),
            node: String::new(),
            prefix: "/failover/".to_owned(),
            lease_ttl: Duration::from_secs(10),
            ca_file: PathBuf::new(),
            username: String::new(),
            password_file: PathBuf::new(),
        }
    }
}

/// Serving Prometheus metrics (`GET /metrics`, text format).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MetricsSpec {
    /// Whether the controller serves them. Default `false`.
    pub enabled: bool,
    /// The address to listen on, `host:port`. Empty means `127.0.0.1:9464` (loopback
    /// only). Default empty.
    pub listen: String,
}

impl MetricsSpec {
    /// The address served on, when enabled.
    pub fn address(&self) -> Option<&str> {
        let address = if self.listen.is_empty() {
            "127.0.0.1:9464"
        } else {
            self.listen.as_str()
        };
        self.enabled.then_some(address)
    }
}

impl Default for ControllerConfigSpec {
    fn default() -> Self {
        Self {
            owner: "failover".to_owned(),
            tmux: TmuxSpec::default(),
            state_dir: PathBuf::new(),
            poll_interval: Duration::from_secs(1),
            resync_period: Duration::from_secs(15),
            quota: QuotaSpec::default(),
            dispatch: DispatchSpec::default(),
            completion: CompletionSpec::default(),
            janitor: JanitorSpec::default(),
            notifications: NotificationsSpec::default(),
            metrics: MetricsSpec::default(),
            fleet: FleetSpec::default(),
        }
    }
}

/// The tmux server to drive.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TmuxSpec {
    /// The server's socket path (absolute). Empty means the user's default server.
    /// `FAILOVER_TMUX_SOCKET` overrides it. Default empty.
    pub socket: PathBuf,
    /// The configuration file tmux reads when failover starts the server (absolute).
    /// Empty means tmux's own default (`~/.tmux.conf`). `FAILOVER_TMUX_CONFIG`
    /// overrides it. Default empty.
    pub config: PathBuf,
}

/// Quota detection and swaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct QuotaSpec {
    /// How long after a swap the moves that are a choice wait: a fail-back to a
    /// preferred account, and leaving an account over `moveAt`. Within it, a limit read
    /// on a screen alone needs `confirmations` readings even with a reset time shown.
    /// A confirmed exhaustion (the agent's own report, or a confirmed screen reading)
    /// moves sessions on at once, cooldown or not: an exhausted account stays
    /// unavailable until its reset, so there is nothing to ping-pong to. Default `5m`.
    pub cooldown: Duration,
    /// Consecutive polls that must read exhausted when no reset time is shown (and,
    /// within the cooldown, when one is shown on a screen alone). Default 2.
    #[schemars(range(min = 1))]
    pub confirmations: u32,
    /// An exhausted account without a shown reset time is tried again after this long.
    /// Default `5h`.
    pub reset_fallback: Duration,
    /// When to move sessions back to a preferred account that is available again:
    /// `idle` (only idle sessions) or `never`. Default `idle`.
    pub failback: Failback,
    /// Move before the wall: once an account's 5-hour or 7-day use, as its agents'
    /// status line reports it, reaches this percent, it takes no new task and its
    /// sessions move to the account with the most headroom at safe points (idle ones at
    /// once, working ones after their turn). Unset: only a used-up quota moves them.
    /// Default unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub move_at: Option<u32>,
}

impl Default for QuotaSpec {
    fn default() -> Self {
        Self {
            cooldown: Duration::from_secs(300),
            confirmations: 2,
            reset_fallback: Duration::from_secs(5 * 3600),
            failback: Failback::Idle,
            move_at: None,
        }
    }
}

/// When sessions go back to a preferred account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Failback {
    /// Move idle sessions back; busy ones finish first.
    Idle,
    /// Stay on the account they were moved to.
    Never,
}

/// Sending tasks to agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DispatchSpec {
    /// Pause between the bracketed paste and the lone Enter that submits it.
    /// Default `500ms`.
    pub submit_delay: Duration,
}

impl Default for DispatchSpec {
    fn default() -> Self {
        Self {
            submit_delay: Duration::from_millis(500),
        }
    }
}

/// Detecting that a task is finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CompletionSpec {
    /// A task whose screen has not changed for this long is marked stalled.
    /// Default `30m`.
    pub idle_timeout: Duration,
}

impl Default for CompletionSpec {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(1800),
        }
    }
}

/// Pruning finished tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct JanitorSpec {
    /// Tasks in `done/` and `failed/` older than this are deleted. Default `7d`.
    pub retention: Duration,
}

impl Default for JanitorSpec {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// Telling the operator about swaps, exhaustion and recovery.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NotificationsSpec {
    /// An `https://` (or `http://`) URL the event is POSTed to as JSON, with a 10 s
    /// timeout and up to 3 tries; only its host is ever logged. Empty: none. Default
    /// empty.
    pub webhook: String,
    /// A PEM file of certificate authorities the webhook's server may be signed by,
    /// besides the system's (absolute). Empty: the system's only. Default empty.
    pub ca_file: PathBuf,
    /// An argv run with the event as JSON on stdin; no shell. Empty: none.
    /// Default empty.
    pub command: Vec<String>,
}
