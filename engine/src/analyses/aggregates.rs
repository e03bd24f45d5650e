//! Aggregate functions of the named analyses, as expressions.

use datafusion::{
    functions_aggregate::expr_fn::{count, count_distinct, max, min, stddev, sum},
    logical_expr::{Expr, lit},
};

use super::Column;
// The run's own avg, which rounds decimal means like SQL's avg does; the
// built-in's `expr_fn::avg` would truncate them.
use crate::avg::avg;
use crate::{EngineError, analysis::AggregateFunction};

/// The aggregate `function` over `column`; rows when `column` is None
/// (only for count).
pub(crate) fn expr(
    function: AggregateFunction,
    column: Option<&Column>,
) -> Result<Expr, EngineError> {
    let Some(column) = column else {
        return match function {
            AggregateFunction::Count => Ok(count(lit(1))),
            other => Err(EngineError::InvalidQuery(format!(
                "{} needs a column",
                other.name()
            ))),
        };
    };
    let numeric = || {
        if column.data_type.is_numeric() {
            Ok(column.expr.clone())
        } else {
            Err(EngineError::InvalidQuery(format!(
                "{} needs a numeric column; {:?} is {}",
                function.name(),
                column.name,
                column.data_type
            )))
        }
    };
    Ok(match function {
        AggregateFunction::Count => count(column.expr.clone()),
        AggregateFunction::CountDistinct => count_distinct(column.expr.clone()),
        AggregateFunction::Min => min(column.expr.clone()),
        AggregateFunction::Max => max(column.expr.clone()),
        AggregateFunction::Sum => sum(numeric()?),
        AggregateFunction::Mean => avg(numeric()?),
        AggregateFunction::Stddev => stddev(numeric()?),
    })
}
