//! The manifests: resource types, loading with file:line:col errors, semantic
//! validation and the JSON Schema.
//!
//! [`load`] turns `-f` inputs into [`Manifests`], the validated desired world, or into
//! [`Problems`] that name every fault at once with its file, line, column and field.

mod advice;
pub mod duration;
mod load;
mod problem;
pub mod reference;
pub mod resources;
pub mod schema;
pub mod settings;
mod validate;
pub mod yaml;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub use advice::advise;
pub use duration::Duration;
pub use load::{LoadError, load, load_str, load_texts, read_inputs};
pub use problem::{Problem, Problems};
pub use resources::*;
pub use settings::Settings;

/// The resource kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A subscription account.
    Account,
    /// The shared-state folder and its links.
    SharedState,
    /// A pool of autonomous sessions.
    Pool,
    /// One of the operator's interactive sessions.
    DedicatedSession,
    /// A task folder feeding a pool.
    Inbox,
    /// How to drive an agent.
    AgentProfile,
    /// How the controller runs.
    ControllerConfig,
}

impl Kind {
    /// Every kind, in the order manifests usually list them.
    pub const ALL: [Kind; 7] = [
        Kind::Account,
        Kind::SharedState,
        Kind::Pool,
        Kind::DedicatedSession,
        Kind::Inbox,
        Kind::AgentProfile,
        Kind::ControllerConfig,
    ];

    /// The kind as manifests write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "Account",
            Kind::SharedState => "SharedState",
            Kind::Pool => "Pool",
            Kind::DedicatedSession => "DedicatedSession",
            Kind::Inbox => "Inbox",
            Kind::AgentProfile => "AgentProfile",
            Kind::ControllerConfig => "ControllerConfig",
        }
    }

    /// The kind named `name`, if any.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a document came from: its file and the position of each of its fields.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file as the operator named it (`-` for stdin; `<builtin>` for built-ins).
    pub file: Arc<str>,
    /// Field positions within the document.
    pub positions: Arc<yaml::Positions>,
}

impl Source {
    /// The source of objects that need no manifest, such as the `claude` profile.
    pub fn builtin() -> Self {
        Self {
            file: "<builtin>".into(),
            positions: Arc::default(),
        }
    }
}

/// One object of a kind: its name, its spec and where it was written.
#[derive(Debug, Clone)]
pub struct Object<S> {
    /// `metadata.name`.
    pub name: String,
    /// `spec`.
    pub spec: S,
    /// Where the document came from.
    pub source: Source,
}

impl<S: Default> Default for Object<S> {
    /// An object named `default` with the default spec, from no manifest.
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
            spec: S::default(),
            source: Source::builtin(),
        }
    }
}

/// The validated desired world: every object of every kind, in manifest order.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    /// Accounts, in manifest order (use [`Manifests::accounts_by_priority`] to rank).
    pub accounts: Vec<Object<AccountSpec>>,
    /// Shared-state declarations.
    pub shared_states: Vec<Object<SharedStateSpec>>,
    /// Pools.
    pub pools: Vec<Object<PoolSpec>>,
    /// Dedicated sessions.
    pub dedicated: Vec<Object<DedicatedSessionSpec>>,
    /// Inboxes.
    pub inboxes: Vec<Object<InboxSpec>>,
    /// Agent profiles, the built-in `claude` first unless a manifest overrides it.
    pub agents: Vec<Object<AgentProfileSpec>>,
    /// The controller's configuration: the manifest's, or the defaults.
    pub controller: Object<ControllerConfigSpec>,
    /// The files the manifests were read from (for watching); `-` for stdin.
    pub files: Vec<PathBuf>,
}

impl Manifests {
    /// Accounts ordered by preference: priority, then name.
    pub fn accounts_by_priority(&self) -> Vec<&Object<AccountSpec>> {
        rank(self.accounts.iter())
    }

    /// The accounts of family `kind` ordered by preference: priority, then name.
    pub fn family_by_priority(&self, kind: AgentKind) -> Vec<&Object<AccountSpec>> {
        rank(self.accounts_of(kind))
    }

    /// The agent profile a session of ours named `session` runs, by the pool or
    /// dedicated session it belongs to.
    pub fn agent_of(&self, session: &str) -> Option<&str> {
        self.session_owner(session).map(|o| o.agent())
    }

    /// The agent profile named `name`.
    pub fn agent(&self, name: &str) -> Option<&Object<AgentProfileSpec>> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// The kind of agent the profile named `agent` runs: its family (the default kind
    /// for a profile the manifests do not have, which validation refuses).
    pub fn kind_of(&self, agent: &str) -> AgentKind {
        self.agent(agent).map(|p| p.spec.kind).unwrap_or_default()
    }

    /// The family of the session of ours named `session`: its profile's kind.
    pub fn kind_of_session(&self, session: &str) -> AgentKind {
        self.kind_of(self.agent_of(session).unwrap_or(BUILTIN_AGENT))
    }

    /// The profile session `session` of ours runs under `account`: a pool's over several
    /// families runs its profile of the account's family; any other, its one profile
    /// (the built-in one for a session no manifest names).
    pub fn agent_under(&self, session: &str, account: Option<&str>) -> &str {
        let Some(owner) = self.session_owner(session) else {
            return BUILTIN_AGENT;
        };
        let kind = account.and_then(|a| self.account(a)).map(|a| a.spec.agent);
        match (owner, kind) {
            (SessionOwner::Pool { pool, .. }, Some(kind)) => pool
                .spec
                .profiles()
                .iter()
                .find(|p| self.kind_of(p) == kind)
                .map_or(owner.agent(), String::as_str),
            _ => owner.agent(),
        }
    }

