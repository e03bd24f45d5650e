//! Every statement on the `datasets` and `dataset_parts` tables.
//!
//! A part row is inserted only after its object is uploaded, in the same
//! transaction that locks its dataset's row, so readers only ever see parts
//! whose objects are complete, and a concurrent delete either sees the part
//! (and removes its object) or makes the insert fail. That transaction also
//! checks the tenant's storage quota under a lock of the tenant's row
//! (`check_quota`). Every statement names the tenant, except the sweep's
//! lookup of part ids (`part_paths`), which compares whole paths.

use chrono::{DateTime, Utc};
use crunch_queue::TenantId;
use datafusion::arrow::datatypes::SchemaRef;
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    dataset::{Dataset, Part},
    error::StoreError,
    ids::{DatasetId, PartId},
    schema,
};

/// A part whose object is uploaded, ready to be recorded.
#[derive(Debug, Clone)]
pub(crate) struct NewPart {
    pub id: PartId,
    /// Path relative to the store's prefix.
    pub key: String,
    pub rows: i64,
    pub bytes: i64,
}

/// A stored part with its object's key.
#[derive(Debug, Clone)]
pub(crate) struct StoredPart {
    pub part: Part,
    pub key: String,
}

/// Records a new dataset and its first part, atomically.
pub(crate) async fn insert_dataset(
    pool: &PgPool,
    tenant: TenantId,
    id: DatasetId,
    name: &str,
    schema: &SchemaRef,
    part: &NewPart,
    default_quota: Option<u64>,
) -> Result<(Dataset, Part), StoreError> {
    let schema_json = schema::to_json(schema)?;
    let mut tx = pool.begin().await?;
    check_quota(&mut tx, tenant, default_quota, part.bytes).await?;
    let created = sqlx::query!(
        r#"
        INSERT INTO datasets (id, tenant_id, name, schema)
        VALUES ($1, $2, $3, $4)
        RETURNING created_at, updated_at
        "#,
        id as DatasetId,
        tenant as TenantId,
        name,
        schema_json,
    )
    .fetch_one(&mut *tx)
    .await?;
    let part_created = insert_part(&mut tx, tenant, id, part).await?;
    tx.commit().await?;
    let dataset = Dataset {
        id,
        tenant_id: tenant,
        name: name.to_string(),
        schema: schema.clone(),
        rows: part.rows,
        bytes: part.bytes,
        parts: 1,
        created_at: created.created_at,
        updated_at: created.updated_at,
    };
    Ok((dataset, new_part(id, part, part_created)))
}

