//! The analysis job payload, as clients send it and the queue stores it
//! (JSON), and the summary a finished job reports.
//!
//! Column and table names here are data, never SQL: the engine resolves
//! them against the registered tables and builds expressions from them, so
//! a name like `a; DROP TABLE b` is just a column that does not exist.
//!
//! [`PayloadFilter`] is the part of a payload that listing jobs matches on
//! (by dataset, by [`AnalysisType`]), declared next to the payload so the
//! two cannot drift apart.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize, de::IntoDeserializer};

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

impl Analysis {
    /// Which analysis this is, without its parameters.
    pub fn analysis_type(&self) -> AnalysisType {
        match self {
            Analysis::Sql { .. } => AnalysisType::Sql,
            Analysis::Summary { .. } => AnalysisType::Summary,
            Analysis::GroupBy { .. } => AnalysisType::GroupBy,
            Analysis::Histogram { .. } => AnalysisType::Histogram,
            Analysis::Correlation { .. } => AnalysisType::Correlation,
            Analysis::TimeSeries { .. } => AnalysisType::TimeSeries,
        }
    }

    /// The one input table a named analysis reads; `None` for SQL, which
    /// names its tables in the query.
    pub fn table(&self) -> Option<&str> {
        match self {
            Analysis::Sql { .. } => None,
            Analysis::Summary { table, .. }
            | Analysis::GroupBy { table, .. }
            | Analysis::Histogram { table, .. }
            | Analysis::Correlation { table, .. }
            | Analysis::TimeSeries { table, .. } => Some(table),
        }
    }
}

/// The kinds of [`Analysis`], without their parameters: the payload's
/// `type` tag, spelled the same in JSON (`sql`, `group_by`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisType {
    /// [`Analysis::Sql`].
    Sql,
    /// [`Analysis::Summary`].
    Summary,
    /// [`Analysis::GroupBy`].
    GroupBy,
    /// [`Analysis::Histogram`].
    Histogram,
    /// [`Analysis::Correlation`].
    Correlation,
    /// [`Analysis::TimeSeries`].
    TimeSeries,
}

impl AnalysisType {
    /// The snake_case name, as the payload's `type` tag spells it.
    pub fn name(self) -> &'static str {
        match self {
            AnalysisType::Sql => "sql",
            AnalysisType::Summary => "summary",
            AnalysisType::GroupBy => "group_by",
            AnalysisType::Histogram => "histogram",
            AnalysisType::Correlation => "correlation",
            AnalysisType::TimeSeries => "time_series",
        }
    }
}

impl fmt::Display for AnalysisType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the [`AnalysisType`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no analysis is called {0:?}")]
pub struct UnknownAnalysisType(pub String);

impl FromStr for AnalysisType {
    type Err = UnknownAnalysisType;

    /// Reads a name as the payload spells it (`group_by`), exactly.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        // The serde spelling is the payload's, so no second list of names
        // can fall behind the enum.
        let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            name.into_deserializer();
        AnalysisType::deserialize(de).map_err(|_| UnknownAnalysisType(name.to_owned()))
    }
}

/// What listed jobs' payloads must contain: the JSON it serializes to is
/// contained (PostgreSQL's `jsonb @>`) in the serialized [`AnalysisJob`] of
/// every job it matches. Each field mirrors the payload's layout: `inputs`
/// is an array of objects with a `dataset`, `analysis` an object with a
/// `type`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PayloadFilter {
    /// Datasets every matching job reads.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inputs: Vec<InputFilter>,
    /// The analysis a matching job runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    analysis: Option<AnalysisFilter>,
}

/// An [`Input`] as a filter names it: by dataset only, under any table
/// name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct InputFilter {
    dataset: uuid::Uuid,
}

/// An [`Analysis`] as a filter names it: by its `type` tag only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct AnalysisFilter {
    #[serde(rename = "type")]
    analysis_type: AnalysisType,
}

impl PayloadFilter {
    /// Only jobs that read `dataset` (as any of their inputs).
    pub fn reading(mut self, dataset: uuid::Uuid) -> Self {
        self.inputs.push(InputFilter { dataset });
        self
    }

    /// Only jobs whose analysis is of this type.
    pub fn of_type(mut self, analysis_type: AnalysisType) -> Self {
        self.analysis = Some(AnalysisFilter { analysis_type });
        self
    }

