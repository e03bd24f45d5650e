//! Jobs: submit (one or a batch), get and list (with long-poll), cancel,
//! and fetch results.

use std::time::Duration;

use crunch_engine::{
    DEFAULT_MAX_SQL_BYTES, TableInput,
    analysis::{Analysis, AnalysisType, Input, PayloadFilter, ResultSummary},
    check_sql as check_sql_text,
};
use crunch_queue::{Cancel, JobFilter, JobId, JobKind, TenantId};
use crunch_worker::AnalysisKind;
use poem_openapi::{
    ApiResponse, OpenApi, ResponseContent,
    param::{Path, Query},
    payload::{Binary, Json},
};
use uuid::Uuid;

use super::{
    ApiTags,
    convert::Submission,
    model::{Job, JobBatch, JobPage, JobState, NewJob, NewJobBatch, ResultPage},
    results::{self, ResultFormat},
};
use crate::{
    auth::{Authorized, Read, Write},
    body_limit::json_body_limit,
    problem::{ApiError, InputError},
    problems,
    state::AppState,
};

/// The jobs operations.
pub struct JobsApi {
    /// Shared state.
    pub state: AppState,
}

/// A submitted job.
#[derive(Debug, ApiResponse)]
pub enum SubmitJobResponse {
    /// Created and queued (or finished, when `wait` saw it finish).
    #[oai(status = 201)]
    Created(Json<Job>),
    /// The idempotency key named an existing job; that job is returned.
    #[oai(status = 200)]
    Existing(Json<Job>),
}

problems! {
    /// Why a submit failed.
    SubmitJobError {
        400 => BadRequest: "The request is malformed.",
        413 => TooLarge: "The body is too large.",
        415 => UnsupportedMediaType: "The body is not JSON.",
        422 => Unprocessable: "The job is invalid: unknown dataset, bad analysis, bad options.",
        429 => TooManyRequests: "The tenant has as many queued jobs as it may; nothing was queued. Retry after `Retry-After` seconds."
            with "Retry-After": "Seconds after which a retry may succeed.",
    }
}

/// A submitted batch.
#[derive(Debug, ApiResponse)]
pub enum SubmitBatchResponse {
    /// Every job is created (or, by idempotency key, found).
    #[oai(status = 201)]
    Created(Json<JobBatch>),
}

/// A job.
#[derive(Debug, ApiResponse)]
pub enum GetJobResponse {
    /// The job as it is now (or when `wait` ended).
    #[oai(status = 200)]
    Ok(Json<Job>),
}

problems! {
    /// Why a job could not be read.
    GetJobError {
        400 => BadRequest: "A parameter is malformed.",
        404 => NotFound: "No such job.",
    }
}

/// A page of jobs.
#[derive(Debug, ApiResponse)]
pub enum ListJobsResponse {
    /// The page.
    #[oai(status = 200)]
    Ok(Json<JobPage>),
}

problems! {
    /// Why jobs could not be listed.
    ListJobsError {
        400 => BadRequest: "A parameter is malformed or out of range.",
    }
}

/// A cancel's answer.
#[derive(Debug, ApiResponse)]
pub enum CancelJobResponse {
    /// The job is cancelled (it was queued) or already finished; no change
    /// is pending.
    #[oai(status = 200)]
    Done(Json<Job>),
    /// The job is running; its worker stops it within seconds.
    #[oai(status = 202)]
    Accepted(Json<Job>),
}

problems! {
    /// Why a job could not be cancelled.
    CancelJobError {
        400 => BadRequest: "The id is malformed.",
        404 => NotFound: "No such job.",
    }
}

/// A job's result in the format asked for. One 200 with three media types:
/// as three responses of the same status, the spec would keep only the
/// last one.
#[derive(Debug, ResponseContent)]
pub enum ResultContent {
    /// A page of rows as JSON.
    #[oai(content_type = "application/json; charset=utf-8")]
    Json(Json<ResultPage>),
    /// All rows as CSV with a header line, streamed.
    #[oai(content_type = "text/csv")]
    Csv(Binary<poem::Body>),
    /// The result's Parquet file, streamed.
    #[oai(content_type = "application/vnd.apache.parquet")]
    Parquet(Binary<poem::Body>),
}

