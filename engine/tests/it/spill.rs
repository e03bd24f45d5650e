use std::sync::Arc;

use crunch_engine::{
    EngineConfig,
    analysis::{Aggregate, AggregateFunction, Analysis},
};
use datafusion::arrow::array::Int64Array;

use crate::common::{Fixture, batch, i64s};

const ROWS: i64 = 1_000_000;

#[tokio::test]
async fn a_group_by_larger_than_the_memory_pool_spills_and_succeeds() {
    let mut fixture = Fixture::with_config(EngineConfig {
        memory_limit: Some(16 << 20),
        threads: 2,
        target_partitions: 2,
        ..EngineConfig::default()
    });
    // A million distinct keys: the hash table alone outgrows 16 MB.
    let files: Vec<_> = (0..4)
        .map(|part| {
            let keys: Vec<i64> = (0..ROWS / 4)
                .map(|i| (i * 4 + part) * 7_919 % ROWS)
                .collect();
            let values: Vec<i64> = keys.iter().map(|k| k % 10).collect();
            batch(vec![
                ("key", Arc::new(Int64Array::from(keys))),
                ("value", Arc::new(Int64Array::from(values))),
            ])
        })
        .collect();
    fixture.table("big", &files);

    let (summary, out) = fixture
        .run(Analysis::GroupBy {
            table: "big".into(),
            keys: vec!["key".into()],
            aggregates: vec![Aggregate {
                function: AggregateFunction::Sum,
                column: Some("value".into()),
                alias: Some("total".into()),
            }],
            filters: vec![],
            min_group_size: None,
        })
        .await
        .unwrap();

    assert_eq!(summary.rows, ROWS as u64);
    // Sorted by key, each key once with its own value (key % 10).
    let keys = i64s(&out, "key");
    let totals = i64s(&out, "total");
    assert_eq!(keys[0], Some(0));
    assert_eq!(keys[ROWS as usize - 1], Some(ROWS - 1));
    assert_eq!(totals[12_345], Some(5));
    let spilled = fixture.engine.spill_totals();
    assert!(spilled.files > 0 && spilled.bytes > 0, "{spilled:?}");
}
