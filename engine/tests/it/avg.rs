//! `avg` over decimals rounds its last digit half away from zero (DataFusion
//! truncates it), and `avg(x)` beside `avg(CAST(x AS DOUBLE))` plans (their
//! names used to clash).

use std::sync::Arc;

use crunch_engine::analysis::{Aggregate, AggregateFunction, Analysis};
use datafusion::arrow::{
    array::{Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray},
    datatypes::{DataType, Decimal128Type},
};

use crate::common::{Fixture, batch, f64s, i64s, sql, strings};

/// A decimal(15, 2) column from values in cents.
fn cents(values: &[Option<i128>]) -> ArrayRef {
    Arc::new(
        Decimal128Array::from(values.to_vec())
            .with_precision_and_scale(15, 2)
            .unwrap(),
    )
}

/// Column `name`, which must be a Decimal128 of `data_type`, as raw values.
fn decimals(out: &RecordBatch, name: &str, data_type: &DataType) -> Vec<Option<i128>> {
    let column = out
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name} in {:?}", out.schema()));
    assert_eq!(column.data_type(), data_type, "{name}");
    column.as_primitive::<Decimal128Type>().iter().collect()
}

/// decimal(19, 6): avg's result type for decimal(15, 2).
const AVG_TYPE: DataType = DataType::Decimal128(19, 6);

/// `sum / count` in millionths (the sum in cents), rounded half away from
/// zero, worked out with integers: the reference the engine must match.
fn rounded_mean(sum_cents: i128, count: i128) -> i128 {
    let scaled = sum_cents * 10_000;
    let (quotient, remainder) = (scaled / count, scaled % count);
    if 2 * remainder.abs() >= count {
        quotient + scaled.signum()
    } else {
        quotient
    }
}

#[test]
fn the_reference_rounding_is_right() {
    assert_eq!(rounded_mean(5, 3), 16_667);
    assert_eq!(rounded_mean(-5, 3), -16_667);
    assert_eq!(rounded_mean(1, 32), 313); // 312.5
    assert_eq!(rounded_mean(-1, 32), -313);
    assert_eq!(rounded_mean(4, 3), 13_333);
}

#[tokio::test]
async fn a_decimal_mean_rounds_its_last_digit_half_away_from_zero() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            ("up", cents(&[Some(1), Some(2), Some(2)])),
            ("down", cents(&[Some(-1), Some(-2), Some(-2)])),
            ("mixed", cents(&[Some(-1), Some(2), None])),
            ("nothing", cents(&[None, None, None])),
        ])],
    );
    let out = fixture
        .ok(sql(
            "SELECT avg(up) AS up, mean(down) AS down, avg(mixed) AS mixed, \
                 avg(nothing) AS nothing FROM t",
        ))
        .await;
    // 0.05 / 3 = 0.0166666... -> 0.016667 (DataFusion alone: 0.016666).
    assert_eq!(decimals(&out, "up", &AVG_TYPE), vec![Some(16_667)]);
    assert_eq!(decimals(&out, "down", &AVG_TYPE), vec![Some(-16_667)]);
    // 0.01 / 2 = 0.005 exactly.
    assert_eq!(decimals(&out, "mixed", &AVG_TYPE), vec![Some(5_000)]);
    assert_eq!(decimals(&out, "nothing", &AVG_TYPE), vec![None]);
}

