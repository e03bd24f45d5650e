//! Enqueueing jobs: one statement for one job or a whole batch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{
    Queue,
    error::QueueError,
    job::{Enqueued, Job, JobId, NewJob, TenantId},
    tenants::sql_limit,
};

/// The longest time limit a job may ask for.
const MAX_TIMEOUT_MS: i64 = 24 * 60 * 60 * 1000;
/// The most starts a job may ask for.
const MAX_ATTEMPTS_LIMIT: i32 = 100;

/// One validated job, ready for the insert's column arrays.
struct Row {
    id: Uuid,
    tenant_id: Uuid,
    kind: String,
    payload: serde_json::Value,
    priority: i16,
    run_at: Option<DateTime<Utc>>,
    max_attempts: i32,
    timeout_ms: i64,
    idempotency_key: Option<String>,
}

/// A validated batch: per input job, the row to send or the earlier input
/// whose key it repeats; and the sent rows' payloads, in order.
struct Batch {
    rows: Vec<Result<Row, usize>>,
    payloads: Vec<serde_json::Value>,
}

/// The sent rows' columns as the insert's bind arrays.
struct Arrays {
    ids: Vec<Uuid>,
    tenants: Vec<Uuid>,
    kinds: Vec<String>,
    priorities: Vec<i16>,
    run_ats: Vec<Option<DateTime<Utc>>>,
    max_attempts: Vec<i32>,
    timeouts: Vec<i64>,
    keys: Vec<Option<String>>,
}

impl Batch {
    fn arrays(&self) -> Arrays {
        let sent: Vec<&Row> = self.rows.iter().filter_map(|r| r.as_ref().ok()).collect();
        Arrays {
            ids: sent.iter().map(|r| r.id).collect(),
            tenants: sent.iter().map(|r| r.tenant_id).collect(),
            kinds: sent.iter().map(|r| r.kind.clone()).collect(),
            priorities: sent.iter().map(|r| r.priority).collect(),
            run_ats: sent.iter().map(|r| r.run_at).collect(),
            max_attempts: sent.iter().map(|r| r.max_attempts).collect(),
            timeouts: sent.iter().map(|r| r.timeout_ms).collect(),
            keys: sent.iter().map(|r| r.idempotency_key.clone()).collect(),
        }
    }
}

/// What [`Queue::enqueue_batch_ids`] answers for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnqueuedId {
    /// The job: the new one, or the existing one its idempotency key named.
    pub id: JobId,
    /// False when the idempotency key matched an existing job.
    pub created: bool,
}

/// The SQLSTATE jobs_admit raises for a full queue (migration 0006).
const QUEUE_FULL: &str = "CQ001";

/// What jobs_admit says in its DETAIL.
#[derive(serde::Deserialize)]
struct Full {
    tenant: Uuid,
    limit: i64,
}

/// A refusal by jobs_admit as [`QueueError::QueueFull`]; any other error
/// as it is.
fn refused(e: sqlx::Error) -> QueueError {
    let full = match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(QUEUE_FULL) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|pg| pg.detail())
            .and_then(|detail| serde_json::from_str::<Full>(detail).ok()),
        _ => None,
    };
    match full {
        Some(full) => QueueError::QueueFull {
            tenant: TenantId(full.tenant),
            limit: u32::try_from(full.limit).unwrap_or(u32::MAX),
            retry_after: crate::QUEUE_FULL_RETRY_AFTER,
        },
        None => QueueError::from(e),
    }
}

impl Queue {
    /// Enqueues one job.
    ///
    /// Takes any executor, so the job can commit in the same transaction as
    /// the data it depends on: it exists if and only if that transaction
    /// commits. When the job's idempotency key names a queued, running or
    /// succeeded job of the same tenant, that job is returned instead.
    pub async fn enqueue<'e, E: PgExecutor<'e>>(
        &self,
        executor: E,
        job: NewJob,
    ) -> Result<Enqueued, QueueError> {
        let mut enqueued = self.enqueue_batch(executor, vec![job]).await?;
        // Invariant: enqueue_batch returns exactly one result per input job.
        enqueued
            .pop()
            .ok_or(QueueError::Invariant("enqueue returned no job"))
    }

