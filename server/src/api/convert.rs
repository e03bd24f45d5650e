//! Between the API's schemas and the layers' types.
//!
//! A submitted job becomes the engine's [`AnalysisJob`] (the payload the
//! queue stores and the worker runs) and a job read back is built from it
//! again, so the payload has one set of types. Every conversion names each
//! field on both sides, without `..`: a field added to an analysis does not
//! compile until it is carried across here.

use std::{collections::HashSet, time::Duration};

use chrono::Utc;
use crunch_engine::analysis::{self, AnalysisJob, ColumnSummary, Input};
use crunch_queue::{QueueError, TenantId};
use crunch_worker::AnalysisKind;
use serde_json::Value;

use super::model::{self, Strict, Text};
use crate::problem::{ApiError, InputError};

fn texts(texts: Vec<Text>) -> Vec<String> {
    texts.into_iter().map(String::from).collect()
}

fn untexts(strings: Vec<String>) -> Vec<Text> {
    strings.into_iter().map(Text).collect()
}

fn filters(filters: Vec<model::Filter>) -> Vec<analysis::Filter> {
    filters.into_iter().map(analysis::Filter::from).collect()
}

fn unfilters(filters: Vec<analysis::Filter>) -> Vec<model::Filter> {
    filters.into_iter().map(model::Filter::from).collect()
}

impl From<model::AggregateFunction> for analysis::AggregateFunction {
    fn from(function: model::AggregateFunction) -> Self {
        match function {
            model::AggregateFunction::Count => analysis::AggregateFunction::Count,
            model::AggregateFunction::Sum => analysis::AggregateFunction::Sum,
            model::AggregateFunction::Mean => analysis::AggregateFunction::Mean,
            model::AggregateFunction::Min => analysis::AggregateFunction::Min,
            model::AggregateFunction::Max => analysis::AggregateFunction::Max,
            model::AggregateFunction::Stddev => analysis::AggregateFunction::Stddev,
            model::AggregateFunction::CountDistinct => analysis::AggregateFunction::CountDistinct,
        }
    }
}

impl From<analysis::AggregateFunction> for model::AggregateFunction {
    fn from(function: analysis::AggregateFunction) -> Self {
        match function {
            analysis::AggregateFunction::Count => model::AggregateFunction::Count,
            analysis::AggregateFunction::Sum => model::AggregateFunction::Sum,
            analysis::AggregateFunction::Mean => model::AggregateFunction::Mean,
            analysis::AggregateFunction::Min => model::AggregateFunction::Min,
            analysis::AggregateFunction::Max => model::AggregateFunction::Max,
            analysis::AggregateFunction::Stddev => model::AggregateFunction::Stddev,
            analysis::AggregateFunction::CountDistinct => model::AggregateFunction::CountDistinct,
        }
    }
}

impl From<model::FilterOp> for analysis::FilterOp {
    fn from(op: model::FilterOp) -> Self {
        match op {
            model::FilterOp::Eq => analysis::FilterOp::Eq,
            model::FilterOp::Ne => analysis::FilterOp::Ne,
            model::FilterOp::Lt => analysis::FilterOp::Lt,
            model::FilterOp::Le => analysis::FilterOp::Le,
            model::FilterOp::Gt => analysis::FilterOp::Gt,
            model::FilterOp::Ge => analysis::FilterOp::Ge,
            model::FilterOp::In => analysis::FilterOp::In,
            model::FilterOp::IsNull => analysis::FilterOp::IsNull,
            model::FilterOp::IsNotNull => analysis::FilterOp::IsNotNull,
        }
    }
}

impl From<analysis::FilterOp> for model::FilterOp {
    fn from(op: analysis::FilterOp) -> Self {
        match op {
            analysis::FilterOp::Eq => model::FilterOp::Eq,
            analysis::FilterOp::Ne => model::FilterOp::Ne,
            analysis::FilterOp::Lt => model::FilterOp::Lt,
            analysis::FilterOp::Le => model::FilterOp::Le,
            analysis::FilterOp::Gt => model::FilterOp::Gt,
            analysis::FilterOp::Ge => model::FilterOp::Ge,
            analysis::FilterOp::In => model::FilterOp::In,
            analysis::FilterOp::IsNull => model::FilterOp::IsNull,
            analysis::FilterOp::IsNotNull => model::FilterOp::IsNotNull,
        }
    }
}

