//! Semantic validation: what the schema cannot say.
//!
//! Checks run over every document that has a kind, even one the schema rejected, so a
//! single run reports every problem: unique names, references that resolve, pool
//! ranges that do not collide, tmux-safe names, `min ≤ max`, absolute paths and
//! compiling regexes.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde_json::Value;

mod families;

use families::check_families;

use super::problem::{Problem, dotted};
use super::{Kind, Source};

/// One parsed document, valid or not, as validation sees it.
#[derive(Debug)]
pub(super) struct Doc {
    pub kind: Option<Kind>,
    pub name: Option<String>,
    pub value: Value,
    pub source: Source,
}

impl Doc {
    pub(super) fn new(value: Value, source: Source) -> Self {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .and_then(Kind::parse);
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Self {
            kind,
            name,
            value,
            source,
        }
    }

    fn problem(&self, pointer: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: self.source.file.to_string(),
            pos: Some(self.source.positions.value(pointer)),
            field: dotted(pointer),
            message: message.into(),
        }
    }

    fn where_(&self, pointer: &str) -> String {
        format!(
            "{}:{}",
            self.source.file,
            self.source.positions.value(pointer)
        )
    }

    fn str(&self, pointer: &str) -> Option<&str> {
        self.value.pointer(pointer).and_then(Value::as_str)
    }

    fn u64(&self, pointer: &str) -> Option<u64> {
        self.value.pointer(pointer).and_then(Value::as_u64)
    }

    fn of(&self, kind: Kind) -> bool {
        self.kind == Some(kind)
    }

    /// Where a pool or dedicated session names its agent profiles: each entry of a
    /// pool's `agents`, else `agent` (present or not).
    fn profile_pointers(&self) -> Vec<String> {
        match self.value.pointer("/spec/agents").and_then(Value::as_array) {
            Some(all) if self.of(Kind::Pool) => (0..all.len())
                .map(|i| format!("/spec/agents/{i}"))
                .collect(),
            _ => vec!["/spec/agent".to_owned()],
        }
    }
}

/// Every semantic problem of the document set. With `partial` (some text could not be
/// parsed), problems of the set as a whole, such as a missing Account, are not claimed.
pub(super) fn check(docs: &[Doc], partial: bool) -> Vec<Problem> {
    let mut out = Vec::new();
    for doc in docs {
        check_local(doc, &mut out);
    }
    check_unique(docs, &mut out);
    check_references(docs, &mut out);
    check_session_names(docs, &mut out);
    check_unique_paths(docs, Kind::Account, "/spec/home", "home", &mut out);
    check_unique_paths(docs, Kind::Inbox, "/spec/path", "path", &mut out);
    check_inbox_parents(docs, &mut out);
    if !partial && !docs.iter().any(|d| d.of(Kind::Account)) {
        out.push(Problem::global(
            "no Account in the manifests: at least one is required",
        ));
    } else if !partial {
        check_families(docs, &mut out);
    }
    out
}