    /// Enqueues a batch of jobs in one statement, returning one result per
    /// input job, in input order.
    ///
    /// Every job is validated first; one invalid job fails the whole batch
    /// and nothing is stored. A duplicate idempotency key (against existing
    /// jobs or earlier in the same batch) never fails the batch: its result
    /// is the job the key names, with `created: false`.
    ///
    /// A tenant's `max_queued` (its own, else this queue's
    /// [`TenantDefaults`](crate::TenantDefaults)) refuses the whole batch
    /// with [`QueueError::QueueFull`] when its queued jobs plus the batch's
    /// new ones would pass it; jobs that resolve to an existing job by
    /// their key do not count, so retrying a submit is never refused. The
    /// limit is exact under concurrent submits at READ COMMITTED (the
    /// default): the statement takes the tenant's advisory lock, held until
    /// the enqueuing transaction ends, before it counts. Enqueueing inside
    /// a longer transaction holds other submits of that limited tenant for
    /// as long (not those of other tenants, nor claims). A refusal is an
    /// error of the statement, so a caller's transaction must be rolled
    /// back.
    pub async fn enqueue_batch<'e, E: PgExecutor<'e>>(
        &self,
        executor: E,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = self.prepare(jobs)?;
        let a = batch.arrays();

        // ON CONFLICT DO UPDATE (a no-op write) rather than DO NOTHING: it
        // returns the existing row even when that row was committed by a
        // concurrent transaction after this statement's snapshot was taken,
        // so a duplicate always resolves in this one statement. The run_at
        // default is truncated, not rounded, to the column's milliseconds so
        // that a job enqueued now is claimable (and announced) now. A row
        // this statement inserted has xmax 0; only an existing job's payload
        // is sent back, since the caller already has the new ones.
        // jobs_admit (migration 0006), a one-time filter evaluated before
        // any row is inserted, refuses the batch when a tenant would pass
        // its max_queued.
        let returned = sqlx::query_as!(
            Job,
            r#"
            INSERT INTO jobs AS j (id, tenant_id, kind, payload, priority, run_at,
                                   max_attempts, timeout_ms, idempotency_key)
            SELECT id, tenant_id, kind, payload, priority,
                   coalesce(run_at, date_trunc('milliseconds', now())),
                   max_attempts, timeout_ms, idempotency_key
            FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::int2[],
                        $6::timestamptz[], $7::int4[], $8::int8[], $9::text[])
                 AS t(id, tenant_id, kind, payload, priority, run_at,
                      max_attempts, timeout_ms, idempotency_key)
            WHERE (SELECT jobs_admit($2, $9, $10))
            ON CONFLICT (tenant_id, idempotency_key)
                WHERE idempotency_key IS NOT NULL AND state IN ('queued', 'running', 'succeeded')
                DO UPDATE SET idempotency_key = j.idempotency_key
            RETURNING j.id AS "id: JobId", j.tenant_id AS "tenant_id: TenantId", j.kind,
                      CASE WHEN j.xmax = 0 THEN 'null'::jsonb ELSE j.payload END AS "payload!",
                      j.state AS "state: _", j.priority, j.run_at, j.attempt,
                      j.max_attempts, j.timeout_ms, j.lease_expires_at, j.worker_id,
                      j.heartbeat_at, j.cancel_requested_at, j.progress, j.progress_message,
                      j.error, j.result, j.idempotency_key, j.created_at, j.started_at,
                      j.finished_at
            "#,
            &a.ids,
            &a.tenants,
            &a.kinds,
            &batch.payloads,
            &a.priorities,
            &a.run_ats as &[Option<DateTime<Utc>>],
            &a.max_attempts,
            &a.timeouts,
            &a.keys as &[Option<String>],
            sql_limit(self.defaults.max_queued),
        )
        .fetch_all(executor)
        .await
        .map_err(refused)?;

        let sent_index: HashMap<Uuid, usize> =
            a.ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut by_key: HashMap<(TenantId, String), Job> = HashMap::new();
        let mut by_id: HashMap<JobId, Job> = HashMap::new();
        for mut job in returned {
            match sent_index.get(&job.id.0) {
                Some(&i) => job.payload = std::mem::take(&mut batch.payloads[i]),
                None => {
                    if let Some(key) = &job.idempotency_key {
                        by_key.insert((job.tenant_id, key.clone()), job.clone());
                    }
                }
            }
            by_id.insert(job.id, job);
        }

