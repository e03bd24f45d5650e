use std::sync::Arc;

use crunch_engine::analysis::{AggregateFunction, Analysis};
use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};

use crate::common::{Fixture, batch, close, f64s, i64s};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 2024-01-01T00:00:00Z: 19723 days after the epoch.
const JAN_1: i64 = 19_723 * DAY_MS;

#[tokio::test]
async fn a_daily_series_averages_each_day_and_nulls_days_below_the_minimum_count() {
    let mut fixture = Fixture::new();
    let times = vec![
        JAN_1 + HOUR_MS,
        JAN_1 + 5 * HOUR_MS,
        JAN_1 + 23 * HOUR_MS,
        JAN_1 + DAY_MS + 12 * HOUR_MS,
        JAN_1 + 2 * DAY_MS,
        JAN_1 + 2 * DAY_MS + 20 * HOUR_MS,
    ];
    fixture.table(
        "events",
        &[batch(vec![
            ("at", Arc::new(TimestampMillisecondArray::from(times))),
            (
                "value",
                Arc::new(Int64Array::from(vec![1, 2, 3, 5, 10, 20])),
            ),
        ])],
    );
    let out = fixture
        .ok(Analysis::TimeSeries {
            table: "events".into(),
            time_column: "at".into(),
            value_column: "value".into(),
            bucket: "1 day".into(),
            aggregate: AggregateFunction::Mean,
            filters: vec![],
            min_count: Some(2),
        })
        .await;

    assert_eq!(
        i64s(&out, "bucket"),
        vec![Some(JAN_1), Some(JAN_1 + DAY_MS), Some(JAN_1 + 2 * DAY_MS)]
    );
    let value = f64s(&out, "value");
    close(value[0], 2.0);
    assert_eq!(value[1], None);
    close(value[2], 15.0);
}

#[tokio::test]
async fn weekly_buckets_start_on_monday() {
    let mut fixture = Fixture::new();
    // 2024-01-01 is a Monday; the 7th a Sunday, the 8th a Monday.
    let times = vec![JAN_1, JAN_1 + 6 * DAY_MS, JAN_1 + 7 * DAY_MS];
    fixture.table(
        "events",
        &[batch(vec![
            ("at", Arc::new(TimestampMillisecondArray::from(times))),
            ("value", Arc::new(Int64Array::from(vec![1, 2, 4]))),
        ])],
    );
    let out = fixture
        .ok(Analysis::TimeSeries {
            table: "events".into(),
            time_column: "at".into(),
            value_column: "value".into(),
            bucket: "1 week".into(),
            aggregate: AggregateFunction::Sum,
            filters: vec![],
            min_count: None,
        })
        .await;
    assert_eq!(
        i64s(&out, "bucket"),
        vec![Some(JAN_1), Some(JAN_1 + 7 * DAY_MS)]
    );
    assert_eq!(i64s(&out, "value"), vec![Some(3), Some(4)]);
}
