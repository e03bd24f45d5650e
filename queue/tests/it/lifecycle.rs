//! Every state transition, driven step by step: claim, heartbeat, finish,
//! cancel, rescue and prune, and the fencing that makes stale workers
//! harmless.

use std::{
    collections::HashSet,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use crate::common::*;
use crunch_queue::{
    Cancel, JobState, Lease, Maintenance, NewJob, Outcome, Progress, ProtectionError, QueueError,
    TenantId,
};
use serde_json::json;

fn retry_in(d: Duration) -> Outcome {
    Outcome::Failed {
        error: "boom".into(),
        retry_in: Some(d),
    }
}

#[tokio::test]
async fn a_claim_moves_a_job_to_running_bumps_the_attempt_and_sets_the_lease() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    let claimed = f.claim_one("w1").await;
    assert_eq!(claimed.lease, Lease { id, attempt: 1 });
    let job = f.job(id).await;
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.attempt, 1);
    assert_eq!(job.worker_id.as_deref(), Some("w1"));
    let lease = job.lease_expires_at.unwrap() - job.started_at.unwrap();
    assert_eq!(lease.num_seconds(), LEASE.as_secs() as i64);
    assert_eq!(claimed.lease_expires_at, job.lease_expires_at.unwrap());
}

#[tokio::test]
async fn a_claim_takes_at_most_its_limit_highest_priority_first() {
    let f = fixture().await;
    let low = f.enqueue(work(1).priority(-5)).await;
    let mid = f.enqueue(work(2)).await;
    let high = f.enqueue(work(3).priority(50)).await;
    let claimed = f.queue.claim("w", &kinds(), 2, LEASE).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.lease.id).collect::<Vec<_>>(),
        vec![high, mid]
    );
    let rest = f.queue.claim("w", &kinds(), 10, LEASE).await.unwrap();
    assert_eq!(
        rest.iter().map(|c| c.lease.id).collect::<Vec<_>>(),
        vec![low]
    );
}

#[tokio::test]
async fn a_claim_skips_other_kinds_and_jobs_not_yet_due() {
    let f = fixture().await;
    f.enqueue(NewJob::of::<Other>(TenantId::DEFAULT, &Other { text: "x".into() }).unwrap())
        .await;
    f.enqueue(work(1).run_at(chrono::Utc::now() + chrono::Duration::minutes(5)))
        .await;
    assert!(
        f.queue
            .claim("w", &kinds(), 10, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    let stats = f.queue.stats(None).await.unwrap();
    assert_eq!((stats.queued_ready, stats.queued_waiting), (1, 1));
}

#[tokio::test]
async fn concurrent_claims_never_take_the_same_job() {
    let f = fixture().await;
    f.queue
        .enqueue_batch(f.queue.pool(), (0..400).map(work).collect())
        .await
        .unwrap();
    let claims = (0..8).map(|i| {
        let queue = f.queue.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = queue
                    .claim(&format!("w{i}"), &kinds(), 7, LEASE)
                    .await
                    .unwrap();
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got.into_iter().map(|c| c.lease.id));
            }
        })
    });
    let mut all = Vec::new();
    for claim in claims {
        all.extend(claim.await.unwrap());
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), 400);
    assert_eq!(distinct.len(), 400);
}

/// What `claim_after` awaited, for the tests that count it.
async fn counted(calls: &AtomicUsize) -> Result<(), QueueError> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test]
async fn a_claim_after_a_call_holds_its_job_for_the_call_so_other_workers_make_none() {
    let f = fixture().await;
    let calls = AtomicUsize::new(0);
    // Nothing waits: no call.
    let none = f
        .queue
        .claim_after("idle", &kinds(), 1, LEASE, counted(&calls))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let id = f.enqueue(work(1)).await;
    let (inside, entered) = tokio::sync::oneshot::channel();
    let (release, go) = tokio::sync::oneshot::channel::<()>();
    let first = tokio::spawn({
        let queue = f.queue.clone();
        async move {
            let before = async move {
                let _ = inside.send(());
                let _ = go.await;
                Ok(())
            };
            queue.claim_after("a", &kinds(), 1, LEASE, before).await
        }
    });
    entered.await.unwrap();
    // While "a" is in its call, the job is locked for it: other workers
    // find nothing and call nothing, whether they claim after a call or not.
    for worker in ["b", "c"] {
        let got = f
            .queue
            .claim_after(worker, &kinds(), 1, LEASE, counted(&calls))
            .await
            .unwrap();
        assert!(got.is_empty());
    }
    assert!(
        f.queue
            .claim("d", &kinds(), 1, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(f.job(id).await.state, JobState::Queued);
    // A more urgent job arriving meanwhile does not displace the one "a"
    // asked for: the claim takes exactly what it locked.
    let urgent = f.enqueue(work(2).priority(10)).await;
    release.send(()).unwrap();
    let claimed = first.await.unwrap().unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease, Lease { id, attempt: 1 });
    let job = f.job(id).await;
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.worker_id.as_deref(), Some("a"));
    assert_eq!(f.job(urgent).await.state, JobState::Queued);
}

