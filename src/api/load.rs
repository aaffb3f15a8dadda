//! Reading `-f` inputs: files, folders and stdin, into validated [`Manifests`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::problem::{Problem, Problems, dotted};
use super::validate::{self, Doc};
use super::yaml;
use super::{Kind, Manifests, Object, Source, schema};

/// Why manifests could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// An input could not be read at all (missing file, unreadable folder).
    #[error("{path}: {source}")]
    Read {
        /// The input as named.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The inputs were read but are not valid; every problem is listed.
    #[error("{}", .0)]
    Invalid(Problems),
}

/// Loads and validates the manifests named by `inputs`: files, folders (their `*.yaml`
/// and `*.yml`, sorted, not recursive) and `-` for stdin.
pub fn load(inputs: &[PathBuf]) -> Result<Manifests, LoadError> {
    let texts = read_inputs(inputs)?;
    let mut manifests = load_texts(&texts)?;
    manifests.files = texts
        .into_iter()
        .map(|(name, _)| PathBuf::from(name))
        .collect();
    Ok(manifests)
}

/// Reads the texts `inputs` name, as (file name, text) pairs in load order.
pub fn read_inputs(inputs: &[PathBuf]) -> Result<Vec<(String, String)>, LoadError> {
    let mut texts = Vec::new();
    for input in inputs {
        for file in expand(input)? {
            let text = if file == Path::new("-") {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|source| LoadError::Read {
                        path: "-".into(),
                        source,
                    })?;
                text
            } else {
                std::fs::read_to_string(&file).map_err(|source| LoadError::Read {
                    path: file.display().to_string(),
                    source,
                })?
            };
            texts.push((file.display().to_string(), text));
        }
    }
    Ok(texts)
}

/// Loads and validates manifests from one text, named `file` in messages.
pub fn load_str(file: &str, text: &str) -> Result<Manifests, LoadError> {
    load_texts(&[(file.to_owned(), text.to_owned())])
}

fn expand(input: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if input == Path::new("-") || !input.is_dir() {
        return Ok(vec![input.to_path_buf()]);
    }
    let read_err = |source| LoadError::Read {
        path: input.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(input).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads and validates manifests from (file name, text) pairs; problems name the files.
pub fn load_texts(texts: &[(String, String)]) -> Result<Manifests, LoadError> {
    static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
        jsonschema::validator_for(schema::schema())
            .expect("the generated schema is valid (checked by a unit test)")
    });
    let mut problems = Vec::new();
    let mut sources = BTreeMap::new();
    let mut docs = Vec::new();
    let mut unparsed = false;
    for (file, text) in texts {
        let file: Arc<str> = file.as_str().into();
        sources.insert(file.to_string(), Arc::<str>::from(text.as_str()));
        let parsed = match yaml::parse(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                unparsed = true;
                problems.push(Problem {
                    file: file.to_string(),
                    pos: Some(e.pos),
                    field: String::new(),
                    message: format!("invalid YAML: {}", e.message),
                });
                continue;
            }
        };
        for document in parsed {
            let source = Source {
                file: file.clone(),
                positions: Arc::new(document.positions),
            };
            for error in VALIDATOR.iter_errors(&document.value) {
                problems.extend(schema_problems(&error, &source));
            }
            docs.push(Doc::new(document.value, source));
        }
    }
    problems.extend(validate::check(&docs, unparsed));
    if !problems.is_empty() {
        problems.sort();
        problems.dedup();
        return Err(LoadError::Invalid(Problems {
            items: problems,
            sources,
        }));
    }
    assemble(docs).map_err(|items| LoadError::Invalid(Problems { items, sources }))
}

/// A jsonschema error as problems at the right places, in our words (one per unknown
/// field when several are unexpected).
fn schema_problems(error: &jsonschema::ValidationError<'_>, source: &Source) -> Vec<Problem> {
    use jsonschema::error::ValidationErrorKind as K;
    let pointer = error.instance_path().as_str();
    let at_value = |pointer: &str, message: String| Problem {
        file: source.file.to_string(),
        pos: Some(source.positions.value(pointer)),
        field: dotted(pointer),
        message,
    };
    let at_key = |pointer: &str, message: String| Problem {
        pos: Some(source.positions.key(pointer)),
        ..at_value(pointer, message)
    };
    match error.kind() {
        K::AdditionalProperties { unexpected } => {
            let known = known_fields(error.schema_path().as_str());
            unexpected
                .iter()
                .map(|field| {
                    let mut message = format!("unknown field `{field}`");
                    if let Some(best) = closest(field, &known) {
                        message.push_str(&format!(", did you mean `{best}`?"));
                    } else if !known.is_empty() {
                        message.push_str(&format!(", expected one of: {}", known.join(", ")));
                    }
                    at_key(&format!("{pointer}/{}", yaml::escape(field)), message)
                })
                .collect()
        }
        K::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![at_key(pointer, format!("missing field `{name}`"))]
        }
        K::OneOfNotValid { .. } | K::AnyOf { .. } => {
            let message = match constants(error.schema_path().as_str()) {
                Some(options) => format!("{} is not one of {options}", error.instance()),
                None => lowercase_first(&error.to_string()),
            };
            vec![at_value(pointer, message)]
        }
        _ => vec![at_value(pointer, lowercase_first(&error.to_string()))],
    }
}

