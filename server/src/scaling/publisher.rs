//! The publisher: the minute loop, the `PutMetricData` call and the metric
//! data it sends, and the last reading kept for `/v1/queue`.

use std::{
    future::Future,
    sync::{Arc, RwLock},
    time::Duration,
};

use aws_sdk_cloudwatch::{
    primitives::DateTime as AwsDateTime,
    types::{Dimension, MetricDatum, StandardUnit, StatisticSet},
};
use chrono::{DateTime, Utc};
use crunch_queue::Queue;

use super::{
    AwsClients, Leadership, METRIC_DIMENSION, METRIC_NAME, METRIC_NAMESPACE, PUBLISH_INTERVAL,
    Reading, ScalingError, WorkerService, error::aws_error, read,
};

impl Reading {
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

impl AwsClients {
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