    /// The family session `session` of ours runs in under `account` (see
    /// [`Manifests::agent_under`]).
    pub fn kind_under(&self, session: &str, account: Option<&str>) -> AgentKind {
        self.kind_of(self.agent_under(session, account))
    }

    /// The family of pool `pool`'s sessions (its preferred one).
    pub fn kind_of_pool(&self, pool: &str) -> AgentKind {
        self.kind_of(
            self.pool(pool)
                .map_or(BUILTIN_AGENT, |p| p.spec.agent.as_str()),
        )
    }

    /// The accounts of family `kind`, in manifest order.
    pub fn accounts_of(&self, kind: AgentKind) -> impl Iterator<Item = &Object<AccountSpec>> {
        self.accounts.iter().filter(move |a| a.spec.agent == kind)
    }

    /// The families the ledger keeps: the kinds of the accounts and of the wanted
    /// sessions' profiles; the default kind when there is neither.
    pub fn families(&self) -> std::collections::BTreeSet<AgentKind> {
        let mut kinds: std::collections::BTreeSet<AgentKind> =
            self.accounts.iter().map(|a| a.spec.agent).collect();
        kinds.extend(
            self.pools
                .iter()
                .flat_map(|p| p.spec.profiles().iter().map(|a| self.kind_of(a))),
        );
        kinds.extend(self.dedicated.iter().map(|d| self.kind_of(&d.spec.agent)));
        if kinds.is_empty() {
            kinds.insert(AgentKind::default());
        }
        kinds
    }

    /// Whether a manifest wants a session named `name` (in a pool's range, or a
    /// dedicated one).
    pub fn wants_session(&self, name: &str) -> bool {
        self.session_owner(name).is_some()
    }

    /// The manifest that wants a session named `name`: a dedicated session, else the
    /// pool whose range holds it.
    pub fn session_owner(&self, name: &str) -> Option<SessionOwner<'_>> {
        if let Some(d) = self.dedicated.iter().find(|d| d.name == name) {
            return Some(SessionOwner::Dedicated(d));
        }
        self.pools.iter().find_map(|pool| {
            let index = pool.spec.index_of(name)?;
            Some(SessionOwner::Pool { pool, index })
        })
    }

    /// The account named `name`.
    pub fn account(&self, name: &str) -> Option<&Object<AccountSpec>> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&Object<PoolSpec>> {
        self.pools.iter().find(|p| p.name == name)
    }
}

/// `accounts` ordered by preference: priority, then name.
fn rank<'m>(
    accounts: impl Iterator<Item = &'m Object<AccountSpec>>,
) -> Vec<&'m Object<AccountSpec>> {
    let mut accounts: Vec<_> = accounts.collect();
    accounts.sort_by(|a, b| (a.spec.priority, &a.name).cmp(&(b.spec.priority, &b.name)));
    accounts
}

/// What wants a session: see [`Manifests::session_owner`].
#[derive(Debug, Clone, Copy)]
pub enum SessionOwner<'m> {
    /// An operator's interactive session.
    Dedicated(&'m Object<DedicatedSessionSpec>),
    /// A pool, and the session's index in its range.
    Pool {
        /// The pool.
        pool: &'m Object<PoolSpec>,
        /// The index (`startIndex` for the first name).
        index: u64,
    },
}

impl<'m> SessionOwner<'m> {
    /// The agent profile the session runs.
    pub fn agent(&self) -> &'m str {
        match self {
            SessionOwner::Dedicated(d) => &d.spec.agent,
            SessionOwner::Pool { pool, .. } => &pool.spec.agent,
        }
    }
}

impl PoolSpec {
    /// The profiles it runs, by name, first preferred: `agents`, else `[agent]`.
    pub fn profiles(&self) -> &[String] {
        if self.agents.is_empty() {
            std::slice::from_ref(&self.agent)
        } else {
            &self.agents
        }
    }

    /// The session names this pool may own, in index order.
    pub fn session_names(&self) -> impl Iterator<Item = String> + '_ {
        self.indexed_names().map(|(_, name)| name)
    }

    /// The index of the session `name` if this pool may own it: the prefix, then the
    /// index as [`PoolSpec::indexed_names`] writes it, within the range. Constant time:
    /// every reconcile asks it of every session.
    pub fn index_of(&self, name: &str) -> Option<u64> {
        let digits = name.strip_prefix(self.prefix.as_str())?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        let index: u64 = digits.parse().ok().filter(|_| canonical)?;
        let start = u64::from(self.start_index);
        (start..start + u64::from(self.max))
            .contains(&index)
            .then_some(index)
    }

    /// The session names this pool may own with their indexes, in order.
    pub fn indexed_names(&self) -> impl Iterator<Item = (u64, String)> + '_ {
        (0..self.max).map(move |i| {
            let index = u64::from(self.start_index) + u64::from(i);
            (index, format!("{}{index}", self.prefix))
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_pool_should_know_its_sessions_by_name_as_its_name_list_does() {
        let m = super::load_str(
            "t.yaml",
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {name: a}\nspec: {home: /h}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {name: p}\nspec: {prefix: ccl-auto-, startIndex: 11, min: 1, max: 5, workdir: /w}\n",
        )
        .unwrap();
        let pool = &m.pools[0].spec;
        for (index, name) in pool.indexed_names() {
            assert_eq!(pool.index_of(&name), Some(index), "{name}");
        }
        for other in [
            "ccl-auto-10",
            "ccl-auto-16",
            "ccl-auto-011",
            "ccl-auto-+12",
            "ccl-auto-",
            "ccl-auto-1x",
            "ccl-12",
            "mine",
        ] {
            assert_eq!(pool.index_of(other), None, "{other}");
        }
        assert!(m.wants_session("ccl-auto-15") && !m.wants_session("ccl-auto-16"));
    }
}
