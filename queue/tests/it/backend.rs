//! The apalis backend end to end: real apalis workers run handlers against
//! the table, with leases, retries, timeouts, panics, cancellation, draining
//! and slot limits.

#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::*;
use apalis::prelude::{Data, WorkerBuilder, WorkerError};
use crunch_queue::{
    Backoff, JobContext, JobFailure, JobId, JobState, NewJob, PgBackend, Protection,
    ProtectionError, Queue, TenantId, WorkerConfig, WorkerHandle,
};
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::{sync::oneshot, task::JoinHandle};

/// What handlers saw, for assertions.
#[derive(Clone, Default)]
struct Probe {
    runs: Arc<Mutex<HashMap<JobId, u32>>>,
    running: Arc<AtomicUsize>,
    max_running: Arc<AtomicUsize>,
}

async fn handler(
    job: Work,
    ctx: JobContext,
    probe: Data<Probe>,
    worker: Data<WorkerHandle>,
) -> Result<u64, JobFailure> {
    *probe.runs.lock().unwrap().entry(ctx.id()).or_default() += 1;
    let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
    probe.max_running.fetch_max(now, Ordering::SeqCst);
    // Counts down even when the handler is dropped mid-flight (cancelled).
    let _running = Decrement(probe.running.clone());
    run(job, &ctx, &worker).await
}

struct Decrement(Arc<AtomicUsize>);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run(job: Work, ctx: &JobContext, worker: &WorkerHandle) -> Result<u64, JobFailure> {
    match job.behaviour {
        Behaviour::Double => {
            // Let other jobs start, so slot limits are exercised.
            tokio::task::yield_now().await;
            Ok(job.n * 2)
        }
        Behaviour::FailTimes(times) if ctx.attempt() <= times => Err(JobFailure::retry(format!(
            "planned failure {}",
            ctx.attempt()
        ))),
        Behaviour::FailTimes(_) => Ok(job.n * 2),
        Behaviour::Fatal => Err(JobFailure::fatal("this input can never work")),
        Behaviour::Panic => panic!("handler exploded on {}", job.n),
        Behaviour::Hang => {
            ctx.progress(0.5, Some("hanging"));
            std::future::pending().await
        }
        Behaviour::SpinForHeartbeats(rounds) => {
            // Blocks this runtime's only thread: nothing else on it runs
            // until the loop ends. Only a heartbeat on another thread can
            // move the counter.
            let start = worker.heartbeats();
            let give_up = Instant::now() + Duration::from_secs(60);
            while worker.heartbeats() < start + rounds {
                assert!(
                    Instant::now() < give_up,
                    "heartbeats stopped while the handler blocked"
                );
                std::hint::spin_loop();
            }
            Ok(job.n)
        }
    }
}

struct Running {
    handle: WorkerHandle,
    stop: oneshot::Sender<()>,
    join: JoinHandle<Result<(), WorkerError>>,
}

impl Running {
    async fn stop(self) {
        drop(self.stop);
        self.join.await.unwrap().unwrap();
    }
}

fn fast(name: &str) -> WorkerConfig {
    WorkerConfig::new(name)
        .heartbeat_interval(Duration::from_millis(50))
        .poll_interval(Duration::from_millis(50))
        .backoff(Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_millis(1),
        })
}

fn start(queue: &Queue, config: WorkerConfig, probe: &Probe) -> Running {
    let name = config.worker_id().to_owned();
    let backend = PgBackend::for_kind::<Work>(queue.clone(), config);
    let handle = backend.handle();
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = WorkerBuilder::new(name.as_str())
        .backend(backend)
        .data(probe.clone())
        .data(handle.clone())
        .build(handler);
    let join = tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
        Ok::<(), std::io::Error>(())
    }));
    Running { handle, stop, join }
}

#[tokio::test]
async fn a_worker_runs_a_job_and_records_its_result() {
    let f = fixture().await;
    let id = f.enqueue(work(21)).await;
    let w = start(&f.queue, fast("w"), &Probe::default());
    let job = f.wait_for_state(id, JobState::Succeeded).await;
    assert_eq!(job.result, Some(json!(42)));
    assert_eq!(job.attempt, 1);
    assert_eq!(job.worker_id.as_deref(), Some("w"));
    w.stop().await;
}

