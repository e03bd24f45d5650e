use std::sync::Arc;

use crunch_engine::TableInput;
use datafusion::arrow::{
    array::{Int64Array, StringArray},
    datatypes::{DataType, Field, Schema},
};

use crate::common::{Fixture, batch, i64s, sql, strings};

fn shop() -> Fixture {
    let mut fixture = Fixture::new();
    fixture
        .table(
            "customers",
            &[batch(vec![
                ("id", Arc::new(Int64Array::from(vec![1, 2, 3]))),
                (
                    "name",
                    Arc::new(StringArray::from(vec!["ann", "bob", "cat"])),
                ),
            ])],
        )
        .table(
            "orders",
            &[batch(vec![
                ("customer_id", Arc::new(Int64Array::from(vec![1, 1, 2, 9]))),
                ("total", Arc::new(Int64Array::from(vec![10, 15, 7, 99]))),
            ])],
        );
    fixture
}

#[tokio::test]
async fn a_select_with_a_join_and_group_by_computes_totals_per_customer() {
    let fixture = shop();
    let (summary, out) = fixture
        .run(sql(
            "SELECT c.name, sum(o.total) AS spent, count(o.total) AS orders \
             FROM customers c LEFT JOIN orders o ON o.customer_id = c.id \
             GROUP BY c.name ORDER BY c.name",
        ))
        .await
        .unwrap();
    assert_eq!(
        strings(&out, "name"),
        vec![Some("ann".into()), Some("bob".into()), Some("cat".into())]
    );
    assert_eq!(i64s(&out, "spent"), vec![Some(25), Some(7), None]);
    assert_eq!(i64s(&out, "orders"), vec![Some(2), Some(1), Some(0)]);

    assert_eq!(summary.rows, 3);
    assert!(summary.bytes > 0);
    let names: Vec<_> = summary.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["name", "spent", "orders"]);
    assert_eq!(summary.columns[1].data_type, "Int64");
}

#[tokio::test]
async fn an_empty_result_is_still_a_parquet_file_with_the_schema() {
    let fixture = shop();
    let (summary, out) = fixture
        .run(sql("SELECT name FROM customers WHERE id > 100"))
        .await
        .unwrap();
    assert_eq!(summary.rows, 0);
    assert_eq!(out.num_rows(), 0);
    assert_eq!(out.schema().field(0).name(), "name");
}

#[tokio::test]
async fn an_input_without_files_is_an_empty_table() {
    let mut fixture = Fixture::new();
    fixture.inputs.push(TableInput {
        name: "nothing".into(),
        schema: Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)])),
        files: vec![],
    });
    let out = fixture
        .ok(sql("SELECT count(*) AS n, max(a) AS m FROM nothing"))
        .await;
    assert_eq!(i64s(&out, "n"), vec![Some(0)]);
    assert_eq!(i64s(&out, "m"), vec![None]);
}

#[tokio::test]
async fn only_the_listed_files_are_read_not_their_neighbours() {
    let fixture = shop();
    // A file beside the committed one, e.g. an upload in progress.
    fixture.write_file(
        "datasets/orders/part-uncommitted.parquet",
        &batch(vec![
            ("customer_id", Arc::new(Int64Array::from(vec![1]))),
            ("total", Arc::new(Int64Array::from(vec![1000]))),
        ]),
    );
    let out = fixture.ok(sql("SELECT sum(total) AS s FROM orders")).await;
    assert_eq!(i64s(&out, "s"), vec![Some(131)]);
}

#[tokio::test]
async fn a_recursive_query_runs() {
    let fixture = shop();
    let out = fixture
        .ok(sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) \
             SELECT sum(i) AS s FROM n",
        ))
        .await;
    assert_eq!(i64s(&out, "s"), vec![Some(15)]);
}
