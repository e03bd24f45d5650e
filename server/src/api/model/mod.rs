//! The API's schemas. Every one is named in the spec; request bodies reject
//! unknown fields.
//!
//! One module per resource ([`datasets`], [`jobs`] with the [`analyses`] a
//! job runs, [`keys`], [`ops`]), over the request plumbing they share
//! ([`plumbing`]). Everything is re-exported here, so a schema is
//! `model::Name` wherever it is declared.

pub mod analyses;
pub mod datasets;
pub mod jobs;
pub mod keys;
pub mod ops;
pub mod plumbing;

pub use analyses::{
    Aggregate, AggregateFunction, Analysis, CorrelationAnalysis, Filter, FilterOp, GroupByAnalysis,
    HistogramAnalysis, SqlAnalysis, SummaryAnalysis, TimeSeriesAnalysis,
};
pub use datasets::{
    Column, Dataset, DatasetCreated, DatasetDetail, DatasetPage, Part, UploadFormat,
};
pub use jobs::{
    Job, JobBatch, JobInput, JobPage, JobState, NewJob, NewJobBatch, ResultPage, ResultSummary,
};
pub use keys::{ApiKey, ApiKeyList, CreatedApiKey, KeyScope, NewApiKey};
pub use ops::{QueueStats, Readiness, ScalingReading, WorkerLoad};
pub use plumbing::{Strict, Text};