impl From<model::Filter> for analysis::Filter {
    /// An absent value is the payload's `null` (what the null tests take).
    fn from(model::Filter { column, op, value }: model::Filter) -> Self {
        analysis::Filter {
            column: column.into(),
            op: op.into(),
            value: value.unwrap_or(Value::Null),
        }
    }
}

impl From<analysis::Filter> for model::Filter {
    fn from(analysis::Filter { column, op, value }: analysis::Filter) -> Self {
        model::Filter {
            column: Text(column),
            op: op.into(),
            value: (!value.is_null()).then_some(value),
        }
    }
}

impl From<model::Aggregate> for analysis::Aggregate {
    fn from(
        model::Aggregate {
            function,
            column,
            alias,
        }: model::Aggregate,
    ) -> Self {
        analysis::Aggregate {
            function: function.into(),
            column: column.map(String::from),
            alias: alias.map(String::from),
        }
    }
}

impl From<analysis::Aggregate> for model::Aggregate {
    fn from(
        analysis::Aggregate {
            function,
            column,
            alias,
        }: analysis::Aggregate,
    ) -> Self {
        model::Aggregate {
            function: function.into(),
            column: column.map(Text),
            alias: alias.map(Text),
        }
    }
}

impl From<model::Analysis> for analysis::Analysis {
    fn from(analysis: model::Analysis) -> Self {
        match analysis {
            model::Analysis::Sql(model::SqlAnalysis { query }) => analysis::Analysis::Sql {
                query: query.into(),
            },
            model::Analysis::Summary(model::SummaryAnalysis { table, columns }) => {
                analysis::Analysis::Summary {
                    table: table.into(),
                    columns: columns.map(texts),
                }
            }
            model::Analysis::GroupBy(model::GroupByAnalysis {
                table,
                keys,
                aggregates,
                filters: row_filters,
                min_group_size,
            }) => analysis::Analysis::GroupBy {
                table: table.into(),
                keys: texts(keys),
                aggregates: aggregates
                    .into_iter()
                    .map(analysis::Aggregate::from)
                    .collect(),
                filters: filters(row_filters),
                min_group_size,
            },
            model::Analysis::Histogram(model::HistogramAnalysis {
                table,
                column,
                bins,
                filters: row_filters,
            }) => analysis::Analysis::Histogram {
                table: table.into(),
                column: column.into(),
                bins,
                filters: filters(row_filters),
            },
            model::Analysis::Correlation(model::CorrelationAnalysis {
                table,
                columns,
                filters: row_filters,
            }) => analysis::Analysis::Correlation {
                table: table.into(),
                columns: texts(columns),
                filters: filters(row_filters),
            },
            model::Analysis::TimeSeries(model::TimeSeriesAnalysis {
                table,
                time_column,
                value_column,
                bucket,
                aggregate,
                filters: row_filters,
                min_count,
            }) => analysis::Analysis::TimeSeries {
                table: table.into(),
                time_column: time_column.into(),
                value_column: value_column.into(),
                bucket: bucket.into(),
                aggregate: aggregate.into(),
                filters: filters(row_filters),
                min_count,
            },
        }
    }
}

