//! References to the objects failover knows — sessions, accounts, pools, inboxes,
//! tasks, paths, the controller, fleet nodes — in the two forms an operator meets:
//! `kind/name` ([`fmt::Display`], as `get events` lists them and `--for` takes them,
//! after kube's `ObjectRef`), and `kind name` ([`ObjectRef::spoken`], as refusals say
//! them). A path is always itself: it starts with `/`, so it needs no kind, and a space
//! in it stays part of it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One object failover knows, by kind and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectRef {
    /// A tmux session.
    Session(String),
    /// An account.
    Account(String),
    /// Every account at once (`no account can take sessions`).
    Accounts,
    /// A pool.
    Pool(String),
    /// An inbox.
    Inbox(String),
    /// A task, by name, and by inbox when known (`task/INBOX/NAME`).
    Task {
        /// Its inbox, by name.
        inbox: Option<String>,
        /// Its file name as dropped.
        name: String,
    },
    /// A file or folder.
    Path(PathBuf),
    /// The account homes' agent settings, all of them.
    AgentSettings,
    /// The controller.
    Controller,
    /// A node of the fleet.
    Node(String),
}

/// An object reference that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Neither `kind/name`, `kind name` nor a path.
    #[error(
        "object {0:?}: not one of session/NAME, account/NAME, pool/NAME, inbox/NAME, \
         task/NAME, task/INBOX/NAME, node/NAME, controller or an absolute path"
    )]
    Unknown(String),
}

impl ObjectRef {
    /// A task known by inbox and name.
    pub fn task(inbox: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef::Task {
            inbox: Some(inbox.into()),
            name: name.into(),
        }
    }

    /// Its kind (`session`), as the two forms write it.
    pub fn kind(&self) -> &'static str {
        match self {
            ObjectRef::Session(_) => "session",
            ObjectRef::Account(_) => "account",
            ObjectRef::Accounts => "accounts",
            ObjectRef::Pool(_) => "pool",
            ObjectRef::Inbox(_) => "inbox",
            ObjectRef::Task { .. } => "task",
            ObjectRef::Path(_) => "path",
            ObjectRef::AgentSettings => "agent settings",
            ObjectRef::Controller => "controller",
            ObjectRef::Node(_) => "node",
        }
    }

    /// `kind name` (`session w-1`, a path as itself), as refusals say it.
    pub fn spoken(&self) -> Spoken<'_> {
        Spoken(self)
    }

    /// Reads `kind` and `name`; `None` for a kind without a name or an unknown one.
    fn named(kind: &str, name: &str) -> Option<Self> {
        let name = name.to_owned();
        Some(match kind {
            "session" => ObjectRef::Session(name),
            "account" => ObjectRef::Account(name),
            "pool" => ObjectRef::Pool(name),
            "inbox" => ObjectRef::Inbox(name),
            "node" => ObjectRef::Node(name),
            "path" => ObjectRef::Path(name.into()),
            "task" => match name.split_once('/') {
                Some((inbox, task)) => ObjectRef::task(inbox, task),
                None => ObjectRef::Task { inbox: None, name },
            },
            _ => return None,
        })
    }
}

/// `kind/name`: `session/w-1`, `task/inbox/t.md`, `controller`; a path as itself.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::Session(n)
            | ObjectRef::Account(n)
            | ObjectRef::Pool(n)
            | ObjectRef::Inbox(n)
            | ObjectRef::Node(n) => write!(f, "{}/{n}", self.kind()),
            ObjectRef::Task { inbox, name } => match inbox {
                Some(inbox) => write!(f, "task/{inbox}/{name}"),
                None => write!(f, "task/{name}"),
            },
            ObjectRef::Path(p) => write!(f, "{}", p.display()),
            ObjectRef::Accounts => f.write_str("accounts"),
            ObjectRef::AgentSettings => f.write_str("agent-settings"),
            ObjectRef::Controller => f.write_str("controller"),
        }
    }
}