/// The property names allowed by the subschema whose `additionalProperties` failed.
fn known_fields(schema_path: &str) -> Vec<String> {
    let parent = schema_path
        .strip_suffix("/additionalProperties")
        .unwrap_or(schema_path);
    schema::schema()
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The allowed values of a `oneOf`/`anyOf` whose branches are all `const` (an enum with
/// documented variants), as `["a", "b"]`.
fn constants(schema_path: &str) -> Option<String> {
    let branches = schema::schema().pointer(schema_path)?.as_array()?;
    let values: Option<Vec<String>> = branches
        .iter()
        .map(|b| b.get("const").map(Value::to_string))
        .collect();
    Some(format!("[{}]", values?.join(", ")))
}

/// The known name closest to `field`, when it is close enough to be a typo.
fn closest<'a>(field: &str, known: &'a [String]) -> Option<&'a str> {
    let field = field.to_lowercase();
    let prefix = known
        .iter()
        .find(|k| field.len() >= 3 && k.to_lowercase().starts_with(&field));
    let near = || {
        known
            .iter()
            .map(|k| (edit_distance(&field, &k.to_lowercase()), k))
            .filter(|(d, k)| *d <= 2.max(k.len() / 3))
            .min_by_key(|(d, _)| *d)
            .map(|(_, k)| k)
    };
    prefix.or_else(near).map(String::as_str)
}

/// Edit distance where swapping two neighbours counts once (optimal string alignment),
/// so `mni` is closer to `min` than to `env`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if !s.starts_with("\"") => c.to_lowercase().chain(chars).collect(),
        _ => s.to_owned(),
    }
}

fn assemble(docs: Vec<Doc>) -> Result<Manifests, Vec<Problem>> {
    let mut m = Manifests::default();
    let mut problems = Vec::new();
    let mut controller = None;
    for doc in docs {
        let Some(kind) = doc.kind else { continue };
        let name = doc.name.clone().unwrap_or_default();
        let spec = doc.value.get("spec").cloned().unwrap_or(Value::Null);
        let source = doc.source;
        match kind {
            Kind::Account => decode(&mut m.accounts, name, spec, source, &mut problems),
            Kind::SharedState => decode(&mut m.shared_states, name, spec, source, &mut problems),
            Kind::Pool => decode(&mut m.pools, name, spec, source, &mut problems),
            Kind::DedicatedSession => decode(&mut m.dedicated, name, spec, source, &mut problems),
            Kind::Inbox => decode(&mut m.inboxes, name, spec, source, &mut problems),
            Kind::AgentProfile => {
                let spec = with_kind_defaults(spec);
                decode(&mut m.agents, name, spec, source, &mut problems);
            }
            Kind::ControllerConfig => {
                let mut one = Vec::new();
                decode(&mut one, name, spec, source, &mut problems);
                controller = one.pop();
            }
        }
    }
    // The built-in profiles a manifest does not replace, first, in the table's order.
    let builtins = crate::agents::BUILTIN
        .iter()
        .filter(|b| !m.agents.iter().any(|a| a.name == b.name))
        .map(|b| Object {
            name: b.name.to_owned(),
            spec: super::AgentProfileSpec::of_kind(b.kind),
            source: Source::builtin(),
        })
        .collect::<Vec<_>>();
    m.agents.splice(0..0, builtins);
    // A pool over several families names its preferred profile in `agent` too, so
    // that whatever reads one profile reads the preferred one.
    for pool in &mut m.pools {
        if let Some(first) = pool.spec.agents.first() {
            pool.spec.agent = first.clone();
        }
    }
    m.controller = controller.unwrap_or_default();
    if problems.is_empty() {
        Ok(m)
    } else {
        Err(problems)
    }
}

/// An AgentProfile's spec with every field it leaves out (and every screen pattern)
/// taken from its kind's defaults: serde's field defaults cannot see the sibling
/// `kind`. A kind that does not parse is left to `decode` to name.
fn with_kind_defaults(mut spec: Value) -> Value {
    let kind = match spec.get("kind") {
        None => super::AgentKind::default(),
        Some(v) => match v.as_str().and_then(super::AgentKind::parse) {
            Some(kind) => kind,
            None => return spec,
        },
    };
    if let Ok(defaults) = serde_json::to_value(super::AgentProfileSpec::of_kind(kind)) {
        fill(&mut spec, &defaults);
    }
    spec
}

/// Inserts into `into` every key of `from` it lacks, the same within objects both hold.
fn fill(into: &mut Value, from: &Value) {
    let (Value::Object(into), Value::Object(from)) = (into, from) else {
        return;
    };
    for (key, value) in from {
        match into.get_mut(key) {
            Some(have) => fill(have, value),
            None => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

fn decode<S: DeserializeOwned>(
    into: &mut Vec<Object<S>>,
    name: String,
    spec: Value,
    source: Source,
    problems: &mut Vec<Problem>,
) {
    match serde_json::from_value(spec) {
        Ok(spec) => into.push(Object { name, spec, source }),
        Err(e) => problems.push(Problem {
            file: source.file.to_string(),
            pos: Some(source.positions.value("/spec")),
            field: "spec".into(),
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "load_families_tests.rs"]
mod families_tests;