#[tokio::test]
async fn a_notification_wakes_an_idle_worker_without_polling() {
    let f = fixture().await;
    // The poll fallback is an hour away: only NOTIFY can start this job.
    let config = fast("w").poll_interval(Duration::from_secs(3600));
    let w = start(&f.queue, config, &Probe::default());
    // The worker's first claim finds nothing; wait until it is idle.
    while w.handle.busy() > 0 {
        tokio::task::yield_now().await;
    }
    let first = f.enqueue(work(1)).await;
    f.wait_for_state(first, JobState::Succeeded).await;
    let second = f.enqueue(work(2)).await;
    f.wait_for_state(second, JobState::Succeeded).await;
    w.stop().await;
}

#[tokio::test]
async fn an_idle_worker_waits_for_a_notification_or_its_poll_timer() {
    let f = fixture().await;
    let config = fast("w").poll_interval(Duration::from_secs(3600));
    let w = start(&f.queue, config, &Probe::default());
    wait_for_rounds(&w.handle, 1).await;
    // An empty claim must not ask for the next one straight away: with the
    // poll timer an hour off, nothing should start another round (but the
    // look the listener asks for once it listens). The rounds watched for
    // are PostgreSQL round trips, so this window is real time: a paused
    // clock jumps to the next timer whenever the runtime waits on the
    // database, and would fire the poll timer and the pool's timeouts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = w.handle.claim_rounds();
    assert!(idle <= 2, "an idle worker kept claiming: {idle} rounds");

    // The poll timer runs on this runtime's clock: moved an hour on, with
    // nothing waiting on the database meanwhile, it fires, and the worker
    // looks again without being notified.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3600)).await;
    tokio::time::resume();
    wait_for_round(&w.handle, idle + 1).await;
    w.stop().await;
}