    /// Whether the filter matches every job (it names nothing).
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.analysis.is_none()
    }
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

    /// PostgreSQL's `jsonb @>`: whether `outer` contains `inner` (an object
    /// contains every key of `inner` with a value containing its value, an
    /// array contains each element of `inner` somewhere, a scalar only
    /// itself).
    fn contains(outer: &serde_json::Value, inner: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (outer, inner) {
            (Value::Object(outer), Value::Object(inner)) => inner
                .iter()
                .all(|(key, value)| outer.get(key).is_some_and(|o| contains(o, value))),
            (Value::Array(outer), Value::Array(inner)) => inner
                .iter()
                .all(|value| outer.iter().any(|o| contains(o, value))),
            (outer, inner) => outer == inner,
        }
    }

    /// One analysis of each type.
    fn one_of_each() -> Vec<Analysis> {
        let filters = vec![Filter {
            column: "amount".into(),
            op: FilterOp::Gt,
            value: serde_json::json!(0),
        }];
        vec![
            Analysis::Sql {
                query: "SELECT 1".into(),
            },
            Analysis::Summary {
                table: "t".into(),
                columns: None,
            },
            Analysis::GroupBy {
                table: "t".into(),
                keys: vec!["region".into()],
                aggregates: vec![Aggregate {
                    function: AggregateFunction::Count,
                    column: None,
                    alias: None,
                }],
                filters: filters.clone(),
                min_group_size: Some(5),
            },
            Analysis::Histogram {
                table: "t".into(),
                column: "amount".into(),
                bins: 10,
                filters: filters.clone(),
            },
            Analysis::Correlation {
                table: "t".into(),
                columns: vec!["a".into(), "b".into()],
                filters: filters.clone(),
            },
            Analysis::TimeSeries {
                table: "t".into(),
                time_column: "at".into(),
                value_column: "amount".into(),
                bucket: "1 day".into(),
                aggregate: AggregateFunction::Sum,
                filters,
                min_count: None,
            },
        ]
    }

    fn job(analysis: Analysis, datasets: &[uuid::Uuid]) -> serde_json::Value {
        let job = AnalysisJob {
            inputs: datasets
                .iter()
                .enumerate()
                .map(|(n, &dataset)| Input {
                    table: format!("t{n}"),
                    dataset,
                })
                .collect(),
            analysis,
        };
        serde_json::to_value(&job).unwrap()
    }

    fn filter(filter: &PayloadFilter) -> serde_json::Value {
        serde_json::to_value(filter).unwrap()
    }

    #[test]
    fn a_serialized_job_contains_what_a_filter_on_its_dataset_and_type_produces() {
        let read = uuid::Uuid::now_v7();
        let other = uuid::Uuid::now_v7();
        for analysis in one_of_each() {
            let analysis_type = analysis.analysis_type();
            let payload = job(analysis, &[other, read]);
            for matching in [
                PayloadFilter::default().reading(read),
                PayloadFilter::default().of_type(analysis_type),
                PayloadFilter::default()
                    .reading(read)
                    .of_type(analysis_type),
                PayloadFilter::default().reading(read).reading(other),
            ] {
                assert!(
                    contains(&payload, &filter(&matching)),
                    "{payload} does not contain {}",
                    filter(&matching)
                );
            }
        }
    }

    #[test]
    fn a_filter_on_another_dataset_or_type_does_not_match() {
        let read = uuid::Uuid::now_v7();
        let unread = uuid::Uuid::now_v7();
        let analyses = one_of_each();
        let types: Vec<AnalysisType> = analyses.iter().map(Analysis::analysis_type).collect();
        for analysis in analyses {
            let own = analysis.analysis_type();
            let payload = job(analysis, &[read]);
            let unread = PayloadFilter::default().reading(unread);
            assert!(!contains(&payload, &filter(&unread)), "{payload}");
            for &other in types.iter().filter(|&&t| t != own) {
                let other = PayloadFilter::default().reading(read).of_type(other);
                assert!(!contains(&payload, &filter(&other)), "{payload}");
            }
        }
    }

    #[test]
    fn a_filter_is_laid_out_as_the_payload_is() {
        let dataset = uuid::Uuid::now_v7();
        let both = PayloadFilter::default()
            .reading(dataset)
            .of_type(AnalysisType::TimeSeries);
        assert_eq!(
            filter(&both),
            serde_json::json!({
                "inputs": [{"dataset": dataset}],
                "analysis": {"type": "time_series"},
            })
        );
        let by_dataset = PayloadFilter::default().reading(dataset);
        assert_eq!(
            filter(&by_dataset),
            serde_json::json!({"inputs": [{"dataset": dataset}]})
        );
    }

    #[test]
    fn an_empty_filter_names_nothing() {
        assert!(PayloadFilter::default().is_empty());
        assert!(
            !PayloadFilter::default()
                .of_type(AnalysisType::Sql)
                .is_empty()
        );
        assert_eq!(filter(&PayloadFilter::default()), serde_json::json!({}));
    }

    #[test]
    fn an_analysis_type_is_named_as_the_payload_tags_it() {
        for analysis in one_of_each() {
            let analysis_type = analysis.analysis_type();
            let tag = serde_json::to_value(&analysis).unwrap()["type"].clone();
            assert_eq!(tag, analysis_type.name());
            assert_eq!(analysis_type.name().parse(), Ok(analysis_type));
        }
        assert_eq!(
            "GroupBy".parse::<AnalysisType>(),
            Err(UnknownAnalysisType("GroupBy".into()))
        );
    }

    #[test]
    fn a_named_analysis_reads_its_table_and_sql_names_none() {
        for analysis in one_of_each() {
            let expected = (analysis.analysis_type() != AnalysisType::Sql).then_some("t");
            assert_eq!(analysis.table(), expected);
        }
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