impl From<analysis::Analysis> for model::Analysis {
    fn from(analysis: analysis::Analysis) -> Self {
        match analysis {
            analysis::Analysis::Sql { query } => {
                model::Analysis::Sql(model::SqlAnalysis { query: Text(query) })
            }
            analysis::Analysis::Summary { table, columns } => {
                model::Analysis::Summary(model::SummaryAnalysis {
                    table: Text(table),
                    columns: columns.map(untexts),
                })
            }
            analysis::Analysis::GroupBy {
                table,
                keys,
                aggregates,
                filters,
                min_group_size,
            } => model::Analysis::GroupBy(model::GroupByAnalysis {
                table: Text(table),
                keys: untexts(keys),
                aggregates: aggregates.into_iter().map(model::Aggregate::from).collect(),
                filters: unfilters(filters),
                min_group_size,
            }),
            analysis::Analysis::Histogram {
                table,
                column,
                bins,
                filters,
            } => model::Analysis::Histogram(model::HistogramAnalysis {
                table: Text(table),
                column: Text(column),
                bins,
                filters: unfilters(filters),
            }),
            analysis::Analysis::Correlation {
                table,
                columns,
                filters,
            } => model::Analysis::Correlation(model::CorrelationAnalysis {
                table: Text(table),
                columns: untexts(columns),
                filters: unfilters(filters),
            }),
            analysis::Analysis::TimeSeries {
                table,
                time_column,
                value_column,
                bucket,
                aggregate,
                filters,
                min_count,
            } => model::Analysis::TimeSeries(model::TimeSeriesAnalysis {
                table: Text(table),
                time_column: Text(time_column),
                value_column: Text(value_column),
                bucket: Text(bucket),
                aggregate: aggregate.into(),
                filters: unfilters(filters),
                min_count,
            }),
        }
    }
}

impl From<model::JobInput> for Input {
    fn from(model::JobInput { table, dataset }: model::JobInput) -> Self {
        Input {
            table: table.into(),
            dataset,
        }
    }
}

impl From<Input> for model::JobInput {
    fn from(Input { table, dataset }: Input) -> Self {
        model::JobInput {
            table: Text(table),
            dataset,
        }
    }
}

impl From<ColumnSummary> for model::Column {
    fn from(
        ColumnSummary {
            name,
            data_type,
            nullable,
        }: ColumnSummary,
    ) -> Self {
        model::Column {
            name,
            data_type,
            nullable,
        }
    }
}

impl From<analysis::ResultSummary> for model::ResultSummary {
    /// The result file's path stays inside: clients fetch the result
    /// through the job.
    fn from(
        analysis::ResultSummary {
            rows,
            bytes,
            columns,
            path: _,
        }: analysis::ResultSummary,
    ) -> Self {
        model::ResultSummary {
            rows,
            bytes,
            columns: columns.into_iter().map(model::Column::from).collect(),
        }
    }
}

impl From<crunch_queue::JobState> for model::JobState {
    fn from(state: crunch_queue::JobState) -> Self {
        match state {
            crunch_queue::JobState::Queued => model::JobState::Queued,
            crunch_queue::JobState::Running => model::JobState::Running,
            crunch_queue::JobState::Succeeded => model::JobState::Succeeded,
            crunch_queue::JobState::Failed => model::JobState::Failed,
            crunch_queue::JobState::Cancelled => model::JobState::Cancelled,
        }
    }
}

impl From<model::JobState> for crunch_queue::JobState {
    fn from(state: model::JobState) -> Self {
        match state {
            model::JobState::Queued => crunch_queue::JobState::Queued,
            model::JobState::Running => crunch_queue::JobState::Running,
            model::JobState::Succeeded => crunch_queue::JobState::Succeeded,
            model::JobState::Failed => crunch_queue::JobState::Failed,
            model::JobState::Cancelled => crunch_queue::JobState::Cancelled,
        }
    }
}

/// A submitted job as the layers take it: the payload the worker runs,
/// and how the queue should run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// What to compute, over which datasets.
    pub payload: AnalysisJob,
    priority: i16,
    max_attempts: Option<i32>,
    timeout_seconds: Option<u32>,
    idempotency_key: Option<String>,
}

impl TryFrom<model::NewJob> for Submission {
    type Error = ApiError;

