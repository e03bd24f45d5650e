//! A cancel ends the work, not only the wait for it: the engine's tasks
//! are gone soon after, whatever the plan loops on, and the next query
//! gets the engine at once.

use std::{sync::Arc, time::Duration};

use crunch_engine::EngineError;
use datafusion::arrow::array::Int64Array;
use tokio::sync::Notify;

use crate::common::{Fixture, batch, i64s, sql};

/// Queries that run for minutes in a debug build, each looping in a
/// different place: a nested-loop join probing a selective filter (one
/// poll never ends without the interruptible filter), a hash join whose
/// keys all match and whose filter rejects every pair, and a cross join
/// feeding an aggregate.
const HEAVY: [&str; 3] = [
    "SELECT count(*) AS n FROM t a, t b WHERE a.x * b.x = 7",
    "SELECT count(*) AS n FROM t a JOIN t b ON a.k = b.k AND a.x * b.x = 7",
    "SELECT sum(a.x * b.x) AS s FROM t a CROSS JOIN t b",
];

fn fixture() -> Fixture {
    let mut fixture = Fixture::new();
    let x: Vec<i64> = (0..20_000).collect();
    let k = vec![1_i64; x.len()];
    fixture.table(
        "t",
        &[batch(vec![
            ("x", Arc::new(Int64Array::from(x))),
            ("k", Arc::new(Int64Array::from(k))),
        ])],
    );
    fixture
}

/// Waits until a plan's partitions run as tasks of their own, and a little
/// longer: the heavy loop is then under way, and holds the engine's threads
/// (so no progress report would come meanwhile to say so).
async fn under_way(fixture: &Fixture) {
    while fixture.engine.alive_tasks() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// Waits until the engine has no task left, at most `limit`.
async fn until_idle(fixture: &Fixture, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while fixture.engine.alive_tasks() > 0 {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_heavy_queries_end_their_tasks_and_free_the_engine() {
    let fixture = fixture();
    // As many cancelled runs as the engine has threads and one more, all
    // at once: if any of them kept a thread, the next query would wait.
    let mut runs = Vec::new();
    let mut outputs = Vec::new();
    let cancel = Arc::new(Notify::new());
    for query in HEAVY {
        let request = fixture.request(sql(query));
        outputs.push(request.output.to_string());
        let cancel = Arc::clone(&cancel);
        let engine = fixture.engine.clone();
        runs.push(tokio::spawn(async move {
            engine
                .run(request, |_, _| {}, async move { cancel.notified().await })
                .await
        }));
    }
    under_way(&fixture).await;
    cancel.notify_waiters();
    for run in runs {
        let result = run.await.unwrap();
        assert!(matches!(result, Err(EngineError::Cancelled)), "{result:?}");
    }

    // The guarantee is 5 s from the cancel to the end of the work.
    assert!(
        until_idle(&fixture, Duration::from_secs(5)).await,
        "{} engine tasks still alive after the cancel",
        fixture.engine.alive_tasks()
    );
    // A task that is still alive is one whose poll goes on, burning a core
    // (aborting it lands only when it yields). The process CPU of a real
    // worker is measured in the fault suite (faults/tests/cancel.rs).

    for output in outputs {
        assert!(!fixture.exists(&output), "a cancelled run left {output}");
    }
    // The next query gets the engine at once.
    let next = fixture.ok(sql("SELECT count(*) AS n FROM t")).await;
    assert_eq!(i64s(&next, "n"), vec![Some(20_000)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_run_ends_its_tasks() {
    // A caller that stops waiting (a timeout, a lost lease, a shutdown that
    // drops the handler) drops the run's future instead of cancelling it.
    let fixture = fixture();
    let request = fixture.request(sql(HEAVY[0]));
    let engine = fixture.engine.clone();
    let run =
        tokio::spawn(async move { engine.run(request, |_, _| {}, std::future::pending()).await });
    under_way(&fixture).await;
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    assert!(
        until_idle(&fixture, Duration::from_secs(5)).await,
        "{} engine tasks still alive after the run was dropped",
        fixture.engine.alive_tasks()
    );
}
