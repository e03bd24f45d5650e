//! The worker-scaling publisher against mocked AWS clients
//! (aws-smithy-mocks) and a real queue: the value it computes with 0 and N
//! tasks, what it sends to CloudWatch, that any failed AWS call publishes
//! nothing, and that one replica at a time publishes.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_sdk_applicationautoscaling::{
    Client as AutoScaling,
    operation::{
        describe_scalable_targets::DescribeScalableTargetsOutput,
        describe_scaling_policies::{DescribeScalingPoliciesError, DescribeScalingPoliciesOutput},
    },
    primitives::DateTime,
    types::{
        PolicyType, ScalableDimension, ScalableTarget, ScalingPolicy, ServiceNamespace,
        TargetTrackingScalingPolicyConfiguration,
    },
};
use aws_sdk_cloudwatch::{
    Client as CloudWatch,
    operation::put_metric_data::{PutMetricDataError, PutMetricDataOutput},
    types::MetricDatum,
};
use aws_sdk_ecs::error::ErrorMetadata;
use aws_sdk_ecs::{
    Client as Ecs,
    operation::describe_services::{DescribeServicesError, DescribeServicesOutput},
    types::{Failure, Service},
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use crunch_db::testing::{TestDb, test_db};
use crunch_engine::analysis::AnalysisJob;
use crunch_queue::{NewJob, Queue, TenantId};
use crunch_server::scaling::{
    AwsClients, Leadership, METRIC_DIMENSION, METRIC_NAME, METRIC_NAMESPACE, Publisher,
    ScalingError, ScalingStatus, WorkerService, backlog_per_task,
};
use crunch_worker::AnalysisKind;
use serde_json::json;

const CLUSTER: &str = "crunch-prod";
const SERVICE: &str = "crunch-prod-worker";

fn service() -> WorkerService {
    WorkerService {
        cluster: CLUSTER.to_owned(),
        service: SERVICE.to_owned(),
    }
}

/// A queue on a fresh database with `queued` jobs waiting.
async fn queue_with(queued: usize) -> (TestDb, Queue) {
    let db = test_db().await;
    let queue = crate::common::queue(&db);
    let payload: AnalysisJob = serde_json::from_value(json!({
        "inputs": [],
        "analysis": {"type": "sql", "query": "SELECT 1"}
    }))
    .unwrap();
    for _ in 0..queued {
        let job = NewJob::of::<AnalysisKind>(TenantId::DEFAULT, &payload).unwrap();
        queue.enqueue(queue.pool(), job).await.unwrap();
    }
    (db, queue)
}

fn running(tasks: i32) -> Rule {
    mock!(Ecs::describe_services)
        .match_requests(|r| {
            r.cluster() == Some(CLUSTER) && r.services() == [SERVICE.to_owned()].as_slice()
        })
        .then_output(move || {
            DescribeServicesOutput::builder()
                .services(
                    Service::builder()
                        .service_name(SERVICE)
                        .running_count(tasks)
                        .desired_count(tasks)
                        .build(),
                )
                .build()
        })
}

fn scalable_target(min: i32, max: i32) -> Rule {
    mock!(AutoScaling::describe_scalable_targets)
        .match_requests(|r| r.resource_ids() == [format!("service/{CLUSTER}/{SERVICE}")].as_slice())
        .then_output(move || {
            DescribeScalableTargetsOutput::builder()
                .scalable_targets(
                    ScalableTarget::builder()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(format!("service/{CLUSTER}/{SERVICE}"))
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .min_capacity(min)
                        .max_capacity(max)
                        .role_arn("arn:aws:iam::111122223333:role/autoscaling")
                        .creation_time(DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

fn target_tracking(target: f64) -> Rule {
    mock!(AutoScaling::describe_scaling_policies)
        .match_requests(|r| r.resource_id() == Some(&format!("service/{CLUSTER}/{SERVICE}")))
        .then_output(move || {
            DescribeScalingPoliciesOutput::builder()
                .scaling_policies(
                    ScalingPolicy::builder()
                        .policy_arn("arn:aws:autoscaling:policy/backlog")
                        .policy_name("crunch-prod-worker-backlog-per-task")
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(format!("service/{CLUSTER}/{SERVICE}"))
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .policy_type(PolicyType::TargetTrackingScaling)
                        .target_tracking_scaling_policy_configuration(
                            TargetTrackingScalingPolicyConfiguration::builder()
                                .target_value(target)
                                .build()
                                .unwrap(),
                        )
                        .creation_time(DateTime::from_secs(0))
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

/// What PutMetricData received: namespace and data, per call.
type Sent = Arc<Mutex<Vec<(String, Vec<MetricDatum>)>>>;

/// PutMetricData, recording what was sent.
fn put_metric_data(sent: Sent) -> Rule {
    mock!(CloudWatch::put_metric_data)
        .match_requests(move |r| {
            sent.lock().unwrap().push((
                r.namespace().unwrap_or_default().to_owned(),
                r.metric_data().to_vec(),
            ));
            true
        })
        .then_output(|| PutMetricDataOutput::builder().build())
}

fn throttled() -> ErrorMetadata {
    ErrorMetadata::builder()
        .code("ThrottlingException")
        .message("Rate exceeded")
        .build()
}

/// The three clients over the given rules; retries off, so a mocked
/// throttle is seen at once instead of after backoff.
fn clients(ecs: &[&Rule], autoscaling: &[&Rule], cloudwatch: &[&Rule]) -> AwsClients {
    let no_retry = aws_sdk_ecs::config::retry::RetryConfig::disabled();
    AwsClients {
        ecs: mock_client!(aws_sdk_ecs, RuleMode::MatchAny, ecs, |c| c
            .retry_config(no_retry.clone())),
        autoscaling: mock_client!(
            aws_sdk_applicationautoscaling,
            RuleMode::MatchAny,
            autoscaling,
            |c| c.retry_config(no_retry.clone())
        ),
        cloudwatch: mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, cloudwatch, |c| c
            .retry_config(no_retry.clone())),
    }
}

/// A publisher of `queue`'s numbers through `aws`, with no last reading.
fn publisher(queue: Queue, aws: AwsClients) -> Publisher {
    Publisher {
        queue,
        aws,
        service: service(),
        status: ScalingStatus::default(),
    }
}

/// A publisher over an AWS that answers: `tasks` running, target 1, min 0,
/// max `max`. Also returns what PutMetricData receives.
fn healthy(queue: Queue, tasks: i32, max: i32) -> (Publisher, Sent) {
    let sent = Sent::default();
    let (ecs, targets, policies, put) = (
        running(tasks),
        scalable_target(0, max),
        target_tracking(1.0),
        put_metric_data(sent.clone()),
    );
    let aws = clients(&[&ecs], &[&targets, &policies], &[&put]);
    (publisher(queue, aws), sent)
}

fn value_of<'a>(data: &'a [MetricDatum], name: &str) -> Option<&'a MetricDatum> {
    data.iter().find(|d| d.metric_name() == Some(name))
}

#[test]
fn the_metric_counts_running_jobs_and_wakes_an_empty_service() {
    // Busy tasks read 1 per task, not 0: no scale-in while all are busy.
    assert_eq!(backlog_per_task(4, 4, 1.0), 1.0);
    assert_eq!(backlog_per_task(12, 4, 1.0), 3.0);
    // Nothing to do.
    assert_eq!(backlog_per_task(0, 3, 1.0), 0.0);
    assert_eq!(backlog_per_task(0, 0, 1.0), 0.0);
    // No task and work waiting: at least twice the target.
    assert_eq!(backlog_per_task(1, 0, 1.0), 2.0);
    assert_eq!(backlog_per_task(1, 0, 5.0), 10.0);
    assert_eq!(backlog_per_task(50, 0, 1.0), 50.0);
}

#[test]
fn rounds_fall_at_half_past_each_minute() {
    use chrono::TimeZone;
    use crunch_server::scaling::until_half_past;
    let at = |s: u32, ms: i64| {
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 30, 22, 0, s)
            .unwrap()
            + chrono::Duration::milliseconds(ms)
    };
    assert_eq!(until_half_past(at(0, 0)), Duration::from_secs(30));
    assert_eq!(until_half_past(at(29, 500)), Duration::from_millis(500));
    assert_eq!(until_half_past(at(30, 0)), Duration::ZERO);
    assert_eq!(until_half_past(at(45, 0)), Duration::from_secs(45));
}

#[tokio::test]
async fn with_no_task_running_and_work_waiting_it_publishes_at_least_twice_the_target() {
    let (_db, queue) = queue_with(1).await;
    let (publisher, sent) = healthy(queue.clone(), 0, 20);
    let published = publisher.round(&mut Leadership::default()).await.unwrap();
    assert!(published.published);
    assert_eq!(published.reading.running_tasks, 0);
    assert_eq!(published.reading.backlog(), 1);
    assert_eq!(published.reading.backlog_per_task(), 2.0);
    assert_eq!(published.reading.policy.min_tasks, 0);
    assert_eq!(published.reading.policy.max_tasks, 20);

    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let (namespace, data) = &sent[0];
    assert_eq!(namespace, METRIC_NAMESPACE);
    let metric = value_of(data, METRIC_NAME).unwrap();
    assert_eq!(metric.value(), Some(2.0));
    let dimensions = metric.dimensions();
    assert_eq!(dimensions.len(), 1);
    assert_eq!(dimensions[0].name(), Some(METRIC_DIMENSION));
    assert_eq!(dimensions[0].value(), Some(SERVICE));
    assert_eq!(value_of(data, "Backlog").unwrap().value(), Some(1.0));
    assert_eq!(value_of(data, "RunningTasks").unwrap().value(), Some(0.0));
    assert_eq!(value_of(data, "IdleTasks").unwrap().value(), Some(0.0));
    // Every metric carries the same dimension, as terraform's alarms expect.
    assert!(data.iter().all(|d| d.dimensions() == dimensions));
    // The numbers are what /v1/queue shows.
    assert_eq!(publisher.status.last(), Some(published));
}

#[tokio::test]
async fn with_n_tasks_it_publishes_backlog_per_task() {
    let (_db, queue) = queue_with(6).await;
    let (publisher, sent) = healthy(queue, 4, 50);
    let published = publisher.round(&mut Leadership::default()).await.unwrap();
    assert_eq!(published.reading.backlog_per_task(), 1.5);
    // Work waits: no task counts as idle, whatever the job count.
    assert_eq!(published.reading.idle_tasks(), 0);
    let sent = sent.lock().unwrap();
    assert_eq!(
        value_of(&sent[0].1, METRIC_NAME).unwrap().value(),
        Some(1.5)
    );
}

#[tokio::test]
async fn tasks_beyond_the_running_jobs_are_idle_once_nothing_waits() {
    let (_db, queue) = queue_with(2).await;
    // Both jobs start: nothing queued, two running, five tasks.
    queue
        .claim(
            "w",
            &["analysis".to_owned()],
            2,
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let (publisher, sent) = healthy(queue, 5, 10);
    let reading = publisher
        .round(&mut Leadership::default())
        .await
        .unwrap()
        .reading;
    assert_eq!((reading.queued, reading.running_jobs), (0, 2));
    assert_eq!(reading.backlog_per_task(), 0.4);
    assert_eq!(reading.idle_tasks(), 3);
    let sent = sent.lock().unwrap();
    assert_eq!(
        value_of(&sent[0].1, "IdleTasks").unwrap().value(),
        Some(3.0)
    );
}

#[tokio::test]
async fn jobs_a_tenant_limit_holds_back_ask_for_no_worker() {
    let (_db, queue) = queue_with(5).await;
    queue
        .set_tenant_limits(
            TenantId::DEFAULT,
            crunch_queue::TenantLimits {
                max_running: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let kinds = ["analysis".to_owned()];
    let lease = std::time::Duration::from_secs(60);
    // Two start; the tenant's limit holds the other three back.
    assert_eq!(queue.claim("w", &kinds, 5, lease).await.unwrap().len(), 2);
    let (publisher, sent) = healthy(queue.clone(), 1, 10);
    let reading = publisher
        .round(&mut Leadership::default())
        .await
        .unwrap()
        .reading;
    assert_eq!((reading.queued, reading.running_jobs), (0, 2));
    assert_eq!(reading.backlog(), 2);
    assert_eq!(reading.backlog_per_task(), 2.0);
    assert_eq!(
        value_of(&sent.lock().unwrap()[0].1, "Backlog")
            .unwrap()
            .value(),
        Some(2.0)
    );
    // Room for one more: exactly one queued job counts.
    queue
        .set_tenant_limits(
            TenantId::DEFAULT,
            crunch_queue::TenantLimits {
                max_running: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let reading = publisher
        .round(&mut Leadership::default())
        .await
        .unwrap()
        .reading;
    assert_eq!((reading.queued, reading.running_jobs), (1, 2));
    assert_eq!(reading.backlog(), 3);
}

#[tokio::test]
async fn a_throttled_or_failed_aws_call_publishes_nothing() {
    let (_db, queue) = queue_with(3).await;
    let cases: Vec<(&str, Rule, Rule, Rule)> = vec![
        (
            "ecs:DescribeServices",
            mock!(Ecs::describe_services)
                .then_error(|| DescribeServicesError::generic(throttled())),
            scalable_target(0, 10),
            target_tracking(1.0),
        ),
        (
            "application-autoscaling:DescribeScalingPolicies",
            running(2),
            scalable_target(0, 10),
            mock!(AutoScaling::describe_scaling_policies).then_error(|| {
                DescribeScalingPoliciesError::generic(
                    ErrorMetadata::builder()
                        .code("AccessDeniedException")
                        .message("not authorized")
                        .build(),
                )
            }),
        ),
        (
            "service MISSING",
            mock!(Ecs::describe_services).then_output(|| {
                DescribeServicesOutput::builder()
                    .failures(
                        Failure::builder()
                            .arn(format!(
                                "arn:aws:ecs:eu-west-1:1:service/{CLUSTER}/{SERVICE}"
                            ))
                            .reason("MISSING")
                            .build(),
                    )
                    .build()
            }),
            scalable_target(0, 10),
            target_tracking(1.0),
        ),
        (
            "no target-tracking policy",
            running(2),
            scalable_target(0, 10),
            mock!(AutoScaling::describe_scaling_policies)
                .then_output(|| DescribeScalingPoliciesOutput::builder().build()),
        ),
    ];
    for (what, ecs, targets, policies) in cases {
        let sent = Sent::default();
        let put = put_metric_data(sent.clone());
        let publisher = publisher(
            queue.clone(),
            clients(&[&ecs], &[&targets, &policies], &[&put]),
        );
        let error = publisher
            .round(&mut Leadership::default())
            .await
            .unwrap_err();
        let text = error.to_string();
        match what {
            "ecs:DescribeServices" => {
                assert!(matches!(error, ScalingError::Aws { .. }), "{text}");
                assert!(text.contains("ThrottlingException"), "{text}");
            }
            "application-autoscaling:DescribeScalingPolicies" => {
                assert!(text.contains("AccessDeniedException"), "{text}");
            }
            "service MISSING" => assert!(text.contains("MISSING"), "{text}"),
            _ => assert!(text.contains("no target-tracking policy"), "{text}"),
        }
        assert!(
            sent.lock().unwrap().is_empty(),
            "{what}: published after a failure"
        );
        assert_eq!(put.num_calls(), 0, "{what}");
        assert_eq!(publisher.status.last(), None, "{what}");
    }
}

#[tokio::test]
async fn a_failed_put_is_reported_and_not_shown_as_published() {
    let (_db, queue) = queue_with(2).await;
    let (ecs, targets, policies) = (running(1), scalable_target(0, 10), target_tracking(1.0));
    let put =
        mock!(CloudWatch::put_metric_data).then_error(|| PutMetricDataError::generic(throttled()));
    let publisher = publisher(queue, clients(&[&ecs], &[&targets, &policies], &[&put]));
    let error = publisher
        .round(&mut Leadership::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("PutMetricData"), "{error}");
    assert_eq!(put.num_calls(), 1);
    assert_eq!(publisher.status.last(), None);
}

#[tokio::test]
async fn one_replica_at_a_time_publishes() {
    let (_db, queue) = queue_with(1).await;
    let (a, sent) = healthy(queue.clone(), 1, 10);
    let b = publisher(queue, a.aws.clone());
    let (mut lead_a, mut lead_b) = (Leadership::default(), Leadership::default());

    assert!(a.round(&mut lead_a).await.unwrap().published);
    let b_reading = b.round(&mut lead_b).await.unwrap();
    assert!(!b_reading.published, "two publishers");
    // Both read: either replica can answer /v1/queue.
    assert_eq!(b.status.last().unwrap().reading.backlog(), 1);
    assert!(a.round(&mut lead_a).await.unwrap().published);
    assert_eq!(sent.lock().unwrap().len(), 2);

    // The publisher goes away: the other takes over at its next round.
    lead_a.release().await;
    assert!(b.round(&mut lead_b).await.unwrap().published);
    assert!(!a.round(&mut lead_a).await.unwrap().published);
    assert_eq!(sent.lock().unwrap().len(), 3);
}