fn check_local(doc: &Doc, out: &mut Vec<Problem>) {
    let Some(kind) = doc.kind else { return };
    if let Some(name) = &doc.name
        && let Err(why) = tmux_safe(name)
    {
        out.push(doc.problem("/metadata/name", format!("name `{name}` {why}")));
    }
    let absolute: &[&str] = match kind {
        Kind::Account => &["/spec/home"],
        Kind::SharedState => &["/spec/target"],
        Kind::Pool | Kind::DedicatedSession => &["/spec/workdir"],
        Kind::Inbox => &["/spec/path", "/spec/workdir"],
        Kind::AgentProfile => &[],
        Kind::ControllerConfig => &[
            "/spec/stateDir",
            "/spec/tmux/socket",
            "/spec/tmux/config",
            "/spec/notifications/caFile",
            "/spec/fleet/caFile",
            "/spec/fleet/passwordFile",
        ],
    };
    for pointer in absolute {
        check_absolute(doc, pointer, out);
    }
    match kind {
        Kind::Pool => {
            if let Some(prefix) = doc.str("/spec/prefix")
                && let Err(why) = tmux_safe(prefix)
            {
                out.push(doc.problem("/spec/prefix", format!("prefix `{prefix}` {why}")));
            }
            if let (Some(min), Some(max)) = (doc.u64("/spec/min"), doc.u64("/spec/max"))
                && min > max
            {
                out.push(doc.problem(
                    "/spec/min",
                    format!("min ({min}) is greater than max ({max})"),
                ));
            }
            let agents = doc.value.pointer("/spec/agents");
            if agents.is_some() && doc.value.pointer("/spec/agent").is_some() {
                out.push(doc.problem(
                    "/spec/agents",
                    "set `agent` (one profile) or `agents` (several, first preferred), not both",
                ));
            }
            if agents.and_then(Value::as_array).is_some_and(Vec::is_empty) {
                out.push(doc.problem(
                    "/spec/agents",
                    "`agents` names no profile: name at least one, or leave it out",
                ));
            }
        }
        Kind::SharedState => {
            let links = doc.value.pointer("/spec/links").and_then(Value::as_array);
            for (i, link) in links.into_iter().flatten().enumerate() {
                if let Some(link) = link.as_str()
                    && (link.is_empty() || link.contains('/') || link == "." || link == "..")
                {
                    out.push(doc.problem(
                        &format!("/spec/links/{i}"),
                        format!("link `{link}` must be a plain name inside the home"),
                    ));
                }
            }
        }
        Kind::Inbox => {
            if let Some(glob) = doc.str("/spec/glob")
                && (glob.is_empty() || glob.contains('/'))
            {
                out.push(doc.problem("/spec/glob", "glob must be a file-name pattern without `/`"));
            }
        }
        Kind::AgentProfile => {
            check_patterns(doc, out);
            if let Some(program) = doc.str("/spec/command/0")
                && program.contains('/')
                && !Path::new(program).is_absolute()
            {
                out.push(doc.problem(
                    "/spec/command/0",
                    format!(
                        "command `{program}` is a relative path, but agents start in their session's \
                         workdir: give an absolute path, or a name found on PATH"
                    ),
                ));
            }
        }
        Kind::ControllerConfig => {
            if let Some(owner) = doc.str("/spec/owner")
                && (owner.is_empty()
                    || !owner
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            {
                out.push(doc.problem(
                    "/spec/owner",
                    format!("owner `{owner}` may hold only letters, digits, `-` and `_`"),
                ));
            }
            let endpoints = doc
                .value
                .pointer("/spec/fleet/endpoints")
                .and_then(Value::as_array);
            for (i, e) in endpoints.into_iter().flatten().enumerate() {
                if let Some(e) = e.as_str()
                    && !(e.starts_with("http://") || e.starts_with("https://"))
                {
                    out.push(doc.problem(
                        &format!("/spec/fleet/endpoints/{i}"),
                        format!("endpoint `{e}` must be an etcd client URL such as http://127.0.0.1:2379"),
                    ));
                }
            }
            if let Some(node) = doc.str("/spec/fleet/node")
                && !node
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                out.push(doc.problem(
                    "/spec/fleet/node",
                    format!("node `{node}` may hold only letters, digits, `-`, `_` and `.`"),
                ));
            }
            if let Some(listen) = doc.str("/spec/metrics/listen")
                && !listen.is_empty()
                && listen.parse::<std::net::SocketAddr>().is_err()
            {
                out.push(doc.problem(
                    "/spec/metrics/listen",
                    format!("listen `{listen}` is not an address and port such as 127.0.0.1:9464"),
                ));
            }
            if let Some(url) = doc.str("/spec/notifications/webhook")
                && !url.is_empty()
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                out.push(doc.problem(
                    "/spec/notifications/webhook",
                    // The URL itself is not repeated: a webhook's path is often its secret.
                    "webhook must start with https:// or http://",
                ));
            }
        }
        Kind::Account | Kind::DedicatedSession => {}
    }
}

fn check_absolute(doc: &Doc, pointer: &str, out: &mut Vec<Problem>) {
    let Some(path) = doc.str(pointer) else { return };
    let optional = doc.of(Kind::ControllerConfig);
    if (path.is_empty() && optional) || Path::new(path).is_absolute() {
        return;
    }
    let hint = if path.starts_with('~') {
        " (`~` is not expanded)"
    } else {
        ""
    };
    out.push(doc.problem(pointer, format!("path `{path}` is not absolute{hint}")));
}

fn check_patterns(doc: &Doc, out: &mut Vec<Problem>) {
    let Some(screen) = doc.value.pointer("/spec/screen").and_then(Value::as_object) else {
        return;
    };
    for (field, value) in screen {
        let patterns: Vec<(String, &str)> = match value {
            Value::String(s) => vec![(format!("/spec/screen/{field}"), s.as_str())],
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((format!("/spec/screen/{field}/{i}"), v.as_str()?)))
                .collect(),
            _ => continue,
        };
        for (pointer, pattern) in patterns {
            match regex::Regex::new(pattern) {
                Err(e) => {
                    let first = e.to_string().lines().last().unwrap_or_default().to_owned();
                    out.push(doc.problem(&pointer, format!("regex does not compile: {first}")));
                }
                Ok(re) if field == "reset" => {
                    let names: BTreeSet<_> = re.capture_names().flatten().collect();
                    if !names.contains("time") && !names.contains("epoch") {
                        out.push(doc.problem(
                            &pointer,
                            "a reset regex needs a named group `time` or `epoch`",
                        ));
                    }
                }
                Ok(_) => {}
            }
        }
    }
}