/// A job's result.
#[derive(Debug, ApiResponse)]
pub enum GetResultResponse {
    /// The result: a page of rows as JSON (`format=json`), all rows as CSV
    /// with a header line (`format=csv`), or the Parquet file
    /// (`format=parquet`); CSV and Parquet are streamed.
    #[oai(status = 200)]
    Ok(ResultContent),
}

/// A job's result as CSV, for clients that cannot pick a media type.
#[derive(Debug, ApiResponse)]
pub enum CsvResultResponse {
    /// All rows as CSV with a header line, streamed.
    #[oai(status = 200, content_type = "text/csv")]
    Ok(Binary<poem::Body>),
}

/// A job's result as its Parquet file, for clients that cannot pick a
/// media type.
#[derive(Debug, ApiResponse)]
pub enum ParquetResultResponse {
    /// The result's Parquet file, streamed. Declared and sent as
    /// `application/octet-stream`, the one binary type every generated
    /// client reads as bytes.
    #[oai(status = 200, content_type = "application/octet-stream")]
    Ok(
        Binary<poem::Body>,
        /// `attachment; filename="<job id>.parquet"`.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

problems! {
    /// Why the result could not be fetched.
    GetResultError {
        400 => BadRequest: "A parameter is malformed or out of range.",
        404 => NotFound: "No such job.",
        409 => Conflict: "The job has not succeeded (yet), so there is no result.",
    }
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<JobId>, ApiError> {
    cursor
        .map(|c| {
            Uuid::parse_str(c).map(JobId).map_err(|_| {
                ApiError::BadRequest(format!("cursor {c:?} is not one this API gave out"))
            })
        })
        .transpose()
}

impl JobsApi {
    /// Long-polls: returns the job once it is terminal or `wait` passes.
    async fn wait_for(
        &self,
        tenant: TenantId,
        id: JobId,
        wait: Option<u32>,
    ) -> Result<Option<crunch_queue::Job>, ApiError> {
        let wait =
            Duration::from_secs(u64::from(wait.unwrap_or(0))).min(self.state.limits.max_wait);
        let parked = (!wait.is_zero()).then(|| self.state.waiters.park(id));
        let job = self.state.queue.get(tenant, id).await?;
        match (job, parked) {
            (Some(job), Some(parked)) if !job.state.is_terminal() => {
                parked.wait(wait).await;
                Ok(self.state.queue.get(tenant, id).await?)
            }
            (job, _) => Ok(job),
        }
    }
}

#[OpenApi(tag = "ApiTags::Jobs")]
impl JobsApi {
    /// Submit a job.
    ///
    /// The job is durable once this returns 2xx. With `wait`, the call
    /// returns as soon as the job finishes or after `wait` seconds,
    /// whichever comes first. A tenant with as many queued jobs as it may
    /// have is refused 429 with `Retry-After`. Needs the `write` scope.
    #[oai(
        path = "/v1/jobs",
        method = "post",
        operation_id = "submitJob",
        transform = "json_body_limit"
    )]
    async fn submit_job(
        &self,
        auth: Authorized<Write>,
        body: Json<NewJob>,
        /// Seconds to wait for the job to finish (0 to 60).
        #[oai(validator(maximum(value = "60")))]
        wait: Query<Option<u32>>,
    ) -> Result<SubmitJobResponse, SubmitJobError> {
        let new = self.prepare(auth.tenant, body.0).await?;
        let enqueued = self
            .state
            .queue
            .enqueue(self.state.queue.pool(), new)
            .await
            .map_err(ApiError::from)?;
        let id = enqueued.job.id;
        let job = match self.wait_for(auth.tenant, id, wait.0).await? {
            Some(job) => job,
            None => enqueued.job,
        };
        let view = Json(Job::try_from(&job).map_err(ApiError::from)?);
        Ok(if enqueued.created {
            SubmitJobResponse::Created(view)
        } else {
            SubmitJobResponse::Existing(view)
        })
    }

    /// Submit several jobs in one transaction: all are created or none.
    ///
    /// A batch that would take the tenant past the queued jobs it may have
    /// is refused whole, 429 with `Retry-After`. Needs the `write` scope.
    #[oai(
        path = "/v1/job-batches",
        method = "post",
        operation_id = "submitJobBatch",
        transform = "json_body_limit"
    )]
    async fn submit_job_batch(
        &self,
        auth: Authorized<Write>,
        body: Json<NewJobBatch>,
    ) -> Result<SubmitBatchResponse, SubmitJobError> {
        let mut jobs = Vec::with_capacity(body.0.jobs.len());
        for (n, job) in body.0.jobs.into_iter().enumerate() {
            jobs.push(
                self.prepare(auth.tenant, job)
                    .await
                    .map_err(|e| e.in_batch(n))?,
            );
        }
        let enqueued = self
            .state
            .queue
            .enqueue_batch(self.state.queue.pool(), jobs)
            .await
            .map_err(ApiError::from)?;
        let jobs = enqueued
            .iter()
            .map(|e| Job::try_from(&e.job))
            .collect::<Result<_, _>>()
            .map_err(ApiError::from)?;
        Ok(SubmitBatchResponse::Created(Json(JobBatch { jobs })))
    }

    /// Get a job.
    ///
    /// With `wait`, returns as soon as the job finishes or after `wait`
    /// seconds, whichever comes first. Needs the `read` scope.
    #[oai(path = "/v1/jobs/:id", method = "get", operation_id = "getJob")]
    async fn get_job(
        &self,
        auth: Authorized<Read>,
        /// The job's id.
        id: Path<Uuid>,
        /// Seconds to wait for the job to finish (0 to 60).
        #[oai(validator(maximum(value = "60")))]
        wait: Query<Option<u32>>,
    ) -> Result<GetJobResponse, GetJobError> {
        match self.wait_for(auth.tenant, JobId(id.0), wait.0).await? {
            Some(job) => Ok(GetJobResponse::Ok(Json(
                Job::try_from(&job).map_err(ApiError::from)?,
            ))),
            None => Err(ApiError::NotFound(format!("no job {}", id.0)).into()),
        }
    }

    /// List jobs, newest first.
    ///
    /// Needs the `read` scope.
    #[oai(path = "/v1/jobs", method = "get", operation_id = "listJobs")]
    async fn list_jobs(
        &self,
        auth: Authorized<Read>,
        /// Only jobs in this state.
        state: Query<Option<JobState>>,
        /// Only jobs that read this dataset.
        dataset: Query<Option<Uuid>>,
        /// Only jobs of this analysis type (`sql`, `summary`, …).
        #[oai(name = "type")]
        analysis_type: Query<Option<String>>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1 to 1000.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        limit: Query<i64>,
    ) -> Result<ListJobsResponse, ListJobsError> {
        let before = parse_cursor(cursor.0.as_deref())?;
        let mut payload = PayloadFilter::default();
        if let Some(dataset) = dataset.0 {
            payload = payload.reading(dataset);
        }
        if let Some(name) = analysis_type.0 {
            match name.parse::<AnalysisType>() {
                Ok(analysis_type) => payload = payload.of_type(analysis_type),
                // No job runs an analysis that does not exist.
                Err(_) => {
                    return Ok(ListJobsResponse::Ok(Json(JobPage {
                        items: Vec::new(),
                        next_cursor: None,
                    })));
                }
            }
        }
        let mut filter = JobFilter {
            states: state
                .0
                .map(crunch_queue::JobState::from)
                .into_iter()
                .collect(),
            kind: Some(AnalysisKind::KIND.to_owned()),
            payload_contains: None,
            before,
            limit: limit.0,
        };
        if !payload.is_empty() {
            filter = filter.containing(&payload).map_err(ApiError::from)?;
        }
        let jobs = self
            .state
            .queue
            .list(auth.tenant, &filter)
            .await
            .map_err(ApiError::from)?;
        let next_cursor = (jobs.len() as i64 == limit.0)
            .then(|| jobs.last().map(|j| j.id.to_string()))
            .flatten();
        let items = jobs
            .iter()
            .map(Job::try_from)
            .collect::<Result<_, _>>()
            .map_err(ApiError::from)?;
        Ok(ListJobsResponse::Ok(Json(JobPage { items, next_cursor })))
    }

    /// Cancel a job.
    ///
    /// A queued job is cancelled at once (200). A running job's worker is
    /// told and stops it within seconds (202); get the job to see it end.
    /// Needs the `write` scope.
    #[oai(
        path = "/v1/jobs/:id/cancel",
        method = "post",
        operation_id = "cancelJob"
    )]
    async fn cancel_job(
        &self,
        auth: Authorized<Write>,
        /// The job's id.
        id: Path<Uuid>,
    ) -> Result<CancelJobResponse, CancelJobError> {
        let tenant = auth.tenant;
        let id = JobId(id.0);
        let outcome = self
            .state
            .queue
            .cancel(tenant, id)
            .await
            .map_err(ApiError::from)?;
        let job = self
            .state
            .queue
            .get(tenant, id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
        let view = Json(Job::try_from(&job).map_err(ApiError::from)?);
        match outcome {
            Cancel::NotFound => Err(ApiError::NotFound(format!("no job {id}")).into()),
            Cancel::Requested => Ok(CancelJobResponse::Accepted(view)),
            Cancel::Cancelled | Cancel::AlreadyFinished(_) => Ok(CancelJobResponse::Done(view)),
        }
    }

    /// Fetch a job's result: a page of rows as JSON, or everything as CSV
    /// or Parquet, streamed.
    ///
    /// Needs the `read` scope.
    #[oai(
        path = "/v1/jobs/:id/result",
        method = "get",
        operation_id = "getJobResult"
    )]
    async fn get_job_result(
        &self,
        auth: Authorized<Read>,
        /// The job's id.
        id: Path<Uuid>,
        /// `json` (paged), `csv` or `parquet`.
        #[oai(default = "default_format")]
        format: Query<ResultFormat>,
        /// The `next_cursor` of the previous JSON page.
        cursor: Query<Option<String>>,
        /// JSON page size, 1 to 10000.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "10000"))
        )]
        limit: Query<u32>,
    ) -> Result<GetResultResponse, GetResultError> {
        let path = self.result_path(auth.tenant, JobId(id.0)).await?;
        let objects = self.state.store.objects();
        Ok(match format.0 {
            ResultFormat::Parquet => GetResultResponse::Ok(ResultContent::Parquet(Binary(
                results::parquet(objects, &path)
                    .await
                    .map_err(ApiError::from)?,
            ))),
            ResultFormat::Csv => GetResultResponse::Ok(ResultContent::Csv(Binary(
                results::csv(objects, &path).await.map_err(ApiError::from)?,
            ))),
            ResultFormat::Json => {
                let offset = match cursor.0 {
                    Some(c) => c.parse::<usize>().map_err(|_| {
                        ApiError::BadRequest(format!("cursor {c:?} is not one this API gave out"))
                    })?,
                    None => 0,
                };
                GetResultResponse::Ok(ResultContent::Json(Json(
                    results::json_page(objects, &path, offset, limit.0 as usize)
                        .await
                        .map_err(ApiError::from)?,
                )))
            }
        })
    }

    /// Download a job's result as CSV: the same as `getJobResult` with
    /// `format=csv`, as an operation of its own, whose one media type
    /// every generated client can read. Needs the `read` scope.
    #[oai(
        path = "/v1/jobs/:id/result.csv",
        method = "get",
        operation_id = "downloadJobResultCsv"
    )]
    async fn download_csv(
        &self,
        auth: Authorized<Read>,
        id: Path<Uuid>,
    ) -> Result<CsvResultResponse, GetResultError> {
        let path = self.result_path(auth.tenant, JobId(id.0)).await?;
        let body = results::csv(self.state.store.objects(), &path)
            .await
            .map_err(ApiError::from)?;
        Ok(CsvResultResponse::Ok(Binary(body)))
    }

    /// Download a job's result as its Parquet file: the same file as
    /// `getJobResult` with `format=parquet`, as `application/octet-stream`.
    /// Needs the `read` scope.
    #[oai(
        path = "/v1/jobs/:id/result.parquet",
        method = "get",
        operation_id = "downloadJobResultParquet"
    )]
    async fn download_parquet(
        &self,
        auth: Authorized<Read>,
        id: Path<Uuid>,
    ) -> Result<ParquetResultResponse, GetResultError> {
        let path = self.result_path(auth.tenant, JobId(id.0)).await?;
        let body = results::parquet(self.state.store.objects(), &path)
            .await
            .map_err(ApiError::from)?;
        Ok(ParquetResultResponse::Ok(
            Binary(body),
            format!("attachment; filename=\"{}.parquet\"", id.0),
        ))
    }
}

