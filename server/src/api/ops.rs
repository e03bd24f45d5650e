//! Operations: queue statistics, liveness, readiness. (Prometheus metrics
//! are served apart, by [`crate::metrics_app`].)

use poem_openapi::{ApiResponse, OpenApi, param::Query, payload::Json, payload::PlainText};

use super::{
    ApiTags,
    model::{QueueStats, Readiness, ScalingReading, WorkerLoad},
};
use crate::{
    auth::{Authenticated, Authorized, Scope},
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
    OpsError {
        400 => BadRequest: "A query parameter is malformed (`fleet` takes `true` or `false`).",
    }
}

problems! {
    /// Why the service is not ready.
    open ReadinessError {}
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

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Live queue statistics: the caller's tenant's jobs, or with
    /// `fleet=true` the whole service's, which autoscaling runs on.
    ///
    /// Needs the `read` scope; `fleet=true` needs the `admin` scope
    /// instead. Only the fleet view names workers and shows the scaling
    /// reading.
    #[oai(path = "/v1/queue", method = "get", operation_id = "getQueueStats")]
    async fn queue_stats(
        &self,
        auth: Authorized<Authenticated>,
        /// The whole service's numbers rather than the caller's tenant's.
        #[oai(default)]
        fleet: Query<bool>,
    ) -> Result<QueueStatsResponse, OpsError> {
        let fleet = fleet.0;
        let tenant = if fleet {
            auth.require(Scope::Admin).map_err(ApiError::from)?;
            None
        } else {
            auth.require(Scope::Read).map_err(ApiError::from)?;
            Some(auth.tenant)
        };
        let mut s = self
            .state
            .queue
            .stats(tenant)
            .await
            .map_err(ApiError::from)?;
        // Which workers run jobs, and the scaling reading, describe the
        // fleet, not a tenant's work.
        let (workers, scaling) = if fleet {
            (
                std::mem::take(&mut s.running_by_worker),
                self.state.scaling.last(),
            )
        } else {
            (Vec::new(), None)
        };
        Ok(QueueStatsResponse::Ok(Json(QueueStats {
            fleet,
            queued: s.queued_ready,
            waiting: s.queued_waiting,
            running: s.running,
            runnable: s.runnable,
            backlog: s.backlog(),
            oldest_queued_ms: u64::try_from(s.oldest_queued_age.as_millis()).unwrap_or(u64::MAX),
            succeeded_last_minute: s.finished_last_minute.succeeded,
            failed_last_minute: s.finished_last_minute.failed,
            cancelled_last_minute: s.finished_last_minute.cancelled,
            workers: workers
                .into_iter()
                .map(|w| WorkerLoad {
                    worker_id: w.worker_id,
                    running: w.running,
                })
                .collect(),
            scaling: scaling.map(|p| ScalingReading {
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
    async fn readyz(&self) -> Result<ReadinessResponse, ReadinessError> {
        self.state
            .queue
            .ping()
            .await
            .map_err(|e| ApiError::from(NotReady(e)))?;
        Ok(ReadinessResponse::Ok(Json(Readiness {
            status: "ok".to_owned(),
        })))
    }
}
