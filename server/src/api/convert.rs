//! Between the API's schemas and the layers' types.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::model::{self, Analysis, Filter, JobInput, NewJob};
use crate::problem::{ApiError, InputError};

/// The queue kind of every analysis job.
pub const ANALYSIS_KIND: &str = crunch_worker::ANALYSIS_KIND;

fn filters(filters: &[Filter]) -> Value {
    Value::Array(
        filters
            .iter()
            .map(|f| {
                json!({
                    "column": f.column,
                    "op": enum_name(&f.op),
                    "value": f.value.clone().unwrap_or(Value::Null),
                })
            })
            .collect(),
    )
}

/// The snake_case name poem-openapi gives an enum value, which is also the
/// job payload's spelling.
fn enum_name<T: poem_openapi::types::ToJSON>(value: &T) -> Value {
    value.to_json().unwrap_or(Value::Null)
}

/// The analysis as the job payload spells it.
fn analysis(a: &Analysis) -> Value {
    match a {
        Analysis::Sql(s) => json!({"type": "sql", "query": s.query}),
        Analysis::Summary(s) => json!({"type": "summary", "table": s.table, "columns": s.columns}),
        Analysis::GroupBy(g) => json!({
            "type": "group_by",
            "table": g.table,
            "keys": g.keys,
            "aggregates": g.aggregates.iter().map(|a| json!({
                "function": enum_name(&a.function),
                "column": a.column,
                "alias": a.alias,
            })).collect::<Vec<_>>(),
            "filters": filters(&g.filters),
            "min_group_size": g.min_group_size,
        }),
        Analysis::Histogram(h) => json!({
            "type": "histogram", "table": h.table, "column": h.column, "bins": h.bins,
            "filters": filters(&h.filters),
        }),
        Analysis::Correlation(c) => json!({
            "type": "correlation", "table": c.table, "columns": c.columns,
            "filters": filters(&c.filters),
        }),
        Analysis::TimeSeries(t) => json!({
            "type": "time_series", "table": t.table, "time_column": t.time_column,
            "value_column": t.value_column, "bucket": t.bucket,
            "aggregate": enum_name(&t.aggregate), "filters": filters(&t.filters),
            "min_count": t.min_count,
        }),
    }
}

/// The one input table a named analysis reads (SQL names its own).
fn analysis_table(a: &Analysis) -> Option<&str> {
    match a {
        Analysis::Sql(_) => None,
        Analysis::Summary(s) => Some(&s.table),
        Analysis::GroupBy(g) => Some(&g.table),
        Analysis::Histogram(h) => Some(&h.table),
        Analysis::Correlation(c) => Some(&c.table),
        Analysis::TimeSeries(t) => Some(&t.table),
    }
}

/// A queue job for an API submission (validated by the queue against the
/// worker's payload type).
pub fn new_job(
    tenant: crunch_queue::TenantId,
    job: &NewJob,
) -> Result<crunch_queue::NewJob, ApiError> {
    let mut tables = std::collections::HashSet::new();
    for input in &job.inputs {
        if !tables.insert(input.table.as_str()) {
            return Err(ApiError::Unprocessable {
                detail: format!("input table {:?} is named twice", input.table),
                errors: Vec::new(),
            });
        }
    }
    if let Some(table) = analysis_table(&job.analysis.0)
        && !tables.contains(table)
    {
        return Err(ApiError::Unprocessable {
            detail: format!(
                "the analysis reads table {table:?}, which is not one of the job's inputs"
            ),
            errors: vec![InputError {
                line: None,
                column: Some("analysis.table".to_owned()),
                message: format!("unknown table {table:?}"),
            }],
        });
    }
    let payload = json!({
        "inputs": job.inputs.iter().map(|i| json!({"table": i.table, "dataset": i.dataset})).collect::<Vec<_>>(),
        "analysis": analysis(&job.analysis.0),
    });
    let mut new = crunch_queue::NewJob::raw(tenant, ANALYSIS_KIND, payload).priority(job.priority);
    if let Some(n) = job.max_attempts {
        new = new.max_attempts(n);
    }
    if let Some(secs) = job.timeout_seconds {
        new = new.timeout(Duration::from_secs(u64::from(secs)));
    }
    if let Some(key) = &job.idempotency_key {
        new = new.idempotency_key(key.clone());
    }
    Ok(new)
}

