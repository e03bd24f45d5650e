//! Enqueueing jobs: one statement for one job or a whole batch.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::{
    Queue,
    error::QueueError,
    job::{Enqueued, Job, JobId, NewJob, TenantId},
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
    pub async fn enqueue_batch<'e, E: PgExecutor<'e>>(
        &self,
        executor: E,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        // Later jobs that repeat an earlier job's key are not sent: the
        // insert could not tell them apart, and they resolve to the same job.
        let mut first_with_key: HashMap<(TenantId, String), usize> = HashMap::new();
        // Ok: sent in the insert; Err(i): resolves to the job of input i.
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
        // new job's payload is not echoed by the database (see RETURNING).
        let mut payloads: Vec<serde_json::Value> = rows
            .iter_mut()
            .filter_map(|r| r.as_mut().ok())
            .map(|r| std::mem::take(&mut r.payload))
            .collect();
        let sent: Vec<&Row> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
        let ids: Vec<Uuid> = sent.iter().map(|r| r.id).collect();
        let tenants: Vec<Uuid> = sent.iter().map(|r| r.tenant_id).collect();
        let kinds: Vec<String> = sent.iter().map(|r| r.kind.clone()).collect();
        let priorities: Vec<i16> = sent.iter().map(|r| r.priority).collect();
        let run_ats: Vec<Option<DateTime<Utc>>> = sent.iter().map(|r| r.run_at).collect();
        let max_attempts: Vec<i32> = sent.iter().map(|r| r.max_attempts).collect();
        let timeouts: Vec<i64> = sent.iter().map(|r| r.timeout_ms).collect();
        let keys: Vec<Option<String>> = sent.iter().map(|r| r.idempotency_key.clone()).collect();

        // ON CONFLICT DO UPDATE (a no-op write) rather than DO NOTHING: it
        // returns the existing row even when that row was committed by a
        // concurrent transaction after this statement's snapshot was taken,
        // so a duplicate always resolves in this one statement. The run_at
        // default is truncated, not rounded, to the column's milliseconds so
        // that a job enqueued now is claimable (and announced) now. A row
        // this statement inserted has xmax 0; only an existing job's payload
        // is sent back, since the caller already has the new ones.
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
            &ids,
            &tenants,
            &kinds,
            &payloads,
            &priorities,
            &run_ats as &[Option<DateTime<Utc>>],
            &max_attempts,
            &timeouts,
            &keys as &[Option<String>],
        )
        .fetch_all(executor)
        .await?;

        let sent_index: HashMap<Uuid, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let mut by_key: HashMap<(TenantId, String), Job> = HashMap::new();
        let mut by_id: HashMap<JobId, Job> = HashMap::new();
        for mut job in returned {
            match sent_index.get(&job.id.0) {
                Some(&i) => job.payload = std::mem::take(&mut payloads[i]),
                None => {
                    if let Some(key) = &job.idempotency_key {
                        by_key.insert((job.tenant_id, key.clone()), job.clone());
                    }
                }
            }
            by_id.insert(job.id, job);
        }

        let mut out: Vec<Enqueued> = Vec::with_capacity(rows.len());
        for row in &rows {
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
