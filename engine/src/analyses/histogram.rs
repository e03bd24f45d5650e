//! The `Histogram` analysis: two passes, one for the range and one to
//! count rows per bin. Every bin is reported, empty ones with count 0.

use std::sync::Arc;

use datafusion::{
    arrow::{
        array::{Float64Array, Int64Array, RecordBatch},
        datatypes::{DataType, Field, Schema},
    },
    dataframe::DataFrame,
    functions_aggregate::expr_fn::{count, max, min},
    logical_expr::{Expr, cast, ident, lit, when},
};

use super::{as_f64, as_i64, column, filters, single_row, table, value};
use crate::{EngineError, analysis::Filter, run::RunContext};

/// Most bins a histogram may have.
pub(crate) const MAX_BINS: u32 = 1000;

/// Where the first pass (the range) ends in the progress fraction.
const RANGE_DONE: f32 = 0.5;

pub(super) async fn build(
    run: &RunContext,
    table_name: &str,
    column_name: &str,
    bins: u32,
    filters: &[Filter],
) -> Result<DataFrame, EngineError> {
    if !(1..=MAX_BINS).contains(&bins) {
        return Err(EngineError::InvalidQuery(format!(
            "a histogram has 1 to {MAX_BINS} bins, not {bins}"
        )));
    }
    let df = filters::apply(table(run.ctx(), table_name).await?, filters)?;
    let column = column(&df, column_name)?;
    if !column.data_type.is_numeric() {
        return Err(EngineError::InvalidQuery(format!(
            "a histogram needs a numeric column; {:?} is {}",
            column.name, column.data_type
        )));
    }
    let values = df.select(vec![cast(column.expr, DataType::Float64).alias("v")])?;
    let values = values.filter(ident("v").is_not_null())?;

    let range = values.clone().aggregate(
        vec![],
        vec![min(ident("v")).alias("lo"), max(ident("v")).alias("hi")],
    )?;
    let schema = Arc::clone(range.schema().inner());
    let row = single_row(schema, &run.collect(range, RANGE_DONE).await?)?;
    let (Some(lo), Some(hi)) = (as_f64(&value(&row, "lo")?)?, as_f64(&value(&row, "hi")?)?) else {
        // No values: no bins.
        return Ok(run.ctx().read_batch(bins_batch(&[], &[], &[])?)?);
    };

    // All values equal: one bin holding them.
    let bins = if hi > lo { bins } else { 1 };
    let width = (hi - lo) / f64::from(bins);
    let last = i64::from(bins) - 1;
    let bin: Expr = if bins == 1 {
        lit(0_i64)
    } else {
        // (v - lo) / width is never negative, so the cast's truncation is
        // floor; rounding can push the maximum one past the last bin.
        let index = cast((ident("v") - lit(lo)) / lit(width), DataType::Int64);
        when(index.clone().gt_eq(lit(last)), lit(last)).otherwise(index)?
    };
    let counts = values
        .select(vec![bin.alias("bin")])?
        .aggregate(vec![ident("bin")], vec![count(lit(1)).alias("n")])?;
    let mut per_bin = vec![0_i64; bins as usize];
    for batch in run.collect(counts, run.executing_end()).await? {
        for i in 0..batch.num_rows() {
            let bin = as_i64(&datafusion::common::ScalarValue::try_from_array(
                batch.column(0),
                i,
            )?)?;
            let n = as_i64(&datafusion::common::ScalarValue::try_from_array(
                batch.column(1),
                i,
            )?)?;
            if let Some(slot) = usize::try_from(bin).ok().and_then(|b| per_bin.get_mut(b)) {
                *slot += n;
            }
        }
    }

    let starts: Vec<f64> = (0..bins).map(|i| lo + width * f64::from(i)).collect();
    let ends: Vec<f64> = (0..bins)
        .map(|i| {
            if i + 1 == bins {
                hi
            } else {
                lo + width * f64::from(i + 1)
            }
        })
        .collect();
    Ok(run
        .ctx()
        .read_batch(bins_batch(&starts, &ends, &per_bin)?)?)
}

fn bins_batch(starts: &[f64], ends: &[f64], counts: &[i64]) -> Result<RecordBatch, EngineError> {
    let schema = Schema::new(vec![
        Field::new("bin_start", DataType::Float64, false),
        Field::new("bin_end", DataType::Float64, false),
        Field::new("count", DataType::Int64, false),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Float64Array::from(starts.to_vec())),
            Arc::new(Float64Array::from(ends.to_vec())),
            Arc::new(Int64Array::from(counts.to_vec())),
        ],
    )?)
}