#[tokio::test]
async fn grouped_decimal_means_round_per_group_across_files() {
    let mut fixture = Fixture::new();
    // Exactly half a millionth: 0.01 / 32 = 0.0003125 -> 0.000313.
    let mut halves = vec![("h", Some(1))];
    halves.extend(std::iter::repeat_n(("h", Some(0)), 31));
    halves.push(("n", Some(-1)));
    halves.extend(std::iter::repeat_n(("n", Some(0)), 31));
    let (first, second) = halves.split_at(40);
    let part = |rows: &[(&str, Option<i128>)]| {
        batch(vec![
            (
                "g",
                Arc::new(StringArray::from(
                    rows.iter().map(|(g, _)| *g).collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
            (
                "x",
                cents(&rows.iter().map(|(_, x)| *x).collect::<Vec<_>>()),
            ),
        ])
    };
    let mut one = vec![
        ("a", Some(1)),
        ("a", Some(2)),
        ("b", Some(-1)),
        ("c", None),
        ("d", Some(1)),
        ("e", Some(100)),
    ];
    one.extend_from_slice(first);
    let mut two = vec![
        ("a", Some(2)),
        ("b", Some(-2)),
        ("b", Some(-2)),
        ("c", None),
        ("d", Some(2)),
        ("e", Some(200)),
        ("e", Some(200)),
    ];
    two.extend_from_slice(second);
    // Two files: partial aggregates per file, merged by the final one.
    fixture.table("t", &[part(&one), part(&two)]);
    let out = fixture
        .ok(sql("SELECT g, avg(x) AS m FROM t GROUP BY g ORDER BY g"))
        .await;
    assert_eq!(
        strings(&out, "g"),
        ["a", "b", "c", "d", "e", "h", "n"]
            .map(|g| Some(g.to_owned()))
            .to_vec()
    );
    assert_eq!(
        decimals(&out, "m", &AVG_TYPE),
        vec![
            Some(16_667),    // 0.05 / 3
            Some(-16_667),   // -0.05 / 3
            None,            // only nulls
            Some(15_000),    // 0.03 / 2, exact
            Some(1_666_667), // 5.00 / 3
            Some(313),       // 0.01 / 32, a tie
            Some(-313),      // -0.01 / 32, a tie
        ]
    );
}

#[tokio::test]
async fn a_decimal_mean_over_a_window_rounds_also_when_the_frame_slides() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            (
                "i",
                Arc::new(Int64Array::from_iter_values(1..=8)) as ArrayRef,
            ),
            ("g", Arc::new(StringArray::from(vec!["p"; 8]))),
            (
                "x",
                cents(&[
                    Some(1),
                    Some(2),
                    Some(2),
                    Some(-1),
                    Some(1),
                    None,
                    None,
                    None,
                ]),
            ),
        ])],
    );
    let out = fixture
        .ok(sql("SELECT i, \
                    avg(x) OVER (ORDER BY i ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS sliding, \
                    avg(x) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING) AS running, \
                    avg(x) OVER (PARTITION BY g) AS whole \
             FROM t ORDER BY i"))
        .await;
    assert_eq!(i64s(&out, "i"), (1..=8).map(Some).collect::<Vec<_>>());
    assert_eq!(
        decimals(&out, "sliding", &AVG_TYPE),
        vec![
            Some(10_000), // 0.01
            Some(15_000), // 0.03 / 2
            Some(16_667), // 0.05 / 3
            Some(10_000), // 0.03 / 3
            Some(6_667),  // 0.02 / 3, after retracting 0.01 and 0.02
            Some(0),      // 0.00 / 2
            Some(10_000), // 0.01 / 1
            None,         // nothing left in the frame
        ]
    );
    assert_eq!(
        decimals(&out, "running", &AVG_TYPE),
        vec![
            Some(10_000),
            Some(15_000),
            Some(16_667),
            Some(10_000), // 0.04 / 4
            Some(10_000), // 0.05 / 5
            Some(10_000),
            Some(10_000),
            Some(10_000),
        ]
    );
    assert_eq!(decimals(&out, "whole", &AVG_TYPE), vec![Some(10_000); 8]);
}

