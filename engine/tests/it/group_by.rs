use std::sync::Arc;

use crunch_engine::{
    EngineError,
    analysis::{Aggregate, AggregateFunction, Analysis, Filter, FilterOp},
};
use datafusion::arrow::array::{Int64Array, StringArray};
use serde_json::json;

use crate::common::{Fixture, batch, close, f64s, i64s, strings};

fn sales() -> Fixture {
    let mut fixture = Fixture::new();
    // Two files, so the table really is the union of its files.
    fixture.table(
        "sales",
        &[
            batch(vec![
                (
                    "region",
                    Arc::new(StringArray::from(vec!["north", "north", "south", "east"])),
                ),
                ("amount", Arc::new(Int64Array::from(vec![10, 20, 5, 7]))),
            ]),
            batch(vec![
                (
                    "region",
                    Arc::new(StringArray::from(vec!["north", "south", "south", "west"])),
                ),
                ("amount", Arc::new(Int64Array::from(vec![30, 15, 100, 1]))),
            ]),
        ],
    );
    fixture
}

fn aggregate(function: AggregateFunction, column: Option<&str>) -> Aggregate {
    Aggregate {
        function,
        column: column.map(str::to_owned),
        alias: None,
    }
}

#[tokio::test]
async fn groups_smaller_than_the_minimum_keep_their_keys_with_null_aggregates() {
    let fixture = sales();
    let out = fixture
        .ok(Analysis::GroupBy {
            table: "sales".into(),
            keys: vec!["region".into()],
            aggregates: vec![
                aggregate(AggregateFunction::Count, None),
                aggregate(AggregateFunction::Sum, Some("amount")),
                aggregate(AggregateFunction::Mean, Some("amount")),
            ],
            filters: vec![Filter {
                column: "amount".into(),
                op: FilterOp::Lt,
                value: json!(100),
            }],
            min_group_size: Some(2),
        })
        .await;

    // amount < 100 drops south's 100. north: 10, 20, 30; south: 5, 15;
    // east: 7 and west: 1 are single rows.
    assert_eq!(
        strings(&out, "region"),
        vec![
            Some("east".into()),
            Some("north".into()),
            Some("south".into()),
            Some("west".into())
        ]
    );
    assert_eq!(i64s(&out, "count"), vec![None, Some(3), Some(2), None]);
    assert_eq!(
        i64s(&out, "sum_amount"),
        vec![None, Some(60), Some(20), None]
    );
    let mean = f64s(&out, "mean_amount");
    assert_eq!(mean[0], None);
    close(mean[1], 20.0);
    close(mean[2], 10.0);
    assert_eq!(mean[3], None);
}

#[tokio::test]
async fn filters_combine_and_aliases_name_the_outputs() {
    let fixture = sales();
    let out = fixture
        .ok(Analysis::GroupBy {
            table: "sales".into(),
            keys: vec!["region".into()],
            aggregates: vec![
                Aggregate {
                    function: AggregateFunction::Max,
                    column: Some("amount".into()),
                    alias: Some("largest".into()),
                },
                aggregate(AggregateFunction::CountDistinct, Some("amount")),
            ],
            filters: vec![
                Filter {
                    column: "region".into(),
                    op: FilterOp::In,
                    value: json!(["north", "south"]),
                },
                Filter {
                    column: "amount".into(),
                    op: FilterOp::Ge,
                    value: json!(10),
                },
            ],
            min_group_size: None,
        })
        .await;
    assert_eq!(
        strings(&out, "region"),
        vec![Some("north".into()), Some("south".into())]
    );
    assert_eq!(i64s(&out, "largest"), vec![Some(30), Some(100)]);
    assert_eq!(i64s(&out, "count_distinct_amount"), vec![Some(3), Some(2)]);
}

#[tokio::test]
async fn a_sum_of_text_is_an_invalid_query() {
    let fixture = sales();
    let error = fixture
        .err(Analysis::GroupBy {
            table: "sales".into(),
            keys: vec![],
            aggregates: vec![aggregate(AggregateFunction::Sum, Some("region"))],
            filters: vec![],
            min_group_size: None,
        })
        .await;
    assert!(matches!(error, EngineError::InvalidQuery(_)), "{error:?}");
}

#[tokio::test]
async fn a_group_by_over_an_unknown_table_names_it() {
    let fixture = sales();
    let error = fixture
        .err(Analysis::GroupBy {
            table: "other_tenant.sales".into(),
            keys: vec![],
            aggregates: vec![aggregate(AggregateFunction::Count, None)],
            filters: vec![],
            min_group_size: None,
        })
        .await;
    assert!(
        matches!(error, EngineError::UnknownTable(ref t) if t == "other_tenant.sales"),
        "{error:?}"
    );
}