/// Whether `name` can be (part of) a tmux session name.
fn tmux_safe(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    match name
        .chars()
        .find(|c| matches!(c, ':' | '.' | '#') || c.is_whitespace() || c.is_control())
    {
        Some(c) => Err(format!(
            "cannot be used in a tmux session name: {c:?} is not allowed"
        )),
        None => Ok(()),
    }
}

fn check_unique(docs: &[Doc], out: &mut Vec<Problem>) {
    let mut seen: HashMap<(Kind, &str), &Doc> = HashMap::new();
    let mut controller: Option<&Doc> = None;
    for doc in docs {
        let (Some(kind), Some(name)) = (doc.kind, doc.name.as_deref()) else {
            continue;
        };
        if let Some(first) = seen.get(&(kind, name)) {
            out.push(doc.problem(
                "/metadata/name",
                format!(
                    "{kind} `{name}` is defined twice; first at {}",
                    first.where_("/metadata/name")
                ),
            ));
            continue;
        }
        seen.insert((kind, name), doc);
        if kind == Kind::ControllerConfig {
            if let Some(first) = controller {
                out.push(doc.problem(
                    "/kind",
                    format!(
                        "only one ControllerConfig may exist; another is at {}",
                        first.where_("/kind")
                    ),
                ));
            }
            controller = Some(doc);
        }
    }
}

fn names_of(docs: &[Doc], kind: Kind) -> BTreeSet<&str> {
    docs.iter()
        .filter(|d| d.of(kind))
        .filter_map(|d| d.name.as_deref())
        .collect()
}

fn check_references(docs: &[Doc], out: &mut Vec<Problem>) {
    let mut agents = names_of(docs, Kind::AgentProfile);
    agents.extend(crate::agents::BUILTIN.iter().map(|b| b.name));
    let pools = names_of(docs, Kind::Pool);
    let accounts = names_of(docs, Kind::Account);
    let mut missing = |doc: &Doc, pointer: &str, what: &str, known: &BTreeSet<&str>| {
        if let Some(name) = doc.str(pointer)
            && !known.contains(name)
        {
            let list: Vec<&str> = known.iter().copied().collect();
            out.push(doc.problem(
                pointer,
                format!(
                    "{what} `{name}` does not exist (known: {})",
                    list.join(", ")
                ),
            ));
        }
    };
    for doc in docs {
        match doc.kind {
            Some(Kind::Pool | Kind::DedicatedSession) => {
                for pointer in doc.profile_pointers() {
                    missing(doc, &pointer, "AgentProfile", &agents);
                }
            }
            Some(Kind::Inbox) => missing(doc, "/spec/pool", "Pool", &pools),
            Some(Kind::SharedState) => {
                let n = doc
                    .value
                    .pointer("/spec/accounts")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                for i in 0..n {
                    missing(doc, &format!("/spec/accounts/{i}"), "Account", &accounts);
                }
            }
            // No references to other objects.
            Some(Kind::Account | Kind::AgentProfile | Kind::ControllerConfig) | None => {}
        }
    }
}

/// Pool ranges must not overlap each other nor a dedicated session's name.
fn check_session_names(docs: &[Doc], out: &mut Vec<Problem>) {
    let mut owners: HashMap<String, (&Doc, String)> = HashMap::new();
    let mut reported: BTreeSet<(String, String)> = BTreeSet::new();
    for doc in docs {
        let names: Vec<String> = if doc.of(Kind::Pool) {
            let (Some(prefix), Some(max)) = (doc.str("/spec/prefix"), doc.u64("/spec/max")) else {
                continue;
            };
            let start = doc.u64("/spec/startIndex").unwrap_or(0);
            (start..start.saturating_add(max.min(1000)))
                .map(|i| format!("{prefix}{i}"))
                .collect()
        } else if doc.of(Kind::DedicatedSession) {
            doc.name.iter().cloned().collect()
        } else {
            continue;
        };
        let label = describe(doc);
        for name in names {
            if let Some((first, first_label)) = owners.get(&name) {
                if first_label != &label && reported.insert((first_label.clone(), label.clone())) {
                    let pointer = if doc.of(Kind::Pool) {
                        "/spec/prefix"
                    } else {
                        "/metadata/name"
                    };
                    out.push(doc.problem(
                        pointer,
                        format!(
                            "session `{name}` of {label} is also a session of {first_label} ({})",
                            first.where_("/metadata/name")
                        ),
                    ));
                }
            } else {
                owners.insert(name, (doc, label.clone()));
            }
        }
    }
}

