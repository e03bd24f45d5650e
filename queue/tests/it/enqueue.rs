//! Enqueueing: single jobs, batches, transactions, idempotency, validation
//! and the one-notification-per-statement wake-up.

use std::time::Duration;

use crate::common::*;
use crunch_queue::{JOBS_CHANNEL, JobState, NewJob, QueueError, TenantId};
use serde_json::json;
use sqlx::postgres::PgListener;

#[tokio::test]
async fn an_enqueued_job_is_queued_with_the_kinds_defaults() {
    let f = fixture().await;
    let enqueued = f.queue.enqueue(f.queue.pool(), work(21)).await.unwrap();
    assert!(enqueued.created);
    let job = f.job(enqueued.job.id).await;
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.kind, "work");
    assert_eq!(job.payload, json!({"n": 21, "behaviour": "double"}));
    assert_eq!(job.attempt, 0);
    assert_eq!(job.max_attempts, crunch_queue::DEFAULT_MAX_ATTEMPTS);
    assert_eq!(job.timeout_ms, 30 * 60 * 1000);
    assert_eq!(job.tenant_id, TenantId::DEFAULT);
    assert!(job.run_at <= job.created_at, "claimable at once: {job:?}");
    assert_eq!(enqueued.job, job);
}

#[tokio::test]
async fn options_override_the_kinds_defaults_and_run_at_keeps_milliseconds() {
    let f = fixture().await;
    let run_at = chrono::DateTime::parse_from_rfc3339("2031-01-02T03:04:05.678901Z")
        .unwrap()
        .to_utc();
    let job = work(1)
        .priority(7)
        .max_attempts(9)
        .timeout(Duration::from_millis(1500))
        .run_at(run_at);
    let job = f.queue.enqueue(f.queue.pool(), job).await.unwrap().job;
    assert_eq!(job.priority, 7);
    assert_eq!(job.max_attempts, 9);
    assert_eq!(job.timeout_ms, 1500);
    assert_eq!(job.run_at.to_rfc3339(), "2031-01-02T03:04:05.679+00:00");
}

#[tokio::test]
async fn a_batch_is_one_statement_and_keeps_input_order() {
    let f = fixture().await;
    let jobs: Vec<NewJob> = (0..250).map(work).collect();
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    let enqueued = f.queue.enqueue_batch(f.queue.pool(), jobs).await.unwrap();
    assert_eq!(enqueued.iter().map(|e| e.job.id).collect::<Vec<_>>(), ids);
    assert!(enqueued.iter().all(|e| e.created));
    let stats = f.queue.stats(None).await.unwrap();
    assert_eq!(stats.queued_ready, 250);
}

#[tokio::test]
async fn jobs_enqueued_in_a_rolled_back_transaction_do_not_exist() {
    let f = fixture().await;
    let mut tx = f.queue.pool().begin().await.unwrap();
    let id = f.queue.enqueue(&mut *tx, work(1)).await.unwrap().job.id;
    f.queue
        .enqueue_batch(&mut *tx, vec![work(2), work(3)])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(f.queue.get(TenantId::DEFAULT, id).await.unwrap().is_none());
    assert_eq!(f.queue.stats(None).await.unwrap().queued_ready, 0);

    let mut tx = f.queue.pool().begin().await.unwrap();
    let id = f.queue.enqueue(&mut *tx, work(1)).await.unwrap().job.id;
    tx.commit().await.unwrap();
    assert_eq!(f.job(id).await.state, JobState::Queued);
}

#[tokio::test]
async fn a_duplicate_idempotency_key_returns_the_existing_job() {
    let f = fixture().await;
    let first = f
        .queue
        .enqueue(f.queue.pool(), work(1).idempotency_key("k1"))
        .await
        .unwrap();
    let again = f
        .queue
        .enqueue(f.queue.pool(), work(99).idempotency_key("k1"))
        .await
        .unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(again.job.id, first.job.id);
    assert_eq!(
        again.job.payload, first.job.payload,
        "the original job is returned unchanged"
    );
}

#[tokio::test]
async fn a_duplicate_key_never_fails_the_batch_around_it() {
    let f = fixture().await;
    let existing = f.enqueue(work(1).idempotency_key("a")).await;
    let batch = vec![
        work(2),
        work(3).idempotency_key("a"),
        work(4).idempotency_key("b"),
        work(5).idempotency_key("b"),
        work(6),
    ];
    let out = f.queue.enqueue_batch(f.queue.pool(), batch).await.unwrap();
    assert_eq!(out.len(), 5);
    assert_eq!(
        out.iter().map(|e| e.created).collect::<Vec<_>>(),
        vec![true, false, true, false, true]
    );
    assert_eq!(out[1].job.id, existing);
    assert_eq!(out[3].job.id, out[2].job.id);
    assert_eq!(f.queue.stats(None).await.unwrap().queued_ready, 4);
}

