//! The API's schemas. Every one is named in the spec; request bodies reject
//! unknown fields.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use poem_openapi::{
    Enum, Object, Union,
    registry::{MetaSchemaRef, Registry},
    types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;
use uuid::Uuid;

/// `T`, rejecting fields that `T` does not have. For types whose derive
/// cannot: the variants of [`Analysis`] receive its `type` field, so they
/// cannot deny unknown fields themselves. In the spec it is `T` exactly.
///
/// A field is known when `T` writes it back: parsed and serialized again,
/// the value has every field `T` has (its optional fields must therefore
/// serialize as `null`, not be skipped) and none that it ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct Strict<T>(pub T);

impl<T: Type> Type for Strict<T> {
    const IS_REQUIRED: bool = T::IS_REQUIRED;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_raw_value()
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        self.0.raw_element_iter()
    }
}

impl<T: ParseFromJSON + ToJSON> ParseFromJSON for Strict<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        let given: Vec<String> = match &value {
            Some(Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let parsed = T::parse_from_json(value).map_err(ParseError::propagate)?;
        if let Some(Value::Object(known)) = parsed.to_json()
            && let Some(unknown) = given.iter().find(|f| !known.contains_key(*f))
        {
            return Err(ParseError::custom(format!("unknown field `{unknown}`.")));
        }
        Ok(Strict(parsed))
    }
}

impl<T: ToJSON> ToJSON for Strict<T> {
    fn to_json(&self) -> Option<Value> {
        self.0.to_json()
    }
}

/// A JSON string, and only a string. poem-openapi's `String` also takes a
/// number or a boolean and turns it into text, so `"query": 1` would reach
/// the SQL check as `1` and be refused for the wrong reason; request fields
/// use this instead and answer 400 naming the field. In the spec it is
/// `string`, exactly like `String`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl Type for Text {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        String::name()
    }

    fn schema_ref() -> MetaSchemaRef {
        String::schema_ref()
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for Text {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => Ok(Text(text)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ToJSON for Text {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

impl std::ops::Deref for Text {
    type Target = String;

    fn deref(&self) -> &String {
        &self.0
    }
}

impl From<Text> for String {
    fn from(text: Text) -> String {
        text.0
    }
}

/// A column of a dataset or a result.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its Arrow data type, e.g. `Int64`, `Utf8`, `Date32`.
    pub data_type: String,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

/// A dataset: named, typed data made of atomically added parts.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Dataset {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its columns.
    pub schema: Vec<Column>,
    /// Rows over all committed parts.
    pub rows: i64,
    /// Stored (Parquet) bytes over all committed parts.
    pub bytes: i64,
    /// Committed parts.
    pub parts: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When a part was last added.
    pub updated_at: DateTime<Utc>,
}

/// One atomically added batch of a dataset's rows.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Part {
    /// Its id.
    pub id: Uuid,
    /// Its rows.
    pub rows: i64,
    /// Its stored bytes.
    pub bytes: i64,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
}

/// A dataset with its parts.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct DatasetDetail {
    /// The dataset.
    pub dataset: Dataset,
    /// Its committed parts, oldest first.
    pub parts: Vec<Part>,
}

/// A created dataset and its first part.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct DatasetCreated {
    /// The dataset.
    pub dataset: Dataset,
    /// The part its upload became.
    pub part: Part,
}

/// A page of datasets, newest first.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct DatasetPage {
    /// The datasets.
    pub items: Vec<Dataset>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

/// How an upload's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum UploadFormat {
    /// Comma- (or `delimiter`-) separated values.
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// An Apache Parquet file.
    Parquet,
}

/// An input of a job: a dataset under the table name the analysis uses.
#[derive(Debug, Clone, PartialEq, Object, serde::Serialize, serde::Deserialize)]
#[oai(deny_unknown_fields)]
pub struct JobInput {
    /// The table name (SQL identifier) the dataset is known by in this job.
    pub table: Text,
    /// The dataset.
    pub dataset: Uuid,
}

/// Read-only SQL over the job's inputs.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct SqlAnalysis {
    /// One SELECT (or WITH … SELECT) statement.
    pub query: Text,
}

/// Per-column summary statistics.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct SummaryAnalysis {
    /// The input table.
    pub table: Text,
    /// The columns to summarise (all when absent).
    pub columns: Option<Vec<Text>>,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum AggregateFunction {
    /// Number of non-null values (of rows, without a column).
    Count,
    /// Sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sample standard deviation.
    Stddev,
    /// Number of distinct values.
    CountDistinct,
}

/// One aggregate of a group-by.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(deny_unknown_fields)]
pub struct Aggregate {
    /// The function.
    pub function: AggregateFunction,
    /// The column (may be absent for `count`).
    pub column: Option<Text>,
    /// The output column's name.
    pub alias: Option<Text>,
}

/// A comparison operator of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum FilterOp {
    /// =
    Eq,
    /// <>
    Ne,
    /// <
    Lt,
    /// <=
    Le,
    /// >
    Gt,
    /// >=
    Ge,
    /// Equal to one of an array of values.
    In,
    /// Is null (no value).
    IsNull,
    /// Is not null (no value).
    IsNotNull,
}

