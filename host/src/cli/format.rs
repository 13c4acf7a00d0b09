//! `--format` of `pgcache query`: the library's text formats, plus a Parquet file and none.

use pgcache::output::TextFormat;

/// Output formats of `pgcache query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns, for people.
    Table,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per row, one per line.
    Json,
    /// A Parquet file (needs `-o FILE`).
    Parquet,
    /// Nothing: only bring the cache up to date (for scheduled refreshes).
    None,
}

impl Format {
    /// The library's text format for this one, if it is text.
    pub fn text(self) -> Option<TextFormat> {
        match self {
            Format::Table => Some(TextFormat::Table),
            Format::Csv => Some(TextFormat::Csv),
            Format::Json => Some(TextFormat::JsonLines),
            Format::Parquet | Format::None => None,
        }
    }
}
