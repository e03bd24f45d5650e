//! Operations: queue statistics, liveness, readiness, Prometheus metrics.

use poem_openapi::{ApiResponse, OpenApi, payload::Json, payload::PlainText};

use super::{
    ApiTags,
    model::{QueueStats, Readiness, ScalingReading, WorkerLoad},
};
use crate::{
    problem::{ApiError, NotReady},
    problems,
    state::AppState,
};

/// The operations endpoints.
pub struct OpsApi {
    /// Shared state.
    pub state: AppState,
}

/// Queue statistics.
#[derive(Debug, ApiResponse)]
pub enum QueueStatsResponse {
    /// The numbers now.
    #[oai(status = 200)]
    Ok(Json<QueueStats>),
}

problems! {
    /// Why statistics are unavailable.
    OpsError {}
}

/// Liveness.
#[derive(Debug, ApiResponse)]
pub enum LivenessResponse {
    /// The process serves requests.
    #[oai(status = 200)]
    Ok(PlainText<String>),
}

/// Readiness.
#[derive(Debug, ApiResponse)]
pub enum ReadinessResponse {
    /// The database answers: route traffic here.
    #[oai(status = 200)]
    Ok(Json<Readiness>),
}

/// Metrics.
#[derive(Debug, ApiResponse)]
pub enum MetricsResponse {
    /// Prometheus text exposition format.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
}

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Live queue statistics: the same numbers autoscaling runs on.
    #[oai(path = "/v1/queue", method = "get", operation_id = "getQueueStats")]
    async fn queue_stats(&self) -> Result<QueueStatsResponse, OpsError> {
        let s = self.state.queue.stats(None).await.map_err(ApiError::from)?;
        Ok(QueueStatsResponse::Ok(Json(QueueStats {
            queued: s.queued_ready,
            waiting: s.queued_waiting,
            running: s.running,
            backlog: s.backlog(),
            oldest_queued_ms: u64::try_from(s.oldest_queued_age.as_millis()).unwrap_or(u64::MAX),
            succeeded_last_minute: s.finished_last_minute.succeeded,
            failed_last_minute: s.finished_last_minute.failed,
            cancelled_last_minute: s.finished_last_minute.cancelled,
            workers: s
                .running_by_worker
                .into_iter()
                .map(|w| WorkerLoad {
                    worker_id: w.worker_id,
                    running: w.running,
                })
                .collect(),
            scaling: self.state.scaling.last().map(|p| ScalingReading {
                read_at: p.reading.at,
                running_tasks: p.reading.running_tasks,
                desired_tasks: p.reading.desired_tasks,
                backlog_per_task: p.reading.backlog_per_task(),
                target: p.reading.policy.target,
                min_tasks: p.reading.policy.min_tasks,
                max_tasks: p.reading.policy.max_tasks,
                published: p.published,
            }),
        })))
    }

    /// Liveness: the process is up (does not touch the database).
    #[oai(path = "/healthz", method = "get", operation_id = "getLiveness")]
    async fn healthz(&self) -> LivenessResponse {
        LivenessResponse::Ok(PlainText("ok".to_owned()))
    }

    /// Readiness: the database answers.
    #[oai(path = "/readyz", method = "get", operation_id = "getReadiness")]
    async fn readyz(&self) -> Result<ReadinessResponse, OpsError> {
        self.state
            .queue
            .ping()
            .await
            .map_err(|e| ApiError::from(NotReady(e)))?;
        Ok(ReadinessResponse::Ok(Json(Readiness {
            status: "ok".to_owned(),
        })))
    }

    /// Prometheus metrics: queue depth by state, job outcomes and run
    /// times, HTTP request latency.
    #[oai(path = "/metrics", method = "get", operation_id = "getMetrics")]
    async fn metrics(&self) -> Result<MetricsResponse, OpsError> {
        let stats = self.state.queue.stats(None).await.map_err(ApiError::from)?;
        let run_times = self
            .state
            .queue
            .recent_run_times(std::time::Duration::from_secs(300))
            .await
            .map_err(ApiError::from)?;
        Ok(MetricsResponse::Ok(PlainText(
            self.state.metrics.render(&stats, &run_times),
        )))
    }
}