/// A row filter applied before aggregating.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(deny_unknown_fields)]
pub struct Filter {
    /// The column.
    pub column: Text,
    /// The comparison.
    pub op: FilterOp,
    /// A scalar, or an array for `in`; absent for the null tests.
    pub value: Option<serde_json::Value>,
}

/// Aggregates per group, with a minimum group size.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct GroupByAnalysis {
    /// The input table.
    pub table: Text,
    /// The grouping columns.
    pub keys: Vec<Text>,
    /// The aggregates.
    pub aggregates: Vec<Aggregate>,
    /// Filters applied first.
    #[oai(default)]
    pub filters: Vec<Filter>,
    /// Groups with fewer rows keep their keys but get null aggregates.
    pub min_group_size: Option<u64>,
}

/// An equal-width histogram of a numeric column.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct HistogramAnalysis {
    /// The input table.
    pub table: Text,
    /// The numeric column.
    pub column: Text,
    /// Number of bins, 1 to 1000.
    #[oai(validator(minimum(value = "1"), maximum(value = "1000")))]
    pub bins: u32,
    /// Filters applied first.
    #[oai(default)]
    pub filters: Vec<Filter>,
}

/// The Pearson correlation matrix of numeric columns.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct CorrelationAnalysis {
    /// The input table.
    pub table: Text,
    /// Two or more numeric columns.
    #[oai(validator(min_items = 2))]
    pub columns: Vec<Text>,
    /// Filters applied first.
    #[oai(default)]
    pub filters: Vec<Filter>,
}

/// One aggregate of a value per time bucket.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct TimeSeriesAnalysis {
    /// The input table.
    pub table: Text,
    /// The date or timestamp column.
    pub time_column: Text,
    /// The column aggregated per bucket.
    pub value_column: Text,
    /// Bucket width, e.g. `1 day`, `1 hour`, `15 minutes`, `1 week`.
    pub bucket: Text,
    /// The aggregate.
    pub aggregate: AggregateFunction,
    /// Filters applied first.
    #[oai(default)]
    pub filters: Vec<Filter>,
    /// Buckets with fewer rows get a null value.
    pub min_count: Option<u64>,
}

/// What a job computes; `type` says which analysis.
#[derive(Debug, Clone, PartialEq, Union)]
#[oai(discriminator_name = "type", one_of)]
pub enum Analysis {
    /// Read-only SQL.
    #[oai(mapping = "sql")]
    Sql(SqlAnalysis),
    /// Per-column summary.
    #[oai(mapping = "summary")]
    Summary(SummaryAnalysis),
    /// Group-by aggregates.
    #[oai(mapping = "group_by")]
    GroupBy(GroupByAnalysis),
    /// Histogram.
    #[oai(mapping = "histogram")]
    Histogram(HistogramAnalysis),
    /// Correlation matrix.
    #[oai(mapping = "correlation")]
    Correlation(CorrelationAnalysis),
    /// Time series.
    #[oai(mapping = "time_series")]
    TimeSeries(TimeSeriesAnalysis),
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

/// Running jobs of one worker.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct WorkerLoad {
    /// The worker.
    pub worker_id: String,
    /// Its running jobs.
    pub running: i64,
}

/// Live queue statistics: the numbers autoscaling runs on.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct QueueStats {
    /// Jobs claimable now.
    pub queued: i64,
    /// Jobs waiting for their start time (scheduled or backing off).
    pub waiting: i64,
    /// Jobs running.
    pub running: i64,
    /// queued + running: the work capacity must be found for.
    pub backlog: i64,
    /// Age of the oldest claimable job, in milliseconds.
    pub oldest_queued_ms: u64,
    /// Jobs that succeeded in the last minute.
    pub succeeded_last_minute: i64,
    /// Jobs that failed in the last minute.
    pub failed_last_minute: i64,
    /// Jobs cancelled in the last minute.
    pub cancelled_last_minute: i64,
    /// Running jobs per worker.
    pub workers: Vec<WorkerLoad>,
    /// The worker-scaling metric as last read on this replica; absent
    /// outside AWS, where the publisher is off.
    pub scaling: Option<ScalingReading>,
}

/// The numbers behind the worker-scaling metric.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ScalingReading {
    /// When they were read.
    pub read_at: DateTime<Utc>,
    /// Running worker tasks, per ECS.
    pub running_tasks: i32,
    /// The worker service's desired task count, per ECS.
    pub desired_tasks: i32,
    /// The published value: backlog / max(running tasks, 1), at least twice
    /// the target when no task runs and work waits.
    pub backlog_per_task: f64,
    /// The scaling policy's target (jobs per task).
    pub target: f64,
    /// The fewest worker tasks the service scales to.
    pub min_tasks: i32,
    /// The most worker tasks the service scales to.
    pub max_tasks: i32,
    /// Whether this replica published the reading (one replica does).
    pub published: bool,
}

/// A readiness report.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Readiness {
    /// `ok` when every dependency answers.
    pub status: String,
}
