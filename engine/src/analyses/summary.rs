//! The `Summary` analysis: per-column statistics in one pass over the
//! table (one global aggregate with a handful of aggregates per column),
//! turned into one output row per column.

use std::sync::Arc;

use datafusion::{
    arrow::{
        array::{Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array},
        datatypes::{DataType, Field, Schema},
    },
    common::ScalarValue,
    dataframe::DataFrame,
    functions_aggregate::expr_fn::{
        approx_distinct, approx_percentile_cont, avg, count, max, min, stddev,
    },
    logical_expr::{Expr, cast, lit},
};

use super::{Column, as_f64, as_i64, columns, single_row, table, value};
use crate::{EngineError, run::RunContext};

/// The quantiles reported, with their output names.
const QUANTILES: [(&str, f64); 3] = [("p25", 0.25), ("p50", 0.5), ("p75", 0.75)];

pub(super) async fn build(
    run: &RunContext,
    table_name: &str,
    names: Option<&[String]>,
) -> Result<DataFrame, EngineError> {
    let df = table(run.ctx(), table_name).await?;
    let names: Vec<String> = match names {
        Some(names) => names.to_vec(),
        None => df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
    };
    let columns = columns(&df, &names)?;

    let mut aggregates = vec![count(lit(1)).alias("rows")];
    for (i, column) in columns.iter().enumerate() {
        aggregates.extend(column_aggregates(i, column));
    }
    let stats = df.aggregate(vec![], aggregates)?;
    let schema = Arc::clone(stats.schema().inner());
    let row = single_row(schema, &run.collect(stats, run.executing_end()).await?)?;

    let rows = as_i64(&value(&row, "rows")?)?;
    let mut out = Output::default();
    for (i, column) in columns.iter().enumerate() {
        let get = |stat: &str| -> Result<Option<ScalarValue>, EngineError> {
            let name = stat_name(i, stat);
            match row.column_by_name(&name) {
                Some(_) => value(&row, &name).map(Some),
                None => Ok(None),
            }
        };
        let text = |stat: &str| -> Result<Option<String>, EngineError> {
            Ok(get(stat)?.filter(|v| !v.is_null()).map(|v| v.to_string()))
        };
        let float = |stat: &str| -> Result<Option<f64>, EngineError> {
            match get(stat)? {
                Some(v) => as_f64(&v),
                None => Ok(None),
            }
        };
        let count = match get("count")? {
            Some(v) => as_i64(&v)?,
            None => 0,
        };
        out.column.push(column.name.clone());
        out.data_type.push(column.data_type.to_string());
        out.count.push(count);
        out.nulls.push(rows - count);
        out.min.push(text("min")?);
        out.max.push(text("max")?);
        out.mean.push(float("mean")?);
        out.stddev.push(float("stddev")?);
        for (q, (name, _)) in QUANTILES.iter().enumerate() {
            out.quantiles[q].push(float(name)?);
        }
        out.distinct.push(match get("distinct")? {
            Some(v) if !v.is_null() => Some(u64::try_from(as_i64(&v)?).unwrap_or(0)),
            _ => None,
        });
    }
    Ok(run.ctx().read_batch(out.into_batch()?)?)
}

/// The aggregates of column `i`, each aliased [`stat_name`]; statistics
/// that make no sense for its type are left out (and reported null).
fn column_aggregates(i: usize, column: &Column) -> Vec<Expr> {
    let data_type = &column.data_type;
    let expr = || column.expr.clone();
    let mut aggregates = vec![count(expr()).alias(stat_name(i, "count"))];
    if orderable(data_type) {
        aggregates.push(cast(min(expr()), DataType::Utf8).alias(stat_name(i, "min")));
        aggregates.push(cast(max(expr()), DataType::Utf8).alias(stat_name(i, "max")));
    }
    if data_type.is_numeric() {
        let float = || cast(expr(), DataType::Float64);
        aggregates.push(avg(float()).alias(stat_name(i, "mean")));
        aggregates.push(stddev(float()).alias(stat_name(i, "stddev")));
        for (name, q) in QUANTILES {
            aggregates.push(
                approx_percentile_cont(float().sort(true, false), lit(q), None)
                    .alias(stat_name(i, name)),
            );
        }
    }
    if data_type.is_floating() {
        // approx_distinct does not take floats; their text is as distinct.
        aggregates
            .push(approx_distinct(cast(expr(), DataType::Utf8)).alias(stat_name(i, "distinct")));
    } else if distinct_countable(data_type) {
        aggregates.push(approx_distinct(expr()).alias(stat_name(i, "distinct")));
    }
    aggregates
}

fn stat_name(i: usize, stat: &str) -> String {
    format!("c{i}_{stat}")
}

fn orderable(data_type: &DataType) -> bool {
    data_type.is_numeric()
        || data_type.is_temporal()
        || matches!(
            data_type,
            DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
}

fn distinct_countable(data_type: &DataType) -> bool {
    data_type.is_integer()
        || matches!(
            data_type,
            DataType::Decimal32(..)
                | DataType::Decimal64(..)
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
                | DataType::Date32
                | DataType::Date64
                | DataType::Timestamp(..)
                | DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
        )
}

/// The output, column by column.
#[derive(Default)]
struct Output {
    column: Vec<String>,
    data_type: Vec<String>,
    count: Vec<i64>,
    nulls: Vec<i64>,
    min: Vec<Option<String>>,
    max: Vec<Option<String>>,
    mean: Vec<Option<f64>>,
    stddev: Vec<Option<f64>>,
    quantiles: [Vec<Option<f64>>; 3],
    distinct: Vec<Option<u64>>,
}

impl Output {
    fn into_batch(self) -> Result<RecordBatch, EngineError> {
        let [p25, p50, p75] = self.quantiles;
        let schema = Schema::new(vec![
            Field::new("column", DataType::Utf8, false),
            Field::new("data_type", DataType::Utf8, false),
            Field::new("count", DataType::Int64, false),
            Field::new("nulls", DataType::Int64, false),
            Field::new("min", DataType::Utf8, true),
            Field::new("max", DataType::Utf8, true),
            Field::new("mean", DataType::Float64, true),
            Field::new("stddev", DataType::Float64, true),
            Field::new("p25", DataType::Float64, true),
            Field::new("p50", DataType::Float64, true),
            Field::new("p75", DataType::Float64, true),
            Field::new("distinct", DataType::UInt64, true),
        ]);
        Ok(RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(self.column)),
                Arc::new(StringArray::from(self.data_type)),
                Arc::new(Int64Array::from(self.count)),
                Arc::new(Int64Array::from(self.nulls)),
                Arc::new(StringArray::from(self.min)),
                Arc::new(StringArray::from(self.max)),
                Arc::new(Float64Array::from(self.mean)),
                Arc::new(Float64Array::from(self.stddev)),
                Arc::new(Float64Array::from(p25)),
                Arc::new(Float64Array::from(p50)),
                Arc::new(Float64Array::from(p75)),
                Arc::new(UInt64Array::from(self.distinct)),
            ],
        )?)
    }
}
