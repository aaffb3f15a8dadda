//! Manifests built in Rust for tests whose subject is not the YAML itself.
//!
//! [`Manifest`] holds the crate's own spec types ([`crate::api::resources`]) in
//! document order and writes them as an operator would: one document a resource,
//! `metadata` on its third line, `spec` in flow style on the fourth, and only the fields
//! that differ from their defaults. What it writes loads back to the specs it holds
//! (a unit test below checks every kind).
//!
//! ```
//! use failover::testbed::manifest::Manifest;
//!
//! let yaml = Manifest::new()
//!     .account("a", "/h/a")
//!     .account("b", "/h/b")
//!     .priority(1)
//!     .pool("auto", "w-", 2..=4, "/w")
//!     .inbox("p", "/p/.agent-queue/inbox", "auto", "/w")
//!     .yaml();
//! assert!(yaml.contains("kind: Pool\nmetadata: {name: auto}\nspec: {prefix: w-, min: 2, max: 4, workdir: /w}\n"));
//! ```

use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::resources::{
    API_VERSION, AccountSpec, AgentProfileSpec, ControllerConfigSpec, DedicatedSessionSpec, Env,
    InboxSpec, PoolSpec, SharedStateSpec,
};
use crate::api::{AgentKind, Duration, Kind};

/// Manifests as a list of resources, written as YAML by [`Manifest::yaml`].
///
/// The methods named after a kind add a document of that kind with its required fields
/// and the defaults for the rest; [`Manifest::with`], [`Manifest::priority`] and
/// [`Manifest::env`] change the document added last, [`Manifest::edit`] one by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Manifest {
    docs: Vec<(String, Spec)>,
}

/// The spec of one document, of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// `kind: Account`.
    Account(AccountSpec),
    /// `kind: SharedState`.
    SharedState(SharedStateSpec),
    /// `kind: Pool`.
    Pool(PoolSpec),
    /// `kind: DedicatedSession`.
    DedicatedSession(DedicatedSessionSpec),
    /// `kind: Inbox`.
    Inbox(InboxSpec),
    /// `kind: AgentProfile`.
    AgentProfile(AgentProfileSpec),
    /// `kind: ControllerConfig`.
    ControllerConfig(ControllerConfigSpec),
}

/// A spec type of one kind: what [`Manifest::push`], [`Manifest::with`] and
/// [`Manifest::edit`] take.
pub trait Resource: Serialize + DeserializeOwned + Sized {
    /// The kind whose spec this is.
    const KIND: Kind;
    /// The fields without a default, always written.
    const REQUIRED: &'static [&'static str];
    /// The spec as one of any kind.
    fn into_spec(self) -> Spec;
    /// This kind's spec in `spec`, if `spec` is of this kind.
    fn of(spec: &mut Spec) -> Option<&mut Self>;
}

macro_rules! resource {
    ($spec:ty, $variant:ident, [$($required:literal),*]) => {
        impl Resource for $spec {
            const KIND: Kind = Kind::$variant;
            const REQUIRED: &'static [&'static str] = &[$($required),*];

            fn into_spec(self) -> Spec {
                Spec::$variant(self)
            }

            fn of(spec: &mut Spec) -> Option<&mut Self> {
                match spec {
                    Spec::$variant(s) => Some(s),
                    _ => None,
                }
            }
        }
    };
}

resource!(AccountSpec, Account, ["home"]);
resource!(SharedStateSpec, SharedState, ["target"]);
resource!(PoolSpec, Pool, ["prefix", "min", "max", "workdir"]);
resource!(DedicatedSessionSpec, DedicatedSession, ["workdir"]);
resource!(InboxSpec, Inbox, ["path", "pool", "workdir"]);
resource!(AgentProfileSpec, AgentProfile, []);
resource!(ControllerConfigSpec, ControllerConfig, []);

