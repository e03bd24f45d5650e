use std::sync::{Arc, Mutex};

use datafusion::arrow::array::Int64Array;

use crate::common::{Fixture, batch, sql};

#[tokio::test]
async fn progress_runs_from_planning_to_done_without_going_backwards() {
    let mut fixture = Fixture::new();
    fixture.table(
        "t",
        &[batch(vec![(
            "x",
            Arc::new(Int64Array::from((0..1000).collect::<Vec<i64>>())),
        )])],
    );
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reports);
    fixture
        .engine
        .run(
            fixture.request(sql("SELECT x % 7 AS k, count(*) AS n FROM t GROUP BY k")),
            move |fraction, message: &str| {
                sink.lock().unwrap().push((fraction, message.to_owned()))
            },
            std::future::pending(),
        )
        .await
        .unwrap();

    let reports = reports.lock().unwrap();
    assert_eq!(reports.first().unwrap(), &(0.0, "planning".to_owned()));
    assert_eq!(reports.last().unwrap(), &(1.0, "done".to_owned()));
    assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0), "{reports:?}");
    assert!(
        reports.iter().any(|(_, m)| m.starts_with("executing")),
        "{reports:?}"
    );
}