#[tokio::test]
async fn a_failed_or_cancelled_job_frees_its_key() {
    let f = fixture().await;
    let first = f.enqueue(work(1).idempotency_key("k")).await;
    f.queue.cancel(TenantId::DEFAULT, first).await.unwrap();
    let second = f
        .queue
        .enqueue(f.queue.pool(), work(1).idempotency_key("k"))
        .await
        .unwrap();
    assert!(second.created);
    assert_ne!(second.job.id, first);
}

#[tokio::test]
async fn keys_are_scoped_to_their_tenant() {
    let f = fixture().await;
    let other = TenantId(uuid::Uuid::now_v7());
    sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, 'other')")
        .bind(other.0)
        .execute(f.queue.pool())
        .await
        .unwrap();
    let mine = f.enqueue(work(1).idempotency_key("k")).await;
    let mut theirs = work(1).idempotency_key("k");
    theirs.tenant_id = other;
    let theirs = f.queue.enqueue(f.queue.pool(), theirs).await.unwrap();
    assert!(theirs.created);
    assert_ne!(theirs.job.id, mine);
    assert!(
        f.queue.get(other, mine).await.unwrap().is_none(),
        "a tenant cannot read another's job"
    );
}

#[tokio::test]
async fn an_unknown_kind_is_a_typed_error_and_stores_nothing() {
    let f = fixture().await;
    let batch = vec![work(1), NewJob::raw(TenantId::DEFAULT, "nope", json!({}))];
    let err = f
        .queue
        .enqueue_batch(f.queue.pool(), batch)
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueueError::UnknownKind { ref kind } if kind == "nope"),
        "{err:?}"
    );
    assert_eq!(f.queue.stats(None).await.unwrap().queued_ready, 0);
}

#[tokio::test]
async fn a_malformed_payload_is_a_typed_error() {
    let f = fixture().await;
    let job = NewJob::raw(TenantId::DEFAULT, "work", json!({"n": "not a number"}));
    let err = f.queue.enqueue(f.queue.pool(), job).await.unwrap_err();
    match err {
        QueueError::InvalidPayload { kind, reason } => {
            assert_eq!(kind, "work");
            assert!(reason.contains("invalid type"), "{reason}");
        }
        other => panic!("expected InvalidPayload, got {other:?}"),
    }
}

#[tokio::test]
async fn out_of_range_options_are_rejected() {
    let f = fixture().await;
    for job in [
        work(1).priority(101),
        work(1).max_attempts(0),
        work(1).timeout(Duration::ZERO),
        work(1).idempotency_key(""),
        work(1).idempotency_key("x".repeat(256)),
    ] {
        let err = f
            .queue
            .enqueue(f.queue.pool(), job.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, QueueError::InvalidOption(_)),
            "{job:?} gave {err:?}"
        );
    }
}

#[tokio::test]
async fn one_statement_sends_one_notification_naming_its_kinds() {
    let f = fixture().await;
    let mut listener = PgListener::connect_with(f.queue.pool()).await.unwrap();
    listener.listen(JOBS_CHANNEL).await.unwrap();

    let mut batch: Vec<NewJob> = (0..100).map(work).collect();
    batch.push(NewJob::of::<Other>(TenantId::DEFAULT, &Other { text: "x".into() }).unwrap());
    f.queue.enqueue_batch(f.queue.pool(), batch).await.unwrap();
    // A delayed job is not announced: nobody can claim it yet.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    f.queue
        .enqueue(f.queue.pool(), work(1).run_at(later))
        .await
        .unwrap();
    // A marker sent after both statements committed: everything they sent
    // arrives before it.
    sqlx::query("SELECT pg_notify($1, 'marker')")
        .bind(JOBS_CHANNEL)
        .execute(f.queue.pool())
        .await
        .unwrap();

    let mut payloads = Vec::new();
    loop {
        let n = listener.recv().await.unwrap();
        if n.payload() == "marker" {
            break;
        }
        payloads.push(n.payload().to_owned());
    }
    assert_eq!(payloads, vec!["other,work".to_owned()]);
}
