//! A report table: rows (sizes or variants) by columns (allocators), medians of repeated
//! measurements, rendered as Markdown with a "classalloc / best peer" column.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Which way is better for a table's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Time, memory: less is better.
    Lower,
    /// Throughput: more is better.
    Higher,
}

/// One workload's results.
#[derive(Debug)]
pub struct Table {
    /// Short name, also the chart's file name.
    pub id: String,
    /// Heading.
    pub title: String,
    /// What the numbers are.
    pub unit: String,
    /// The header of the row column.
    pub row_header: String,
    /// Which way is better.
    pub better: Better,
    /// Decimals to print.
    pub decimals: usize,
    /// Row labels, in order.
    pub rows: Vec<String>,
    /// Allocator columns, in order.
    pub columns: Vec<String>,
    /// Reference columns printed before the allocators (e.g. the seed's published figure).
    pub references: Vec<(String, BTreeMap<String, String>)>,
    /// Samples per (row, column).
    pub samples: BTreeMap<(String, String), Vec<f64>>,
    /// Cells whose run failed.
    pub failures: BTreeMap<(String, String), String>,
}

impl Table {
    /// An empty table.
    pub fn new(id: &str, title: &str, unit: &str, row_header: &str, better: Better) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            unit: unit.into(),
            row_header: row_header.into(),
            better,
            decimals: 2,
            rows: Vec::new(),
            columns: Vec::new(),
            references: Vec::new(),
            samples: BTreeMap::new(),
            failures: BTreeMap::new(),
        }
    }

    /// Records one measurement.
    pub fn add(&mut self, row: &str, column: &str, value: f64) {
        self.ensure(row, column);
        self.samples
            .entry((row.into(), column.into()))
            .or_default()
            .push(value);
    }

    /// Records a failed run.
    pub fn fail(&mut self, row: &str, column: &str, why: String) {
        self.ensure(row, column);
        self.failures.insert((row.into(), column.into()), why);
    }

    fn ensure(&mut self, row: &str, column: &str) {
        if !self.rows.iter().any(|r| r == row) {
            self.rows.push(row.into());
        }
        if !self.columns.iter().any(|c| c == column) {
            self.columns.push(column.into());
        }
    }

    /// The median of the samples of (row, column).
    pub fn median(&self, row: &str, column: &str) -> Option<f64> {
        let mut values = self.samples.get(&(row.into(), column.into()))?.clone();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let middle = values.len() / 2;
        Some(if values.len() % 2 == 1 {
            values[middle]
        } else {
            (values[middle - 1] + values[middle]) / 2.0
        })
    }

    /// The column of our own allocator: the first whose name starts with "classalloc".
    fn ours(&self) -> Option<&String> {
        self.columns.iter().find(|c| c.starts_with("classalloc"))
    }

    /// Ours divided by the best peer's value in `row`.
    pub fn ours_over_best_peer(&self, row: &str) -> Option<f64> {
        let ours = self.ours()?;
        let our_value = self.median(row, ours)?;
        let peers = self
            .columns
            .iter()
            .filter(|c| !c.starts_with("classalloc"))
            .filter_map(|c| self.median(row, c));
        let best = match self.better {
            Better::Lower => peers.min_by(f64::total_cmp)?,
            Better::Higher => peers.max_by(f64::total_cmp)?,
        };
        Some(our_value / best)
    }

    /// The table as Markdown, with its heading, unit and a note on which way is better.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let direction = match self.better {
            Better::Lower => "lower is better",
            Better::Higher => "higher is better",
        };
        let _ = writeln!(out, "### {}\n\n{} ({direction}).\n", self.title, self.unit);
        let mut header = vec![self.row_header.clone()];
        header.extend(self.references.iter().map(|(name, _)| name.clone()));
        header.extend(self.columns.iter().cloned());
        header.push("classalloc / best peer".into());
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let alignment: Vec<&str> = header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(out, "|{}|", alignment.join("|"));
        for row in &self.rows {
            let mut cells = vec![row.clone()];
            for (_, values) in &self.references {
                cells.push(values.get(row).cloned().unwrap_or_else(|| "—".into()));
            }
            for column in &self.columns {
                let key = (row.clone(), column.clone());
                cells.push(match (self.median(row, column), self.failures.get(&key)) {
                    (Some(value), _) => format!("{value:.*}", self.decimals),
                    (None, Some(_)) => "failed".into(),
                    (None, None) => "—".into(),
                });
            }
            cells.push(match self.ours_over_best_peer(row) {
                Some(ratio) => format!("{ratio:.3}"),
                None => "—".into(),
            });
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        for ((row, column), why) in &self.failures {
            let _ = writeln!(out, "\nFailed: {column} at {row}: {why}");
        }
        out
    }
}