        let mut out: Vec<Enqueued> = Vec::with_capacity(batch.rows.len());
        for row in &batch.rows {
            let enqueued = match row {
                Ok(row) => {
                    let job = match by_id.remove(&JobId(row.id)) {
                        Some(job) => Some(job),
                        None => row
                            .idempotency_key
                            .as_ref()
                            .and_then(|k| by_key.get(&(TenantId(row.tenant_id), k.clone())))
                            .cloned(),
                    };
                    let job = job.ok_or(QueueError::Invariant(
                        "an enqueued job was neither inserted nor found by its key",
                    ))?;
                    let created = job.id.0 == row.id;
                    Enqueued { job, created }
                }
                // Invariant: a duplicate always points at an earlier input.
                Err(first) => Enqueued {
                    job: out[*first].job.clone(),
                    created: false,
                },
            };
            out.push(enqueued);
        }
        Ok(out)
    }

    /// Enqueues a batch like [`Queue::enqueue_batch`] (the same checks, the
    /// same idempotency and max_queued semantics, one statement) but
    /// answers only each job's id and whether it was created: for bulk
    /// submitters that do not need the rows back, which the database then
    /// neither sends nor the client decodes. Only jobs whose idempotency
    /// key named an existing job come back from the statement, and a batch
    /// without keys is a plain insert (no conflict is possible, so it pays
    /// nothing for the idempotency check).
    pub async fn enqueue_batch_ids<'e, E: PgExecutor<'e>>(
        &self,
        executor: E,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<EnqueuedId>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let batch = self.prepare(jobs)?;
        let a = batch.arrays();
        if a.keys.iter().all(Option::is_none) {
            // No keys, so no conflicts: the plain insert, without the
            // speculative insertion that ON CONFLICT costs every row.
            // Every job is new.
            let done = sqlx::query!(
                r#"
                INSERT INTO jobs (id, tenant_id, kind, payload, priority, run_at,
                                  max_attempts, timeout_ms)
                SELECT id, tenant_id, kind, payload, priority,
                       coalesce(run_at, date_trunc('milliseconds', now())),
                       max_attempts, timeout_ms
                FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::int2[],
                            $6::timestamptz[], $7::int4[], $8::int8[])
                     AS t(id, tenant_id, kind, payload, priority, run_at,
                          max_attempts, timeout_ms)
                WHERE (SELECT jobs_admit($2, $9, $10))
                "#,
                &a.ids,
                &a.tenants,
                &a.kinds,
                &batch.payloads,
                &a.priorities,
                &a.run_ats as &[Option<DateTime<Utc>>],
                &a.max_attempts,
                &a.timeouts,
                &a.keys as &[Option<String>],
                sql_limit(self.defaults.max_queued),
            )
            .execute(executor)
            .await
            .map_err(refused)?;
            if done.rows_affected() != a.ids.len() as u64 {
                return Err(QueueError::Invariant(
                    "a batch without keys was not inserted whole",
                ));
            }
            return Ok(a
                .ids
                .iter()
                .map(|id| EnqueuedId {
                    id: JobId(*id),
                    created: true,
                })
                .collect());
        }
        // As in enqueue_batch; the CTE returns only the rows that already
        // existed (xmax is not 0 on a row the no-op update wrote).
        let existing = sqlx::query!(
            r#"
            WITH written AS (
                INSERT INTO jobs AS j (id, tenant_id, kind, payload, priority, run_at,
                                       max_attempts, timeout_ms, idempotency_key)
                SELECT id, tenant_id, kind, payload, priority,
                       coalesce(run_at, date_trunc('milliseconds', now())),
                       max_attempts, timeout_ms, idempotency_key
                FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::int2[],
                            $6::timestamptz[], $7::int4[], $8::int8[], $9::text[])
                     AS t(id, tenant_id, kind, payload, priority, run_at,
                          max_attempts, timeout_ms, idempotency_key)
                WHERE (SELECT jobs_admit($2, $9, $10))
                ON CONFLICT (tenant_id, idempotency_key)
                    WHERE idempotency_key IS NOT NULL AND state IN ('queued', 'running', 'succeeded')
                    DO UPDATE SET idempotency_key = j.idempotency_key
                RETURNING j.id, j.tenant_id, j.idempotency_key, j.xmax <> 0 AS existed
            )
            SELECT id AS "id: JobId", tenant_id AS "tenant_id: TenantId",
                   idempotency_key AS "idempotency_key!"
            FROM written WHERE existed
            "#,
            &a.ids,
            &a.tenants,
            &a.kinds,
            &batch.payloads,
            &a.priorities,
            &a.run_ats as &[Option<DateTime<Utc>>],
            &a.max_attempts,
            &a.timeouts,
            &a.keys as &[Option<String>],
            sql_limit(self.defaults.max_queued),
        )
        .fetch_all(executor)
        .await
        .map_err(refused)?;
        let by_key: HashMap<(TenantId, String), JobId> = existing
            .into_iter()
            .map(|r| ((r.tenant_id, r.idempotency_key), r.id))
            .collect();
        let mut out: Vec<EnqueuedId> = Vec::with_capacity(batch.rows.len());
        for row in &batch.rows {
            let enqueued = match row {
                Ok(row) => match row
                    .idempotency_key
                    .as_ref()
                    .and_then(|k| by_key.get(&(TenantId(row.tenant_id), k.clone())))
                {
                    Some(&id) => EnqueuedId { id, created: false },
                    None => EnqueuedId {
                        id: JobId(row.id),
                        created: true,
                    },
                },
                // Invariant: a duplicate always points at an earlier input.
                Err(first) => EnqueuedId {
                    id: out[*first].id,
                    created: false,
                },
            };
            out.push(enqueued);
        }
        Ok(out)
    }

    /// Validates a batch and sets aside later jobs that repeat an earlier
    /// job's key: the insert could not tell them apart, and they resolve
    /// to the same job.
    fn prepare(&self, jobs: Vec<NewJob>) -> Result<Batch, QueueError> {
        let mut first_with_key: HashMap<(TenantId, String), usize> = HashMap::new();
        let mut rows: Vec<Result<Row, usize>> = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.into_iter().enumerate() {
            let row = self.validate(job)?;
            if let Some(key) = &row.idempotency_key {
                let key = (TenantId(row.tenant_id), key.clone());
                if let Some(&first) = first_with_key.get(&key) {
                    rows.push(Err(first));
                    continue;
                }
                first_with_key.insert(key, index);
            }
            rows.push(Ok(row));
        }
        // Payloads move into the bind array and back into the results: a
        // new job's payload is not echoed by the database.
        let payloads = rows
            .iter_mut()
            .filter_map(|r| r.as_mut().ok())
            .map(|r| std::mem::take(&mut r.payload))
            .collect();
        Ok(Batch { rows, payloads })
    }

    /// Checks a job against its kind and the allowed ranges, and fills in
    /// the kind's defaults.
    fn validate(&self, job: NewJob) -> Result<Row, QueueError> {
        let kind = self.registry().get(&job.kind)?;
        kind.check_payload(&job.kind, &job.payload)?;
        if !(-100..=100).contains(&job.priority) {
            return Err(QueueError::InvalidOption(format!(
                "priority {} is outside -100..=100",
                job.priority
            )));
        }
        let max_attempts = job.max_attempts.unwrap_or(kind.max_attempts);
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(QueueError::InvalidOption(format!(
                "max_attempts {max_attempts} is outside 1..={MAX_ATTEMPTS_LIMIT}"
            )));
        }
        let timeout_ms = job
            .timeout
            .map(|t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(kind.timeout_ms);
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(QueueError::InvalidOption(format!(
                "timeout of {timeout_ms} ms is outside 1..={MAX_TIMEOUT_MS} ms"
            )));
        }
        if let Some(key) = &job.idempotency_key
            && (key.is_empty() || key.chars().count() > 255)
        {
            return Err(QueueError::InvalidOption(
                "idempotency key must be 1 to 255 characters".to_owned(),
            ));
        }
        Ok(Row {
            id: job.id.0,
            tenant_id: job.tenant_id.0,
            kind: job.kind,
            payload: job.payload,
            priority: job.priority,
            run_at: job.run_at,
            max_attempts,
            timeout_ms,
            idempotency_key: job.idempotency_key,
        })
    }
}
