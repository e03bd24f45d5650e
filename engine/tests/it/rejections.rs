//! Queries that must be refused, each with a clear, permanent error and
//! without touching anything outside the run's inputs.

use std::sync::Arc;

use crunch_engine::{EngineConfig, EngineError};
use datafusion::arrow::array::Int64Array;

use crate::common::{Fixture, batch, sql};

fn fixture() -> Fixture {
    let mut fixture = Fixture::with_config(EngineConfig {
        memory_limit: Some(64 << 20),
        threads: 2,
        target_partitions: 2,
        max_sql_bytes: 20_000,
        ..EngineConfig::default()
    });
    fixture.table(
        "t",
        &[batch(vec![(
            "a",
            Arc::new(Int64Array::from(vec![1, 2, 3])),
        )])],
    );
    fixture
}

async fn invalid(query: &str) -> String {
    let error = fixture().err(sql(query)).await;
    assert!(error.is_permanent(), "{error:?}");
    match error {
        EngineError::InvalidQuery(message) => message,
        other => panic!("expected an invalid query for {query:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn create_table_is_rejected_by_name() {
    assert!(
        invalid("CREATE TABLE x AS SELECT * FROM t")
            .await
            .contains("CREATE TABLE")
    );
}

#[tokio::test]
async fn insert_is_rejected_by_name() {
    assert!(invalid("INSERT INTO t VALUES (4)").await.contains("INSERT"));
}

#[tokio::test]
async fn copy_to_a_file_is_rejected_and_writes_nothing() {
    let fixture = fixture();
    let target = fixture.dir.path().join("stolen.csv");
    let error = fixture
        .err(sql(&format!(
            "COPY t TO '{}' STORED AS CSV",
            target.display()
        )))
        .await;
    assert!(
        matches!(error, EngineError::InvalidQuery(ref m) if m.contains("COPY")),
        "{error:?}"
    );
    assert!(!target.exists());
}

#[tokio::test]
async fn create_external_table_over_a_local_file_is_rejected() {
    assert!(
        invalid("CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'")
            .await
            .contains("CREATE EXTERNAL TABLE")
    );
}

#[tokio::test]
async fn set_and_explain_analyze_are_rejected() {
    assert!(
        invalid("SET datafusion.execution.target_partitions = 64")
            .await
            .contains("SET")
    );
    assert!(
        invalid("EXPLAIN ANALYZE SELECT * FROM t")
            .await
            .contains("EXPLAIN")
    );
}

#[tokio::test]
async fn a_file_url_as_a_table_is_an_unknown_table() {
    let error = fixture()
        .err(sql("SELECT * FROM 'file:///etc/passwd'"))
        .await;
    assert!(
        matches!(error, EngineError::UnknownTable(ref t) if t.contains("/etc/passwd")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_path_to_another_dataset_as_a_table_is_an_unknown_table() {
    let error = fixture()
        .err(sql(
            "SELECT * FROM 'crunch://test/datasets/t/part-0.parquet'",
        ))
        .await;
    assert!(matches!(error, EngineError::UnknownTable(_)), "{error:?}");
}

#[tokio::test]
async fn file_reading_table_functions_do_not_exist() {
    for query in [
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM parquet_metadata('/etc/passwd')",
    ] {
        let error = fixture().err(sql(query)).await;
        assert!(error.is_permanent(), "{query}: {error:?}");
        assert!(
            matches!(
                error,
                EngineError::InvalidQuery(_) | EngineError::UnknownTable(_)
            ),
            "{query}: {error:?}"
        );
    }
}

#[tokio::test]
async fn an_unknown_table_is_named() {
    let error = fixture()
        .err(sql("SELECT * FROM t JOIN secrets USING (a)"))
        .await;
    assert!(
        matches!(error, EngineError::UnknownTable(ref t) if t == "secrets"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_query_longer_than_the_limit_is_rejected() {
    let query = format!(
        "SELECT a FROM t WHERE a IN ({})",
        vec!["1"; 20_000].join(",")
    );
    assert!(invalid(&query).await.contains("at most 20000"));
}

#[tokio::test]
async fn deeply_nested_parentheses_are_an_error_not_a_crash() {
    let query = format!("SELECT {}1{} FROM t", "(".repeat(5000), ")".repeat(5000));
    let message = invalid(&query).await;
    assert!(message.contains("nests more than 50 levels"), "{message}");
}

#[tokio::test]
async fn deeply_nested_subqueries_are_an_error_not_a_crash() {
    let query = format!(
        "{}SELECT 1{}",
        "SELECT * FROM (".repeat(2000),
        ")".repeat(2000)
    );
    let error = fixture().err(sql(&query)).await;
    assert!(error.is_permanent(), "{error:?}");
}

#[tokio::test]
async fn a_very_long_chain_of_additions_is_an_error_not_a_crash() {
    // Not nested in the text, but a 4000-deep expression tree, deep enough
    // to overflow a stack in DataFusion's recursive tree code.
    let query = format!("SELECT a{} AS s FROM t", " + 1".repeat(4000));
    assert!(invalid(&query).await.contains("nested more than"));
}

#[tokio::test]
async fn a_chain_of_hundreds_of_additions_runs() {
    let query = format!("SELECT a{} AS s FROM t ORDER BY s", " + 1".repeat(500));
    let out = fixture().ok(sql(&query)).await;
    assert_eq!(
        crate::common::i64s(&out, "s"),
        vec![Some(501), Some(502), Some(503)]
    );
}
