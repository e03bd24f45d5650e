//! Shared test fixtures: a store on a fresh database and a temporary
//! directory, bodies, and reading parts back.

#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use crunch_db::testing::{TestDb, test_db};
use crunch_queue::TenantId;
use crunch_store::{Format, IngestOptions, PartLocation, Store};
use datafusion::{
    arrow::record_batch::RecordBatch, parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder,
};
use futures_util::{Stream, stream};
use uuid::Uuid;

pub struct Fixture {
    pub db: TestDb,
    pub dir: tempfile::TempDir,
    pub store: Store,
}

pub async fn fixture() -> Fixture {
    let db = test_db().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    let store = Store::open(db.pool().clone(), &url).unwrap();
    Fixture { db, dir, store }
}

impl Fixture {
    /// Every file under the store's directory.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        walk(self.dir.path(), &mut found);
        found
    }

    /// A second tenant.
    pub async fn other_tenant(&self) -> TenantId {
        let tenant = TenantId(Uuid::now_v7());
        sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'other')")
            .bind(tenant.0)
            .execute(self.db.pool())
            .await
            .unwrap();
        tenant
    }

    /// Rows in both dataset tables, of every tenant.
    pub async fn row_counts(&self) -> (i64, i64) {
        let datasets: i64 = sqlx::query_scalar("SELECT count(*) FROM datasets")
            .fetch_one(self.db.pool())
            .await
            .unwrap();
        let parts: i64 = sqlx::query_scalar("SELECT count(*) FROM dataset_parts")
            .fetch_one(self.db.pool())
            .await
            .unwrap();
        (datasets, parts)
    }

    /// Asserts that nothing at all is stored.
    pub async fn assert_nothing_stored(&self) {
        assert_eq!(self.row_counts().await, (0, 0));
        assert_eq!(self.files(), Vec::<PathBuf>::new());
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, found);
        } else {
            found.push(path);
        }
    }
}

/// A body delivered in small chunks, so that lines span chunk boundaries.
pub fn body(
    data: impl Into<Vec<u8>>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    let data: Vec<u8> = data.into();
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(7)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    stream::iter(chunks)
}

/// A body in 1 MiB chunks, for large bodies.
pub fn body_in_large_chunks(
    data: impl Into<Vec<u8>>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin {
    let data: Vec<u8> = data.into();
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(1 << 20)
        .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
        .collect();
    stream::iter(chunks)
}

pub fn options(format: Format) -> IngestOptions {
    IngestOptions::new(format)
}

/// The rows of a part, read back from its Parquet file.
pub fn read_part(location: &PartLocation) -> Vec<RecordBatch> {
    let file = std::fs::File::open(format!("/{}", location.path)).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|batch| batch.unwrap())
        .collect()
}

/// All rows of a dataset's committed parts, as one batch.
pub async fn read_dataset(
    store: &Store,
    tenant: TenantId,
    id: crunch_store::DatasetId,
) -> RecordBatch {
    let (schema, parts) = store.committed_parts(tenant, id).await.unwrap().unwrap();
    let batches: Vec<RecordBatch> = parts.iter().flat_map(read_part).collect();
    datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap()
}