impl JobsApi {
    /// Where a succeeded job's result file is: 404 for no such job, 409
    /// for a job without a result.
    async fn result_path(
        &self,
        tenant: TenantId,
        id: JobId,
    ) -> Result<object_store::path::Path, ApiError> {
        let job = self
            .state
            .queue
            .get(tenant, id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))?;
        if job.state != crunch_queue::JobState::Succeeded {
            return Err(ApiError::Conflict(format!(
                "job {id} is {}; only a succeeded job has a result",
                job.state
            )));
        }
        // The attempt that succeeded recorded where it wrote its result.
        let summary = job.result_as::<ResultSummary>()?.ok_or_else(|| {
            ApiError::Internal(format!("succeeded job {id} records no result path"))
        })?;
        Ok(object_store::path::Path::from(summary.path))
    }
}

fn default_limit() -> i64 {
    100
}

fn default_page() -> u32 {
    1000
}

fn default_format() -> ResultFormat {
    ResultFormat::Json
}

/// Checks an SQL analysis as far as it can be checked before it runs (see
/// [`crunch_engine::check_sql`]), over `inputs`, the job's tables
/// with their datasets' schemas: a query that is not one read-only query,
/// is too long or too deep, reads a table that is not among the job's
/// inputs, or does not plan over them (an unknown column, a type error) is
/// refused now, and never queued.
async fn check_sql(analysis: &Analysis, inputs: Vec<TableInput>) -> Result<(), ApiError> {
    let Analysis::Sql { query } = analysis else {
        return Ok(());
    };
    check_sql_text(query.clone(), inputs, DEFAULT_MAX_SQL_BYTES).await?;
    Ok(())
}

