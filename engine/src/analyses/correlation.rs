//! The `Correlation` analysis: Pearson correlation of every pair of
//! columns, computed in one pass (one `corr` aggregate per pair).

use std::sync::Arc;

use datafusion::{
    arrow::{
        array::{Float64Array, RecordBatch, StringArray},
        datatypes::{DataType, Field, Schema},
    },
    dataframe::DataFrame,
    functions_aggregate::expr_fn::corr,
    logical_expr::cast,
};

use super::{as_f64, columns, filters, single_row, table, value};
use crate::{EngineError, analysis::Filter, run::RunContext};

/// Most columns of a matrix (a pass computes n(n+1)/2 aggregates).
pub(crate) const MAX_COLUMNS: usize = 100;

pub(super) async fn build(
    run: &RunContext,
    table_name: &str,
    names: &[String],
    filters: &[Filter],
) -> Result<DataFrame, EngineError> {
    if names.len() < 2 || names.len() > MAX_COLUMNS {
        return Err(EngineError::InvalidQuery(format!(
            "a correlation needs 2 to {MAX_COLUMNS} columns, not {}",
            names.len()
        )));
    }
    let df = filters::apply(table(run.ctx(), table_name).await?, filters)?;
    let columns = columns(&df, names)?;
    if let Some(bad) = columns.iter().find(|c| !c.data_type.is_numeric()) {
        return Err(EngineError::InvalidQuery(format!(
            "a correlation needs numeric columns; {:?} is {}",
            bad.name, bad.data_type
        )));
    }
    let values: Vec<_> = columns
        .iter()
        .map(|c| cast(c.expr.clone(), DataType::Float64))
        .collect();
    let n = columns.len();
    let mut aggregates = Vec::with_capacity(n * (n + 1) / 2);
    for i in 0..n {
        for j in i..n {
            aggregates.push(corr(values[i].clone(), values[j].clone()).alias(pair(i, j)));
        }
    }
    let matrix = df.aggregate(vec![], aggregates)?;
    let schema = Arc::clone(matrix.schema().inner());
    let row = single_row(schema, &run.collect(matrix, run.executing_end()).await?)?;

    let mut a = Vec::with_capacity(n * n);
    let mut b = Vec::with_capacity(n * n);
    let mut r = Vec::with_capacity(n * n);
    for i in 0..n {
        for j in 0..n {
            a.push(columns[i].name.clone());
            b.push(columns[j].name.clone());
            r.push(as_f64(&value(&row, &pair(i.min(j), i.max(j)))?)?);
        }
    }
    let schema = Schema::new(vec![
        Field::new("column_a", DataType::Utf8, false),
        Field::new("column_b", DataType::Utf8, false),
        Field::new("correlation", DataType::Float64, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(a)),
            Arc::new(StringArray::from(b)),
            Arc::new(Float64Array::from(r)),
        ],
    )?;
    Ok(run.ctx().read_batch(batch)?)
}

fn pair(i: usize, j: usize) -> String {
    format!("r_{i}_{j}")
}
