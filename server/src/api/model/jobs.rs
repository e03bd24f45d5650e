//! The schemas of jobs: what a client submits, the job it reads back, and
//! pages of jobs and of a result's rows.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use uuid::Uuid;

use super::{Analysis, Column, Strict, Text};

/// An input of a job: a dataset under the table name the analysis uses.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(deny_unknown_fields)]
pub struct JobInput {
    /// The table name (SQL identifier) the dataset is known by in this job.
    pub table: Text,
    /// The dataset.
    pub dataset: Uuid,
}

/// A job to run.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(deny_unknown_fields)]
pub struct NewJob {
    /// The datasets the analysis reads, by table name.
    pub inputs: Vec<JobInput>,
    /// The analysis.
    pub analysis: Strict<Analysis>,
    /// Higher runs first; -100 to 100.
    #[oai(default, validator(minimum(value = "-100"), maximum(value = "100")))]
    pub priority: i16,
    /// Starts allowed, 1 to 100 (default 3).
    #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
    pub max_attempts: Option<i32>,
    /// Time limit per attempt in seconds, 1 to 86400 (default 1800).
    #[oai(validator(minimum(value = "1"), maximum(value = "86400")))]
    pub timeout_seconds: Option<u32>,
    /// Makes the submit idempotent: while a job with this key is queued,
    /// running or succeeded, submitting again returns that job.
    #[oai(validator(min_length = 1, max_length = 255))]
    pub idempotency_key: Option<Text>,
}

/// Several jobs submitted in one transaction: all or none are created.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(deny_unknown_fields)]
pub struct NewJobBatch {
    /// 1 to 1000 jobs.
    #[oai(validator(min_items = 1, max_items = 1000))]
    pub jobs: Vec<NewJob>,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// A worker runs it.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Finished without one.
    Failed,
    /// Cancelled.
    Cancelled,
}

/// A finished job's result: a Parquet file, fetchable as JSON, CSV or Parquet.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ResultSummary {
    /// Result rows.
    pub rows: u64,
    /// Size of the Parquet file.
    pub bytes: u64,
    /// Result columns.
    pub columns: Vec<Column>,
}

/// A job.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Job {
    /// Its id.
    pub id: Uuid,
    /// The analysis type (`sql`, `summary`, …).
    #[oai(rename = "type")]
    pub analysis_type: String,
    /// Where it is in its life.
    pub state: JobState,
    /// The current or last attempt, from 1; 0 before the first start.
    pub attempt: i32,
    /// Starts allowed.
    pub max_attempts: i32,
    /// Its priority.
    pub priority: i16,
    /// Fraction done, as the worker last reported it.
    #[oai(skip_serializing_if_is_none)]
    pub progress: Option<f32>,
    /// What the worker last said it was doing.
    #[oai(skip_serializing_if_is_none)]
    pub progress_message: Option<String>,
    /// Milliseconds from submission to the latest start (or to now while queued).
    pub queue_wait_ms: u64,
    /// Milliseconds the latest attempt ran (so far, while running).
    #[oai(skip_serializing_if_is_none)]
    pub run_time_ms: Option<u64>,
    /// The latest attempt's error.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// The result, once succeeded.
    #[oai(skip_serializing_if_is_none)]
    pub result: Option<ResultSummary>,
    /// Whether a cancel was requested while it ran.
    pub cancel_requested: bool,
    /// The idempotency key it was submitted with.
    #[oai(skip_serializing_if_is_none)]
    pub idempotency_key: Option<String>,
    /// The job's inputs.
    pub inputs: Vec<JobInput>,
    /// When it was submitted.
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    #[oai(skip_serializing_if_is_none)]
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished.
    #[oai(skip_serializing_if_is_none)]
    pub finished_at: Option<DateTime<Utc>>,
}

/// The jobs of a batch submit, in request order.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct JobBatch {
    /// The jobs; an idempotency key that matched returns the existing job.
    pub jobs: Vec<Job>,
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct JobPage {
    /// The jobs.
    pub items: Vec<Job>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// A page of result rows, as JSON.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ResultPage {
    /// The result's columns.
    pub columns: Vec<Column>,
    /// Rows as objects keyed by column name (see `columns` for their order).
    pub rows: Vec<std::collections::BTreeMap<String, serde_json::Value>>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}
