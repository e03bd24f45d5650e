//! Fair share between tenants and the limits per tenant, driven claim by
//! claim: the order across tenants, priorities within one, max_running
//! under claims racing each other, max_queued at enqueue, and the
//! runnable count that scaling reads.

#![allow(clippy::unwrap_used)]

use std::{collections::HashMap, sync::Arc, time::Duration};

use crate::common::*;
use crunch_queue::{
    ClaimedJob, JobId, NewJob, Outcome, Queue, QueueError, TenantDefaults, TenantId, TenantLimits,
};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::Barrier;

/// A new tenant (its row, as the API's tenant management would make it).
async fn tenant(f: &Fixture, name: &str) -> TenantId {
    let id = TenantId(uuid::Uuid::now_v7());
    sqlx::query("INSERT INTO tenants (id, name) VALUES ($1, $2)")
        .bind(id.0)
        .bind(name)
        .execute(f.queue.pool())
        .await
        .unwrap();
    id
}

fn work_of(tenant: TenantId, n: u64) -> NewJob {
    NewJob::of::<Work>(
        tenant,
        &Work {
            n,
            behaviour: Behaviour::Double,
        },
    )
    .unwrap()
}

async fn fill(queue: &Queue, tenant: TenantId, n: u64) -> Vec<JobId> {
    queue
        .enqueue_batch(queue.pool(), (0..n).map(|i| work_of(tenant, i)).collect())
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.job.id)
        .collect()
}

async fn claim(queue: &Queue, limit: usize) -> Vec<ClaimedJob> {
    queue.claim("w", &kinds(), limit, LEASE).await.unwrap()
}

async fn succeed(queue: &Queue, job: &ClaimedJob) {
    let state = queue
        .finish(job.lease, Outcome::Succeeded(json!(null)))
        .await
        .unwrap();
    assert!(state.is_some(), "the lease was held");
}

/// Running jobs per tenant, as the table says.
async fn running(queue: &Queue) -> HashMap<TenantId, i64> {
    let rows: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "SELECT tenant_id, count(*) FROM jobs WHERE state = 'running' GROUP BY tenant_id",
    )
    .fetch_all(queue.pool())
    .await
    .unwrap();
    rows.into_iter().map(|(t, n)| (TenantId(t), n)).collect()
}

fn tenants_of(jobs: &[ClaimedJob]) -> Vec<TenantId> {
    jobs.iter().map(|j| j.tenant_id).collect()
}

#[tokio::test]
async fn a_tenant_behind_another_tenants_backlog_starts_at_the_next_free_slot() {
    let f = fixture().await;
    let a = tenant(&f, "a").await;
    let b = tenant(&f, "b").await;
    fill(&f.queue, a, 1000).await;
    // Four worker slots, all taken by A's backlog.
    let mut slots = claim(&f.queue, 4).await;
    assert_eq!(tenants_of(&slots), vec![a; 4]);
    fill(&f.queue, b, 10).await;

    // The next slot to free goes to B, not to A's 996 queued jobs.
    let first = slots.remove(0);
    succeed(&f.queue, &first).await;
    let next = claim(&f.queue, 1).await;
    assert_eq!(tenants_of(&next), vec![b]);
    slots.extend(next);

    // From then on the slots are shared: freeing the oldest slot each time,
    // B's ten jobs all start within twenty claims, while A keeps its half.
    let mut b_started = 1;
    let mut claims = 1;
    while b_started < 10 {
        let done = slots.remove(0);
        succeed(&f.queue, &done).await;
        let next = claim(&f.queue, 1).await;
        assert_eq!(next.len(), 1);
        if next[0].tenant_id == b {
            b_started += 1;
        }
        slots.extend(next);
        claims += 1;
        let counts = running(&f.queue).await;
        let (ra, rb) = (counts.get(&a).copied(), counts.get(&b).copied());
        assert!(
            ra.unwrap_or(0).abs_diff(rb.unwrap_or(0)) <= 2,
            "running A {ra:?}, B {rb:?}"
        );
    }
    assert!(claims <= 20, "B's jobs took {claims} claims to start");
    let stats = f.queue.stats(Some(a)).await.unwrap();
    assert!(stats.queued_ready > 980, "{stats:?}");

    // Four slots freeing at once are shared two and two.
    let f2 = fixture().await;
    let a = tenant(&f2, "a").await;
    let b = tenant(&f2, "b").await;
    fill(&f2.queue, a, 1000).await;
    let slots = claim(&f2.queue, 4).await;
    fill(&f2.queue, b, 10).await;
    for job in &slots {
        succeed(&f2.queue, job).await;
    }
    let next = claim(&f2.queue, 4).await;
    let to_b = next.iter().filter(|j| j.tenant_id == b).count();
    assert_eq!((next.len(), to_b), (4, 2));
}