/// Records an appended part, or returns None if the tenant has no such
/// dataset (any more).
pub(crate) async fn append_part(
    pool: &PgPool,
    tenant: TenantId,
    id: DatasetId,
    part: &NewPart,
    default_quota: Option<u64>,
) -> Result<Option<Part>, StoreError> {
    let mut tx = pool.begin().await?;
    // The tenant's row first, then the dataset's: every transaction that
    // takes both takes them in this order (deletes take only the dataset's).
    check_quota(&mut tx, tenant, default_quota, part.bytes).await?;
    // Locks the dataset's row until commit, so a concurrent delete waits for
    // this part and then removes it with the rest, or has already removed
    // the dataset and this finds nothing.
    let locked = sqlx::query_scalar!(
        r#"
        SELECT id AS "id: DatasetId" FROM datasets
        WHERE tenant_id = $1 AND id = $2
        FOR UPDATE
        "#,
        tenant as TenantId,
        id as DatasetId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if locked.is_none() {
        return Ok(None);
    }
    sqlx::query!(
        "UPDATE datasets SET updated_at = now() WHERE tenant_id = $1 AND id = $2",
        tenant as TenantId,
        id as DatasetId,
    )
    .execute(&mut *tx)
    .await?;
    let created = insert_part(&mut tx, tenant, id, part).await?;
    tx.commit().await?;
    Ok(Some(new_part(id, part, created)))
}

async fn insert_part(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    dataset: DatasetId,
    part: &NewPart,
) -> Result<DateTime<Utc>, StoreError> {
    Ok(sqlx::query_scalar!(
        r#"
        INSERT INTO dataset_parts (id, dataset_id, tenant_id, object_path, rows, bytes)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING created_at
        "#,
        part.id as PartId,
        dataset as DatasetId,
        tenant as TenantId,
        part.key,
        part.rows,
        part.bytes,
    )
    .fetch_one(tx)
    .await?)
}

/// Refuses a part of `upload` bytes that would take the tenant's stored
/// bytes past its quota (its own `storage_quota_bytes`, else
/// `default_quota`; neither means no limit), in the transaction that will
/// insert the part.
///
/// Locks the tenant's row (FOR NO KEY UPDATE, which foreign-key checks do
/// not wait for) until the transaction ends, so concurrent uploads of one
/// tenant check and insert one at a time: each sums the parts the previous
/// one committed, and two cannot both pass on the same headroom. The sum is
/// a statement of its own, after the lock: at READ COMMITTED it then reads
/// a snapshot taken once the previous holder has committed, whereas a sum
/// in the locking statement would read the snapshot from before the wait.
async fn check_quota(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    default_quota: Option<u64>,
    upload: i64,
) -> Result<(), StoreError> {
    let own = sqlx::query_scalar!(
        "SELECT storage_quota_bytes FROM tenants WHERE id = $1 FOR NO KEY UPDATE",
        tenant as TenantId,
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| StoreError::Invariant(format!("tenant {tenant} does not exist")))?;
    let Some(limit) = quota(own, default_quota) else {
        return Ok(());
    };
    let used = used_bytes(&mut *tx, tenant).await?;
    within_quota(limit, used, upload)
}

/// The quota that applies: the tenant's own, else the default.
fn quota(own: Option<i64>, default_quota: Option<u64>) -> Option<u64> {
    // The column's CHECK keeps it positive; a negative one would be no
    // room at all.
    own.map(|bytes| u64::try_from(bytes).unwrap_or(0))
        .or(default_quota)
}

/// Whether `upload` more bytes fit beside `used` under `limit`: exactly
/// reaching the limit does.
fn within_quota(limit: u64, used: i64, upload: i64) -> Result<(), StoreError> {
    // Both are sums and sizes of parts, which are positive by CHECK.
    let used = u64::try_from(used).unwrap_or(0);
    let upload = u64::try_from(upload).unwrap_or(0);
    if used.saturating_add(upload) > limit {
        return Err(StoreError::QuotaExceeded {
            limit,
            used,
            upload,
        });
    }
    Ok(())
}

/// The same check as [`check_quota`], without a lock or a transaction: a
/// cheap early refusal before a part's object is uploaded. Passing it
/// promises nothing; the check at insert decides. A tenant that does not
/// exist passes here and fails there.
pub(crate) async fn precheck_quota(
    pool: &PgPool,
    tenant: TenantId,
    default_quota: Option<u64>,
    upload: i64,
) -> Result<(), StoreError> {
    match quota_of(pool, tenant, default_quota).await? {
        Some(limit) => within_quota(limit, used_bytes(pool, tenant).await?, upload),
        None => Ok(()),
    }
}

/// The quota that applies to the tenant ([`quota`]), or None for no limit
/// (and for a tenant that does not exist).
pub(crate) async fn quota_of(
    pool: &PgPool,
    tenant: TenantId,
    default_quota: Option<u64>,
) -> Result<Option<u64>, StoreError> {
    let own = sqlx::query_scalar!(
        "SELECT storage_quota_bytes FROM tenants WHERE id = $1",
        tenant as TenantId,
    )
    .fetch_optional(pool)
    .await?;
    Ok(own.and_then(|own| quota(own, default_quota)))
}

/// The bytes the tenant stores: the sizes of its datasets' parts.
pub(crate) async fn used_bytes<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    tenant: TenantId,
) -> Result<i64, StoreError> {
    // Through the tenant's datasets: both tables' indexes lead there
    // (datasets by tenant, parts by dataset).
    Ok(sqlx::query_scalar!(
        r#"
        SELECT coalesce(sum(p.bytes), 0)::int8 AS "used!"
        FROM datasets d
        JOIN dataset_parts p ON p.dataset_id = d.id AND p.tenant_id = d.tenant_id
        WHERE d.tenant_id = $1
        "#,
        tenant as TenantId,
    )
    .fetch_one(executor)
    .await?)
}

fn new_part(dataset: DatasetId, part: &NewPart, created_at: DateTime<Utc>) -> Part {
    Part {
        id: part.id,
        dataset_id: dataset,
        rows: part.rows,
        bytes: part.bytes,
        created_at,
    }
}

/// The schema of a dataset, if the tenant has it.
pub(crate) async fn schema_of(
    pool: &PgPool,
    tenant: TenantId,
    id: DatasetId,
) -> Result<Option<SchemaRef>, StoreError> {
    let stored = sqlx::query_scalar!(
        "SELECT schema FROM datasets WHERE tenant_id = $1 AND id = $2",
        tenant as TenantId,
        id as DatasetId,
    )
    .fetch_optional(pool)
    .await?;
    stored.map(schema::from_json).transpose()
}

