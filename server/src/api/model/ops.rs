//! The schemas of the operations endpoints: queue statistics, the
//! worker-scaling reading, readiness.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

/// Running jobs of one worker.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct WorkerLoad {
    /// The worker.
    pub worker_id: String,
    /// Its running jobs.
    pub running: i64,
}

/// Live queue statistics: a tenant's, or the whole service's (the numbers
/// autoscaling runs on).
#[derive(Debug, Clone, PartialEq, Object)]
pub struct QueueStats {
    /// Whether these are the whole service's numbers (`fleet=true`) rather
    /// than the caller's tenant's.
    pub fleet: bool,
    /// Jobs claimable now.
    pub queued: i64,
    /// Jobs waiting for their start time (scheduled or backing off).
    pub waiting: i64,
    /// Jobs running.
    pub running: i64,
    /// Claimable jobs that may start now under the tenants' limits
    /// (`max_running`): what workers can take.
    pub runnable: i64,
    /// runnable + running: the work capacity must be found for.
    pub backlog: i64,
    /// Age of the oldest claimable job, in milliseconds.
    pub oldest_queued_ms: u64,
    /// Jobs that succeeded in the last minute.
    pub succeeded_last_minute: i64,
    /// Jobs that failed in the last minute.
    pub failed_last_minute: i64,
    /// Jobs cancelled in the last minute.
    pub cancelled_last_minute: i64,
    /// Running jobs per worker, in the fleet view; empty in a tenant's.
    pub workers: Vec<WorkerLoad>,
    /// The worker-scaling metric as last read on this replica, in the
    /// fleet view; absent in a tenant's, and outside AWS, where the
    /// publisher is off.
    pub scaling: Option<ScalingReading>,
}

/// The numbers behind the worker-scaling metric.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct ScalingReading {
    /// When they were read.
    pub read_at: DateTime<Utc>,
    /// Running worker tasks, per ECS.
    pub running_tasks: i32,
    /// The worker service's desired task count, per ECS.
    pub desired_tasks: i32,
    /// The published value: backlog / max(running tasks, 1), at least twice
    /// the target when no task runs and work waits.
    pub backlog_per_task: f64,
    /// The scaling policy's target (jobs per task).
    pub target: f64,
    /// The fewest worker tasks the service scales to.
    pub min_tasks: i32,
    /// The most worker tasks the service scales to.
    pub max_tasks: i32,
    /// Whether this replica published the reading (one replica does).
    pub published: bool,
}

/// A readiness report.
#[derive(Debug, Clone, PartialEq, Object)]
pub struct Readiness {
    /// `ok` when every dependency answers.
    pub status: String,
}
