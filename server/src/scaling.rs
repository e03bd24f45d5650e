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
//! The namespace, metric names and dimension below are a contract with
//! terraform; `scripts/check-infra` fails when the two differ.

use std::{
    future::Future,
    sync::{Arc, RwLock},
    time::Duration,
};

use aws_sdk_applicationautoscaling::types::{PolicyType, ScalableDimension, ServiceNamespace};
use aws_sdk_cloudwatch::{
    primitives::DateTime as AwsDateTime,
    types::{Dimension, MetricDatum, StandardUnit, StatisticSet},
};
use aws_sdk_ecs::error::DisplayErrorContext;
use aws_smithy_http_client::tls;
use chrono::{DateTime, Utc};
use crunch_queue::{JobState, Queue, QueueError};
use sqlx::{Connection, PgConnection, PgPool};

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

/// The advisory lock whose holder publishes ("crunch", then 1).
const PUBLISHER_LOCK: i64 = 0x6372_756e_6368_0001;

/// How long the lock holder's connection may take to answer a ping.
const LOCK_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The worker service whose scaling this publishes for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerService {
    /// The ECS cluster.
    pub cluster: String,
    /// The ECS service running the workers.
    pub service: String,
}

impl WorkerService {
    /// The Application Auto Scaling resource id of the service.
    pub fn resource_id(&self) -> String {
        format!("service/{}/{}", self.cluster, self.service)
    }
}

/// Why a minute's reading or publication failed.
#[derive(Debug, thiserror::Error)]
pub enum ScalingError {
    /// An AWS call failed (throttled, denied, unreachable, ...).
    #[error("{call} failed: {message}")]
    Aws {
        /// The API operation.
        call: &'static str,
        /// What the SDK reported, with its causes.
        message: String,
    },
    /// AWS answered, but without what the reading needs.
    #[error("{0}")]
    Missing(String),
    /// The queue statistics could not be read.
    #[error("queue statistics: {0}")]
    Queue(#[from] QueueError),
}

/// The SDK's own rendering of an error with its causes: SDK errors put the
/// useful part, such as "ThrottlingException: Rate exceeded", in their
/// sources.
fn aws_error<E: std::error::Error>(call: &'static str, error: E) -> ScalingError {
    ScalingError::Aws {
        call,
        message: DisplayErrorContext(error).to_string(),
    }
}

/// The worker service's scaling policy as Application Auto Scaling has it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The target-tracking policy's target value (jobs per task).
    pub target: f64,
    /// The scalable target's minimum task count.
    pub min_tasks: i32,
    /// The scalable target's maximum task count.
    pub max_tasks: i32,
}

/// `(queued + running) / max(tasks, 1)`, raised to at least twice the
/// target when no task runs and work waits (target tracking cannot scale a
/// service of 0 tasks by ratio; the doubled target makes its high alarm
/// fire whatever the backlog).
pub fn backlog_per_task(backlog: i64, running_tasks: i32, target: f64) -> f64 {
    let per_task = backlog.max(0) as f64 / f64::from(running_tasks.max(1));
    if running_tasks <= 0 && backlog > 0 {
        per_task.max(2.0 * target)
    } else {
        per_task
    }
}

/// Run times of the jobs that finished in the last minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunTimeSummary {
    /// How many jobs.
    pub count: i64,
    /// Their total run time, seconds.
    pub sum: f64,
    /// The shortest, seconds.
    pub min: f64,
    /// The longest, seconds.
    pub max: f64,
}

/// One minute's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// When they were read.
    pub at: DateTime<Utc>,
    /// Jobs claimable now.
    pub queued: i64,
    /// Jobs running now.
    pub running_jobs: i64,
    /// Running worker tasks, per ECS.
    pub running_tasks: i32,
    /// The service's desired task count, per ECS.
    pub desired_tasks: i32,
    /// The policy in force.
    pub policy: Policy,
    /// Age of the oldest claimable job, seconds.
    pub oldest_queued_seconds: f64,
    /// Jobs that succeeded in the last minute.
    pub succeeded: i64,
    /// Jobs that failed in the last minute.
    pub failed: i64,
    /// Run times of the jobs that finished in the last minute.
    pub run_times: Option<RunTimeSummary>,
}

