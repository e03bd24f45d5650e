//! The `TimeSeries` analysis: rows bucketed by time, one aggregate per
//! bucket.

use datafusion::{
    arrow::datatypes::{DataType, IntervalMonthDayNano, TimeUnit},
    common::ScalarValue,
    dataframe::DataFrame,
    functions::expr_fn::{date_bin, date_trunc},
    functions_aggregate::expr_fn::count,
    logical_expr::{Expr, cast, ident, lit, when},
    prelude::SessionContext,
};

use super::{aggregates, column, filters, table};
use crate::{
    EngineError,
    analysis::{AggregateFunction, Filter},
};

/// The hidden per-bucket row count that `min_count` is checked against.
const BUCKET_ROWS: &str = "__crunch_bucket_rows";

/// Buckets start at midnight on a Monday (1970-01-05), so weeks run from
/// Monday and days from midnight.
const ORIGIN_NANOS: i64 = 4 * NANOS_PER_DAY;
const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// A time series request.
pub(super) struct Spec<'a> {
    pub(super) table: &'a str,
    pub(super) time_column: &'a str,
    pub(super) value_column: &'a str,
    pub(super) bucket: &'a str,
    pub(super) aggregate: AggregateFunction,
    pub(super) filters: &'a [Filter],
    pub(super) min_count: Option<u64>,
}

pub(super) async fn build(ctx: &SessionContext, spec: Spec<'_>) -> Result<DataFrame, EngineError> {
    let bucket = Bucket::parse(spec.bucket)?;
    let df = filters::apply(table(ctx, spec.table).await?, spec.filters)?;
    let time = column(&df, spec.time_column)?;
    let value = column(&df, spec.value_column)?;

    let timestamp = match &time.data_type {
        DataType::Timestamp(_, _) => time.expr.clone(),
        DataType::Date32 | DataType::Date64 => cast(
            time.expr.clone(),
            DataType::Timestamp(TimeUnit::Nanosecond, None),
        ),
        other => {
            return Err(EngineError::InvalidQuery(format!(
                "the time column {:?} is {other}, not a date or timestamp",
                time.name
            )));
        }
    };
    let timezone = match &time.data_type {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    let bucket_expr = match bucket {
        Bucket::Fixed { days, nanos } => date_bin(
            lit(ScalarValue::IntervalMonthDayNano(Some(
                IntervalMonthDayNano::new(0, days, nanos),
            ))),
            timestamp,
            lit(ScalarValue::TimestampNanosecond(
                Some(ORIGIN_NANOS),
                timezone,
            )),
        ),
        Bucket::Calendar(unit) => date_trunc(lit(unit), timestamp),
    };

    let threshold = spec.min_count.filter(|&n| n > 1);
    let mut aggregate_exprs = vec![aggregates::expr(spec.aggregate, Some(&value))?.alias("value")];
    if threshold.is_some() {
        aggregate_exprs.push(count(lit(1)).alias(BUCKET_ROWS));
    }
    let mut df = df
        .filter(time.expr.is_not_null())?
        .aggregate(vec![bucket_expr.alias("bucket")], aggregate_exprs)?;
    if let Some(threshold) = threshold {
        let value: Expr = when(ident(BUCKET_ROWS).gt_eq(lit(threshold)), ident("value"))
            .otherwise(lit(ScalarValue::Null))?
            .alias("value");
        df = df.select(vec![ident("bucket"), value])?;
    }
    Ok(df.sort(vec![ident("bucket").sort(true, true)])?)
}

/// A bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    /// A fixed width, binned from [`ORIGIN_NANOS`].
    Fixed { days: i32, nanos: i64 },
    /// A calendar unit of varying length (`date_trunc` precision).
    Calendar(&'static str),
}

impl Bucket {
    /// Parses `"<count> <unit>"` (`"1 day"`, `"15 minutes"`, `"week"`).
    fn parse(text: &str) -> Result<Self, EngineError> {
        let invalid = || {
            EngineError::InvalidQuery(format!(
                "bucket {text:?} is not a count and a unit such as \"1 day\", \"15 minutes\" \
                 or \"1 month\""
            ))
        };
        let mut words = text.split_whitespace();
        let (count, unit) = match (words.next(), words.next(), words.next()) {
            (Some(unit), None, None) => (1, unit),
            (Some(count), Some(unit), None) => (count.parse::<u32>().map_err(|_| invalid())?, unit),
            _ => return Err(invalid()),
        };
        if count == 0 {
            return Err(invalid());
        }
        let unit = unit.to_ascii_lowercase();
        let unit = unit
            .strip_suffix('s')
            .filter(|u| u.len() > 1)
            .unwrap_or(&unit);
        let second = 1_000_000_000_i64;
        let nanos = |per: i64| {
            i64::from(count)
                .checked_mul(per)
                .filter(|n| *n <= 366 * NANOS_PER_DAY)
                .map(|nanos| Bucket::Fixed { days: 0, nanos })
                .ok_or_else(invalid)
        };
        let days = |per: u32| {
            count
                .checked_mul(per)
                .filter(|d| *d <= 3660)
                .and_then(|d| i32::try_from(d).ok())
                .map(|days| Bucket::Fixed { days, nanos: 0 })
                .ok_or_else(invalid)
        };
        match unit {
            "second" | "sec" => nanos(second),
            "minute" | "min" => nanos(60 * second),
            "hour" => nanos(3600 * second),
            "day" => days(1),
            "week" => days(7),
            "month" | "quarter" | "year" if count == 1 => Ok(Bucket::Calendar(match unit {
                "month" => "month",
                "quarter" => "quarter",
                _ => "year",
            })),
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_parse_counts_and_units() {
        assert_eq!(
            Bucket::parse("1 day").unwrap(),
            Bucket::Fixed { days: 1, nanos: 0 }
        );
        assert_eq!(
            Bucket::parse("1 week").unwrap(),
            Bucket::Fixed { days: 7, nanos: 0 }
        );
        assert_eq!(
            Bucket::parse("15 minutes").unwrap(),
            Bucket::Fixed {
                days: 0,
                nanos: 15 * 60 * 1_000_000_000
            }
        );
        assert_eq!(
            Bucket::parse("hour").unwrap(),
            Bucket::Fixed {
                days: 0,
                nanos: 3600 * 1_000_000_000
            }
        );
        assert_eq!(Bucket::parse("1 Month").unwrap(), Bucket::Calendar("month"));
    }

    #[test]
    fn nonsense_buckets_are_rejected() {
        for text in [
            "",
            "0 days",
            "2 months",
            "1 fortnight",
            "day 1",
            "-1 day",
            "1 day extra",
        ] {
            assert!(Bucket::parse(text).is_err(), "{text:?}");
        }
    }
}