#[tokio::test]
async fn priorities_order_jobs_within_a_tenant_but_not_across_tenants() {
    let f = fixture().await;
    let a = tenant(&f, "a").await;
    let b = tenant(&f, "b").await;
    let low = f.enqueue(work_of(a, 1).priority(-5)).await;
    let mid = f.enqueue(work_of(a, 2)).await;
    let high = f.enqueue(work_of(a, 3).priority(50)).await;
    let urgent = f.enqueue(work_of(a, 4).priority(100)).await;
    // B's only job is the least urgent of all, and arrives last.
    let b_job = f.enqueue(work_of(b, 5).priority(-100)).await;

    let first = claim(&f.queue, 2).await;
    let mut ids: Vec<JobId> = first.iter().map(|j| j.lease.id).collect();
    ids.sort();
    let mut expected = vec![urgent, b_job];
    expected.sort();
    assert_eq!(ids, expected, "one each: A's most urgent and B's");

    let rest: Vec<JobId> = claim(&f.queue, 10)
        .await
        .iter()
        .map(|j| j.lease.id)
        .collect();
    assert_eq!(rest, vec![high, mid, low]);
}

#[tokio::test]
async fn tenants_with_equally_few_running_take_turns() {
    let f = fixture().await;
    let mut tenants = Vec::new();
    for name in ["a", "b", "c"] {
        let t = tenant(&f, name).await;
        fill(&f.queue, t, 5).await;
        tenants.push(t);
    }
    // One slot: each job finishes before the next claim, so every tenant
    // always has none running and only the turn decides.
    let mut served: HashMap<TenantId, usize> = HashMap::new();
    for _ in 0..9 {
        let job = claim(&f.queue, 1).await;
        assert_eq!(job.len(), 1);
        *served.entry(job[0].tenant_id).or_default() += 1;
        succeed(&f.queue, &job[0]).await;
    }
    for t in &tenants {
        assert_eq!(served.get(t), Some(&3), "{served:?}");
    }
}

#[tokio::test]
async fn a_claim_wider_than_a_tenants_queue_gives_the_rest_to_the_others() {
    let f = fixture().await;
    let a = tenant(&f, "a").await;
    let b = tenant(&f, "b").await;
    fill(&f.queue, a, 20).await;
    let held = claim(&f.queue, 3).await;
    assert_eq!(tenants_of(&held), vec![a; 3]);
    // B has one job and nothing running: it would be owed all three slots.
    fill(&f.queue, b, 1).await;
    let next = claim(&f.queue, 3).await;
    let to_b = next.iter().filter(|j| j.tenant_id == b).count();
    assert_eq!((next.len(), to_b), (3, 1));
}

/// A queue over a pool of its own, with every connection opened, so that
/// the claims racing on it each run on a connection of their own.
async fn racing_queue(f: &Fixture, connections: u32) -> Queue {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .connect(f.db.url())
        .await
        .unwrap();
    let mut open = Vec::new();
    for _ in 0..connections {
        open.push(pool.acquire().await.unwrap());
    }
    drop(open);
    f.queue.with_pool(pool)
}