impl Reading {
    /// Queued plus running jobs.
    pub fn backlog(&self) -> i64 {
        self.queued + self.running_jobs
    }

    /// The published value: [`backlog_per_task`] of these numbers.
    pub fn backlog_per_task(&self) -> f64 {
        backlog_per_task(self.backlog(), self.running_tasks, self.policy.target)
    }

    /// Desired tasks beyond the running jobs while nothing is queued: what
    /// the idle step policy removes. Target tracking alone would keep them
    /// for its 15-minute scale-in alarm; this lets a finished burst go
    /// within minutes. Counted from the desired count, which is what a step
    /// subtracts from, so a removal can never take the desired count below
    /// the jobs running (tasks still stopping, or just launched, do not
    /// count twice). Zero whenever work waits, so it never fights a
    /// scale-out.
    pub fn idle_tasks(&self) -> i64 {
        if self.queued > 0 {
            return 0;
        }
        (i64::from(self.desired_tasks) - self.running_jobs).max(0)
    }

    /// The metric data for one `PutMetricData` call.
    pub fn metric_data(&self, service: &WorkerService) -> Vec<MetricDatum> {
        let dimension = Dimension::builder()
            .name(METRIC_DIMENSION)
            .value(&service.service)
            .build();
        let at = AwsDateTime::from_millis(self.at.timestamp_millis());
        let datum = |name: &str, value: f64, unit: StandardUnit| {
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(dimension.clone())
                .timestamp(at)
                .value(value)
                .unit(unit)
                .build()
        };
        let mut data = vec![
            datum(METRIC_NAME, self.backlog_per_task(), StandardUnit::None),
            datum("Backlog", self.backlog() as f64, StandardUnit::Count),
            datum(
                "RunningTasks",
                f64::from(self.running_tasks),
                StandardUnit::Count,
            ),
            datum(
                "OldestQueuedSeconds",
                self.oldest_queued_seconds,
                StandardUnit::Seconds,
            ),
            datum("IdleTasks", self.idle_tasks() as f64, StandardUnit::Count),
            datum("JobsSucceeded", self.succeeded as f64, StandardUnit::Count),
            datum("JobsFailed", self.failed as f64, StandardUnit::Count),
        ];
        if let Some(r) = self.run_times.filter(|r| r.count > 0) {
            data.push(
                MetricDatum::builder()
                    .metric_name("JobRunSeconds")
                    .dimensions(dimension)
                    .timestamp(at)
                    .statistic_values(
                        StatisticSet::builder()
                            .sample_count(r.count as f64)
                            .sum(r.sum)
                            .minimum(r.min)
                            .maximum(r.max)
                            .build(),
                    )
                    .unit(StandardUnit::Seconds)
                    .build(),
            );
        }
        data
    }
}

/// The three AWS clients the publisher uses.
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// ECS, for the running task count.
    pub ecs: aws_sdk_ecs::Client,
    /// Application Auto Scaling, for the policy.
    pub autoscaling: aws_sdk_applicationautoscaling::Client,
    /// CloudWatch, to publish.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
}

