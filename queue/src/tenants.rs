//! Limits per tenant: how many of its jobs may run at once
//! (`max_running`, enforced by the claim), how many may wait
//! (`max_queued`, enforced by enqueue) and how many bytes it may store
//! (`storage_quota_bytes`, enforced by the store). Each is the tenant's
//! own when set, else the process's default ([`TenantDefaults`]), else
//! none.

use crate::{Queue, error::QueueError, job::TenantId};

/// The limits for tenants that have none of their own, from the process's
/// settings. `None` is no limit.
///
/// Every worker must run with the same `max_running`: a claim enforces the
/// default it is given, so a worker without one would not hold its tenants
/// to another worker's. The API server needs it too, for
/// [`QueueStats::runnable`](crate::QueueStats::runnable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantDefaults {
    /// Jobs of one tenant running at once.
    pub max_running: Option<u32>,
    /// Jobs of one tenant queued (ready or waiting for their `run_at`).
    pub max_queued: Option<u32>,
}

/// One tenant's own limits (`None`: the default applies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantLimits {
    /// Jobs running at once.
    pub max_running: Option<u32>,
    /// Jobs queued.
    pub max_queued: Option<u32>,
    /// Bytes stored (datasets' parts), checked by the store.
    pub storage_quota_bytes: Option<u64>,
}

/// A limit as its column holds it: positive, and within the column's type.
fn column<T: TryFrom<u64>>(name: &str, value: Option<u64>) -> Result<Option<T>, QueueError> {
    match value {
        None => Ok(None),
        Some(0) => Err(QueueError::InvalidOption(format!(
            "{name} must be at least 1 (leave it unset for the default)"
        ))),
        Some(v) => T::try_from(v)
            .map(Some)
            .map_err(|_| QueueError::InvalidOption(format!("{name} {v} is too large"))),
    }
}

/// A stored limit as the API gives it. The columns' CHECKs keep them
/// positive, so a value that does not convert cannot occur; it would read
/// as no limit of the tenant's own.
fn stored<T: TryFrom<i64>>(value: Option<impl Into<i64>>) -> Option<T> {
    value.and_then(|v| T::try_from(v.into()).ok())
}

impl Queue {
    /// The same queue with these defaults for tenants without limits of
    /// their own.
    pub fn with_tenant_defaults(mut self, defaults: TenantDefaults) -> Queue {
        self.defaults = defaults;
        self
    }

    /// The defaults this queue applies.
    pub fn tenant_defaults(&self) -> TenantDefaults {
        self.defaults
    }

    /// Sets the tenant's own limits (`None` clears one, so the default
    /// applies). Returns false when there is no such tenant.
    ///
    /// A new `max_running` holds for claims that start after this returns;
    /// jobs already running beyond it are not stopped, and the tenant
    /// starts nothing until it is under its limit again. A new
    /// `max_queued` refuses submits from then on and leaves queued jobs
    /// queued.
    pub async fn set_tenant_limits(
        &self,
        tenant: TenantId,
        limits: TenantLimits,
    ) -> Result<bool, QueueError> {
        let max_running: Option<i32> = column("max_running", limits.max_running.map(u64::from))?;
        let max_queued: Option<i32> = column("max_queued", limits.max_queued.map(u64::from))?;
        let storage: Option<i64> = column("storage_quota_bytes", limits.storage_quota_bytes)?;
        let done = sqlx::query!(
            r#"
            UPDATE tenants SET max_running = $2, max_queued = $3, storage_quota_bytes = $4
            WHERE id = $1
            "#,
            tenant.0,
            max_running,
            max_queued,
            storage,
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The tenant's own limits, or `None` when there is no such tenant.
    pub async fn tenant_limits(
        &self,
        tenant: TenantId,
    ) -> Result<Option<TenantLimits>, QueueError> {
        let row = sqlx::query!(
            r#"
            SELECT max_running, max_queued, storage_quota_bytes FROM tenants WHERE id = $1
            "#,
            tenant.0,
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| TenantLimits {
            max_running: stored(r.max_running),
            max_queued: stored(r.max_queued),
            storage_quota_bytes: stored(r.storage_quota_bytes),
        }))
    }
}

/// A default limit as the claim and enqueue functions take it.
pub(crate) fn sql_limit(limit: Option<u32>) -> Option<i32> {
    // A default past i32::MAX is no limit in practice.
    limit.map(|l| i32::try_from(l).unwrap_or(i32::MAX))
}