#[tokio::test]
async fn a_distinct_decimal_mean_rounds() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            (
                "g",
                Arc::new(StringArray::from(vec!["a", "a", "a", "a", "b", "b"])) as ArrayRef,
            ),
            // a: distinct 0.01, 0.02, 0.05 -> 0.08 / 3 = 0.026666... -> 0.026667
            // b: distinct -0.01, -0.04 -> -0.025
            (
                "x",
                cents(&[Some(1), Some(2), Some(2), Some(5), Some(-1), Some(-4)]),
            ),
        ])],
    );
    let out = fixture
        .ok(sql("SELECT avg(DISTINCT x) AS d, avg(x) AS m FROM t"))
        .await;
    // All six distinct values: 0.01 + 0.02 + 0.05 - 0.01 - 0.04 = 0.03 over 5.
    assert_eq!(decimals(&out, "d", &AVG_TYPE), vec![Some(6_000)]);
    // 0.05 over 6 = 0.0083333...
    assert_eq!(decimals(&out, "m", &AVG_TYPE), vec![Some(8_333)]);

    let out = fixture
        .ok(sql(
            "SELECT g, avg(DISTINCT x) AS d FROM t GROUP BY g ORDER BY g",
        ))
        .await;
    assert_eq!(
        decimals(&out, "d", &AVG_TYPE),
        vec![Some(26_667), Some(-25_000)]
    );
    // With another aggregate beside it, DISTINCT is not rewritten into a
    // GROUP BY: the distinct accumulator itself computes the mean.
    let out = fixture
        .ok(sql(
            "SELECT g, avg(DISTINCT x) AS d, count(*) AS n FROM t GROUP BY g ORDER BY g",
        ))
        .await;
    assert_eq!(
        decimals(&out, "d", &AVG_TYPE),
        vec![Some(26_667), Some(-25_000)]
    );
    assert_eq!(i64s(&out, "n"), vec![Some(4), Some(2)]);
}

#[tokio::test]
async fn the_group_by_analysis_mean_rounds_decimals_like_sql() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            (
                "g",
                Arc::new(StringArray::from(vec!["a", "a", "a", "b"])) as ArrayRef,
            ),
            ("x", cents(&[Some(1), Some(2), Some(2), Some(-3)])),
        ])],
    );
    let out = fixture
        .ok(Analysis::GroupBy {
            table: "t".into(),
            keys: vec!["g".into()],
            aggregates: vec![Aggregate {
                function: AggregateFunction::Mean,
                column: Some("x".into()),
                alias: Some("m".into()),
            }],
            filters: vec![],
            min_group_size: None,
        })
        .await;
    let groups = strings(&out, "g");
    let means = decimals(&out, "m", &AVG_TYPE);
    let mut rows: Vec<_> = groups.into_iter().zip(means).collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            (Some("a".to_owned()), Some(16_667)),
            (Some("b".to_owned()), Some(-30_000)),
        ]
    );
}

/// A TPC-H-like `lineitem`: `n` rows over two files, with decimal(15, 2)
/// quantity, price and discount.
fn lineitem(n: i128) -> (Fixture, Vec<[i128; 4]>) {
    // (flag, quantity, price, discount) in cents; flag 0 or 1.
    let rows: Vec<[i128; 4]> = (0..n)
        .map(|i| {
            [
                i % 2,
                100 * (1 + (i * 7) % 50),
                90_000 + (i * 1_234_567) % 10_000_000,
                (i * 7) % 11,
            ]
        })
        .collect();
    let part = |rows: &[[i128; 4]]| {
        batch(vec![
            (
                "l_returnflag",
                Arc::new(StringArray::from(
                    rows.iter()
                        .map(|r| if r[0] == 0 { "A" } else { "R" })
                        .collect::<Vec<_>>(),
                )) as ArrayRef,
            ),
            (
                "l_quantity",
                cents(&rows.iter().map(|r| Some(r[1])).collect::<Vec<_>>()),
            ),
            (
                "l_extendedprice",
                cents(&rows.iter().map(|r| Some(r[2])).collect::<Vec<_>>()),
            ),
            (
                "l_discount",
                cents(&rows.iter().map(|r| Some(r[3])).collect::<Vec<_>>()),
            ),
        ])
    };
    let mut fixture = Fixture::new();
    let (first, second) = rows.split_at(rows.len() / 3);
    fixture.table("lineitem", &[part(first), part(second)]);
    (fixture, rows)
}

