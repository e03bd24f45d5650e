//! The analysis job payload, as clients send it and the queue stores it
//! (JSON), and the summary a finished job reports.
//!
//! Column and table names here are data, never SQL: the engine resolves
//! them against the registered tables and builds expressions from them, so
//! a name like `a; DROP TABLE b` is just a column that does not exist.

use serde::{Deserialize, Serialize};

/// One analysis job: the datasets it reads and what to compute over them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisJob {
    /// The datasets the analysis may read, each under a table name.
    pub inputs: Vec<Input>,
    /// What to compute.
    pub analysis: Analysis,
}

/// A dataset made visible to the analysis under a table name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The name SQL and the named analyses use for the dataset. Used as is
    /// (case-sensitive); SQL folds unquoted identifiers to lower case, so a
    /// name with capitals must be double-quoted in SQL.
    pub table: String,
    /// The dataset's id in the store.
    pub dataset: uuid::Uuid,
}

/// What to compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Analysis {
    /// Read-only SQL over the inputs: exactly one query (`SELECT`, `WITH`,
    /// including `WITH RECURSIVE`, or `VALUES`).
    Sql {
        /// The query text.
        query: String,
    },
    /// Per-column summary, one output row per column: `column`,
    /// `data_type`, `count` (non-null values), `nulls`, `min` and `max` (as
    /// strings), `mean`, `stddev` (sample), `p25`, `p50`, `p75`
    /// (approximate, numeric columns only) and `distinct` (approximate).
    Summary {
        /// The table to summarize.
        table: String,
        /// The columns to summarize, in this order; all columns when absent.
        #[serde(default)]
        columns: Option<Vec<String>>,
    },
    /// Group-by aggregates, one output row per group, ordered by the keys.
    GroupBy {
        /// The table to group.
        table: String,
        /// The grouping columns (none: one group over all rows).
        #[serde(default)]
        keys: Vec<String>,
        /// The aggregates to compute per group.
        aggregates: Vec<Aggregate>,
        /// Row filters, all of which must hold.
        #[serde(default)]
        filters: Vec<Filter>,
        /// Groups with fewer rows keep their keys but every aggregate is
        /// null, so small groups cannot be singled out.
        #[serde(default)]
        min_group_size: Option<u64>,
    },
    /// Equal-width histogram of a numeric column between its minimum and
    /// maximum: rows `bin_start`, `bin_end`, `count`. Nulls are not counted.
    Histogram {
        /// The table to read.
        table: String,
        /// The numeric column to bin.
        column: String,
        /// How many bins, from 1 to 1000.
        bins: u32,
        /// Row filters, all of which must hold.
        #[serde(default)]
        filters: Vec<Filter>,
    },
    /// Pearson correlation matrix of numeric columns: rows `column_a`,
    /// `column_b`, `correlation`, every ordered pair including the diagonal.
    Correlation {
        /// The table to read.
        table: String,
        /// The numeric columns, at least two.
        columns: Vec<String>,
        /// Row filters, all of which must hold.
        #[serde(default)]
        filters: Vec<Filter>,
    },
    /// A time-bucketed series: rows `bucket`, `value`, ordered by bucket.
    TimeSeries {
        /// The table to read.
        table: String,
        /// The date or timestamp column to bucket.
        time_column: String,
        /// The column the aggregate reads.
        value_column: String,
        /// The bucket width: a count and a unit, e.g. `"1 day"`,
        /// `"15 minutes"`, `"1 week"`, `"1 month"`.
        bucket: String,
        /// The aggregate per bucket.
        aggregate: AggregateFunction,
        /// Row filters, all of which must hold.
        #[serde(default)]
        filters: Vec<Filter>,
        /// Buckets with fewer rows report a null value.
        #[serde(default)]
        min_count: Option<u64>,
    },
}

/// One aggregate of a group-by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The function.
    pub function: AggregateFunction,
    /// The column it reads; absent only for `count`, which then counts rows.
    #[serde(default)]
    pub column: Option<String>,
    /// The output column's name; by default `function` or
    /// `function_column` (e.g. `count`, `mean_price`).
    #[serde(default)]
    pub alias: Option<String>,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFunction {
    /// Rows, or non-null values of a column.
    Count,
    /// Sum of a numeric column.
    Sum,
    /// Arithmetic mean of a numeric column.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Sample standard deviation of a numeric column.
    Stddev,
    /// Exact number of distinct non-null values.
    CountDistinct,
}

impl AggregateFunction {
    /// The snake_case name, as in JSON and default aliases.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFunction::Count => "count",
            AggregateFunction::Sum => "sum",
            AggregateFunction::Mean => "mean",
            AggregateFunction::Min => "min",
            AggregateFunction::Max => "max",
            AggregateFunction::Stddev => "stddev",
            AggregateFunction::CountDistinct => "count_distinct",
        }
    }
}

/// A row filter: `column op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// The column compared.
    pub column: String,
    /// The comparison.
    pub op: FilterOp,
    /// A scalar (string, number, boolean), an array of scalars for `in`,
    /// ignored for `is_null` and `is_not_null`. Strings compare with date
    /// and timestamp columns as their text form (`"2024-01-31"`).
    #[serde(default)]
    pub value: serde_json::Value,
}

/// A comparison of a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Less than.
    Lt,
    /// Less than or equal.
    Le,
    /// Greater than.
    Gt,
    /// Greater than or equal.
    Ge,
    /// One of the values of an array.
    In,
    /// The column is null.
    IsNull,
    /// The column is not null.
    IsNotNull,
}

/// What a finished analysis reports (stored on the job as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultSummary {
    /// Rows in the result.
    pub rows: u64,
    /// Size of the result file in bytes.
    pub bytes: u64,
    /// The result's columns, in order.
    pub columns: Vec<ColumnSummary>,
    /// Where the result Parquet file is, in the object store.
    pub path: String,
}

/// One column of a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSummary {
    /// The column's name.
    pub name: String,
    /// Its Arrow data type, as Arrow prints it (`Int64`, `Utf8`, ...).
    pub data_type: String,
    /// Whether it may hold nulls.
    pub nullable: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_reads_from_the_documented_json() {
        let job: AnalysisJob = serde_json::from_value(serde_json::json!({
            "inputs": [{"table": "sales", "dataset": "0190c3a2-7f00-7000-8000-000000000001"}],
            "analysis": {
                "type": "group_by",
                "table": "sales",
                "keys": ["region"],
                "aggregates": [{"function": "mean", "column": "amount"}],
                "filters": [{"column": "amount", "op": "in", "value": [1, 2]}],
                "min_group_size": 5
            }
        }))
        .unwrap();
        let Analysis::GroupBy {
            aggregates,
            filters,
            min_group_size,
            ..
        } = &job.analysis
        else {
            panic!("not a group-by: {job:?}");
        };
        assert_eq!(aggregates[0].function, AggregateFunction::Mean);
        assert_eq!(filters[0].op, FilterOp::In);
        assert_eq!(*min_group_size, Some(5));
    }

    #[test]
    fn optional_fields_may_be_left_out() {
        let analysis: Analysis = serde_json::from_value(serde_json::json!({
            "type": "histogram", "table": "t", "column": "v", "bins": 10
        }))
        .unwrap();
        assert!(matches!(analysis, Analysis::Histogram { ref filters, .. } if filters.is_empty()));
    }
}