#[tokio::test]
async fn a_delayed_job_is_found_by_polling_once_it_is_due() {
    let f = fixture().await;
    // Inserting a job that is not yet due sends no notification.
    let due = chrono::Utc::now() + chrono::Duration::milliseconds(300);
    let id = f.enqueue(work(4).run_at(due)).await;
    let w = start(&f.queue, fast("w"), &Probe::default());
    let job = f.wait_for_state(id, JobState::Succeeded).await;
    assert!(
        job.started_at.unwrap() >= job.run_at,
        "started before it was due"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_failed_attempt_is_retried_with_backoff_and_then_succeeds() {
    let f = fixture().await;
    let id = f.enqueue(work_doing(5, Behaviour::FailTimes(2))).await;
    let w = start(&f.queue, fast("w"), &Probe::default());
    let job = f.wait_for_state(id, JobState::Succeeded).await;
    assert_eq!(job.attempt, 3);
    assert_eq!(job.result, Some(json!(10)));
    assert_eq!(
        job.error.as_deref(),
        Some("planned failure 2"),
        "the last error is kept"
    );
    w.stop().await;
}

#[tokio::test]
async fn a_fatal_error_fails_the_job_without_retrying() {
    let f = fixture().await;
    let id = f
        .enqueue(work_doing(1, Behaviour::Fatal).max_attempts(5))
        .await;
    let w = start(&f.queue, fast("w"), &Probe::default());
    let job = f.wait_for_state(id, JobState::Failed).await;
    assert_eq!(job.attempt, 1);
    assert_eq!(job.error.as_deref(), Some("this input can never work"));
    w.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_fails_its_job_and_the_worker_keeps_serving() {
    let f = fixture().await;
    let boom = f
        .enqueue(work_doing(7, Behaviour::Panic).max_attempts(1))
        .await;
    let w = start(&f.queue, fast("w"), &Probe::default());
    let job = f.wait_for_state(boom, JobState::Failed).await;
    let error = job.error.unwrap();
    assert!(
        error.contains("handler panicked: handler exploded on 7"),
        "{error}"
    );
    let next = f.enqueue(work(1)).await;
    f.wait_for_state(next, JobState::Succeeded).await;
    w.stop().await;
}

#[tokio::test]
async fn an_attempt_past_its_timeout_is_stopped_and_counted_failed() {
    let f = fixture().await;
    let id = f
        .enqueue(
            work_doing(1, Behaviour::Hang)
                .timeout(Duration::from_millis(100))
                .max_attempts(2),
        )
        .await;
    let w = start(&f.queue, fast("w"), &Probe::default());
    let job = f.wait_for_state(id, JobState::Failed).await;
    assert_eq!(job.attempt, 2);
    assert_eq!(job.error.as_deref(), Some("timed out after 100ms"));
    w.stop().await;
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_handler() {
    let f = fixture().await;
    let id = f.enqueue(work_doing(1, Behaviour::Hang)).await;
    let probe = Probe::default();
    let w = start(&f.queue, fast("w"), &probe);
    let job = f.wait_for_state(id, JobState::Running).await;
    assert_eq!(job.attempt, 1);
    f.queue.cancel(TenantId::DEFAULT, id).await.unwrap();
    let job = f.wait_for_state(id, JobState::Cancelled).await;
    assert!(job.finished_at.is_some());
    assert_eq!(
        probe.running.load(Ordering::SeqCst),
        0,
        "the handler was dropped"
    );
    assert_eq!(w.handle.held(), 0);
    w.stop().await;
}

#[tokio::test]
async fn heartbeats_renew_leases_while_a_handler_blocks_the_runtime() {
    // #[tokio::test] runs on one thread; the handler below blocks it.
    let f = fixture().await;
    let id = f
        .enqueue(work_doing(3, Behaviour::SpinForHeartbeats(5)))
        .await;
    let config = fast("w")
        .lease(Duration::from_millis(150))
        .heartbeat_interval(Duration::from_millis(30));
    let w = start(&f.queue, config, &Probe::default());
    let job = f.wait_for_state(id, JobState::Succeeded).await;
    // Five renewals of a 150 ms lease, 30 ms apart, while the handler held
    // the thread; the lease never lapsed, so the first attempt finished.
    assert_eq!(job.attempt, 1);
    assert_eq!(job.result, Some(json!(3)));
    assert!(job.heartbeat_at.unwrap() > job.started_at.unwrap());
    w.stop().await;
}

#[tokio::test]
async fn draining_releases_running_jobs_without_counting_the_attempt() {
    let f = fixture().await;
    let id = f
        .enqueue(work_doing(1, Behaviour::Hang).max_attempts(1))
        .await;
    let w = start(&f.queue, fast("w"), &Probe::default());
    // A heartbeat writes the handler's progress while it runs.
    f.wait_for(id, "show progress", |job| {
        job.progress_message.as_deref() == Some("hanging")
    })
    .await;
    w.handle.drain(Duration::ZERO).await;
    assert_eq!(w.handle.busy(), 0);
    w.stop().await;
    let job = f.job(id).await;
    assert_eq!(job.state, JobState::Queued);
    assert_eq!((job.attempt, job.max_attempts), (1, 2));
}

#[tokio::test]
async fn draining_waits_for_jobs_that_finish_within_the_grace_period() {
    let f = fixture().await;
    let id = f.enqueue(work_doing(1, Behaviour::FailTimes(0))).await;
    let w = start(&f.queue, fast("w"), &Probe::default());
    f.wait_for_state(id, JobState::Succeeded).await;
    w.handle.drain(Duration::from_secs(60)).await;
    // Drained and idle: a new job is not claimed.
    let later = f.enqueue(work(2)).await;
    w.stop().await;
    assert_eq!(f.job(later).await.state, JobState::Queued);
}

#[tokio::test]
async fn a_payload_that_no_longer_decodes_fails_its_job_for_good() {
    let f = fixture().await;
    let id = JobId::new();
    sqlx::query(
        "INSERT INTO jobs (id, tenant_id, kind, payload, run_at, max_attempts, timeout_ms)
         VALUES ($1, $2, 'work', '{\"n\": \"x\"}', now(), 3, 1000)",
    )
    .bind(id.0)
    .bind(TenantId::DEFAULT.0)
    .execute(f.queue.pool())
    .await
    .unwrap();
    let w = start(&f.queue, fast("w"), &Probe::default());
    let job = f.wait_for_state(id, JobState::Failed).await;
    assert!(job.error.unwrap().starts_with("payload does not decode"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_never_runs_more_jobs_than_its_slots() {
    let f = fixture().await;
    let jobs: Vec<NewJob> = (0..60).map(work).collect();
    f.queue.enqueue_batch(f.queue.pool(), jobs).await.unwrap();
    let probe = Probe::default();
    let w = start(&f.queue, fast("w").slots(3), &probe);
    f.wait_for_succeeded(60).await;
    assert!(probe.max_running.load(Ordering::SeqCst) <= 3);
    assert!(probe.max_running.load(Ordering::SeqCst) >= 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_drain_thousands_of_jobs_each_exactly_once() {
    let f = fixture().await;
    let total = 3000;
    for chunk in (0..total).collect::<Vec<u64>>().chunks(1000) {
        let jobs: Vec<NewJob> = chunk.iter().map(|n| work(*n)).collect();
        f.queue.enqueue_batch(f.queue.pool(), jobs).await.unwrap();
    }
    let probe = Probe::default();
    let workers: Vec<Running> = (0..4)
        .map(|i| start(&f.queue, fast(&format!("w{i}")).slots(4), &probe))
        .collect();
    f.wait_for_succeeded(total as i64).await;
    for w in workers {
        w.stop().await;
    }
    let runs = probe.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), total as usize);
    assert!(runs.values().all(|n| *n == 1), "some job ran twice");
    let (max_attempt, distinct_workers): (i32, i64) =
        sqlx::query_as("SELECT max(attempt), count(DISTINCT worker_id) FROM jobs")
            .fetch_one(f.queue.pool())
            .await
            .unwrap();
    assert_eq!(max_attempt, 1);
    assert!(distinct_workers > 1, "the work was shared");
}

/// Scale-in protection as ECS keeps it: on or off, with every change and
/// renewal recorded, and a switch that makes taking it fail.
#[derive(Default)]
struct FakeProtection {
    state: Mutex<FakeState>,
    refuse: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct FakeState {
    protected: bool,
    events: Vec<Event>,
    protect_calls: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Event {
    Protected,
    Renewed,
    Released,
}

impl FakeProtection {
    fn events(&self) -> Vec<Event> {
        self.state.lock().unwrap().events.clone()
    }

    fn protect_calls(&self) -> usize {
        self.state.lock().unwrap().protect_calls
    }

    async fn wait_until(&self, what: &str, pred: impl Fn(&FakeState) -> bool) {
        let give_up = Instant::now() + Duration::from_secs(30);
        while !pred(&self.state.lock().unwrap()) {
            assert!(Instant::now() < give_up, "gave up waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Protection for FakeProtection {
    fn protect(&self) -> BoxFuture<'_, Result<(), ProtectionError>> {
        Box::pin(async move {
            let mut s = self.state.lock().unwrap();
            s.protect_calls += 1;
            if self.refuse.load(Ordering::SeqCst) {
                return Err(ProtectionError("DEPLOYMENT_BLOCKED".to_owned()));
            }
            if !s.protected {
                s.protected = true;
                s.events.push(Event::Protected);
            }
            Ok(())
        })
    }

    fn renew(&self) -> BoxFuture<'_, Result<(), ProtectionError>> {
        Box::pin(async move {
            let mut s = self.state.lock().unwrap();
            if s.protected {
                s.events.push(Event::Renewed);
            }
            Ok(())
        })
    }

    fn release(&self) -> BoxFuture<'_, Result<(), ProtectionError>> {
        Box::pin(async move {
            let mut s = self.state.lock().unwrap();
            if s.protected {
                s.protected = false;
                s.events.push(Event::Released);
            }
            Ok(())
        })
    }
}

/// Waits for `n` more claim rounds of the worker.
async fn wait_for_rounds(handle: &WorkerHandle, n: u64) {
    wait_for_round(handle, handle.claim_rounds() + n).await;
}

/// Waits until the worker has completed `round` claim rounds in all.
async fn wait_for_round(handle: &WorkerHandle, round: u64) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while handle.claim_rounds() < round {
        assert!(Instant::now() < give_up, "the worker stopped polling");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_worker_is_protected_exactly_while_it_holds_a_job() {
    let f = fixture().await;
    let protection = Arc::new(FakeProtection::default());
    let config = fast("w").protection(protection.clone());
    let w = start(&f.queue, config, &Probe::default());
    // Claim rounds over an empty queue take no protection.
    wait_for_rounds(&w.handle, 5).await;
    assert_eq!(
        protection.events(),
        vec![],
        "an idle worker took protection"
    );

    // The job outlives several heartbeats, each of which renews.
    let id = f
        .enqueue(work_doing(3, Behaviour::SpinForHeartbeats(3)))
        .await;
    let job = f.wait_for_state(id, JobState::Succeeded).await;
    assert_eq!(job.attempt, 1);
    protection
        .wait_until("protection given up", |s| !s.protected)
        .await;
    let events = protection.events();
    assert_eq!(events.first(), Some(&Event::Protected), "{events:?}");
    assert_eq!(events.last(), Some(&Event::Released), "{events:?}");
    assert!(
        events.iter().filter(|e| **e == Event::Renewed).count() >= 2,
        "heartbeats renew protection: {events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| **e == Event::Protected).count(),
        1,
        "one job, one protection: {events:?}"
    );
    // Idle again: more rounds, no more calls that change anything.
    wait_for_rounds(&w.handle, 5).await;
    assert_eq!(protection.events(), events);
    w.stop().await;
}

#[tokio::test]
async fn a_worker_that_cannot_take_protection_does_not_claim() {
    let f = fixture().await;
    let protection = Arc::new(FakeProtection::default());
    protection.refuse.store(true, Ordering::SeqCst);
    let id = f.enqueue(work(5)).await;
    let w = start(
        &f.queue,
        fast("w").protection(protection.clone()),
        &Probe::default(),
    );
    protection
        .wait_until("three refused protect calls", |s| s.protect_calls >= 3)
        .await;
    let job = f.job(id).await;
    assert_eq!(job.state, JobState::Queued, "claimed without protection");
    assert_eq!(job.attempt, 0);
    assert_eq!(w.handle.held(), 0);

    // Once protection is granted (the deployment unblocked), it claims.
    protection.refuse.store(false, Ordering::SeqCst);
    let job = f.wait_for_state(id, JobState::Succeeded).await;
    assert_eq!(job.result, Some(json!(10)));
    assert!(protection.protect_calls() > 3);
    w.stop().await;
}

#[tokio::test]
async fn of_the_idle_workers_woken_for_one_job_only_the_one_that_claims_it_asks_for_protection() {
    let f = fixture().await;
    let workers: Vec<(Arc<FakeProtection>, Running)> = (0..4)
        .map(|i| {
            let protection = Arc::new(FakeProtection::default());
            let config = fast(&format!("w{i}")).protection(protection.clone());
            let running = start(&f.queue, config, &Probe::default());
            (protection, running)
        })
        .collect();
    for (_, w) in &workers {
        wait_for_rounds(&w.handle, 2).await;
    }
    for n in 1..=3 {
        let id = f.enqueue(work(n)).await;
        f.wait_for_state(id, JobState::Succeeded).await;
        // Every worker has looked again since, and found nothing.
        for (_, w) in &workers {
            wait_for_rounds(&w.handle, 2).await;
        }
        let calls: usize = workers.iter().map(|(p, _)| p.protect_calls()).sum();
        assert_eq!(calls, n as usize, "one protect call per job");
    }
    for (protection, w) in workers {
        protection
            .wait_until("protection given up", |s| !s.protected)
            .await;
        w.stop().await;
    }
}
