use std::sync::Arc;

use crunch_engine::{
    EngineError,
    analysis::{Analysis, Filter, FilterOp},
};
use datafusion::arrow::array::{Float64Array, Int64Array};
use serde_json::json;

use crate::common::{Fixture, batch, f64s, i64s};

fn values() -> Fixture {
    let mut fixture = Fixture::new();
    let mut v: Vec<Option<i64>> = (0..=10).map(Some).collect();
    v.push(None);
    v.push(Some(1000));
    fixture.table("t", &[batch(vec![("v", Arc::new(Int64Array::from(v)))])]);
    fixture
}

#[tokio::test]
async fn a_histogram_counts_rows_per_equal_width_bin_with_the_maximum_in_the_last() {
    let fixture = values();
    let out = fixture
        .ok(Analysis::Histogram {
            table: "t".into(),
            column: "v".into(),
            bins: 5,
            filters: vec![Filter {
                column: "v".into(),
                op: FilterOp::Le,
                value: json!(10),
            }],
        })
        .await;
    // 0..=10 in 5 bins of width 2: {0,1} {2,3} {4,5} {6,7} {8,9,10}.
    assert_eq!(
        f64s(&out, "bin_start"),
        vec![Some(0.0), Some(2.0), Some(4.0), Some(6.0), Some(8.0)]
    );
    assert_eq!(
        f64s(&out, "bin_end"),
        vec![Some(2.0), Some(4.0), Some(6.0), Some(8.0), Some(10.0)]
    );
    assert_eq!(
        i64s(&out, "count"),
        vec![Some(2), Some(2), Some(2), Some(2), Some(3)]
    );
}

#[tokio::test]
async fn empty_bins_are_reported_with_count_zero() {
    let fixture = values();
    let out = fixture
        .ok(Analysis::Histogram {
            table: "t".into(),
            column: "v".into(),
            bins: 4,
            filters: vec![],
        })
        .await;
    // 0..=10 and 1000 over [0, 1000] in bins of 250.
    assert_eq!(
        i64s(&out, "count"),
        vec![Some(11), Some(0), Some(0), Some(1)]
    );
}

#[tokio::test]
async fn a_column_of_one_value_makes_one_bin() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![(
            "v",
            Arc::new(Float64Array::from(vec![2.5, 2.5, 2.5])),
        )])],
    );
    let out = fixture
        .ok(Analysis::Histogram {
            table: "t".into(),
            column: "v".into(),
            bins: 10,
            filters: vec![],
        })
        .await;
    assert_eq!(f64s(&out, "bin_start"), vec![Some(2.5)]);
    assert_eq!(i64s(&out, "count"), vec![Some(3)]);
}

#[tokio::test]
async fn more_than_a_thousand_bins_is_an_invalid_query() {
    let fixture = values();
    let error = fixture
        .err(Analysis::Histogram {
            table: "t".into(),
            column: "v".into(),
            bins: 1001,
            filters: vec![],
        })
        .await;
    assert!(matches!(error, EngineError::InvalidQuery(_)), "{error:?}");
}