#[tokio::test]
async fn a_tpch_q1_like_query_matches_the_exactly_rounded_means() {
    let (fixture, rows) = lineitem(1_009);
    let out = fixture
        .ok(sql("SELECT l_returnflag, sum(l_quantity) AS sum_qty, \
                    avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, \
                    avg(l_discount) AS avg_disc, count(*) AS count_order \
             FROM lineitem GROUP BY l_returnflag ORDER BY l_returnflag"))
        .await;
    assert_eq!(
        strings(&out, "l_returnflag"),
        vec![Some("A".to_owned()), Some("R".to_owned())]
    );
    let expected = |column: usize| -> Vec<Option<i128>> {
        (0..2)
            .map(|flag| {
                let group: Vec<_> = rows.iter().filter(|r| r[0] == flag).collect();
                let sum: i128 = group.iter().map(|r| r[column]).sum();
                Some(rounded_mean(sum, group.len() as i128))
            })
            .collect()
    };
    assert_eq!(decimals(&out, "avg_qty", &AVG_TYPE), expected(1));
    assert_eq!(decimals(&out, "avg_price", &AVG_TYPE), expected(2));
    assert_eq!(decimals(&out, "avg_disc", &AVG_TYPE), expected(3));
    // Worked out by hand for flag A (even i): i * 7 % 11 over i = 0, 2, ...,
    // 1008 cycles through 0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8 (sum 55) every 11
    // rows; 505 rows are 45 cycles (sum 2475) and 10 more (sum 47): 25.22
    // over 505 rows = 0.0499405940... -> 0.049941 (truncated: 0.049940).
    assert_eq!(decimals(&out, "avg_disc", &AVG_TYPE)[0], Some(49_941));
    // And at least one group of one column really needed rounding up, so
    // the comparison is not only with exact quotients.
    let truncated_differs = (1..4).any(|column| {
        (0..2).any(|flag| {
            let group: Vec<_> = rows.iter().filter(|r| r[0] == flag).collect();
            let sum: i128 = group.iter().map(|r| r[column]).sum();
            sum * 10_000 / group.len() as i128 != rounded_mean(sum, group.len() as i128)
        })
    });
    assert!(truncated_differs, "the data never needs rounding up");
    assert_eq!(i64s(&out, "count_order"), vec![Some(505), Some(504)]);
}

#[tokio::test]
async fn avg_beside_avg_of_a_cast_plans_and_both_are_the_mean() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            (
                "g",
                Arc::new(StringArray::from(vec!["a", "a", "a", "b"])) as ArrayRef,
            ),
            ("x", Arc::new(Int64Array::from(vec![1, 2, 4, 10]))),
        ])],
    );
    let mean = 17.0 / 4.0;
    let out = fixture
        .ok(sql(
            "SELECT avg(x) AS avg_x, avg(CAST(x AS DOUBLE)) AS avg_double FROM t",
        ))
        .await;
    assert_eq!(f64s(&out, "avg_x"), vec![Some(mean)]);
    assert_eq!(f64s(&out, "avg_double"), vec![Some(mean)]);

    // Grouped, with HAVING and ORDER BY naming both.
    let out = fixture
        .ok(sql(
            "SELECT g, avg(x) AS avg_x, avg(CAST(x AS DOUBLE)) AS avg_double, \
                    sum(CAST(x AS DECIMAL(10, 2))) AS total \
             FROM t GROUP BY g \
             HAVING avg(CAST(x AS DOUBLE)) > 1 AND avg(x) < 100 \
             ORDER BY avg(CAST(x AS DOUBLE))",
        ))
        .await;
    assert_eq!(
        strings(&out, "g"),
        vec![Some("a".to_owned()), Some("b".to_owned())]
    );
    assert_eq!(f64s(&out, "avg_x"), vec![Some(7.0 / 3.0), Some(10.0)]);
    assert_eq!(f64s(&out, "avg_double"), vec![Some(7.0 / 3.0), Some(10.0)]);
    assert_eq!(f64s(&out, "total"), vec![Some(7.0), Some(10.0)]);

    // DISTINCT, and a cast to another type.
    let out = fixture
        .ok(sql(
            "SELECT avg(DISTINCT x) AS d, avg(DISTINCT CAST(x AS DOUBLE)) AS dd, \
                    max(x) AS m, max(CAST(x AS VARCHAR)) AS ms FROM t",
        ))
        .await;
    assert_eq!(f64s(&out, "d"), vec![Some(mean)]);
    assert_eq!(f64s(&out, "dd"), vec![Some(mean)]);
    assert_eq!(i64s(&out, "m"), vec![Some(10)]);
    // As text, "4" is the largest.
    assert_eq!(strings(&out, "ms"), vec![Some("4".to_owned())]);

    // As window functions.
    let out = fixture
        .ok(sql("SELECT x, avg(x) OVER (PARTITION BY g) AS w, \
                    avg(CAST(x AS DOUBLE)) OVER (PARTITION BY g) AS wd \
             FROM t ORDER BY x"))
        .await;
    let group_a = 7.0 / 3.0;
    assert_eq!(
        f64s(&out, "w"),
        vec![Some(group_a), Some(group_a), Some(group_a), Some(10.0)]
    );
    assert_eq!(f64s(&out, "wd"), f64s(&out, "w"));
}