/// `claimers` claims of up to `limit` jobs each, released at the same
/// instant; all the jobs they took.
async fn race(queue: &Queue, claimers: usize, limit: usize) -> Vec<ClaimedJob> {
    let barrier = Arc::new(Barrier::new(claimers));
    let tasks: Vec<_> = (0..claimers)
        .map(|i| {
            let queue = queue.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                queue
                    .claim(&format!("w{i}"), &kinds(), limit, LEASE)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_running_holds_exactly_when_many_workers_claim_at_once() {
    let f = fixture().await;
    let a = tenant(&f, "a").await;
    let b = tenant(&f, "b").await;
    let free = tenant(&f, "free").await;
    f.queue
        .set_tenant_limits(
            a,
            TenantLimits {
                max_running: Some(3),
                ..TenantLimits::default()
            },
        )
        .await
        .unwrap();
    // B has no limit of its own: the workers' default of 2 holds it. The
    // third tenant is exempt from the default by a larger limit of its own.
    f.queue
        .set_tenant_limits(
            free,
            TenantLimits {
                max_running: Some(1000),
                ..TenantLimits::default()
            },
        )
        .await
        .unwrap();
    for t in [a, b, free] {
        fill(&f.queue, t, 40).await;
    }
    let queue = racing_queue(&f, 16)
        .await
        .with_tenant_defaults(TenantDefaults {
            max_running: Some(2),
            max_queued: None,
        });

    for round in 0..3 {
        let taken = race(&queue, 16, 4).await;
        let counts = running(&queue).await;
        assert_eq!(counts.get(&a), Some(&3), "round {round}: {counts:?}");
        assert_eq!(counts.get(&b), Some(&2), "round {round}: {counts:?}");
        let ids: std::collections::HashSet<_> = taken.iter().map(|j| j.lease.id).collect();
        assert_eq!(ids.len(), taken.len(), "no job claimed twice");
        // Everyone at a limit: nothing more for A or B until jobs finish.
        let more = claim(&queue, 10).await;
        assert!(
            more.iter().all(|j| j.tenant_id == free),
            "round {round}: {:?}",
            tenants_of(&more)
        );
        // Finish two of A's and one of B's running jobs: exactly that much
        // room opens for the next round.
        let held: Vec<(uuid::Uuid, i32, uuid::Uuid)> = sqlx::query_as(
            "SELECT id, attempt, tenant_id FROM jobs WHERE state = 'running' AND tenant_id <> $1 ORDER BY id",
        )
        .bind(free.0)
        .fetch_all(queue.pool())
        .await
        .unwrap();
        let a_jobs = held.iter().filter(|h| h.2 == a.0).take(2);
        let b_jobs = held.iter().filter(|h| h.2 == b.0).take(1);
        for (id, attempt, _) in a_jobs.chain(b_jobs) {
            let lease = crunch_queue::Lease {
                id: JobId(*id),
                attempt: *attempt,
            };
            queue
                .finish(lease, Outcome::Succeeded(json!(null)))
                .await
                .unwrap();
        }
        let counts = running(&queue).await;
        assert_eq!((counts.get(&a), counts.get(&b)), (Some(&1), Some(&1)));
    }
    // After three rounds A and B have each finished what they ran; the rest
    // of their jobs are still there to claim.
    let stats = queue.stats(Some(a)).await.unwrap();
    assert_eq!(stats.queued_ready, 40 - 3 - 2 * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_after_a_call_passes_over_a_tenant_another_claimer_holds() {
    let f = fixture().await;
    let a = tenant(&f, "a").await;
    let b = tenant(&f, "b").await;
    f.queue
        .set_tenant_limits(
            a,
            TenantLimits {
                max_running: Some(1),
                ..TenantLimits::default()
            },
        )
        .await
        .unwrap();
    fill(&f.queue, a, 5).await;
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
            queue.claim_after("a1", &kinds(), 2, LEASE, before).await
        }
    });
    entered.await.unwrap();
    // A's lock is held for the call: another protected claim does not wait
    // behind it; it takes B's job instead.
    fill(&f.queue, b, 1).await;
    let other = f
        .queue
        .claim_after("a2", &kinds(), 2, LEASE, async { Ok(()) })
        .await
        .unwrap();
    assert_eq!(tenants_of(&other), vec![b]);
    release.send(()).unwrap();
    let claimed = first.await.unwrap().unwrap();
    assert_eq!(tenants_of(&claimed), vec![a], "one: A's limit");
    // A is at its limit; the claim under the lock saw the first one's job.
    assert!(claim(&f.queue, 5).await.is_empty());
    succeed(&f.queue, &claimed[0]).await;
    assert_eq!(tenants_of(&claim(&f.queue, 5).await), vec![a]);
}

#[tokio::test]
async fn max_queued_refuses_a_submit_past_it_and_accepts_again_once_jobs_leave() {
    let f = fixture().await;
    let a = tenant(&f, "a").await;
    f.queue
        .set_tenant_limits(
            a,
            TenantLimits {
                max_queued: Some(5),
                ..TenantLimits::default()
            },
        )
        .await
        .unwrap();
    fill(&f.queue, a, 2).await;
    f.enqueue(work_of(a, 9).idempotency_key("k")).await;
    // 3 queued; a batch of 3 would make 6.
    let refused = f
        .queue
        .enqueue_batch(f.queue.pool(), (0..3).map(|i| work_of(a, i)).collect())
        .await;
    match refused {
        Err(QueueError::QueueFull {
            tenant,
            limit,
            retry_after,
        }) => {
            assert_eq!((tenant, limit), (a, 5));
            assert!(retry_after > Duration::ZERO);
        }
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert_eq!(f.queue.stats(Some(a)).await.unwrap().queued_ready, 3);
    // The ids-only enqueue refuses alike.
    assert!(matches!(
        f.queue
            .enqueue_batch_ids(f.queue.pool(), (0..3).map(|i| work_of(a, i)).collect())
            .await,
        Err(QueueError::QueueFull { limit: 5, .. })
    ));
    // Two fit exactly.
    fill(&f.queue, a, 2).await;
    assert!(matches!(
        f.queue.enqueue(f.queue.pool(), work_of(a, 7)).await,
        Err(QueueError::QueueFull { .. })
    ));
    // At the limit, a retried submit still gets its job back.
    let again = f
        .queue
        .enqueue(f.queue.pool(), work_of(a, 9).idempotency_key("k"))
        .await
        .unwrap();
    assert!(!again.created);
    // Jobs that start leave the queue: room for two more.
    assert_eq!(tenants_of(&claim(&f.queue, 2).await), vec![a; 2]);
    fill(&f.queue, a, 2).await;
    // Other tenants are not held by A's limit.
    f.enqueue(work(1)).await;
    assert_eq!(f.queue.stats(Some(a)).await.unwrap().queued_ready, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_queued_holds_exactly_when_many_clients_submit_at_once() {
    let f = fixture().await;
    let queue = racing_queue(&f, 12)
        .await
        .with_tenant_defaults(TenantDefaults {
            max_running: None,
            max_queued: Some(7),
        });
    let barrier = Arc::new(Barrier::new(12));
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let queue = queue.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                queue.enqueue(queue.pool(), work(i)).await
            })
        })
        .collect();
    let (mut accepted, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(QueueError::QueueFull { limit: 7, .. }) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((accepted, refused), (7, 5));
    assert_eq!(queue.stats(None).await.unwrap().queued_ready, 7);
}

#[tokio::test]
async fn ids_only_batches_resolve_keys_like_full_ones() {
    let f = fixture().await;
    let existing = f.enqueue(work(1).idempotency_key("k1")).await;
    let jobs = vec![
        work(2),
        work(3).idempotency_key("k1"),
        work(4).idempotency_key("k2"),
        work(5).idempotency_key("k2"),
    ];
    let sent: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let got = f
        .queue
        .enqueue_batch_ids(f.queue.pool(), jobs)
        .await
        .unwrap();
    let answer: Vec<(JobId, bool)> = got.iter().map(|e| (e.id, e.created)).collect();
    assert_eq!(
        answer,
        vec![
            (sent[0], true),
            (existing, false),
            (sent[2], true),
            (sent[2], false),
        ]
    );
    assert_eq!(f.queue.stats(None).await.unwrap().queued_ready, 3);
    assert_eq!(f.job(sent[2]).await.payload["n"], 4);

    // A batch without keys is a plain insert; every job is new.
    let jobs: Vec<NewJob> = (10..15).map(work).collect();
    let sent: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let got = f
        .queue
        .enqueue_batch_ids(f.queue.pool(), jobs)
        .await
        .unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), sent);
    assert!(got.iter().all(|e| e.created));
    assert_eq!(f.job(sent[4]).await.payload["n"], 14);
    assert_eq!(f.queue.stats(None).await.unwrap().queued_ready, 8);
}