impl JobsApi {
    /// A submitted job, checked as far as it can be before it is queued
    /// (its tables, its datasets, its SQL), as the queue job to enqueue.
    async fn prepare(
        &self,
        tenant: TenantId,
        job: NewJob,
    ) -> Result<crunch_queue::NewJob, ApiError> {
        let submission = Submission::try_from(job)?;
        let inputs = self
            .check_datasets(tenant, &submission.payload.inputs)
            .await?;
        check_sql(&submission.payload.analysis, inputs).await?;
        Ok(submission.queue_job(tenant)?)
    }
}

impl JobsApi {
    /// Every input names a dataset this tenant has: a clear 422 at submit
    /// beats a failed job later. Returns the inputs as the engine sees them
    /// (table name and dataset schema, no files) for [`check_sql`].
    async fn check_datasets(
        &self,
        tenant: TenantId,
        job_inputs: &[Input],
    ) -> Result<Vec<TableInput>, ApiError> {
        let mut inputs = Vec::with_capacity(job_inputs.len());
        for input in job_inputs {
            let found = self
                .state
                .store
                .get(tenant, crunch_store::DatasetId(input.dataset))
                .await?;
            let Some((dataset, _parts)) = found else {
                return Err(ApiError::Unprocessable {
                    detail: format!(
                        "input {:?} names dataset {}, which does not exist",
                        input.table, input.dataset
                    ),
                    errors: vec![InputError {
                        line: None,
                        column: Some("inputs".to_owned()),
                        message: format!("unknown dataset {}", input.dataset),
                    }],
                });
            };
            // The schema a run reads the dataset with (the worker takes it
            // from the same catalog row when the job starts).
            inputs.push(TableInput {
                name: input.table.clone(),
                schema: dataset.schema,
                files: Vec::new(),
            });
        }
        Ok(inputs)
    }
}