/// A page of the tenant's datasets, newest first, older than `before`.
pub(crate) async fn list(
    pool: &PgPool,
    tenant: TenantId,
    before: Option<DatasetId>,
    limit: i64,
) -> Result<Vec<Dataset>, StoreError> {
    let rows = sqlx::query!(
        r#"
        SELECT d.id AS "id: DatasetId", d.tenant_id AS "tenant_id: TenantId", d.name,
               d.schema, d.created_at, d.updated_at,
               t.rows AS "rows!", t.bytes AS "bytes!", t.parts AS "parts!"
        FROM datasets d
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(p.rows), 0)::int8 AS rows,
                   coalesce(sum(p.bytes), 0)::int8 AS bytes,
                   count(*) AS parts
            FROM dataset_parts p
            WHERE p.dataset_id = d.id
        ) t
        WHERE d.tenant_id = $1 AND ($2::uuid IS NULL OR d.id < $2)
        ORDER BY d.id DESC
        LIMIT $3
        "#,
        tenant as TenantId,
        before.map(|b| b.0) as Option<Uuid>,
        limit,
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(Dataset {
                id: row.id,
                tenant_id: row.tenant_id,
                name: row.name,
                schema: schema::from_json(row.schema)?,
                rows: row.rows,
                bytes: row.bytes,
                parts: row.parts,
                created_at: row.created_at,
                updated_at: row.updated_at,
            })
        })
        .collect()
}

/// A dataset with its parts, read in one statement (one snapshot, so the
/// totals and the parts agree).
pub(crate) async fn get(
    pool: &PgPool,
    tenant: TenantId,
    id: DatasetId,
) -> Result<Option<(Dataset, Vec<StoredPart>)>, StoreError> {
    let rows = sqlx::query!(
        r#"
        SELECT d.id AS "id: DatasetId", d.tenant_id AS "tenant_id: TenantId", d.name,
               d.schema, d.created_at, d.updated_at,
               p.id AS "part_id?: PartId", p.object_path AS "object_path?",
               p.rows AS "part_rows?", p.bytes AS "part_bytes?",
               p.created_at AS "part_created_at?"
        FROM datasets d
        LEFT JOIN dataset_parts p ON p.dataset_id = d.id AND p.tenant_id = d.tenant_id
        WHERE d.tenant_id = $1 AND d.id = $2
        ORDER BY p.id
        "#,
        tenant as TenantId,
        id as DatasetId,
    )
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let mut dataset = Dataset {
        id: first.id,
        tenant_id: first.tenant_id,
        name: first.name.clone(),
        schema: schema::from_json(first.schema.clone())?,
        rows: 0,
        bytes: 0,
        parts: 0,
        created_at: first.created_at,
        updated_at: first.updated_at,
    };
    let mut parts = Vec::with_capacity(rows.len());
    for row in rows {
        // A dataset without parts comes back as one row of nulls.
        let (Some(part_id), Some(key), Some(rows), Some(bytes), Some(created_at)) = (
            row.part_id,
            row.object_path,
            row.part_rows,
            row.part_bytes,
            row.part_created_at,
        ) else {
            continue;
        };
        dataset.rows += rows;
        dataset.bytes += bytes;
        dataset.parts += 1;
        parts.push(StoredPart {
            part: Part {
                id: part_id,
                dataset_id: id,
                rows,
                bytes,
                created_at,
            },
            key,
        });
    }
    Ok(Some((dataset, parts)))
}

/// Deletes a dataset and its parts' rows, returning the parts' keys, or None
/// if the tenant has no such dataset.
pub(crate) async fn delete(
    pool: &PgPool,
    tenant: TenantId,
    id: DatasetId,
) -> Result<Option<Vec<String>>, StoreError> {
    let mut tx = pool.begin().await?;
    // Lock first: an append committing meanwhile is then either waited for
    // (and its part deleted below) or finds the dataset gone.
    let locked = sqlx::query_scalar!(
        r#"
        SELECT id AS "id: DatasetId" FROM datasets
        WHERE tenant_id = $1 AND id = $2
        FOR UPDATE
        "#,
        tenant as TenantId,
        id as DatasetId,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if locked.is_none() {
        return Ok(None);
    }
    let keys = sqlx::query_scalar!(
        r#"
        DELETE FROM dataset_parts WHERE tenant_id = $1 AND dataset_id = $2
        RETURNING object_path
        "#,
        tenant as TenantId,
        id as DatasetId,
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "DELETE FROM datasets WHERE tenant_id = $1 AND id = $2",
        tenant as TenantId,
        id as DatasetId,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(keys))
}

/// The object path each of those of `ids` that exist records: what the
/// object store's sweep checks a part object against.
pub(crate) async fn part_paths(
    pool: &PgPool,
    ids: &[PartId],
) -> Result<Vec<(PartId, String)>, StoreError> {
    let ids: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    let rows = sqlx::query!(
        r#"SELECT id AS "id: PartId", object_path FROM dataset_parts WHERE id = ANY($1)"#,
        &ids,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.object_path)).collect())
}
