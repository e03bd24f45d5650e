//! The worker-scaling metric: every minute, one server replica publishes
//! `BacklogPerTask = (queued + running jobs) / max(running worker tasks, 1)`
//! to CloudWatch, and the worker service's target-tracking policy scales
//! on it (terraform/autoscaling.tf).
//!
//! - Counting running jobs keeps the ratio at 1 while every task is busy,
//!   where a ratio of queued jobs alone would read 0 and invite a scale-in.
//! - With no task running and work waiting, the value is at least twice the
//!   policy's target, so the service wakes from zero.
//! - The running task count comes from ECS `DescribeServices`; the target
//!   value and the scalable target's min and max from Application Auto
//!   Scaling, so the numbers shown match the policy in force.
//! - One publisher across replicas: the replica holding a PostgreSQL
//!   advisory lock publishes; every replica reads, so any of them shows the
//!   numbers in `/v1/queue`.
//! - Any failed AWS call means nothing is published that minute (a partial
//!   or guessed number would steer the autoscaler wrong), and the log says
//!   why.
//! - Outside AWS (no worker service configured) the publisher is off, and
//!   says so once at start-up.
//!
//! The parts, one job each:
//!
//! - `reading`: the AWS clients and what a minute reads (ECS task counts,
//!   the Application Auto Scaling policy, the queue's statistics).
//! - `policy`: the arithmetic on a reading, without I/O.
//! - `leadership`: which replica publishes (the advisory lock).
//! - `publisher`: the minute loop, `PutMetricData`, and the last reading
//!   shared with `/v1/queue`.
//! - `error`: why a minute's reading or publication failed.
//!
//! The namespace, metric names and dimension below are a contract with
//! terraform; `scripts/check-infra` fails when the two differ.

use std::time::Duration;

mod error;
mod leadership;
mod policy;
mod publisher;
mod reading;

pub use error::ScalingError;
pub use leadership::Leadership;
pub use policy::{Policy, backlog_per_task};
pub use publisher::{Published, Publisher, ScalingStatus, until_half_past};
pub use reading::{AwsClients, Reading, RunTimeSummary, WorkerService, read};

/// The CloudWatch namespace of every crunch metric.
pub const METRIC_NAMESPACE: &str = "Crunch";
/// The metric the worker service's target-tracking policy follows.
pub const METRIC_NAME: &str = "BacklogPerTask";
/// The one dimension of every crunch metric; its value is the worker
/// service's name.
pub const METRIC_DIMENSION: &str = "ServiceName";
/// How often the metric is read and published. Target tracking evaluates
/// one-minute datapoints.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(60);