#[tokio::test]
async fn only_queries_whose_names_clash_get_casts_named() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![(
            "x",
            Arc::new(Int64Array::from(vec![1, 2, 4])) as ArrayRef,
        )])],
    );
    // No clash: planned as ever, with DataFusion's own names (which do not
    // show the cast).
    let (summary, _) = fixture
        .run(sql("SELECT avg(x), sum(CAST(x AS DOUBLE)) FROM t"))
        .await
        .unwrap();
    let names: Vec<_> = summary.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["avg(t.x)", "sum(t.x)"]);
    // A clash: the cast is named, so the columns are told apart.
    let (summary, out) = fixture
        .run(sql("SELECT avg(x), avg(CAST(x AS DOUBLE)) FROM t"))
        .await
        .unwrap();
    let names: Vec<_> = summary.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["avg(t.x)", "avg(CAST(t.x AS Float64))"]);
    assert_eq!(f64s(&out, "avg(t.x)"), vec![Some(7.0 / 3.0)]);
    assert_eq!(
        f64s(&out, "avg(CAST(t.x AS Float64))"),
        vec![Some(7.0 / 3.0)]
    );
}

#[tokio::test]
async fn other_decimal_widths_round_too_and_the_widest_still_compute() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![("x", cents(&[Some(1), Some(2), Some(2)]))])],
    );
    let out = fixture
        .ok(sql("SELECT avg(arrow_cast(x, 'Decimal32(4, 2)')) AS d32, \
                        avg(arrow_cast(x, 'Decimal64(12, 2)')) AS d64, \
                        avg(CAST(x AS DECIMAL(40, 2))) AS d256, \
                        avg(CAST(x AS DECIMAL(36, 2))) AS d36 \
                 FROM t"))
        .await;
    let value = |name: &str| {
        let column = out.column_by_name(name).unwrap();
        let as128 = datafusion::arrow::compute::cast(column, &DataType::Decimal128(38, 6)).unwrap();
        (
            column.data_type().clone(),
            as128.as_primitive::<Decimal128Type>().value(0),
        )
    };
    assert_eq!(value("d32"), (DataType::Decimal32(8, 6), 16_667));
    assert_eq!(value("d64"), (DataType::Decimal64(16, 6), 16_667));
    assert_eq!(value("d256"), (DataType::Decimal256(44, 6), 16_667));
    // decimal(38, 6) has no digit to spare for the rounding: DataFusion's
    // own avg computes it, and truncates.
    assert_eq!(value("d36"), (DataType::Decimal128(38, 6), 16_666));
}
