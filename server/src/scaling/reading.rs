//! What a minute reads: the AWS clients, the worker service's task counts
//! (ECS `DescribeServices`), its policy (Application Auto Scaling's
//! scalable target and target-tracking policy), and the queue's
//! statistics, gathered into a [`Reading`].

use std::time::Duration;

use aws_sdk_applicationautoscaling::types::{PolicyType, ScalableDimension, ServiceNamespace};
use aws_smithy_http_client::tls;
use chrono::{DateTime, Utc};
use crunch_queue::{JobState, Queue};

use super::{PUBLISH_INTERVAL, Policy, ScalingError, error::aws_error};

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
    /// Jobs that may start now: claimable, and within their tenant's
    /// `max_running` (jobs a limit holds back would leave a new worker
    /// idle, so they are not counted).
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
        queued: stats.runnable,
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