impl AwsClients {
    /// Clients with the standard credential chain (on ECS, the task role)
    /// and region, over rustls.
    pub async fn from_env() -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        // A hung call must not stall the minute's round (or shutdown); the
        // standard retries still apply within the attempt timeout.
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(10))
            .operation_timeout(Duration::from_secs(30))
            .build();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts)
            .load()
            .await;
        AwsClients {
            ecs: aws_sdk_ecs::Client::new(&config),
            autoscaling: aws_sdk_applicationautoscaling::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
        }
    }

    /// Running and desired task counts of the worker service.
    pub async fn task_counts(&self, service: &WorkerService) -> Result<(i32, i32), ScalingError> {
        let out = self
            .ecs
            .describe_services()
            .cluster(&service.cluster)
            .services(&service.service)
            .send()
            .await
            .map_err(|e| aws_error("ecs:DescribeServices", e))?;
        if let Some(failure) = out.failures().first() {
            return Err(ScalingError::Missing(format!(
                "ecs:DescribeServices: service {} in cluster {}: {}",
                service.service,
                service.cluster,
                failure.reason().unwrap_or("no reason given")
            )));
        }
        out.services()
            .iter()
            .find(|s| s.service_name() == Some(service.service.as_str()))
            .map(|s| (s.running_count(), s.desired_count()))
            .ok_or_else(|| {
                ScalingError::Missing(format!(
                    "ecs:DescribeServices: no service {} in cluster {}",
                    service.service, service.cluster
                ))
            })
    }

    /// The target-tracking policy's target and the scalable target's
    /// min/max.
    pub async fn policy(&self, service: &WorkerService) -> Result<Policy, ScalingError> {
        let resource_id = service.resource_id();
        let targets = self
            .autoscaling
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_ids(&resource_id)
            .send()
            .await
            .map_err(|e| aws_error("application-autoscaling:DescribeScalableTargets", e))?;
        let target = targets.scalable_targets().first().ok_or_else(|| {
            ScalingError::Missing(format!("no scalable target for {resource_id}"))
        })?;
        let policies = self
            .autoscaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&resource_id)
            .send()
            .await
            .map_err(|e| aws_error("application-autoscaling:DescribeScalingPolicies", e))?;
        let target_value = policies
            .scaling_policies()
            .iter()
            .filter(|p| *p.policy_type() == PolicyType::TargetTrackingScaling)
            .find_map(|p| p.target_tracking_scaling_policy_configuration())
            .map(|c| c.target_value())
            .filter(|v| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                ScalingError::Missing(format!(
                    "no target-tracking policy with a positive target for {resource_id}"
                ))
            })?;
        Ok(Policy {
            target: target_value,
            min_tasks: target.min_capacity(),
            max_tasks: target.max_capacity(),
        })
    }

    /// Publishes a reading.
    pub async fn publish(
        &self,
        service: &WorkerService,
        reading: &Reading,
    ) -> Result<(), ScalingError> {
        self.cloudwatch
            .put_metric_data()
            .namespace(METRIC_NAMESPACE)
            .set_metric_data(Some(reading.metric_data(service)))
            .send()
            .await
            .map_err(|e| aws_error("cloudwatch:PutMetricData", e))?;
        Ok(())
    }
}

/// Reads the queue and AWS: one minute's numbers, or the first failure.
pub async fn read(
    queue: &Queue,
    aws: &AwsClients,
    service: &WorkerService,
) -> Result<Reading, ScalingError> {
    let stats = queue.stats(None).await?;
    let run_times = queue.recent_run_times(PUBLISH_INTERVAL).await?;
    let (running_tasks, desired_tasks) = aws.task_counts(service).await?;
    let policy = aws.policy(service).await?;
    let finished: Vec<_> = run_times
        .by_state
        .iter()
        .filter(|r| matches!(r.state, JobState::Succeeded | JobState::Failed) && r.count > 0)
        .collect();
    let run_summary = (!finished.is_empty()).then(|| RunTimeSummary {
        count: finished.iter().map(|r| r.count).sum(),
        sum: finished.iter().map(|r| r.sum).sum(),
        min: finished.iter().map(|r| r.min).fold(f64::INFINITY, f64::min),
        max: finished.iter().map(|r| r.max).fold(0.0, f64::max),
    });
    Ok(Reading {
        at: Utc::now(),
        queued: stats.queued_ready,
        running_jobs: stats.running,
        running_tasks,
        desired_tasks,
        policy,
        oldest_queued_seconds: stats.oldest_queued_age.as_secs_f64(),
        succeeded: stats.finished_last_minute.succeeded,
        failed: stats.finished_last_minute.failed,
        run_times: run_summary,
    })
}

/// Being the one publisher: a session-level advisory lock held on a
/// connection of its own for as long as this replica runs. When the
/// replica or its connection dies, PostgreSQL drops the lock and another
/// replica takes over at its next round.
#[derive(Default)]
pub struct Leadership {
    conn: Option<PgConnection>,
}

