use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crunch_worker::engine::EngineError;
use datafusion::arrow::array::Int64Array;
use tokio::sync::Notify;

use crate::common::{Fixture, batch, sql};

#[tokio::test]
async fn a_long_query_stops_within_seconds_of_a_cancel_and_leaves_no_result() {
    let mut fixture = Fixture::new();
    let values: Vec<i64> = (0..20_000).collect();
    fixture.table(
        "t",
        &[batch(vec![("x", Arc::new(Int64Array::from(values)))])],
    );
    // 4 * 10^8 pairs: minutes of work in a debug build.
    let request = fixture.request(sql("SELECT sum(a.x * b.x) AS s FROM t a CROSS JOIN t b"));
    let output = request.output.to_string();

    let first_report = Arc::new(Notify::new());
    let notify = Arc::clone(&first_report);
    let cancelled_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let cancel = {
        let cancelled_at = Arc::clone(&cancelled_at);
        async move {
            first_report.notified().await;
            // Let execution get going before cancelling.
            tokio::time::sleep(Duration::from_millis(500)).await;
            *cancelled_at.lock().unwrap() = Some(Instant::now());
        }
    };
    let started = Instant::now();
    let result = fixture
        .engine
        .run(request, move |_, _| notify.notify_one(), cancel)
        .await;

    assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
    let cancelled_at = cancelled_at.lock().unwrap().expect("cancel resolved");
    let stopping = cancelled_at.elapsed();
    assert!(
        stopping < Duration::from_secs(2),
        "took {stopping:?} to stop after the cancel"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!fixture.exists(&output));
}
