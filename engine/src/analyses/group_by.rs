//! The `GroupBy` analysis.

use std::collections::HashSet;

use datafusion::{
    common::ScalarValue,
    dataframe::DataFrame,
    functions_aggregate::expr_fn::count,
    logical_expr::{Expr, ident, lit, when},
    prelude::SessionContext,
};

use super::{aggregates, column, columns, filters, table};
use crate::{
    EngineError,
    analysis::{Aggregate, Filter},
};

/// The hidden per-group row count that `min_group_size` is checked against.
const GROUP_ROWS: &str = "__crunch_group_rows";

/// Groups of `table` by `keys`, with `aggregates` per group, ordered by the
/// keys; aggregates are null in groups smaller than `min_group_size`.
pub(super) async fn build(
    ctx: &SessionContext,
    table_name: &str,
    keys: &[String],
    aggregates: &[Aggregate],
    filters: &[Filter],
    min_group_size: Option<u64>,
) -> Result<DataFrame, EngineError> {
    if keys.is_empty() && aggregates.is_empty() {
        return Err(EngineError::InvalidQuery(
            "a group-by needs keys or aggregates".into(),
        ));
    }
    let df = filters::apply(table(ctx, table_name).await?, filters)?;
    let keys = columns(&df, keys)?;

    let mut names: HashSet<String> = keys.iter().map(|k| k.name.clone()).collect();
    let mut outputs = Vec::with_capacity(aggregates.len());
    for aggregate in aggregates {
        let column = aggregate
            .column
            .as_deref()
            .map(|c| column(&df, c))
            .transpose()?;
        let name = match (&aggregate.alias, &column) {
            (Some(alias), _) => alias.clone(),
            (None, Some(column)) => format!("{}_{}", aggregate.function.name(), column.name),
            (None, None) => aggregate.function.name().to_owned(),
        };
        if name == GROUP_ROWS || !names.insert(name.clone()) {
            return Err(EngineError::InvalidQuery(format!(
                "two output columns are named {name:?}; give the aggregate an alias"
            )));
        }
        outputs.push((aggregates::expr(aggregate.function, column.as_ref())?, name));
    }

    let threshold = min_group_size.filter(|&n| n > 1);
    let mut aggregate_exprs: Vec<Expr> = outputs
        .iter()
        .map(|(expr, name)| expr.clone().alias(name))
        .collect();
    if threshold.is_some() {
        aggregate_exprs.push(count(lit(1)).alias(GROUP_ROWS));
    }
    let key_exprs: Vec<Expr> = keys.iter().map(|k| k.expr.clone()).collect();
    let mut df = df.aggregate(key_exprs.clone(), aggregate_exprs)?;

    if let Some(threshold) = threshold {
        let big_enough = ident(GROUP_ROWS).gt_eq(lit(threshold));
        let mut projection = key_exprs.clone();
        for (_, name) in &outputs {
            projection.push(
                when(big_enough.clone(), ident(name))
                    .otherwise(lit(ScalarValue::Null))?
                    .alias(name),
            );
        }
        df = df.select(projection)?;
    }
    let order = key_exprs
        .into_iter()
        .map(|key| key.sort(true, true))
        .collect::<Vec<_>>();
    if order.is_empty() {
        Ok(df)
    } else {
        Ok(df.sort(order)?)
    }
}