impl Leadership {
    /// Whether this replica holds the lock now, taking it when free.
    pub async fn check(&mut self, pool: &PgPool) -> bool {
        if let Some(conn) = &mut self.conn {
            // A half-open connection would keep the lock (and this replica
            // silent) until TCP gives up; a ping that does not answer in
            // time hands the lock on instead.
            if matches!(
                tokio::time::timeout(LOCK_PING_TIMEOUT, conn.ping()).await,
                Ok(Ok(()))
            ) {
                return true;
            }
            tracing::warn!("lost the scaling publisher's lock connection");
            self.conn = None;
        }
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("cannot try the scaling publisher's lock: {e}");
                return false;
            }
        };
        match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
            .bind(PUBLISHER_LOCK)
            .fetch_one(&mut *conn)
            .await
        {
            Ok(true) => {
                tracing::info!("this replica publishes the scaling metric");
                // The lock lives with this session: keep the connection out
                // of the pool for as long as this replica publishes.
                self.conn = Some(conn.detach());
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!("cannot try the scaling publisher's lock: {e}");
                false
            }
        }
    }

    /// Gives the lock up (by closing its connection).
    pub async fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}

/// The last reading, shared with `/v1/queue`.
#[derive(Clone, Default)]
pub struct ScalingStatus {
    last: Arc<RwLock<Option<Published>>>,
}

/// A reading and whether this replica published it.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The numbers.
    pub reading: Reading,
    /// Whether this replica sent them to CloudWatch.
    pub published: bool,
}

impl ScalingStatus {
    /// The last reading, if the publisher runs and has read once.
    pub fn last(&self) -> Option<Published> {
        // A poisoned lock still holds a whole value (it is only replaced).
        self.last
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn set(&self, value: Published) {
        *self
            .last
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(value);
    }
}

/// How long from `now` until the next half past a minute (:30.000).
pub fn until_half_past(now: DateTime<Utc>) -> Duration {
    let into_minute_ms = now.timestamp_millis().rem_euclid(60_000);
    let wait_ms = (30_000 - into_minute_ms).rem_euclid(60_000);
    Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0))
}

/// The publisher: reads every minute on every replica, publishes on the
/// one holding the lock.
pub struct Publisher {
    /// The queue to read.
    pub queue: Queue,
    /// The AWS clients.
    pub aws: AwsClients,
    /// The worker service.
    pub service: WorkerService,
    /// Where the last reading goes.
    pub status: ScalingStatus,
}

impl Publisher {
    /// One round: read, and publish if this replica leads. Returns what it
    /// read, or why nothing was published.
    pub async fn round(&self, leadership: &mut Leadership) -> Result<Published, ScalingError> {
        let leader = leadership.check(self.queue.pool()).await;
        let reading = read(&self.queue, &self.aws, &self.service).await?;
        if leader {
            self.aws.publish(&self.service, &reading).await?;
        }
        let published = Published {
            reading,
            published: leader,
        };
        self.status.set(published.clone());
        Ok(published)
    }

    /// Runs rounds every [`PUBLISH_INTERVAL`], at half past each minute,
    /// until `stop` resolves.
    ///
    /// Why half past: alarms evaluate a one-minute period just after it
    /// ends and scale within seconds; a datapoint taken at :30 already
    /// reflects the scaling decided on the previous one, so the idle step
    /// (cooldown 60 s) never acts twice on numbers from before its own
    /// removal.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut leadership = Leadership::default();
        let first = tokio::time::Instant::now() + until_half_past(Utc::now());
        let mut tick = tokio::time::interval_at(first, PUBLISH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {}
            }
            let result = tokio::select! {
                _ = &mut stop => break,
                result = self.round(&mut leadership) => result,
            };
            match result {
                Ok(p) => tracing::debug!(
                    backlog_per_task = p.reading.backlog_per_task(),
                    running_tasks = p.reading.running_tasks,
                    published = p.published,
                    "scaling metric read"
                ),
                Err(e) => tracing::warn!("scaling metric not published this minute: {e}"),
            }
        }
        leadership.release().await;
    }
}
