//! Shared test fixtures: a queue on a fresh database, and a job kind whose
//! payload tells the handler how to behave.

#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crunch_db::testing::{TestDb, test_db};
use crunch_queue::{ClaimedJob, Job, JobId, JobKind, JobState, NewJob, Queue, Registry, TenantId};
use serde::{Deserialize, Serialize};

/// What the test handler does with a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Return `n * 2`.
    #[default]
    Double,
    /// Fail the first `n` attempts, then double.
    FailTimes(i32),
    /// Fail with an error that forbids retrying.
    Fatal,
    /// Panic.
    Panic,
    /// Never finish (until stopped).
    Hang,
    /// Block the thread, burning CPU, until the worker's heartbeat counter
    /// has advanced by `n` rounds.
    SpinForHeartbeats(u64),
}

/// The test job kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub n: u64,
    #[serde(default)]
    pub behaviour: Behaviour,
}

impl JobKind for Work {
    const KIND: &'static str = "work";
    type Payload = Work;
}

/// A second kind, to check kind filtering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Other {
    pub text: String,
}

impl JobKind for Other {
    const KIND: &'static str = "other";
    type Payload = Other;

    fn max_attempts() -> i32 {
        5
    }
}

pub struct Fixture {
    pub db: TestDb,
    pub queue: Queue,
}

pub async fn fixture() -> Fixture {
    let db = test_db().await;
    let queue = Queue::new(
        db.pool().clone(),
        Registry::new().register::<Work>().register::<Other>(),
    );
    Fixture { db, queue }
}

pub fn work(n: u64) -> NewJob {
    work_doing(n, Behaviour::Double)
}

pub fn work_doing(n: u64, behaviour: Behaviour) -> NewJob {
    NewJob::of::<Work>(TenantId::DEFAULT, &Work { n, behaviour }).expect("serializable payload")
}

pub fn kinds() -> Vec<String> {
    vec![Work::KIND.to_owned()]
}

pub const LEASE: Duration = Duration::from_secs(30);

impl Fixture {
    pub async fn enqueue(&self, job: NewJob) -> JobId {
        self.queue
            .enqueue(self.queue.pool(), job)
            .await
            .expect("enqueue")
            .job
            .id
    }

    pub async fn claim_one(&self, worker: &str) -> ClaimedJob {
        let mut claimed = self
            .queue
            .claim(worker, &kinds(), 1, LEASE)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1, "expected one claimable job");
        claimed.remove(0)
    }

    pub async fn job(&self, id: JobId) -> Job {
        self.queue
            .get(TenantId::DEFAULT, id)
            .await
            .expect("get")
            .expect("job exists")
    }

    /// Waits until the job reaches `state`, polling the table: used only
    /// where a real apalis worker runs in the background. Fails after a
    /// generous bound so a broken worker fails the test instead of hanging.
    pub async fn wait_for_state(&self, id: JobId, state: JobState) -> Job {
        self.wait_for(id, &format!("reach {state}"), |job| job.state == state)
            .await
    }

    /// Waits until the job satisfies `pred`, bounded like `wait_for_state`.
    pub async fn wait_for(&self, id: JobId, what: &str, pred: impl Fn(&Job) -> bool) -> Job {
        for _ in 0..3000 {
            let job = self.job(id).await;
            if pred(&job) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let job = self.job(id).await;
        panic!("job {id} did not {what}; it is {job:?}");
    }

    /// Waits until `count` jobs have succeeded, failing the test if any job
    /// fails; bounded like `wait_for_state`.
    pub async fn wait_for_succeeded(&self, count: i64) {
        for _ in 0..6000 {
            let stats = self.queue.stats(None).await.expect("stats");
            assert_eq!(stats.failed, 0, "a job failed: {stats:?}");
            if stats.succeeded == count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{count} jobs never succeeded");
    }

    /// Sets every running job's lease to have expired, as if its worker
    /// had stopped heartbeating long ago.
    pub async fn expire_leases(&self) {
        sqlx::query("UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE state = 'running'")
            .execute(self.queue.pool())
            .await
            .expect("expire leases");
    }
}