impl Spec {
    /// The document's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Account(_) => Kind::Account,
            Spec::SharedState(_) => Kind::SharedState,
            Spec::Pool(_) => Kind::Pool,
            Spec::DedicatedSession(_) => Kind::DedicatedSession,
            Spec::Inbox(_) => Kind::Inbox,
            Spec::AgentProfile(_) => Kind::AgentProfile,
            Spec::ControllerConfig(_) => Kind::ControllerConfig,
        }
    }

    /// The spec as a flow mapping: the required fields and those that differ from
    /// their defaults.
    fn to_flow(&self) -> String {
        match self {
            Spec::Account(s) => flow_spec(s),
            Spec::SharedState(s) => flow_spec(s),
            Spec::Pool(s) => flow_spec(s),
            Spec::DedicatedSession(s) => flow_spec(s),
            Spec::Inbox(s) => flow_spec(s),
            Spec::AgentProfile(s) => flow_spec(s),
            Spec::ControllerConfig(s) => flow_spec(s),
        }
    }

    fn env(&mut self) -> Option<&mut Env> {
        match self {
            Spec::Account(s) => Some(&mut s.env),
            Spec::Pool(s) => Some(&mut s.env),
            Spec::DedicatedSession(s) => Some(&mut s.env),
            Spec::AgentProfile(s) => Some(&mut s.env),
            Spec::SharedState(_) | Spec::Inbox(_) | Spec::ControllerConfig(_) => None,
        }
    }
}

/// `text` as a manifest duration (`200ms`, `1h30m`); panics when it is not one.
pub fn duration(text: &str) -> Duration {
    text.parse()
        .unwrap_or_else(|e| panic!("not a duration: {e}"))
}

impl Manifest {
    /// No documents yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the document `name` of `spec`'s kind.
    pub fn push<R: Resource>(mut self, name: &str, spec: R) -> Self {
        self.docs.push((name.to_owned(), spec.into_spec()));
        self
    }

    /// Adds the account `name` whose config home is `home` (priority 0).
    pub fn account(self, name: &str, home: impl Into<PathBuf>) -> Self {
        self.push(
            name,
            AccountSpec {
                home: home.into(),
                priority: 0,
                env: Env::new(),
                agent: AgentKind::default(),
            },
        )
    }

    /// Adds the shared state `name` in the folder `target`, with the default links.
    pub fn shared_state(self, name: &str, target: impl Into<PathBuf>) -> Self {
        let spec = defaults::<SharedStateSpec>(&[("target", path_value(target.into()))]);
        self.push(name, spec)
    }

    /// Adds the pool `name` of `sessions` (`min..=max`) sessions named `prefix` and an
    /// index from 0, started in `workdir`.
    pub fn pool(
        self,
        name: &str,
        prefix: &str,
        sessions: RangeInclusive<u32>,
        workdir: impl Into<PathBuf>,
    ) -> Self {
        let spec = defaults::<PoolSpec>(&[
            ("prefix", prefix.into()),
            ("min", (*sessions.start()).into()),
            ("max", (*sessions.end()).into()),
            ("workdir", path_value(workdir.into())),
        ]);
        self.push(name, spec)
    }

    /// Adds the dedicated session `name` running in `workdir`.
    pub fn dedicated(self, name: &str, workdir: impl Into<PathBuf>) -> Self {
        let spec = defaults::<DedicatedSessionSpec>(&[("workdir", path_value(workdir.into()))]);
        self.push(name, spec)
    }

    /// Adds the inbox `name`, the folder `path` whose tasks the pool `pool` runs in
    /// `workdir`.
    pub fn inbox(
        self,
        name: &str,
        path: impl Into<PathBuf>,
        pool: &str,
        workdir: impl Into<PathBuf>,
    ) -> Self {
        let spec = defaults::<InboxSpec>(&[
            ("path", path_value(path.into())),
            ("pool", pool.into()),
            ("workdir", path_value(workdir.into())),
        ]);
        self.push(name, spec)
    }

    /// Adds the agent profile `name` running `command`.
    pub fn agent(self, name: &str, command: &[&str]) -> Self {
        let spec = AgentProfileSpec {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            ..AgentProfileSpec::default()
        };
        self.push(name, spec)
    }

