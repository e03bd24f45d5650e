//! Every statement on the `datasets` and `dataset_parts` tables.
//!
//! A part row is inserted only after its object is uploaded, in the same
//! transaction that locks its dataset's row, so readers only ever see parts
//! whose objects are complete, and a concurrent delete either sees the part
//! (and removes its object) or makes the insert fail.

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
) -> Result<(Dataset, Part), StoreError> {
    let schema_json = schema::to_json(schema)?;
    let mut tx = pool.begin().await?;
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
) -> Result<Option<Part>, StoreError> {
    let mut tx = pool.begin().await?;
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