#[tokio::test]
async fn runnable_counts_only_jobs_the_limits_let_start() {
    let f = fixture().await;
    let a = tenant(&f, "a").await;
    let b = tenant(&f, "b").await;
    let c = tenant(&f, "c").await;
    f.queue
        .set_tenant_limits(
            a,
            TenantLimits {
                max_running: Some(2),
                ..TenantLimits::default()
            },
        )
        .await
        .unwrap();
    fill(&f.queue, a, 6).await;
    fill(&f.queue, b, 3).await;
    fill(&f.queue, c, 4).await;
    // A job due later is queued but not runnable.
    f.enqueue(work_of(b, 99).run_at(chrono::Utc::now() + chrono::Duration::hours(1)))
        .await;
    let queue = f.queue.clone().with_tenant_defaults(TenantDefaults {
        max_running: Some(3),
        max_queued: None,
    });
    let stats = queue.stats(None).await.unwrap();
    // A: 2 of its 6 (its own limit); B: 3 (under the default); C: 3 of 4.
    assert_eq!((stats.queued_ready, stats.runnable), (13, 8));
    assert_eq!(stats.backlog(), 8);

    // One of A's running leaves it one more; C's default room shrinks too.
    claim(&queue, 2).await;
    let stats = queue.stats(None).await.unwrap();
    assert_eq!(stats.running, 2);
    assert_eq!(stats.runnable + stats.running, stats.backlog());
    let per: Vec<i64> = {
        let mut v = Vec::new();
        for t in [a, b, c] {
            v.push(queue.stats(Some(t)).await.unwrap().runnable);
        }
        v
    };
    let running_now = running(&queue).await;
    let room = |t: TenantId, limit: i64, ready: i64| {
        ready.min(limit - running_now.get(&t).copied().unwrap_or(0))
    };
    let ready = |t: TenantId, total: i64| total - running_now.get(&t).copied().unwrap_or(0);
    assert_eq!(
        per,
        vec![
            room(a, 2, ready(a, 6)),
            room(b, 3, ready(b, 3)),
            room(c, 3, ready(c, 4)),
        ]
    );
    // Without any limit every ready job is runnable.
    f.queue
        .set_tenant_limits(a, TenantLimits::default())
        .await
        .unwrap();
    let unlimited = f.queue.stats(None).await.unwrap();
    assert_eq!(unlimited.runnable, unlimited.queued_ready);
}

