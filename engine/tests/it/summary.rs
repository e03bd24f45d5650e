use std::sync::Arc;

use crunch_engine::analysis::Analysis;
use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};

use crate::common::{Fixture, batch, close, f64s, i64s, strings};

#[tokio::test]
async fn a_summary_reports_count_nulls_min_max_mean_and_stddev_per_column() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            (
                "x",
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(2),
                    Some(3),
                    Some(4),
                    None,
                ])),
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![
                    Some("b"),
                    Some("a"),
                    None,
                    Some("c"),
                    Some("a"),
                ])),
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![
                    Some(0.5),
                    Some(0.5),
                    Some(1.5),
                    None,
                    None,
                ])),
            ),
        ])],
    );
    let out = fixture
        .ok(Analysis::Summary {
            table: "t".into(),
            columns: None,
        })
        .await;

    assert_eq!(
        strings(&out, "column"),
        vec![Some("x".into()), Some("name".into()), Some("f".into())]
    );
    assert_eq!(
        strings(&out, "data_type"),
        vec![
            Some("Int64".into()),
            Some("Utf8".into()),
            Some("Float64".into())
        ]
    );
    assert_eq!(i64s(&out, "count"), vec![Some(4), Some(4), Some(3)]);
    assert_eq!(i64s(&out, "nulls"), vec![Some(1), Some(1), Some(2)]);
    assert_eq!(
        strings(&out, "min"),
        vec![Some("1".into()), Some("a".into()), Some("0.5".into())]
    );
    assert_eq!(
        strings(&out, "max"),
        vec![Some("4".into()), Some("c".into()), Some("1.5".into())]
    );

    // x = 1, 2, 3, 4: mean 2.5; squared deviations 2.25 + 0.25 + 0.25 +
    // 2.25 = 5, sample variance 5 / 3.
    let mean = f64s(&out, "mean");
    let stddev = f64s(&out, "stddev");
    close(mean[0], 2.5);
    close(stddev[0], (5.0_f64 / 3.0).sqrt());
    // f = 0.5, 0.5, 1.5: mean 5/6; deviations -1/3, -1/3, 2/3: variance
    // (1/9 + 1/9 + 4/9) / 2 = 1/3.
    close(mean[2], 2.5 / 3.0);
    close(stddev[2], (1.0_f64 / 3.0).sqrt());
    // Text has no mean.
    assert_eq!(mean[1], None);

    // Quantiles are approximate, but must lie within the data, in order.
    let (p25, p50, p75) = (
        f64s(&out, "p25")[0].unwrap(),
        f64s(&out, "p50")[0].unwrap(),
        f64s(&out, "p75")[0].unwrap(),
    );
    assert!(
        (1.0..=4.0).contains(&p25) && p25 <= p50 && p50 <= p75 && p75 <= 4.0,
        "{p25} {p50} {p75}"
    );
    // Distinct counts are approximate too; on so few values they are exact.
    assert_eq!(i64s(&out, "distinct"), vec![Some(4), Some(3), Some(2)]);
}

#[tokio::test]
async fn a_summary_of_chosen_columns_reports_them_in_the_given_order() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2]))),
            ("b", Arc::new(Int64Array::from(vec![3, 4]))),
        ])],
    );
    let out = fixture
        .ok(Analysis::Summary {
            table: "t".into(),
            columns: Some(vec!["b".into(), "a".into()]),
        })
        .await;
    assert_eq!(
        strings(&out, "column"),
        vec![Some("b".into()), Some("a".into())]
    );
    assert_eq!(
        strings(&out, "max"),
        vec![Some("4".into()), Some("2".into())]
    );
}

#[tokio::test]
async fn a_summary_of_a_missing_column_names_it() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![("a", Arc::new(Int64Array::from(vec![1])))])],
    );
    let error = fixture
        .err(Analysis::Summary {
            table: "t".into(),
            columns: Some(vec!["a; DROP TABLE t".into()]),
        })
        .await;
    assert!(
        matches!(error, crunch_engine::EngineError::UnknownColumn(ref c) if c == "a; DROP TABLE t"),
        "{error:?}"
    );
    assert!(error.is_permanent());
}
