//! Ingestion: a body in, one Parquet file out.
//!
//! The body is spooled to an anonymous temporary file first (the limits are
//! enforced as it arrives, nothing is buffered in memory), then parsed and
//! validated in full on the blocking pool and rewritten as one Parquet file,
//! also anonymous. Nothing is uploaded or recorded until all of it has
//! parsed, so a bad body leaves nothing behind.

mod csv;
mod lines;
mod ndjson;
mod parquet;
mod sink;
mod spool;

use bytes::Bytes;
use datafusion::arrow::{datatypes::SchemaRef, error::ArrowError};
use futures_util::Stream;

use crate::{
    error::StoreError,
    options::{Format, IngestOptions},
};

/// Rows per Arrow batch while converting, for narrow data.
const BATCH_ROWS: usize = 8192;

/// Values per Arrow batch while converting: wide data gets fewer rows per
/// batch, so a batch's memory follows its values and not its width times
/// [`BATCH_ROWS`] (the CSV decoder alone keeps an offset per value of the
/// batch it can hold).
const BATCH_VALUES: usize = 1 << 18;

/// Rows per batch for data `columns` wide.
fn batch_rows(columns: usize) -> usize {
    (BATCH_VALUES / columns.max(1)).clamp(1, BATCH_ROWS)
}

/// Refuses a body over `max` columns, before its rows cost anything.
fn check_width(columns: usize, max: usize) -> Result<(), StoreError> {
    if columns > max {
        return Err(StoreError::BadInput {
            line: Some(1),
            column: None,
            message: format!("the body has {columns} columns, over the limit of {max}"),
        });
    }
    Ok(())
}

/// What the body's columns must be.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    /// Whatever they are: inferred (CSV, NDJSON) or the file's (Parquet).
    Infer,
    /// The client's declared schema; values are read as its types.
    Declared(SchemaRef),
    /// An existing dataset's schema (an append without a declared schema):
    /// the body must name the same columns; values are read as its types.
    Dataset(SchemaRef),
}

/// A body converted to Parquet.
#[derive(Debug)]
pub(crate) struct Converted {
    /// The Parquet file, anonymous, rewound.
    pub file: std::fs::File,
    /// Its rows; at least one.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// The schema of its rows, normalized.
    pub schema: SchemaRef,
}

/// Spools, parses and converts `body`.
pub(crate) async fn ingest<S>(
    options: &IngestOptions,
    expect: Expect,
    body: S,
) -> Result<Converted, StoreError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    // Parquet is binary: it has no lines to limit.
    let max_line_bytes = match options.format {
        Format::Csv | Format::Ndjson => Some(options.max_line_bytes),
        Format::Parquet => None,
    };
    let file = spool::spool(body, options.max_bytes, max_line_bytes).await?;
    if file.metadata()?.len() == 0 {
        return Err(StoreError::bad("the body is empty"));
    }
    let options = options.clone();
    // Parsing, validating and compressing are CPU-bound and read a local
    // file synchronously: they must not hold up the async workers.
    tokio::task::spawn_blocking(move || match options.format {
        Format::Csv => csv::convert(&file, &options, expect),
        Format::Ndjson => ndjson::convert(&file, &options, expect),
        Format::Parquet => parquet::convert(file, &options, expect),
    })
    .await
    .map_err(|error| StoreError::Invariant(format!("ingestion task failed: {error}")))?
}

/// An Arrow error's own message, without the variant's prefix ("Parser
/// error: ", "Json error: ", ...), for `BadInput` messages.
fn arrow_message(error: &ArrowError) -> String {
    match error {
        ArrowError::ParseError(message)
        | ArrowError::CsvError(message)
        | ArrowError::JsonError(message)
        | ArrowError::CastError(message)
        | ArrowError::InvalidArgumentError(message)
        | ArrowError::ComputeError(message)
        | ArrowError::SchemaError(message)
        | ArrowError::ParquetError(message) => message.clone(),
        other => other.to_string(),
    }
}