    /// Adds the agent profile `name` of `kind` running `command`, its other fields at
    /// that kind's defaults (a Codex profile reads Codex's screens).
    pub fn agent_of(self, kind: AgentKind, name: &str, command: &[&str]) -> Self {
        let spec = AgentProfileSpec {
            command: command.iter().map(|s| (*s).to_owned()).collect(),
            ..AgentProfileSpec::of_kind(kind)
        };
        self.push(name, spec)
    }

    /// Adds the controller's configuration `name`, every field at its default.
    pub fn controller(self, name: &str) -> Self {
        self.push(name, ControllerConfigSpec::default())
    }

    /// Changes the document added last, which must be of `R`'s kind.
    pub fn with<R: Resource>(mut self, change: impl FnOnce(&mut R)) -> Self {
        let (name, spec) = self
            .docs
            .last_mut()
            .unwrap_or_else(|| panic!("no document to change into a {}", R::KIND));
        let kind = spec.kind();
        let spec = R::of(spec)
            .unwrap_or_else(|| panic!("the last document, {kind} {name}, is not a {}", R::KIND));
        change(spec);
        self
    }

    /// Changes the document of `R`'s kind named `name`, which must be there.
    pub fn edit<R: Resource>(mut self, name: &str, change: impl FnOnce(&mut R)) -> Self {
        let spec = self
            .docs
            .iter_mut()
            .filter(|(n, _)| n == name)
            .find_map(|(_, spec)| R::of(spec))
            .unwrap_or_else(|| panic!("no {} named {name}", R::KIND));
        change(spec);
        self
    }

    /// Sets the priority of the account added last.
    pub fn priority(self, priority: i32) -> Self {
        self.with(|a: &mut AccountSpec| a.priority = priority)
    }

    /// Makes the account added last one of `kind`'s family (its home is for that
    /// agent).
    pub fn family(self, kind: AgentKind) -> Self {
        self.with(|a: &mut AccountSpec| a.agent = kind)
    }