/// An object as refusals say it: see [`ObjectRef::spoken`].
#[derive(Debug, Clone, Copy)]
pub struct Spoken<'a>(&'a ObjectRef);

impl fmt::Display for Spoken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ObjectRef::Session(n)
            | ObjectRef::Account(n)
            | ObjectRef::Pool(n)
            | ObjectRef::Inbox(n)
            | ObjectRef::Node(n) => write!(f, "{} {n}", self.0.kind()),
            ObjectRef::Task { inbox, name } => match inbox {
                Some(inbox) => write!(f, "task {inbox}/{name}"),
                None => write!(f, "task {name}"),
            },
            ObjectRef::Path(p) => write!(f, "{}", p.display()),
            ObjectRef::Accounts | ObjectRef::AgentSettings | ObjectRef::Controller => {
                f.write_str(self.0.kind())
            }
        }
    }
}

/// Reads either form: `session/w-1` or `session w-1`, `controller`, `accounts`,
/// `agent settings`, or an absolute path (`path/` before it is taken too).
impl FromStr for ObjectRef {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        if text.starts_with('/') {
            return Ok(ObjectRef::Path(text.into()));
        }
        match text {
            "controller" => return Ok(ObjectRef::Controller),
            "accounts" => return Ok(ObjectRef::Accounts),
            "agent settings" | "agent-settings" => return Ok(ObjectRef::AgentSettings),
            _ => {}
        }
        // The kind is one word: what follows its first separator is the name, spaces
        // and slashes included.
        let kind_end = text
            .find(['/', ' '])
            .ok_or_else(|| Error::Unknown(text.to_owned()))?;
        let (kind, name) = (&text[..kind_end], &text[kind_end + 1..]);
        if name.is_empty() {
            return Err(Error::Unknown(text.to_owned()));
        }
        ObjectRef::named(kind, name).ok_or_else(|| Error::Unknown(text.to_owned()))
    }
}

/// Serialized as `kind/name`.
impl Serialize for ObjectRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Serializes an object as refusals say it (`session w-1`): the journal's and
/// `status.json`'s form.
pub fn serialize_spoken<S: Serializer>(object: &ObjectRef, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&object.spoken())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_should_read_back_from_both_its_forms() {
        let objects = [
            ObjectRef::Session("w-1".into()),
            ObjectRef::Account("a".into()),
            ObjectRef::Accounts,
            ObjectRef::Pool("auto".into()),
            ObjectRef::Inbox("q".into()),
            ObjectRef::task("q", "t.md"),
            ObjectRef::Task {
                inbox: None,
                name: "t.md".into(),
            },
            ObjectRef::Path("/h/a/my projects".into()),
            ObjectRef::AgentSettings,
            ObjectRef::Controller,
            ObjectRef::Node("n1".into()),
        ];
        for o in objects {
            assert_eq!(o.to_string().parse::<ObjectRef>(), Ok(o.clone()), "{o}");
            assert_eq!(
                o.spoken().to_string().parse::<ObjectRef>(),
                Ok(o.clone()),
                "{}",
                o.spoken()
            );
        }
    }

    #[test]
    fn a_path_with_a_space_should_stay_one_path() {
        let o: ObjectRef = "/home/me/my dir".parse().unwrap();
        assert_eq!(o, ObjectRef::Path("/home/me/my dir".into()));
        assert_eq!(o.to_string(), "/home/me/my dir", "no path// prefix");
        assert_eq!(
            "path//home/me".parse::<ObjectRef>(),
            Ok(ObjectRef::Path("/home/me".into()))
        );
    }

    #[test]
    fn an_unknown_kind_should_be_refused_with_the_forms_it_takes() {
        let e = "sesion/w-1".parse::<ObjectRef>().unwrap_err();
        assert!(e.to_string().contains("session/NAME"), "{e}");
        assert!("session/".parse::<ObjectRef>().is_err());
        assert!("w-1".parse::<ObjectRef>().is_err());
    }
}
