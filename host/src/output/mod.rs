//! Writing a result as text: an aligned table, CSV with a header, or JSON lines, every value
//! as PostgreSQL would print it (`pgcache query --format`, and `pgcache serve`'s answers).

mod cell;

use std::io::Write;

use arrow::record_batch::RecordBatch;

use crate::ResultSet;
use cell::{Cell, pg_type};

/// Text formats of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextFormat {
    /// Aligned columns, for people.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per row, one per line; keys in column order, json values embedded as
    /// stored, numeric as strings.
    JsonLines,
}

/// Why a result could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// Writing failed.
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
    /// The CSV writer failed.
    #[error("cannot write CSV: {0}")]
    Csv(#[from] csv::Error),
    /// Reading the result failed.
    #[error(transparent)]
    Result(#[from] crate::Error),
}

type Result<T> = std::result::Result<T, OutputError>;

fn cells(batch: &RecordBatch, row: usize) -> Vec<Cell> {
    batch
        .columns()
        .iter()
        .zip(batch.schema().fields())
        .map(|(array, field)| Cell::of(array.as_ref(), pg_type(field), row))
        .collect()
}

/// Writes `result` in a text format to `out`.
pub fn write(result: &ResultSet, format: TextFormat, out: &mut dyn Write) -> Result<()> {
    match format {
        TextFormat::Table => table(result, out),
        TextFormat::Csv => csv(result, out),
        TextFormat::JsonLines => json(result, out),
    }
}

fn csv(result: &ResultSet, out: &mut dyn Write) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let schema = result.schema();
    w.write_record(schema.fields().iter().map(|f| f.name().as_str()))?;
    for batch in result.batches() {
        let batch = batch?;
        for row in 0..batch.num_rows() {
            w.write_record(cells(&batch, row).iter().map(Cell::text))?;
        }
    }
    w.flush()?;
    Ok(())
}

/// One JSON object per row, keys in column order. A repeated column name is suffixed so no
/// column is lost: the first keeps its name, later ones become `a_2`, `a_3` ... (skipping
/// names the result already has).
fn json(result: &ResultSet, out: &mut dyn Write) -> Result<()> {
    let schema = result.schema();
    let keys: Vec<String> = json_keys(schema.fields().iter().map(|f| f.name().as_str()))
        .iter()
        .map(|k| {
            let mut key = String::new();
            cell::json_string(k, &mut key);
            key
        })
        .collect();
    let mut line = String::new();
    for batch in result.batches() {
        let batch = batch?;
        for row in 0..batch.num_rows() {
            line.clear();
            line.push('{');
            for (i, (key, cell)) in keys.iter().zip(cells(&batch, row)).enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(key);
                line.push(':');
                cell.write_json(&mut line);
            }
            line.push_str("}\n");
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

/// Unique object keys for column names in order (see [`json`]).
fn json_keys<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Vec<String> {
    let taken: std::collections::HashSet<&str> = names.clone().collect();
    let mut used = std::collections::HashSet::new();
    names
        .map(|name| {
            if used.insert(name.to_owned()) {
                return name.to_owned();
            }
            let mut n = 2;
            loop {
                let key = format!("{name}_{n}");
                if !taken.contains(key.as_str()) && used.insert(key.clone()) {
                    return key;
                }
                n += 1;
            }
        })
        .collect()
}

/// Column widths come from the header and the first rows; the table streams, so a huge
/// result does not have to fit in memory to be printed.
fn table(result: &ResultSet, out: &mut dyn Write) -> Result<()> {
    const SAMPLE: usize = 1000;
    let schema = result.schema();
    let mut widths: Vec<usize> = schema
        .fields()
        .iter()
        .map(|f| f.name().chars().count())
        .collect();
    let mut batches = result.batches();
    let first = batches.next().transpose()?;
    let sample: Vec<Vec<String>> = first
        .as_ref()
        .map(|b| {
            (0..b.num_rows().min(SAMPLE))
                .map(|r| cells(b, r).iter().map(Cell::text).collect())
                .collect()
        })
        .unwrap_or_default();
    for row in &sample {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, values: &[String]| -> std::io::Result<()> {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        writeln!(out, " {}", padded.join(" | ").trim_end())
    };
    line(
        out,
        &schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>(),
    )?;
    writeln!(
        out,
        "-{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    )?;
    for row in &sample {
        line(out, row)?;
    }
    if let Some(first) = &first {
        for r in sample.len()..first.num_rows() {
            line(
                out,
                &cells(first, r).iter().map(Cell::text).collect::<Vec<_>>(),
            )?;
        }
    }
    for batch in batches {
        let batch = batch?;
        for r in 0..batch.num_rows() {
            line(
                out,
                &cells(&batch, r).iter().map(Cell::text).collect::<Vec<_>>(),
            )?;
        }
    }
    let n = result.num_rows();
    writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_column_names_get_suffixes() {
        let keys = json_keys(["a", "a", "a_2", "b", "a"].into_iter());
        assert_eq!(keys, ["a", "a_3", "a_2", "b", "a_4"]);
    }
}
