//! Problems found in manifests, each with its file, line, column and field, and their
//! rendering with a snippet of the source.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

use super::yaml::Pos;

/// One thing wrong with the manifests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The file, as the operator named it; empty for problems of the whole set.
    pub file: String,
    /// Where in the file; `None` for problems of the whole set or whole file.
    pub pos: Option<Pos>,
    /// The field in dotted form (`spec.min`), empty when the problem is the document.
    pub field: String,
    /// What is wrong, in lowercase prose.
    pub message: String,
}

impl Problem {
    /// A problem of the whole manifest set (no file, no position).
    pub fn global(message: impl Into<String>) -> Self {
        Self {
            file: String::new(),
            pos: None,
            field: String::new(),
            message: message.into(),
        }
    }
}

/// A JSON pointer as a problem's field: `/spec/links/2` → `spec.links[2]`.
pub(super) fn dotted(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.parse::<usize>().is_ok() && !out.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file[..], self.pos) {
            ("", _) => {}
            (file, Some(pos)) => write!(f, "{file}:{pos}: ")?,
            (file, None) => write!(f, "{file}: ")?,
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one load, sorted by file and position, with the source texts
/// needed to show snippets.
#[derive(Debug, Clone, Default)]
pub struct Problems {
    /// The problems, sorted.
    pub items: Vec<Problem>,
    /// File name to its text, for snippets.
    pub sources: BTreeMap<String, Arc<str>>,
}

impl Problems {
    /// Renders every problem as a `file:line:col: field: message` line followed by a
    /// snippet of the source with the place marked. Colours only when `color` is set.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let mut out = String::new();
        for problem in &self.items {
            out.push_str(&format!("error: {problem}\n"));
            let (Some(pos), Some(text)) = (problem.pos, self.sources.get(&problem.file)) else {
                continue;
            };
            let Some(offset) = offset_of(text, pos) else {
                continue;
            };
            let len = token_len(&text[offset..]);
            let snippet = Snippet {
                source: NamedSource::new(problem.file.clone(), text.to_string()),
                label: LabeledSpan::at(offset..offset + len, short(&problem.message)),
            };
            let mut rendered = String::new();
            if handler.render_report(&mut rendered, &snippet).is_ok() {
                // The handler's own header repeats the message; keep the snippet only.
                let body: Vec<&str> = rendered.lines().skip_while(|l| !l.contains('╭')).collect();
                for line in body {
                    out.push_str("  ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.items {
            writeln!(f, "{problem}")?;
        }
        Ok(())
    }
}

fn short(message: &str) -> String {
    message.chars().take(60).collect()
}

/// The byte offset of a 1-based line and (character) column.
fn offset_of(text: &str, pos: Pos) -> Option<usize> {
    let line_start = if pos.line <= 1 {
        0
    } else {
        let (i, _) = text
            .match_indices('\n')
            .nth(usize::try_from(pos.line).ok()? - 2)?;
        i + 1
    };
    let column = usize::try_from(pos.column.max(1)).ok()? - 1;
    let line = &text[line_start..];
    let within = line
        .char_indices()
        .nth(column)
        .map_or(line.len(), |(i, _)| i);
    Some(line_start + within)
}

/// The length of the token starting here: up to the end of the line or a `:`.
fn token_len(rest: &str) -> usize {
    let end = rest.find(['\n', ':']).unwrap_or(rest.len());
    rest[..end].trim_end().len().max(1).min(rest.len().max(1))
}

#[derive(Debug)]
struct Snippet {
    source: NamedSource<String>,
    label: LabeledSpan,
}

impl fmt::Display for Snippet {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

impl std::error::Error for Snippet {}

impl miette::Diagnostic for Snippet {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(self.label.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_should_show_the_line_and_mark_the_field() {
        let text: Arc<str> = "a: 1\nspec:\n  min: 12\n".into();
        let problems = Problems {
            items: vec![Problem {
                file: "p.yaml".into(),
                pos: Some(Pos { line: 3, column: 8 }),
                field: "spec.min".into(),
                message: "12 is greater than spec.max (10)".into(),
            }],
            sources: [("p.yaml".to_string(), text)].into(),
        };
        let out = problems.render(false);
        assert!(
            out.starts_with("error: p.yaml:3:8: spec.min: 12 is greater"),
            "{out}"
        );
        assert!(out.contains("min: 12"), "{out}");
        assert!(out.contains("[p.yaml:3:8]"), "{out}");
    }

    #[test]
    fn dotted_should_write_a_pointer_as_fields_and_indexes() {
        for (pointer, field) in [
            ("", ""),
            ("/spec/min", "spec.min"),
            ("/spec/links/2", "spec.links[2]"),
            ("/0", "0"),
            ("/spec/env/a~1b~0c", "spec.env.a/b~c"),
        ] {
            assert_eq!(dotted(pointer), field, "{pointer}");
        }
    }

    #[test]
    fn offset_should_count_characters_not_bytes() {
        let text = "é: x\nb: ❯y\n";
        assert_eq!(offset_of(text, Pos { line: 2, column: 4 }), Some(6 + 3));
    }
}
