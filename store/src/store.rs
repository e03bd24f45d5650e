//! The store's operations: datasets in, metadata and part locations out.

use std::sync::Arc;

use bytes::Bytes;
use crunch_queue::{JobId, TenantId};
use datafusion::{arrow::datatypes::SchemaRef, execution::object_store::ObjectStoreUrl};
use futures_util::Stream;
use object_store::{ObjectStore, path::Path};
use sqlx::PgPool;

use crate::{
    catalog::{self, NewPart},
    dataset::{Dataset, Part, PartLocation, validate_name},
    error::StoreError,
    ids::{DatasetId, PartId},
    ingest::{Converted, Expect, ingest},
    objects::Objects,
    options::IngestOptions,
    schema::{mismatch, normalize, same_columns},
};

/// The most datasets one [`Store::list`] call returns.
pub const MAX_PAGE: i64 = 1000;

/// Datasets of every tenant: metadata in Postgres, parts in an object
/// store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
    /// The storage quota of tenants that have none of their own.
    default_quota: Option<u64>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    objects: Objects,
}

impl Store {
    /// A store over `pool` and the object store at `url`:
    /// `file:///absolute/dir` (created if missing), a plain absolute or
    /// relative directory path (the same), or `s3://bucket/optional/prefix`
    /// (region and credentials from the standard AWS environment
    /// variables).
    pub fn open(pool: PgPool, url: &str) -> Result<Store, StoreError> {
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                objects: Objects::open(url)?,
            }),
            default_quota: None,
        })
    }

    /// The store with `bytes` as the storage quota of every tenant whose
    /// `tenants.storage_quota_bytes` is NULL; None (as opened) leaves them
    /// unlimited. A tenant's own quota always wins.
    ///
    /// A quota bounds the Parquet bytes of the tenant's dataset parts (what
    /// [`Store::used_bytes`] sums): an upload or append that would take
    /// them past it is `StoreError::QuotaExceeded` and stores nothing.
    /// Job results do not count.
    pub fn with_default_storage_quota(mut self, bytes: Option<u64>) -> Store {
        self.default_quota = bytes;
        self
    }

    /// The bytes the tenant stores: the Parquet sizes of its datasets'
    /// committed parts, what its storage quota bounds.
    pub async fn used_bytes(&self, tenant: TenantId) -> Result<u64, StoreError> {
        let used = catalog::used_bytes(&self.inner.pool, tenant).await?;
        u64::try_from(used).map_err(|_| StoreError::Invariant(format!("negative usage {used}")))
    }

    /// The storage quota that applies to the tenant: its own, else the
    /// store's default ([`Store::with_default_storage_quota`]); None for
    /// no limit.
    pub async fn storage_quota(&self, tenant: TenantId) -> Result<Option<u64>, StoreError> {
        catalog::quota_of(&self.inner.pool, tenant, self.default_quota).await
    }

    /// The object store, its prefix and layout, for the crate's modules.
    pub(crate) fn objects_inner(&self) -> &Objects {
        &self.inner.objects
    }

    /// The pool the store's metadata lives in.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Creates a dataset from a body.
    ///
    /// Streams the body to a temporary file (enforcing `max_bytes` as it
    /// goes), parses and validates all of it, converts it to one Parquet
    /// file, uploads it, and only then inserts the dataset row and its first
    /// part row in one transaction, which checks the tenant's storage quota
    /// (`QuotaExceeded`). Any error leaves nothing behind.
    pub async fn create_dataset(
        &self,
        tenant: TenantId,
        name: &str,
        options: &IngestOptions,
        body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
    ) -> Result<(Dataset, Part), StoreError> {
        validate_name(name)?;
        let expect = match &options.schema {
            Some(declared) => Expect::Declared(normalize(declared)?),
            None => Expect::Infer,
        };
        let converted = ingest(options, expect, body).await?;
        let id = DatasetId::new();
        let schema = converted.schema.clone();
        let (path, part) = self.upload(tenant, id, converted).await?;
        let inserted = catalog::insert_dataset(
            &self.inner.pool,
            tenant,
            id,
            name,
            &schema,
            &part,
            self.default_quota,
        )
        .await;
        match inserted {
            Ok(created) => Ok(created),
            Err(error) => {
                self.inner.objects.delete_quietly([path]).await;
                Err(error)
            }
        }
    }

    /// Appends one part to a dataset: all of the body's rows or none.
    ///
    /// The body's columns must be the dataset's: a declared schema must have
    /// the dataset's names and types (else `SchemaMismatch`); without one,
    /// the body must name the dataset's columns (CSV header, NDJSON fields,
    /// Parquet schema; else `SchemaMismatch`) and its values are read as the
    /// dataset's types (a value that is not is `BadInput`). A part that
    /// would take the tenant past its storage quota is `QuotaExceeded`.
    pub async fn append(
        &self,
        tenant: TenantId,
        id: DatasetId,
        options: &IngestOptions,
        body: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin,
    ) -> Result<Part, StoreError> {
        let existing = catalog::schema_of(&self.inner.pool, tenant, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let expect = match &options.schema {
            Some(declared) => {
                let declared = normalize(declared)?;
                if !same_columns(&existing, &declared) {
                    return Err(mismatch(&existing, &declared));
                }
                Expect::Declared(existing)
            }
            None => Expect::Dataset(existing),
        };
        let converted = ingest(options, expect, body).await?;
        let (path, part) = self.upload(tenant, id, converted).await?;
        // A dataset's schema never changes, so the check above still holds;
        // only its existence can, which the insert checks under a lock.
        let appended =
            catalog::append_part(&self.inner.pool, tenant, id, &part, self.default_quota).await;
        match appended {
            Ok(Some(part)) => Ok(part),
            Ok(None) => {
                self.inner.objects.delete_quietly([path]).await;
                Err(StoreError::NotFound)
            }
            Err(error) => {
                self.inner.objects.delete_quietly([path]).await;
                Err(error)
            }
        }
    }

    /// Uploads a converted body as a new part of dataset `id`, unless it
    /// already would not fit the tenant's storage quota: refusing before
    /// the upload spares writing an object only to delete it. The insert
    /// checks again, under a lock, and decides.
    async fn upload(
        &self,
        tenant: TenantId,
        id: DatasetId,
        converted: Converted,
    ) -> Result<(Path, NewPart), StoreError> {
        let part_id = PartId::new();
        let key = Objects::part_key(tenant, id, part_id);
        let path = self.inner.objects.resolve(&key);
        let too_big = |_| StoreError::Invariant("part size overflows i64".into());
        let part = NewPart {
            id: part_id,
            key,
            rows: i64::try_from(converted.rows).map_err(too_big)?,
            bytes: i64::try_from(converted.bytes).map_err(too_big)?,
        };
        catalog::precheck_quota(&self.inner.pool, tenant, self.default_quota, part.bytes).await?;
        self.inner
            .objects
            .upload(&path, converted.file, converted.bytes)
            .await?;
        Ok((path, part))
    }

    /// The tenant's datasets with ids below `before` (all if None), newest
    /// first, at most `limit` (capped at [`MAX_PAGE`]). The last id of a
    /// page is the `before` of the next.
    pub async fn list(
        &self,
        tenant: TenantId,
        before: Option<DatasetId>,
        limit: i64,
    ) -> Result<Vec<Dataset>, StoreError> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        catalog::list(&self.inner.pool, tenant, before, limit.min(MAX_PAGE)).await
    }

    /// A dataset with its parts in the order they were added, or None if the
    /// tenant has no such dataset.
    pub async fn get(
        &self,
        tenant: TenantId,
        id: DatasetId,
    ) -> Result<Option<(Dataset, Vec<Part>)>, StoreError> {
        Ok(catalog::get(&self.inner.pool, tenant, id)
            .await?
            .map(|(dataset, parts)| (dataset, parts.into_iter().map(|p| p.part).collect())))
    }

    /// Deletes a dataset: the rows first (committed), then the objects; an
    /// object that cannot be deleted is logged and left. Returns false if the
    /// tenant has no such dataset.
    pub async fn delete(&self, tenant: TenantId, id: DatasetId) -> Result<bool, StoreError> {
        let Some(keys) = catalog::delete(&self.inner.pool, tenant, id).await? else {
            return Ok(false);
        };
        let objects = &self.inner.objects;
        // Collected first: a future holding the mapping closure across the
        // await would not be Send.
        let paths: Vec<Path> = keys.iter().map(|key| objects.resolve(key)).collect();
        objects.delete_quietly(paths).await;
        Ok(true)
    }

    /// What a worker reads: the schema and the committed parts in the order
    /// they were added, or None if the tenant has no such dataset.
    pub async fn committed_parts(
        &self,
        tenant: TenantId,
        id: DatasetId,
    ) -> Result<Option<(SchemaRef, Vec<PartLocation>)>, StoreError> {
        let Some((dataset, parts)) = catalog::get(&self.inner.pool, tenant, id).await? else {
            return Ok(None);
        };
        let objects = &self.inner.objects;
        let locations = parts
            .into_iter()
            .map(|stored| PartLocation {
                path: objects.resolve(&stored.key),
                rows: stored.part.rows,
                bytes: stored.part.bytes,
            })
            .collect();
        Ok(Some((dataset.schema, locations)))
    }

    /// The object store holding parts and results, to register with
    /// DataFusion under [`Store::object_store_url`].
    pub fn objects(&self) -> Arc<dyn ObjectStore> {
        self.inner.objects.store.clone()
    }

    /// The URL under which DataFusion registers [`Store::objects`]:
    /// `file://` for a local directory, `s3://bucket` for S3. A path `p` in
    /// the store is the table URL `<object_store_url>/<p>`.
    pub fn object_store_url(&self) -> ObjectStoreUrl {
        self.inner.objects.url.clone()
    }

    /// Where one attempt of a job writes its result:
    /// `<prefix>/tenants/<tenant>/results/<job>/attempt-<n>.parquet`. Each
    /// attempt has its own file, so an attempt that lost its lease but has
    /// not stopped yet can never overwrite the file of the attempt whose
    /// outcome the job records.
    pub fn result_path(&self, tenant: TenantId, job: JobId, attempt: i32) -> Path {
        self.inner.objects.result_path(tenant, job, attempt)
    }
}
