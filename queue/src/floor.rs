//! The queue's statements issued raw, without validation, idempotency or
//! result mapping: the floor that benchmarks compare the queue against.
//! Compiled only with the `floor` feature; it is not part of the API.

use sqlx::PgPool;
use uuid::Uuid;

use crate::{error::QueueError, job::TenantId};

/// Inserts `payloads.len()` jobs of `kind` with the enqueue statement's
/// core: one `INSERT … SELECT unnest(…)`, no conflict handling, nothing
/// returned.
pub async fn insert(
    pool: &PgPool,
    tenant: TenantId,
    kind: &str,
    payloads: &[serde_json::Value],
) -> Result<u64, QueueError> {
    let ids: Vec<Uuid> = payloads.iter().map(|_| Uuid::now_v7()).collect();
    let done = sqlx::query!(
        r#"
        INSERT INTO jobs (id, tenant_id, kind, payload, run_at, max_attempts, timeout_ms)
        SELECT id, $2, $3, payload, date_trunc('milliseconds', now()), 3, 1800000
        FROM unnest($1::uuid[], $4::jsonb[]) AS t(id, payload)
        "#,
        &ids,
        tenant.0,
        kind,
        payloads,
    )
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
