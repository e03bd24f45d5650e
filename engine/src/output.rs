//! Writing the result: one Parquet file in the object store, streamed
//! batch by batch (a multipart upload once it outgrows one request).

use std::sync::Arc;

use datafusion::{
    arrow::{datatypes::SchemaRef, record_batch::RecordBatch},
    parquet::{
        arrow::AsyncArrowWriter,
        basic::Compression,
        file::properties::{WriterProperties, WriterVersion},
    },
};
use object_store::{ObjectStore, buffered::BufWriter, path::Path};

use super::EngineError;

/// Rows per row group: small enough that the writer's buffer (which the
/// memory pool does not see) stays modest, large enough for good scans.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// A result file being written.
pub(crate) struct ResultWriter {
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
}

impl ResultWriter {
    /// Starts a Parquet file with `schema` at `path`. Nothing is visible at
    /// `path` until [`ResultWriter::finish`] completes the upload.
    pub(crate) fn new(
        objects: Arc<dyn ObjectStore>,
        path: Path,
        schema: SchemaRef,
    ) -> Result<Self, EngineError> {
        let properties = WriterProperties::builder()
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer =
            AsyncArrowWriter::try_new(BufWriter::new(objects, path), schema, Some(properties))?;
        Ok(ResultWriter { writer, rows: 0 })
    }

    /// Appends a batch.
    pub(crate) async fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        self.writer.write(batch).await?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Rows written so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the footer and completes the upload; returns the file's size.
    pub(crate) async fn finish(mut self) -> Result<u64, EngineError> {
        match self.writer.finish().await {
            Ok(_) => Ok(self.writer.bytes_written() as u64),
            Err(error) => {
                self.abort().await;
                Err(error.into())
            }
        }
    }

    /// Gives up on the file: aborts a multipart upload so no parts linger.
    /// Failures are only logged, as the run already failed for a better
    /// reason.
    pub(crate) async fn abort(self) {
        let mut upload = self.writer.into_inner();
        if let Err(error) = upload.abort().await {
            tracing::warn!(%error, "could not abort the result upload");
        }
    }
}