    /// Refuses (422) a job whose inputs name a table twice, or whose named
    /// analysis reads a table that is not one of its inputs.
    fn try_from(
        model::NewJob {
            inputs,
            analysis: Strict(analysis),
            priority,
            max_attempts,
            timeout_seconds,
            idempotency_key,
        }: model::NewJob,
    ) -> Result<Self, ApiError> {
        let payload = AnalysisJob {
            inputs: inputs.into_iter().map(Input::from).collect(),
            analysis: analysis.into(),
        };
        check_tables(&payload)?;
        Ok(Submission {
            payload,
            priority,
            max_attempts,
            timeout_seconds,
            idempotency_key: idempotency_key.map(String::from),
        })
    }
}

fn check_tables(job: &AnalysisJob) -> Result<(), ApiError> {
    let mut tables = HashSet::new();
    for input in &job.inputs {
        if !tables.insert(input.table.as_str()) {
            return Err(ApiError::Unprocessable {
                detail: format!("input table {:?} is named twice", input.table),
                errors: Vec::new(),
            });
        }
    }
    if let Some(table) = job.analysis.table()
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
    Ok(())
}

impl Submission {
    /// The queue job of kind [`AnalysisKind`] for `tenant`.
    pub fn queue_job(&self, tenant: TenantId) -> Result<crunch_queue::NewJob, QueueError> {
        let mut new = crunch_queue::NewJob::of::<AnalysisKind>(tenant, &self.payload)?
            .priority(self.priority);
        if let Some(n) = self.max_attempts {
            new = new.max_attempts(n);
        }
        if let Some(secs) = self.timeout_seconds {
            new = new.timeout(Duration::from_secs(u64::from(secs)));
        }
        if let Some(key) = &self.idempotency_key {
            new = new.idempotency_key(key.clone());
        }
        Ok(new)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl TryFrom<&crunch_queue::Job> for model::Job {
    type Error = QueueError;

    /// The API view of an analysis job. A payload or result that does not
    /// read as the analysis types breaks the queue's invariants (both were
    /// checked when written).
    fn try_from(j: &crunch_queue::Job) -> Result<Self, QueueError> {
        let now = Utc::now();
        let AnalysisJob { inputs, analysis } = j.payload_as::<AnalysisKind>()?;
        let result = if j.state == crunch_queue::JobState::Succeeded {
            j.result_as::<analysis::ResultSummary>()?
                .map(model::ResultSummary::from)
        } else {
            None
        };
        Ok(model::Job {
            id: j.id.0,
            analysis_type: analysis.analysis_type().name().to_owned(),
            state: j.state.into(),
            attempt: j.attempt,
            max_attempts: j.max_attempts,
            priority: j.priority,
            progress: j.progress,
            progress_message: j.progress_message.clone(),
            queue_wait_ms: millis(j.queue_wait(now)),
            run_time_ms: j.run_time(now).map(millis),
            error: j.error.clone(),
            result,
            cancel_requested: j.cancel_requested_at.is_some(),
            idempotency_key: j.idempotency_key.clone(),
            inputs: inputs.into_iter().map(model::JobInput::from).collect(),
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        })
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

impl From<crate::auth::Scope> for model::KeyScope {
    fn from(scope: crate::auth::Scope) -> Self {
        match scope {
            crate::auth::Scope::Read => model::KeyScope::Read,
            crate::auth::Scope::Write => model::KeyScope::Write,
            crate::auth::Scope::Admin => model::KeyScope::Admin,
        }
    }
}

impl From<model::KeyScope> for crate::auth::Scope {
    fn from(scope: model::KeyScope) -> Self {
        match scope {
            model::KeyScope::Read => crate::auth::Scope::Read,
            model::KeyScope::Write => crate::auth::Scope::Write,
            model::KeyScope::Admin => crate::auth::Scope::Admin,
        }
    }
}

/// A key as the API lists it.
pub fn api_key(key: &crate::auth::KeyInfo) -> model::ApiKey {
    model::ApiKey {
        prefix: key.prefix.clone(),
        name: key.name.clone(),
        scopes: key.scopes.iter().map(model::KeyScope::from).collect(),
        created_at: key.created_at,
        expires_at: key.expires_at,
        revoked_at: key.revoked_at,
        last_used_at: key.last_used_at,
    }
}
