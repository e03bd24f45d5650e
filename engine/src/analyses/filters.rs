//! Row filters of the named analyses, as expressions over resolved columns.

use datafusion::{
    common::ScalarValue,
    dataframe::DataFrame,
    logical_expr::{Expr, lit},
};
use serde_json::Value;

use super::column;
use crate::{
    EngineError,
    analysis::{Filter, FilterOp},
};

/// Most values an `in` filter may list.
const MAX_IN_VALUES: usize = 10_000;

/// `df` with the rows that pass every filter.
pub(crate) fn apply(df: DataFrame, filters: &[Filter]) -> Result<DataFrame, EngineError> {
    let mut predicate: Option<Expr> = None;
    for filter in filters {
        let expr = expr(&df, filter)?;
        predicate = Some(match predicate {
            Some(all) => all.and(expr),
            None => expr,
        });
    }
    match predicate {
        Some(predicate) => Ok(df.filter(predicate)?),
        None => Ok(df),
    }
}

fn expr(df: &DataFrame, filter: &Filter) -> Result<Expr, EngineError> {
    let column = column(df, &filter.column)?.expr;
    let value = || scalar(&filter.column, &filter.value).map(lit);
    Ok(match filter.op {
        FilterOp::Eq => column.eq(value()?),
        FilterOp::Ne => column.not_eq(value()?),
        FilterOp::Lt => column.lt(value()?),
        FilterOp::Le => column.lt_eq(value()?),
        FilterOp::Gt => column.gt(value()?),
        FilterOp::Ge => column.gt_eq(value()?),
        FilterOp::IsNull => column.is_null(),
        FilterOp::IsNotNull => column.is_not_null(),
        FilterOp::In => {
            let Value::Array(values) = &filter.value else {
                return Err(EngineError::InvalidQuery(format!(
                    "the `in` filter on {:?} needs an array of values",
                    filter.column
                )));
            };
            if values.len() > MAX_IN_VALUES {
                return Err(EngineError::InvalidQuery(format!(
                    "the `in` filter on {:?} lists {} values; at most {MAX_IN_VALUES} are allowed",
                    filter.column,
                    values.len()
                )));
            }
            if values.is_empty() {
                // Nothing is in an empty list.
                return Ok(lit(false));
            }
            let list = values
                .iter()
                .map(|v| scalar(&filter.column, v).map(lit))
                .collect::<Result<Vec<_>, _>>()?;
            column.in_list(list, false)
        }
    })
}

/// A JSON scalar as a literal. DataFusion coerces it to the column's type
/// when planning (an integer against a float column, a string against a
/// date column), and reports a planning error when it cannot.
fn scalar(column: &str, value: &Value) -> Result<ScalarValue, EngineError> {
    match value {
        Value::Bool(b) => Ok(ScalarValue::Boolean(Some(*b))),
        Value::String(s) => Ok(ScalarValue::Utf8(Some(s.clone()))),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(ScalarValue::Int64(Some(i)))
            } else if let Some(u) = n.as_u64() {
                Ok(ScalarValue::UInt64(Some(u)))
            } else {
                Ok(ScalarValue::Float64(n.as_f64()))
            }
        }
        Value::Null => Err(EngineError::InvalidQuery(format!(
            "the filter on {column:?} compares with null; use is_null or is_not_null"
        ))),
        Value::Array(_) | Value::Object(_) => Err(EngineError::InvalidQuery(format!(
            "the filter on {column:?} needs a string, number or boolean value"
        ))),
    }
}