#[tokio::test]
async fn a_claim_whose_call_fails_takes_nothing_and_leaves_the_job_to_the_next_worker() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    let refused = f
        .queue
        .claim_after("old", &kinds(), 1, LEASE, async {
            Err(QueueError::Unprotected(ProtectionError(
                "DEPLOYMENT_BLOCKED".into(),
            )))
        })
        .await;
    assert!(
        matches!(&refused, Err(QueueError::Unprotected(e)) if e.0 == "DEPLOYMENT_BLOCKED"),
        "{refused:?}"
    );
    let job = f.job(id).await;
    assert_eq!((job.state, job.attempt), (JobState::Queued, 0));
    assert_eq!(job.worker_id, None);

    let calls = AtomicUsize::new(0);
    let claimed = f
        .queue
        .claim_after("new", &kinds(), 1, LEASE, counted(&calls))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease, Lease { id, attempt: 1 });
}

#[tokio::test]
async fn success_records_the_result_and_finishes_the_job() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    let c = f.claim_one("w").await;
    let state = f
        .queue
        .finish(c.lease, Outcome::Succeeded(json!({"rows": 3})))
        .await
        .unwrap();
    assert_eq!(state, Some(JobState::Succeeded));
    let job = f.job(id).await;
    assert_eq!(job.result, Some(json!({"rows": 3})));
    assert_eq!(job.progress, Some(1.0));
    assert!(job.finished_at.is_some());
    assert!(job.lease_expires_at.is_none());
}