fn describe(doc: &Doc) -> String {
    let kind = doc.kind.map_or("?", Kind::as_str);
    format!("{kind} `{}`", doc.name.as_deref().unwrap_or("?"))
}

/// Inboxes keep `active/`, `done/` and `failed/` beside them: two inboxes in one folder
/// would mix their tasks.
fn check_inbox_parents(docs: &[Doc], out: &mut Vec<Problem>) {
    let mut seen: HashMap<&Path, &Doc> = HashMap::new();
    for doc in docs.iter().filter(|d| d.of(Kind::Inbox)) {
        let Some(parent) = doc.str("/spec/path").and_then(|p| Path::new(p).parent()) else {
            continue;
        };
        if let Some(first) = seen.get(parent) {
            out.push(doc.problem(
                "/spec/path",
                format!(
                    "shares its folder {} with {}: their active/, done/ and failed/ would mix",
                    parent.display(),
                    describe(first)
                ),
            ));
        } else {
            seen.insert(parent, doc);
        }
    }
}

fn check_unique_paths(docs: &[Doc], kind: Kind, pointer: &str, what: &str, out: &mut Vec<Problem>) {
    let mut seen: HashMap<&str, &Doc> = HashMap::new();
    for doc in docs.iter().filter(|d| d.of(kind)) {
        let Some(path) = doc.str(pointer) else {
            continue;
        };
        let path = path.trim_end_matches('/');
        if let Some(first) = seen.get(path) {
            out.push(doc.problem(
                pointer,
                format!("{what} `{path}` is also the {what} of {}", describe(first)),
            ));
        } else {
            seen.insert(path, doc);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// The schema node at `pointer` below `node`: `$ref`s followed, the branches of
    /// `anyOf`/`oneOf`/`allOf` tried, `{i}` or a number an array's items, `{field}` any
    /// property.
    fn resolve<'a>(root: &'a Value, node: &'a Value, segments: &[&str]) -> bool {
        if let Some(r) = node["$ref"].as_str() {
            let target = r.trim_start_matches('#');
            return root
                .pointer(target)
                .is_some_and(|n| resolve(root, n, segments));
        }
        for branches in ["anyOf", "oneOf", "allOf"] {
            if let Some(list) = node[branches].as_array()
                && list.iter().any(|b| resolve(root, b, segments))
            {
                return true;
            }
        }
        let Some((first, rest)) = segments.split_first() else {
            return true;
        };
        if *first == "{i}" || first.parse::<usize>().is_ok() {
            return node.get("items").is_some_and(|n| resolve(root, n, rest));
        }
        let Some(props) = node["properties"].as_object() else {
            return false;
        };
        if *first == "{field}" {
            return props.values().any(|n| resolve(root, n, rest));
        }
        props.get(*first).is_some_and(|n| resolve(root, n, rest))
    }

    #[test]
    fn every_pointer_validation_reads_should_resolve_in_the_schema() {
        let root = super::super::schema::schema();
        let source = [
            include_str!("validate.rs"),
            include_str!("validate/families.rs"),
        ]
        .concat();
        let re = regex::Regex::new(r#""(/(?:spec|metadata)/[^"]*)""#).unwrap();
        let pointers: Vec<&str> = re
            .captures_iter(&source)
            .filter_map(|c| c.get(1).map(|m| m.as_str()))
            .collect();
        assert!(pointers.len() > 20, "{pointers:?}");
        let bogus = ["home", "tmux", "sokcet"];
        assert!(!resolve(
            root,
            &root["$defs"]["ControllerConfigSpec"],
            &bogus[1..]
        ));
        let specs: Vec<&Value> = root["$defs"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.ends_with("Spec"))
            .map(|(_, v)| v)
            .collect();
        for pointer in pointers {
            let segments: Vec<&str> = pointer.split('/').skip(1).collect();
            let found = match segments.split_first() {
                Some((&"spec", rest)) => specs.iter().any(|s| resolve(root, s, rest)),
                _ => resolve(root, root, &segments),
            };
            assert!(
                found,
                "validation reads {pointer}, which the schema does not have"
            );
        }
    }
}
