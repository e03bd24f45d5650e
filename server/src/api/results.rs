//! Reading a job's result Parquet file back out of the object store, as a
//! JSON page, a CSV stream or the file itself.

use std::sync::Arc;

use datafusion::{
    arrow::{
        array::RecordBatch,
        csv::WriterBuilder,
        json::{WriterBuilder as JsonWriterBuilder, writer::JsonArray},
    },
    parquet::arrow::{ParquetRecordBatchStreamBuilder, async_reader::ParquetObjectReader},
};
use futures_util::{StreamExt, TryStreamExt};
use object_store::{ObjectStore, ObjectStoreExt, path::Path};
use poem_openapi::Enum;

use super::model::{Column, ResultPage};
use crate::problem::ApiError;

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

fn object_error(e: object_store::Error) -> ApiError {
    match e {
        object_store::Error::NotFound { .. } => {
            ApiError::Internal(format!("a succeeded job's result is missing: {e}"))
        }
        other => ApiError::Unavailable(format!("object store: {other}")),
    }
}

fn parquet_error(e: datafusion::parquet::errors::ParquetError) -> ApiError {
    ApiError::Internal(format!("reading a result: {e}"))
}

async fn reader(
    objects: Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<ParquetRecordBatchStreamBuilder<ParquetObjectReader>, ApiError> {
    let meta = objects.head(path).await.map_err(object_error)?;
    let reader = ParquetObjectReader::new(objects, meta.location).with_file_size(meta.size);
    ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(parquet_error)
}

/// The Parquet file, streamed as stored.
pub async fn parquet(objects: Arc<dyn ObjectStore>, path: &Path) -> Result<poem::Body, ApiError> {
    let file = objects.get(path).await.map_err(object_error)?;
    let bytes = file.into_stream().map_err(std::io::Error::other);
    Ok(poem::Body::from_bytes_stream(bytes))
}

/// Every row as CSV, converted batch by batch as the client reads.
pub async fn csv(objects: Arc<dyn ObjectStore>, path: &Path) -> Result<poem::Body, ApiError> {
    let batches = reader(objects, path)
        .await?
        .build()
        .map_err(parquet_error)?;
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
) -> Result<ResultPage, ApiError> {
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
        .build()
        .map_err(parquet_error)?
        .try_collect()
        .await
        .map_err(parquet_error)?;
    // Nulls are spelled out, so every row object has every column.
    let mut writer = JsonWriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    for batch in &batches {
        writer
            .write(batch)
            .map_err(|e| ApiError::Internal(format!("encoding a result as JSON: {e}")))?;
    }
    writer
        .finish()
        .map_err(|e| ApiError::Internal(format!("encoding a result as JSON: {e}")))?;
    let bytes = writer.into_inner();
    let rows: Vec<std::collections::BTreeMap<String, serde_json::Value>> = if bytes.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Internal(format!("decoding result JSON: {e}")))?
    };
    let end = offset.saturating_add(rows.len());
    Ok(ResultPage {
        columns,
        rows,
        next_cursor: (end < total).then(|| end.to_string()),
    })
}
