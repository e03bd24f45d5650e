//! Reading a job's result Parquet file back out of the object store, as a
//! JSON page, a CSV stream or the file itself. What can go wrong is a
//! [`ResultError`]; `problem.rs` gives it its status.

use std::sync::Arc;

use datafusion::{
    arrow::{
        array::RecordBatch,
        csv::WriterBuilder,
        error::ArrowError,
        json::{WriterBuilder as JsonWriterBuilder, writer::JsonArray},
    },
    parquet::{
        arrow::{ParquetRecordBatchStreamBuilder, async_reader::ParquetObjectReader},
        errors::ParquetError,
    },
};
use futures_util::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, path::Path};
use poem_openapi::Enum;

use super::model::{Column, ResultPage};

/// How to serve a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ResultFormat {
    /// A page of rows as JSON objects.
    Json,
    /// CSV with a header line.
    Csv,
    /// The Parquet file.
    Parquet,
}

/// Why a succeeded job's result could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The result file the job records is not in the object store.
    #[error("a succeeded job's result is missing: {0}")]
    Missing(object_store::Error),
    /// The object store failed or could not be reached.
    #[error("object store: {0}")]
    Object(object_store::Error),
    /// The file does not read as Parquet.
    #[error("reading a result: {0}")]
    Parquet(#[from] ParquetError),
    /// Rows could not be written as JSON.
    #[error("encoding a result as JSON: {0}")]
    Encode(#[from] ArrowError),
    /// The JSON written for the rows does not read back as row objects.
    #[error("decoding result JSON: {0}")]
    Decode(#[from] serde_json::Error),
}

impl From<object_store::Error> for ResultError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => ResultError::Missing(e),
            other => ResultError::Object(other),
        }
    }
}

async fn reader(
    objects: Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<ParquetRecordBatchStreamBuilder<ParquetObjectReader>, ResultError> {
    let meta = objects.head(path).await?;
    let reader = ParquetObjectReader::new(objects, meta.location).with_file_size(meta.size);
    Ok(ParquetRecordBatchStreamBuilder::new(reader).await?)
}

/// The Parquet file, streamed as stored.
pub async fn parquet(
    objects: Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<poem::Body, ResultError> {
    let file = objects.get(path).await?;
    let bytes = file.into_stream().map_err(std::io::Error::other);
    Ok(poem::Body::from_bytes_stream(bytes))
}

/// Every row as CSV, converted batch by batch as the client reads.
pub async fn csv(objects: Arc<dyn ObjectStore>, path: &Path) -> Result<poem::Body, ResultError> {
    let batches = reader(objects, path).await?.build()?;
    let chunks = batches.enumerate().map(|(i, batch)| {
        let batch = batch.map_err(std::io::Error::other)?;
        let mut out = Vec::new();
        let mut writer = WriterBuilder::new().with_header(i == 0).build(&mut out);
        writer.write(&batch).map_err(std::io::Error::other)?;
        drop(writer);
        Ok::<_, std::io::Error>(bytes::Bytes::from(out))
    });
    Ok(poem::Body::from_bytes_stream(chunks))
}

/// Rows `offset..offset+limit` as JSON objects.
pub async fn json_page(
    objects: Arc<dyn ObjectStore>,
    path: &Path,
    offset: usize,
    limit: usize,
) -> Result<ResultPage, ResultError> {
    let builder = reader(objects, path).await?;
    let total = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let columns = builder
        .schema()
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect();
    let batches: Vec<RecordBatch> = builder
        .with_offset(offset)
        .with_limit(limit)
        .build()?
        .try_collect()
        .await?;
    // Nulls are spelled out, so every row object has every column.
    let mut writer = JsonWriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    for batch in &batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    let bytes = writer.into_inner();
    let rows: Vec<std::collections::BTreeMap<String, serde_json::Value>> = if bytes.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&bytes)?
    };
    let end = offset.saturating_add(rows.len());
    Ok(ResultPage {
        columns,
        rows,
        next_cursor: (end < total).then(|| end.to_string()),
    })
}