    /// Adds `name=value` to the environment of the document added last (an account,
    /// pool, dedicated session or agent profile).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        let (doc, spec) = self
            .docs
            .last_mut()
            .unwrap_or_else(|| panic!("no document to add {name} to"));
        let kind = spec.kind();
        spec.env()
            .unwrap_or_else(|| panic!("{kind} {doc} has no env"))
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// The manifests as YAML: the documents in the order they were added, separated by
    /// `---`.
    pub fn yaml(&self) -> String {
        self.docs
            .iter()
            .map(|(name, spec)| {
                format!(
                    "apiVersion: {API_VERSION}\nkind: {}\nmetadata: {{name: {}}}\nspec: {}\n",
                    spec.kind(),
                    scalar(name),
                    spec.to_flow()
                )
            })
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

fn path_value(path: PathBuf) -> Value {
    path.to_string_lossy().into_owned().into()
}

/// The spec of `R` with `fields` (its required ones) and the defaults for the rest.
fn defaults<R: Resource>(fields: &[(&str, Value)]) -> R {
    let map: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    serde_json::from_value(Value::Object(map))
        .unwrap_or_else(|e| panic!("a {} of only {:?}: {e}", R::KIND, R::REQUIRED))
}

/// `spec` as a flow mapping of its required fields and of those that differ from the
/// defaults.
fn flow_spec<R: Resource>(spec: &R) -> String {
    let value = serde_json::to_value(spec).unwrap_or_else(|e| panic!("a {} as JSON: {e}", R::KIND));
    let Value::Object(fields) = value else {
        panic!("a {} is not a mapping: {value}", R::KIND)
    };
    let required: Vec<(&str, Value)> = R::REQUIRED
        .iter()
        .filter_map(|k| Some((*k, fields.get(*k)?.clone())))
        .collect();
    let default = serde_json::to_value(defaults::<R>(&required))
        .unwrap_or_else(|e| panic!("a {} as JSON: {e}", R::KIND));
    let mut kept = Map::new();
    for (key, value) in fields {
        let keep = if R::REQUIRED.contains(&key.as_str()) {
            Some(value)
        } else {
            changed(value, default.get(&key))
        };
        if let Some(value) = keep {
            kept.insert(key, value);
        }
    }
    let mut out = String::new();
    flow(&Value::Object(kept), &mut out);
    out
}

/// `value` without what equals `default`: `None` when all of it does; of a mapping,
/// the entries that differ.
fn changed(value: Value, default: Option<&Value>) -> Option<Value> {
    match (value, default) {
        (value, Some(default)) if value == *default => None,
        (Value::Object(fields), Some(Value::Object(default))) => Some(Value::Object(
            fields
                .into_iter()
                .filter_map(|(k, v)| {
                    let v = changed(v, default.get(&k))?;
                    Some((k, v))
                })
                .collect(),
        )),
        (value, _) => Some(value),
    }
}

/// Writes `value` in YAML's flow style.
fn flow(value: &Value, out: &mut String) {
    match value {
        Value::Object(fields) => {
            out.push('{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&scalar(key));
                out.push_str(": ");
                flow(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Value::String(s) => out.push_str(&scalar(s)),
        Value::Number(_) | Value::Bool(_) | Value::Null => out.push_str(&value.to_string()),
    }
}

/// `s` as a YAML string: plain when YAML reads it back as that same string (`w-`,
/// `/tmp/x`, `200ms`, `--resume`), else double-quoted (JSON's quoting is YAML's).
fn scalar(s: &str) -> String {
    if plain(s) {
        s.to_owned()
    } else {
        Value::from(s).to_string()
    }
}

fn plain(s: &str) -> bool {
    const WORDS: [&str; 9] = ["null", "true", "false", "yes", "no", "on", "off", "y", "n"];
    let Some(first) = s.chars().next() else {
        return false;
    };
    let chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    let start = first.is_ascii_alphanumeric() || matches!(first, '/' | '_' | '-');
    let dash = first != '-' || s.len() > 1;
    let unsigned = s.trim_start_matches(['-', '+']).to_ascii_lowercase();
    let number = s.parse::<f64>().is_ok()
        || ["0x", "0o", "0b", ".inf", ".nan"]
            .iter()
            .any(|p| unsigned.starts_with(p))
        || (first.is_ascii_digit() && !s.chars().any(|c| c.is_ascii_alphabetic()));
    chars && start && dash && !number && !WORDS.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::load_str;
    use crate::api::resources::Failback;

    #[test]
    fn the_yaml_should_be_what_an_operator_writes() {
        let yaml = Manifest::new()
            .account("a", "/h/a")
            .account("b", "/h/b")
            .priority(1)
            .env("A_ONLY", "from b")
            .pool("auto", "w-", 2..=2, "/w")
            .yaml();
        assert_eq!(
            yaml,
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {name: a}\nspec: {home: /h/a}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Account\nmetadata: {name: b}\nspec: {home: /h/b, priority: 1, env: {A_ONLY: \"from b\"}}\n---\n\
             apiVersion: failover/v1alpha1\nkind: Pool\nmetadata: {name: auto}\nspec: {prefix: w-, min: 2, max: 2, workdir: /w}\n"
        );
    }

    #[test]
    fn every_kind_built_should_load_as_the_specs_it_holds() {
        let awkward = [
            "yes",
            "true",
            "Null",
            "0x1f",
            "1e3",
            "-1",
            "12",
            "1.5",
            ".inf",
            "-",
            "a: b",
            "x #y",
            "'q'",
            "\"dq\"",
            "$(rm -rf /)",
            "{a}",
            "[b]",
            "*star",
            "&anchor",
            "!tag",
            "@at",
            "%pct",
            "`tick`",
            "|",
            ">",
            "~",
            "",
            " lead",
            "tail ",
            "é",
            "line\nbreak",
            "200ms",
            "--resume",
            "w-",
            "/tmp/x.y_z",
        ];
        let m = Manifest::new()
            .account("a", "/h/with space/a")
            .env("ODD", "yes")
            .account("b", "/h/b")
            .priority(-2)
            .account("x", "/h/x")
            .family(AgentKind::Codex)
            .shared_state("s", "/shared")
            .with(|s: &mut SharedStateSpec| {
                s.links = vec!["projects".into()];
                s.accounts = Some(vec!["a".into(), "b".into()]);
            })
            .pool("auto", "ccl-auto-", 1..=5, "/w")
            .with(|p: &mut PoolSpec| {
                p.start_index = 11;
                p.scale_down_after = duration("0s");
                p.agent = "sim".into();
            })
            .env("FAILOVER_SIM_TURN", "200ms")
            .dedicated("desk", "/w")
            .with(|d: &mut DedicatedSessionSpec| d.resume = false)
            .inbox("p", "/p/.agent-queue/inbox", "auto", "/p")
            .with(|i: &mut InboxSpec| {
                i.max_tries = 2;
                i.glob = "*.task".into();
            })
            .agent("sim", &["/bin/failover", "sim-agent", "--x=\"$HOME\""])
            .with(|p: &mut AgentProfileSpec| {
                p.reports = false;
                p.resume_args = awkward.iter().map(|s| (*s).to_owned()).collect();
                p.screen.quota = Vec::new();
            })
            .agent_of(
                AgentKind::Codex,
                "cx",
                &["/bin/failover", "sim-agent", "--agent", "codex"],
            )
            .with(|p: &mut AgentProfileSpec| p.screen.busy = "^• Busy".into())
            .controller("c")
            .with(|c: &mut ControllerConfigSpec| {
                c.poll_interval = duration("200ms");
                c.dispatch.submit_delay = duration("50ms");
                c.quota.move_at = Some(95);
                c.quota.failback = Failback::Never;
                c.notifications.command =
                    vec!["sh".into(), "-c".into(), "cat > \"$(mktemp -p /t)\"".into()];
                c.metrics.enabled = true;
                c.metrics.listen = "127.0.0.1:9464".into();
            })
            .edit("b", |a: &mut AccountSpec| {
                a.env.insert("B".into(), "1".into());
            });
        let yaml = m.yaml();
        let loaded = load_str("m.yaml", &yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let mut kinds = Vec::new();
        for (name, spec) in &m.docs {
            kinds.push(spec.kind());
            let found = match spec {
                Spec::Account(s) => loaded.account(name).map(|o| &o.spec == s),
                Spec::SharedState(s) => loaded
                    .shared_states
                    .iter()
                    .find(|o| &o.name == name)
                    .map(|o| &o.spec == s),
                Spec::Pool(s) => loaded.pool(name).map(|o| &o.spec == s),
                Spec::DedicatedSession(s) => loaded
                    .dedicated
                    .iter()
                    .find(|o| &o.name == name)
                    .map(|o| &o.spec == s),
                Spec::Inbox(s) => loaded
                    .inboxes
                    .iter()
                    .find(|o| &o.name == name)
                    .map(|o| &o.spec == s),
                Spec::AgentProfile(s) => loaded.agent(name).map(|o| &o.spec == s),
                Spec::ControllerConfig(s) => {
                    Some(loaded.controller.name == *name && loaded.controller.spec == *s)
                }
            };
            assert_eq!(found, Some(true), "{} {name} in:\n{yaml}", spec.kind());
        }
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds, Kind::ALL.to_vec(), "one of each kind");
        // Defaults are left out; what was changed is written.
        assert!(!yaml.contains("glob: \"*.md\""), "{yaml}");
        assert!(
            yaml.contains("quota: {failback: never, moveAt: 95}"),
            "{yaml}"
        );
    }

    #[test]
    #[should_panic(expected = "the last document, Account a, is not a Pool")]
    fn changing_the_last_document_as_another_kind_should_panic() {
        let _ = Manifest::new()
            .account("a", "/h")
            .with(|p: &mut PoolSpec| p.min = 1);
    }
}