#[tokio::test]
async fn a_retryable_failure_requeues_after_its_backoff_until_attempts_run_out() {
    let f = fixture().await;
    let id = f.enqueue(work(1).max_attempts(2)).await;

    let c = f.claim_one("w").await;
    let state = f
        .queue
        .finish(c.lease, retry_in(Duration::from_secs(600)))
        .await
        .unwrap();
    assert_eq!(state, Some(JobState::Queued));
    let job = f.job(id).await;
    assert_eq!(job.error.as_deref(), Some("boom"));
    let (now,): (chrono::DateTime<chrono::Utc>,) = sqlx::query_as("SELECT now()")
        .fetch_one(f.queue.pool())
        .await
        .unwrap();
    let wait = job.run_at - now;
    assert!(
        wait > chrono::Duration::seconds(590) && wait <= chrono::Duration::seconds(600),
        "run_at should be the backoff away, is {wait}"
    );
    assert!(
        f.queue
            .claim("w", &kinds(), 1, LEASE)
            .await
            .unwrap()
            .is_empty(),
        "not due yet"
    );

    // Make it due now, as if the backoff had passed.
    sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1")
        .bind(id.0)
        .execute(f.queue.pool())
        .await
        .unwrap();
    let c = f.claim_one("w").await;
    assert_eq!(c.lease.attempt, 2);
    let state = f
        .queue
        .finish(c.lease, retry_in(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(state, Some(JobState::Failed), "no attempts left");
    assert!(f.job(id).await.finished_at.is_some());
}

#[tokio::test]
async fn a_fatal_failure_fails_at_once_whatever_attempts_remain() {
    let f = fixture().await;
    let id = f.enqueue(work(1).max_attempts(10)).await;
    let c = f.claim_one("w").await;
    let outcome = Outcome::Failed {
        error: "bad input".into(),
        retry_in: None,
    };
    assert_eq!(
        f.queue.finish(c.lease, outcome).await.unwrap(),
        Some(JobState::Failed)
    );
    assert_eq!(f.job(id).await.error.as_deref(), Some("bad input"));
}

#[tokio::test]
async fn cancelling_a_queued_job_is_immediate() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    assert_eq!(
        f.queue.cancel(TenantId::DEFAULT, id).await.unwrap(),
        Cancel::Cancelled
    );
    let job = f.job(id).await;
    assert_eq!(job.state, JobState::Cancelled);
    assert!(job.finished_at.is_some());
    assert!(
        f.queue
            .claim("w", &kinds(), 1, LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.queue.cancel(TenantId::DEFAULT, id).await.unwrap(),
        Cancel::AlreadyFinished(JobState::Cancelled)
    );
}

#[tokio::test]
async fn cancelling_a_running_job_asks_its_worker_and_the_heartbeat_tells_it() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    let c = f.claim_one("w").await;
    assert_eq!(
        f.queue.cancel(TenantId::DEFAULT, id).await.unwrap(),
        Cancel::Requested
    );
    assert_eq!(f.job(id).await.state, JobState::Running);
    let renewed = f.queue.heartbeat(&[(c.lease, None)], LEASE).await.unwrap();
    assert_eq!(renewed.len(), 1);
    assert!(renewed[0].cancel_requested);
    let state = f.queue.finish(c.lease, Outcome::Cancelled).await.unwrap();
    assert_eq!(state, Some(JobState::Cancelled));
}

#[tokio::test]
async fn a_requested_cancel_wins_over_a_retry() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    let c = f.claim_one("w").await;
    f.queue.cancel(TenantId::DEFAULT, id).await.unwrap();
    let state = f
        .queue
        .finish(c.lease, retry_in(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(state, Some(JobState::Cancelled));
}

#[tokio::test]
async fn cancelling_an_unknown_or_foreign_job_finds_nothing() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    let stranger = TenantId(uuid::Uuid::now_v7());
    assert_eq!(
        f.queue.cancel(stranger, id).await.unwrap(),
        Cancel::NotFound
    );
    assert_eq!(
        f.queue
            .cancel(TenantId::DEFAULT, crunch_queue::JobId::new())
            .await
            .unwrap(),
        Cancel::NotFound
    );
    assert_eq!(f.job(id).await.state, JobState::Queued);
}

#[tokio::test]
async fn a_release_requeues_without_counting_the_attempt() {
    let f = fixture().await;
    let id = f.enqueue(work(1).max_attempts(1)).await;
    let c = f.claim_one("w").await;
    let state = f.queue.finish(c.lease, Outcome::Released).await.unwrap();
    assert_eq!(state, Some(JobState::Queued));
    let job = f.job(id).await;
    assert_eq!((job.attempt, job.max_attempts), (1, 2));
    let c = f.claim_one("w2").await;
    assert_eq!(
        c.lease.attempt, 2,
        "the attempt number still rises: it is the fencing token"
    );
    assert_eq!(
        f.queue
            .finish(c.lease, Outcome::Succeeded(json!(null)))
            .await
            .unwrap(),
        Some(JobState::Succeeded)
    );
}

#[tokio::test]
async fn heartbeats_extend_the_lease_and_write_progress() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    let c = f.claim_one("w").await;
    let before = f.job(id).await.lease_expires_at.unwrap();
    let progress = Progress {
        fraction: 0.25,
        message: Some("scanning".into()),
    };
    let renewed = f
        .queue
        .heartbeat(&[(c.lease, Some(progress))], Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(renewed[0].lease, c.lease);
    assert!(!renewed[0].cancel_requested);
    let job = f.job(id).await;
    assert!(job.lease_expires_at.unwrap() - before > chrono::Duration::minutes(59));
    assert_eq!(job.progress, Some(0.25));
    assert_eq!(job.progress_message.as_deref(), Some("scanning"));

    // A heartbeat without news keeps the last progress.
    f.queue.heartbeat(&[(c.lease, None)], LEASE).await.unwrap();
    assert_eq!(
        f.job(id).await.progress_message.as_deref(),
        Some("scanning")
    );
}

#[tokio::test]
async fn a_worker_whose_lease_was_taken_over_changes_nothing() {
    let f = fixture().await;
    let id = f.enqueue(work(1)).await;
    let stale = f.claim_one("old").await.lease;
    f.expire_leases().await;
    let rescued = f.queue.rescue_expired(100).await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!(rescued[0].state, JobState::Queued);
    let fresh = f.claim_one("new").await.lease;
    assert_eq!(fresh.attempt, stale.attempt + 1);
    let before = f.job(id).await;

    // Every write the old worker could make is fenced out.
    let p = Progress {
        fraction: 0.9,
        message: Some("stale".into()),
    };
    assert!(!f.queue.set_progress(stale, &p).await.unwrap());
    assert!(
        f.queue
            .heartbeat(&[(stale, Some(p))], LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        f.queue
            .finish(stale, Outcome::Succeeded(json!("stale")))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        f.queue
            .finish(stale, retry_in(Duration::ZERO))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        f.queue.finish(stale, Outcome::Released).await.unwrap(),
        None
    );
    assert_eq!(
        f.job(id).await,
        before,
        "the new attempt's row is untouched"
    );

    // The new attempt's writes land.
    assert_eq!(
        f.queue
            .finish(fresh, Outcome::Succeeded(json!("fresh")))
            .await
            .unwrap(),
        Some(JobState::Succeeded)
    );
    // And once finished, the old lease still cannot overwrite the result.
    assert_eq!(
        f.queue
            .finish(stale, Outcome::Succeeded(json!("stale")))
            .await
            .unwrap(),
        None
    );
    assert_eq!(f.job(id).await.result, Some(json!("fresh")));
}

#[tokio::test]
async fn the_rescuer_fails_a_job_whose_attempts_are_used_up_with_a_clear_error() {
    let f = fixture().await;
    let id = f.enqueue(work(1).max_attempts(2)).await;
    for attempt in 1..=2 {
        let c = f.claim_one(&format!("doomed-{attempt}")).await;
        assert_eq!(c.lease.attempt, attempt);
        f.expire_leases().await;
        let rescued = Maintenance::default().rescue(&f.queue).await.unwrap();
        let expected = if attempt < 2 {
            JobState::Queued
        } else {
            JobState::Failed
        };
        assert_eq!(rescued.len(), 1);
        assert_eq!(rescued[0].state, expected);
    }
    let job = f.job(id).await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.unwrap();
    assert!(error.contains("attempt 2 of 2 lost its lease"), "{error}");
    assert!(error.contains("doomed-2"), "{error}");
    assert!(error.contains("no attempts left"), "{error}");
}

#[tokio::test]
async fn the_rescuer_leaves_live_leases_alone_and_ends_cancelled_ones() {
    let f = fixture().await;
    let live = f.enqueue(work(1)).await;
    f.claim_one("alive").await;
    assert!(f.queue.rescue_expired(100).await.unwrap().is_empty());
    assert_eq!(f.job(live).await.state, JobState::Running);

    let id = f.enqueue(work(2)).await;
    f.claim_one("dead").await;
    f.queue.cancel(TenantId::DEFAULT, id).await.unwrap();
    sqlx::query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id.0)
        .execute(f.queue.pool())
        .await
        .unwrap();
    let rescued = f.queue.rescue_expired(100).await.unwrap();
    assert_eq!(rescued.len(), 1);
    assert_eq!((rescued[0].id, rescued[0].state), (id, JobState::Cancelled));
    assert_eq!(f.job(live).await.state, JobState::Running);
}

#[tokio::test]
async fn pruning_deletes_only_finished_jobs_past_retention_in_batches() {
    let f = fixture().await;
    let jobs: Vec<NewJob> = (0..25).map(work).collect();
    f.queue.enqueue_batch(f.queue.pool(), jobs).await.unwrap();
    let claimed = f.queue.claim("w", &kinds(), 20, LEASE).await.unwrap();
    let done: Vec<_> = claimed[..15]
        .iter()
        .map(|c| (c.lease, Outcome::Succeeded(json!(null))))
        .collect();
    f.queue.finish_batch(&done).await.unwrap();
    // Ten of the fifteen finished long ago.
    sqlx::query(
        "UPDATE jobs SET finished_at = now() - interval '8 days'
         WHERE id IN (SELECT id FROM jobs WHERE state = 'succeeded' ORDER BY id LIMIT 10)",
    )
    .execute(f.queue.pool())
    .await
    .unwrap();
    // A process without a retention (a worker) leaves them.
    let rescue_only = Maintenance {
        retention: None,
        ..Maintenance::default()
    };
    assert_eq!(rescue_only.prune(&f.queue).await.unwrap(), 0);
    let maintenance = Maintenance {
        batch: 3,
        ..Maintenance::default()
    };
    assert_eq!(maintenance.prune(&f.queue).await.unwrap(), 10);
    let stats = f.queue.stats(None).await.unwrap();
    assert_eq!(
        (stats.succeeded, stats.running, stats.queued_ready),
        (5, 5, 5)
    );
}

#[tokio::test]
async fn statistics_count_states_age_and_workers() {
    let f = fixture().await;
    f.queue
        .enqueue_batch(f.queue.pool(), (0..6).map(work).collect())
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET run_at = now() - interval '90 seconds'")
        .execute(f.queue.pool())
        .await
        .unwrap();
    let a = f.queue.claim("a", &kinds(), 2, LEASE).await.unwrap();
    f.queue.claim("b", &kinds(), 1, LEASE).await.unwrap();
    f.queue
        .finish(a[0].lease, Outcome::Succeeded(json!(1)))
        .await
        .unwrap();
    let stats = f.queue.stats(None).await.unwrap();
    assert_eq!(stats.queued_ready, 3);
    assert_eq!(stats.running, 2);
    assert_eq!(stats.succeeded, 1);
    assert_eq!(stats.finished_last_minute.succeeded, 1);
    assert_eq!(stats.backlog(), 5);
    assert!(
        stats.oldest_queued_age >= Duration::from_secs(89),
        "{:?}",
        stats.oldest_queued_age
    );
    let loads: Vec<(String, i64)> = stats
        .running_by_worker
        .iter()
        .map(|w| (w.worker_id.clone(), w.running))
        .collect();
    assert_eq!(loads, vec![("a".to_owned(), 1), ("b".to_owned(), 1)]);

    let stranger = TenantId(uuid::Uuid::now_v7());
    assert_eq!(f.queue.stats(Some(stranger)).await.unwrap().backlog(), 0);
}
