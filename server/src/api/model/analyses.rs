//! The schemas of the analyses a job may run: the `analysis` of a
//! submitted job, one schema per `type`.

use poem_openapi::{Enum, Object, Union};

use super::Text;

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
