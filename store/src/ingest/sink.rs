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

/// An anonymous Parquet file being written.
pub(super) struct ParquetSink {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    rows: u64,
}

impl ParquetSink {
    /// A new file for rows of `schema` (normalized).
    pub(super) fn new(schema: SchemaRef) -> Result<Self, StoreError> {
        // ZSTD at its default level: much smaller than Snappy on typical
        // tabular data, and fast to decompress for the workers.
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
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
