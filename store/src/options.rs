//! How a body is to be read.

use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

/// The format of an uploaded body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Delimited text, see [`CsvOptions`].
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// A Parquet file.
    Parquet,
}

/// How CSV is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    /// The field delimiter.
    pub delimiter: u8,
    /// Whether the first line names the columns. Without one, columns are
    /// named `column_1`, `column_2`, ... unless a schema is declared.
    pub header: bool,
    /// Field values that mean null, compared exactly (for every type,
    /// strings included).
    pub null_values: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            header: true,
            null_values: vec![String::new()],
        }
    }
}

/// How an upload is read and what it may be.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// The body's format.
    pub format: Format,
    /// Used when `format` is CSV.
    pub csv: CsvOptions,
    /// Declared schema; None = infer (CSV/NDJSON: from the first
    /// `infer_records` records; Parquet: its own schema). On append, a
    /// declared schema must be the dataset's; without one the dataset's
    /// types are used and only the column names are checked.
    pub schema: Option<SchemaRef>,
    /// Records that CSV and NDJSON schema inference looks at.
    pub infer_records: usize,
    /// The largest body accepted; more is `StoreError::TooLarge`.
    pub max_bytes: u64,
    /// The longest CSV or NDJSON line accepted, in bytes (without the line
    /// terminator); longer is `BadInput` naming the line.
    pub max_line_bytes: usize,
    /// The most columns a body may have; more is `BadInput`, found from the
    /// header (CSV), the inferred or declared schema (NDJSON) or the footer
    /// (Parquet) before any row is decoded. Every column costs the decoder
    /// and the Parquet writer memory of their own, whatever the rows.
    pub max_columns: usize,
}

/// Columns a body may have unless told otherwise.
pub const DEFAULT_MAX_COLUMNS: usize = 10_000;

/// Records looked at by schema inference unless told otherwise.
pub const DEFAULT_INFER_RECORDS: usize = 1000;

impl IngestOptions {
    /// Defaults for `format`: inferred schema, 1 GiB body, 1 MiB lines,
    /// [`DEFAULT_MAX_COLUMNS`] columns.
    pub fn new(format: Format) -> Self {
        IngestOptions {
            format,
            csv: CsvOptions::default(),
            schema: None,
            infer_records: DEFAULT_INFER_RECORDS,
            max_bytes: 1 << 30,
            max_line_bytes: 1 << 20,
            max_columns: DEFAULT_MAX_COLUMNS,
        }
    }
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions::new(Format::Csv)
    }
}
