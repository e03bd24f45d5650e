//! The named analyses, built with the DataFrame API from resolved columns.
//!
//! User-supplied names never reach a SQL parser: a table name is looked up
//! among the registered inputs and a column name among its table's fields,
//! and both become identifiers ([`ident`]) taken literally, dots, quotes
//! and all.

mod aggregates;
mod correlation;
mod filters;
mod group_by;
mod histogram;
mod summary;
mod time_series;

use datafusion::{
    arrow::{
        compute::concat_batches,
        datatypes::{DataType, SchemaRef},
        record_batch::RecordBatch,
    },
    common::{ScalarValue, TableReference},
    dataframe::DataFrame,
    logical_expr::{Expr, ident},
    prelude::SessionContext,
};

use super::{EngineError, run::RunContext};
use crate::analysis::Analysis;

/// The result of `analysis`, as a DataFrame still to be executed. Some
/// analyses run a first pass to compute their shape (a histogram's range,
/// a summary's statistics), reporting progress as they go.
pub(crate) async fn build(run: &RunContext, analysis: &Analysis) -> Result<DataFrame, EngineError> {
    match analysis {
        Analysis::Sql { query } => super::sql::plan(run.ctx(), query, run.max_sql_bytes()).await,
        Analysis::Summary { table, columns } => {
            summary::build(run, table, columns.as_deref()).await
        }
        Analysis::GroupBy {
            table,
            keys,
            aggregates,
            filters,
            min_group_size,
        } => group_by::build(run.ctx(), table, keys, aggregates, filters, *min_group_size).await,
        Analysis::Histogram {
            table,
            column,
            bins,
            filters,
        } => histogram::build(run, table, column, *bins, filters).await,
        Analysis::Correlation {
            table,
            columns,
            filters,
        } => correlation::build(run, table, columns, filters).await,
        Analysis::TimeSeries {
            table,
            time_column,
            value_column,
            bucket,
            aggregate,
            filters,
            min_count,
        } => {
            time_series::build(
                run.ctx(),
                time_series::Spec {
                    table,
                    time_column,
                    value_column,
                    bucket,
                    aggregate: *aggregate,
                    filters,
                    min_count: *min_count,
                },
            )
            .await
        }
    }
}

/// A column of a table, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    /// The name as the user gave it (and as the table has it).
    pub(crate) name: String,
    /// An expression reading it.
    pub(crate) expr: Expr,
    /// Its type.
    pub(crate) data_type: DataType,
}

/// The input registered as `name`.
async fn table(ctx: &SessionContext, name: &str) -> Result<DataFrame, EngineError> {
    let reference = TableReference::bare(name);
    if !ctx.table_exist(reference.clone()).unwrap_or(false) {
        return Err(EngineError::UnknownTable(name.to_owned()));
    }
    Ok(ctx.table(reference).await?)
}

/// The column `name` of `df`, matched exactly.
fn column(df: &DataFrame, name: &str) -> Result<Column, EngineError> {
    let field = df
        .schema()
        .fields()
        .iter()
        .find(|field| field.name() == name)
        .ok_or_else(|| EngineError::UnknownColumn(name.to_owned()))?;
    Ok(Column {
        name: name.to_owned(),
        expr: ident(name),
        data_type: field.data_type().clone(),
    })
}

/// The columns `names` of `df`, which must be distinct.
fn columns(df: &DataFrame, names: &[String]) -> Result<Vec<Column>, EngineError> {
    let mut seen = std::collections::HashSet::new();
    names
        .iter()
        .map(|name| {
            if !seen.insert(name.as_str()) {
                return Err(EngineError::InvalidQuery(format!(
                    "column {name:?} is listed twice"
                )));
            }
            column(df, name)
        })
        .collect()
}

/// The one row of a global aggregate's result.
fn single_row(schema: SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, EngineError> {
    let batch = concat_batches(&schema, batches)?;
    if batch.num_rows() != 1 {
        return Err(EngineError::Execution(format!(
            "an aggregate without groups returned {} rows",
            batch.num_rows()
        )));
    }
    Ok(batch)
}

/// The value of column `name` of a one-row batch.
fn value(batch: &RecordBatch, name: &str) -> Result<ScalarValue, EngineError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| EngineError::Execution(format!("aggregate result lacks {name}")))?;
    Ok(ScalarValue::try_from_array(array, 0)?)
}

/// A numeric result value as f64 (None when null).
fn as_f64(value: &ScalarValue) -> Result<Option<f64>, EngineError> {
    if value.is_null() {
        return Ok(None);
    }
    match value.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(v) => Ok(v),
        other => Err(EngineError::Execution(format!(
            "expected a float, got {other:?}"
        ))),
    }
}

/// A count result value as i64 (0 when null).
fn as_i64(value: &ScalarValue) -> Result<i64, EngineError> {
    if value.is_null() {
        return Ok(0);
    }
    match value.cast_to(&DataType::Int64)? {
        ScalarValue::Int64(v) => Ok(v.unwrap_or(0)),
        other => Err(EngineError::Execution(format!(
            "expected an integer, got {other:?}"
        ))),
    }
}
