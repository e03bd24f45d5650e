//! Writing the converted rows as one Parquet file.

use std::{
    fs::File,
    io::{Seek, SeekFrom},
};

use datafusion::{
    arrow::{datatypes::SchemaRef, record_batch::RecordBatch},
    parquet::{
        arrow::ArrowWriter,
        basic::{Compression, ZstdLevel},
        file::properties::WriterProperties,
    },
};

use super::Converted;
use crate::error::StoreError;

/// Above this many columns a body is written without the per-column
/// state that costs memory regardless of its rows (see [`ParquetSink::new`]):
/// at most 256 × 170 kB = 43 MB of it.
const WIDE_COLUMNS: usize = 256;

/// An anonymous Parquet file being written.
pub(super) struct ParquetSink {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    rows: u64,
}

impl ParquetSink {
    /// A new file for rows of `schema` (normalized).
    pub(super) fn new(schema: SchemaRef) -> Result<Self, StoreError> {
        let properties = if schema.fields().len() <= WIDE_COLUMNS {
            // ZSTD at its default level: much smaller than Snappy on typical
            // tabular data, and fast to decompress for the workers.
            WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::default()))
                .build()
        } else {
            // Each column's writer holds a ZSTD context (96 kB) and a
            // dictionary's hash table (74 kB) from its first row: 10,000
            // columns would take 1.7 GB whatever the rows. Snappy keeps no
            // context and plain encoding no table, so a wide body costs
            // what its values cost.
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false)
                .build()
        };
        let writer = ArrowWriter::try_new(tempfile::tempfile()?, schema.clone(), Some(properties))?;
        Ok(ParquetSink {
            writer,
            schema,
            rows: 0,
        })
    }

    /// Appends a batch; its columns must have the sink's types.
    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<(), StoreError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        // Same columns under the normalized schema (a Parquet upload's own
        // schema may say non-nullable or carry metadata).
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())?;
        self.writer.write(&batch)?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Closes the file; a body without rows is `BadInput`.
    pub(super) fn finish(self) -> Result<Converted, StoreError> {
        if self.rows == 0 {
            return Err(StoreError::bad("the body has no rows"));
        }
        let mut file = self.writer.into_inner()?;
        let bytes = file.metadata()?.len();
        file.seek(SeekFrom::Start(0))?;
        Ok(Converted {
            file,
            rows: self.rows,
            bytes,
            schema: self.schema,
        })
    }
}
