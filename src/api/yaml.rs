//! YAML documents with source positions.
//!
//! This module owns the first step of loading: turning YAML text into one
//! [`Document`] per `---` document, each holding the plain JSON value (what the schema
//! and serde see) and a [`Positions`] map from every field path to its line and column.
//! Keeping both lets every later check, schema or semantic, point at the exact place in
//! the file.

use std::collections::HashMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl Pos {
    fn of<T>(spanned: &Spanned<T>) -> Self {
        Self {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        }
    }
}

/// Where each field of one document sits: a JSON pointer (`/spec/min`) to the position
/// of its value, and of its key for mapping entries.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// The position of the value at `pointer`, or of its nearest ancestor that has one.
    pub fn value(&self, pointer: &str) -> Pos {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.values.get(p) {
                return *pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Pos::default(),
            }
        }
    }

    /// The position of the key of the mapping entry at `pointer`, falling back to its
    /// value's position.
    pub fn key(&self, pointer: &str) -> Pos {
        self.keys
            .get(pointer)
            .copied()
            .unwrap_or_else(|| self.value(pointer))
    }
}

/// One YAML document: its value and where each part of it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The document as plain JSON.
    pub value: serde_json::Value,
    /// Where each field sits in the source.
    pub positions: Positions,
}

/// A YAML syntax error (bad indentation, duplicate key, alias bomb, …) with its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// Where the parser stopped, when it knows.
    pub pos: Pos,
    /// The parser's message.
    pub message: String,
}

/// Parses multi-document YAML. Duplicate keys, alias bombs and syntax errors fail the
/// whole text with the position of the first problem.
pub fn parse(text: &str) -> Result<Vec<Document>, SyntaxError> {
    let nodes: Vec<Spanned<Node>> = serde_saphyr::from_multiple(text).map_err(|e| SyntaxError {
        pos: e
            .location()
            .map(|l| Pos {
                line: l.line(),
                column: l.column(),
            })
            .unwrap_or_default(),
        message: e.without_snippet().to_string(),
    })?;
    Ok(nodes
        .into_iter()
        .filter(|n| !matches!(n.value, Node::Null))
        .map(|n| {
            let mut positions = Positions::default();
            let value = flatten(n, String::new(), &mut positions);
            Document { value, positions }
        })
        .collect())
}

fn flatten(node: Spanned<Node>, pointer: String, positions: &mut Positions) -> serde_json::Value {
    positions.values.insert(pointer.clone(), Pos::of(&node));
    match node.value {
        Node::Null => serde_json::Value::Null,
        Node::Bool(b) => b.into(),
        Node::Int(i) => i.into(),
        Node::UInt(u) => u.into(),
        Node::Float(f) => {
            serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
        }
        Node::Str(s) => s.into(),
        Node::Seq(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| flatten(item, format!("{pointer}/{i}"), positions))
            .collect(),
        Node::Map(entries) => {
            let mut map = serde_json::Map::new();
            for (key, value) in entries {
                let child = format!("{pointer}/{}", escape(&key.value));
                positions.keys.insert(child.clone(), Pos::of(&key));
                let v = flatten(value, child, positions);
                map.insert(key.value, v);
            }
            serde_json::Value::Object(map)
        }
    }
}

/// Escapes one JSON pointer segment (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A YAML node whose children carry their positions.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyString>>()? {
            let value = map.next_value()?;
            entries.push((
                Spanned::new(key.value.0, key.referenced, key.defined),
                value,
            ));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key: YAML allows numbers and booleans as keys, JSON wants strings.
struct KeyString(String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyString, E> {
                Ok(KeyString(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyString, E> {
                Ok(KeyString("null".to_owned()))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_should_record_positions_of_nested_values_and_keys() {
        let docs =
            parse("a: 1\nspec:\n  min: 12\n  list:\n    - x\n    - y\n---\nb: true\n").unwrap();
        assert_eq!(docs.len(), 2);
        let p = &docs[0].positions;
        assert_eq!(p.value("/spec/min"), Pos { line: 3, column: 8 });
        assert_eq!(p.key("/spec/min"), Pos { line: 3, column: 3 });
        assert_eq!(p.value("/spec/list/1"), Pos { line: 6, column: 7 });
        assert_eq!(p.value("/spec/nothere"), p.value("/spec"));
        assert_eq!(docs[0].value["spec"]["min"], 12);
        assert_eq!(docs[1].value["b"], true);
    }

    #[test]
    fn parse_should_reject_duplicate_keys_with_position() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err.pos.line, 3, "{err:?}");
    }

    #[test]
    fn parse_should_skip_empty_documents() {
        let docs = parse("---\n# only a comment\n---\na: 1\n").unwrap();
        assert_eq!(docs.len(), 1);
    }
}
