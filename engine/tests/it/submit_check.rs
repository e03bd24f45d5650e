//! The submit-time check of an SQL analysis plans the query as a run does,
//! over the inputs' schemas: what it accepts runs, what it refuses is what
//! a run would have failed on before reading any data.

use std::sync::Arc;

use crunch_engine::{DEFAULT_MAX_SQL_BYTES, EngineError, TableInput, check_sql};
use datafusion::arrow::{
    array::{ArrayRef, Decimal128Array, Int64Array, StringArray},
    datatypes::{DataType, Field, Schema},
};
use object_store::path::Path;

use crate::common::{Fixture, batch, f64s, sql};

/// Two inputs, `t(x, name, d)` and `u(x)`, as the server passes them:
/// names and schemas.
fn inputs() -> Vec<TableInput> {
    let t = Schema::new(vec![
        Field::new("x", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("d", DataType::Decimal128(15, 2), true),
    ]);
    let u = Schema::new(vec![Field::new("x", DataType::Int64, true)]);
    vec![
        TableInput {
            name: "t".into(),
            schema: Arc::new(t),
            // Never read by the check, even when present.
            files: vec![Path::from("nowhere/part-0.parquet")],
        },
        TableInput {
            name: "u".into(),
            schema: Arc::new(u),
            files: vec![],
        },
    ]
}

/// The submit-time check of `query` over [`inputs`].
async fn checked(query: &str) -> Result<(), EngineError> {
    check_sql(query.to_owned(), inputs(), DEFAULT_MAX_SQL_BYTES).await
}

#[tokio::test]
async fn queries_that_plan_over_the_inputs_are_accepted() {
    for query in [
        "SELECT 1",
        "SELECT avg(x) AS avg_x, avg(CAST(x AS DOUBLE)) AS avg_double FROM t",
        "SELECT name, avg(d) AS m, count(*) AS n FROM t GROUP BY name HAVING count(*) > 1",
        "SELECT t.x, u.x AS y FROM t JOIN u ON t.x = u.x WHERE t.name LIKE 'a%'",
        "SELECT x, avg(d) OVER (ORDER BY x ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM t",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) \
         SELECT sum(i) FROM n",
        "SELECT * FROM t WHERE x IN (SELECT x FROM u)",
    ] {
        assert!(
            checked(query).await.is_ok(),
            "{query}: {:?}",
            checked(query).await
        );
    }
}

#[tokio::test]
async fn an_unknown_column_is_refused_by_name() {
    for (query, column) in [
        ("SELECT nope FROM t", "nope"),
        ("SELECT x FROM t WHERE t.missing > 1", "missing"),
        ("SELECT name FROM u", "name"),
        ("SELECT avg(y) FROM t GROUP BY x", "y"),
    ] {
        match checked(query).await {
            Err(EngineError::UnknownColumn(name)) => {
                assert!(name.contains(column), "{query}: {name}")
            }
            other => panic!("{query}: expected an unknown column, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn type_errors_and_unknown_functions_are_invalid_queries() {
    for (query, said) in [
        ("SELECT sum(name) FROM t", "sum"),
        ("SELECT x + name FROM t", "Int64"),
        ("SELECT frobnicate(x) FROM t", "frobnicate"),
        ("SELECT x FROM t UNION SELECT x, x + 1 AS y FROM u", "union"),
        ("SELECT x FROM t WHERE name", "Boolean"),
        ("SELECT x FROM t WHERE x = 'abc'", "abc"),
        ("SELECT CAST('x' AS INT) FROM t", "x"),
    ] {
        match checked(query).await {
            Err(EngineError::InvalidQuery(message)) => {
                assert!(
                    message.to_lowercase().contains(&said.to_lowercase()),
                    "{query}: {message}"
                )
            }
            other => panic!("{query}: expected an invalid query, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_text_checks_come_first_with_their_own_errors() {
    assert!(matches!(
        checked("DROP TABLE t").await,
        Err(EngineError::InvalidQuery(m)) if m.contains("DROP TABLE")
    ));
    assert!(matches!(
        checked("SELECT * FROM secrets").await,
        Err(EngineError::UnknownTable(t)) if t == "secrets"
    ));
    let long = format!("SELECT x FROM t WHERE x IN ({}1)", "1,".repeat(60_000));
    assert!(matches!(
        checked(&long).await,
        Err(EngineError::InvalidQuery(m)) if m.contains("at most")
    ));
    // Deep but legal: a long chain plans too.
    let chain = format!("SELECT x{} AS y FROM t", " + 1".repeat(500));
    assert!(checked(&chain).await.is_ok(), "{:?}", checked(&chain).await);
}

#[tokio::test]
async fn what_the_check_accepts_runs_with_the_right_answer() {
    let query = "SELECT avg(x) AS avg_x, avg(CAST(x AS DOUBLE)) AS avg_double FROM t";
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![
            ("x", Arc::new(Int64Array::from(vec![1, 2, 4])) as ArrayRef),
            ("name", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
            (
                "d",
                Arc::new(
                    Decimal128Array::from(vec![1, 2, 2])
                        .with_precision_and_scale(15, 2)
                        .unwrap(),
                ),
            ),
        ])],
    );
    let schemas = fixture.inputs.clone();
    check_sql(query.to_owned(), schemas, DEFAULT_MAX_SQL_BYTES)
        .await
        .unwrap();
    let out = fixture.ok(sql(query)).await;
    assert_eq!(f64s(&out, "avg_x"), vec![Some(7.0 / 3.0)]);
    assert_eq!(f64s(&out, "avg_double"), vec![Some(7.0 / 3.0)]);
}