fn state(s: crunch_queue::JobState) -> model::JobState {
    match s {
        crunch_queue::JobState::Queued => model::JobState::Queued,
        crunch_queue::JobState::Running => model::JobState::Running,
        crunch_queue::JobState::Succeeded => model::JobState::Succeeded,
        crunch_queue::JobState::Failed => model::JobState::Failed,
        crunch_queue::JobState::Cancelled => model::JobState::Cancelled,
    }
}

/// The API state for a queue state.
pub fn queue_state(s: model::JobState) -> crunch_queue::JobState {
    match s {
        model::JobState::Queued => crunch_queue::JobState::Queued,
        model::JobState::Running => crunch_queue::JobState::Running,
        model::JobState::Succeeded => crunch_queue::JobState::Succeeded,
        model::JobState::Failed => crunch_queue::JobState::Failed,
        model::JobState::Cancelled => crunch_queue::JobState::Cancelled,
    }
}

/// Result columns as the worker records them.
#[derive(serde::Deserialize)]
struct StoredColumn {
    name: String,
    data_type: String,
    nullable: bool,
}

/// The result summary as the worker records it on the job.
#[derive(serde::Deserialize)]
struct StoredResult {
    rows: u64,
    bytes: u64,
    columns: Vec<StoredColumn>,
}

fn result(value: &Value) -> Option<model::ResultSummary> {
    let stored: StoredResult = serde_json::from_value(value.clone()).ok()?;
    Some(model::ResultSummary {
        rows: stored.rows,
        bytes: stored.bytes,
        columns: stored
            .columns
            .into_iter()
            .map(|c| model::Column {
                name: c.name,
                data_type: c.data_type,
                nullable: c.nullable,
            })
            .collect(),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The API view of a queue job.
pub fn job(j: &crunch_queue::Job) -> model::Job {
    let now = Utc::now();
    let inputs: Vec<JobInput> = j
        .payload
        .get("inputs")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let analysis_type = j
        .payload
        .pointer("/analysis/type")
        .and_then(Value::as_str)
        .unwrap_or(&j.kind)
        .to_owned();
    model::Job {
        id: j.id.0,
        analysis_type,
        state: state(j.state),
        attempt: j.attempt,
        max_attempts: j.max_attempts,
        priority: j.priority,
        progress: j.progress,
        progress_message: j.progress_message.clone(),
        queue_wait_ms: millis(j.queue_wait(now)),
        run_time_ms: j.run_time(now).map(millis),
        error: j.error.clone(),
        result: if j.state == crunch_queue::JobState::Succeeded {
            j.result.as_ref().and_then(result)
        } else {
            None
        },
        cancel_requested: j.cancel_requested_at.is_some(),
        idempotency_key: j.idempotency_key.clone(),
        inputs,
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
    }
}

/// The API view of a dataset.
pub fn dataset(d: &crunch_store::Dataset) -> model::Dataset {
    model::Dataset {
        id: d.id.0,
        name: d.name.clone(),
        schema: d
            .schema
            .fields()
            .iter()
            .map(|f| model::Column {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
                nullable: f.is_nullable(),
            })
            .collect(),
        rows: d.rows,
        bytes: d.bytes,
        parts: d.parts,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

/// The API view of a part.
pub fn part(p: &crunch_store::Part) -> model::Part {
    model::Part {
        id: p.id.0,
        rows: p.rows,
        bytes: p.bytes,
        created_at: p.created_at,
    }
}
