//! The tables `get` prints: what there is to show ([`What`]), a [`Row`] struct per
//! table, which says its columns in order, and one [`Table`] that renders any of them
//! in a [`Format`]: an aligned table, JSON or YAML.

use serde::Serialize;
use serde_json::Value;

pub(super) use crate::board::WindowCell;

/// What to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum What {
    /// Sessions: role, account, state, pane pid, task.
    Sessions,
    /// Accounts: priority, state, reset time; and the last swap.
    Accounts,
    /// Inboxes: tasks waiting, running, done and failed.
    Inboxes,
    /// The journal: what happened to which object, and why.
    Events,
    /// The fleet's nodes (a `fleet` section in the ControllerConfig): up, or gone and
    /// when last seen.
    Nodes,
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Format {
    /// An aligned table.
    Table,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

/// A row of a table: serialized for JSON and YAML, its columns (the serialized keys,
/// in order) for the aligned table.
pub(super) trait Row: Serialize {
    /// Its columns, in order, as serialized (`fiveHour`); the table's header writes
    /// them as kubectl does (`FIVE HOUR`).
    fn columns() -> Vec<&'static str>;
}

/// Rows of one kind, ready to print or to compare with a later look.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Table {
    /// The columns, in order.
    pub columns: Vec<&'static str>,
    /// Each row, serialized.
    pub rows: Vec<Value>,
}

impl Table {
    /// The table of `rows`.
    pub(super) fn of<R: Row>(rows: &[R]) -> Self {
        Self {
            columns: R::columns(),
            rows: rows
                .iter()
                .map(|r| serde_json::to_value(r).unwrap_or_default())
                .collect(),
        }
    }

    /// The same columns with `rows`.
    pub(super) fn with_rows(&self, rows: Vec<Value>) -> Self {
        Self {
            columns: self.columns.clone(),
            rows,
        }
    }

    /// The table in `format`; a table closes with the `footer` lines.
    pub(super) fn render(&self, format: Format, footer: &[String]) -> String {
        match format {
            Format::Json => serde_json::to_string_pretty(&self.rows).unwrap_or_default() + "\n",
            Format::Yaml => serde_saphyr::to_string(&self.rows).unwrap_or_default(),
            Format::Table => {
                if self.rows.is_empty() {
                    return format!("No resources found.\n{}\n", footer.join("\n"));
                }
                let mut out = String::new();
                for line in self.lines() {
                    out.push_str(&line);
                    out.push('\n');
                }
                for f in footer {
                    out.push_str(f);
                    out.push('\n');
                }
                out
            }
        }
    }

    /// The aligned lines: the header, then a line per row.
    pub(super) fn lines(&self) -> Vec<String> {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| self.columns.iter().map(|c| cell(&r[*c])).collect())
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                cells
                    .iter()
                    .map(|row| row[i].chars().count())
                    .chain([header(c).len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |items: Vec<String>| {
            let padded: Vec<String> = items
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_owned()
        };
        std::iter::once(line(self.columns.iter().map(|c| header(c)).collect()))
            .chain(cells.into_iter().map(line))
            .collect()
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "-".to_owned(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        // A usage window: its use and when it resets.
        Value::Object(w) if w.contains_key("used") => format!(
            "{:.0}% (resets {})",
            w["used"].as_f64().unwrap_or_default(),
            w["resetsAt"].as_str().unwrap_or("?")
        ),
        other => other.to_string(),
    }
}

/// A table header: `fiveHour` is `FIVE HOUR`, as kubectl writes its columns.
fn header(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_uppercase() && !out.is_empty() {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// Checks that a row's columns are its serialized keys, in order.
#[cfg(test)]
pub(super) fn assert_columns<R: Row>(sample: &R) {
    let value = serde_json::to_value(sample).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, R::columns());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample {
        name: String,
        five_hour: Option<WindowCell>,
        sessions: usize,
    }

    impl Row for Sample {
        fn columns() -> Vec<&'static str> {
            vec!["name", "fiveHour", "sessions"]
        }
    }

    #[test]
    fn a_table_should_align_its_columns_in_the_rows_order() {
        let rows = [
            Sample {
                name: "a-long-name".into(),
                five_hour: Some(WindowCell {
                    used: 42.4,
                    resets_at: "2026-12-01T12:00:00Z".parse().unwrap(),
                }),
                sessions: 3,
            },
            Sample {
                name: "b".into(),
                five_hour: None,
                sessions: 0,
            },
        ];
        assert_columns(&rows[0]);
        let lines = Table::of(&rows).lines();
        assert_eq!(
            lines[0],
            "NAME         FIVE HOUR                          SESSIONS"
        );
        assert_eq!(
            lines[1],
            "a-long-name  42% (resets 2026-12-01T12:00:00Z)  3"
        );
        assert_eq!(
            lines[2],
            "b            -                                  0"
        );
    }
}