#[tokio::test]
async fn limits_are_set_read_and_cleared_per_tenant() {
    let f = fixture().await;
    let a = tenant(&f, "a").await;
    assert_eq!(
        f.queue.tenant_limits(a).await.unwrap(),
        Some(TenantLimits::default())
    );
    let limits = TenantLimits {
        max_running: Some(4),
        max_queued: Some(100),
        storage_quota_bytes: Some(5 << 30),
    };
    assert!(f.queue.set_tenant_limits(a, limits).await.unwrap());
    assert_eq!(f.queue.tenant_limits(a).await.unwrap(), Some(limits));
    assert!(
        f.queue
            .set_tenant_limits(a, TenantLimits::default())
            .await
            .unwrap()
    );
    assert_eq!(
        f.queue.tenant_limits(a).await.unwrap(),
        Some(TenantLimits::default())
    );
    let zero = TenantLimits {
        max_queued: Some(0),
        ..TenantLimits::default()
    };
    assert!(matches!(
        f.queue.set_tenant_limits(a, zero).await,
        Err(QueueError::InvalidOption(_))
    ));
    let stranger = TenantId(uuid::Uuid::now_v7());
    assert!(!f.queue.set_tenant_limits(stranger, limits).await.unwrap());
    assert_eq!(f.queue.tenant_limits(stranger).await.unwrap(), None);
}
