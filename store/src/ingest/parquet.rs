//! Parquet bodies: read in full (every page decoded, so corruption is found
//! now rather than by a job) and rewritten with the store's settings.

use std::fs::File;

use datafusion::{
    arrow::error::ArrowError, parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder,
};

use super::{Converted, Expect, arrow_message, batch_rows, check_width, sink::ParquetSink};
use crate::{
    error::StoreError,
    options::IngestOptions,
    schema::{mismatch, normalize, same_columns},
};

/// Converts the Parquet file `file` (the footer is at its end, which is why
/// the body had to be spooled first).
pub(super) fn convert(
    file: File,
    options: &IngestOptions,
    expect: Expect,
) -> Result<Converted, StoreError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|error| StoreError::bad(format!("not a readable Parquet file: {error}")))?;
    check_width(builder.schema().fields().len(), options.max_columns)?;
    let found = normalize(builder.schema())?;
    if let Expect::Declared(expected) | Expect::Dataset(expected) = &expect
        && !same_columns(expected, &found)
    {
        return Err(mismatch(expected, &found));
    }
    let reader = builder
        .with_batch_size(batch_rows(found.fields().len()))
        .build()
        .map_err(|error| StoreError::bad(format!("not a readable Parquet file: {error}")))?;
    let mut sink = ParquetSink::new(found)?;
    for batch in reader {
        let batch = batch.map_err(|error| match error {
            ArrowError::IoError(_, source) => StoreError::Io(source),
            other => StoreError::bad(format!("corrupt Parquet data: {}", arrow_message(&other))),
        })?;
        sink.write(&batch)?;
    }
    sink.finish()
}
