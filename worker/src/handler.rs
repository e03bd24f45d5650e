//! Running analysis jobs from the queue: the job kind, the apalis handler
//! that resolves a job's datasets to their committed parts and hands them to
//! the engine, and the worker loop with graceful drain.

use std::{sync::Arc, time::Duration};

use apalis::prelude::{Data, WorkerBuilder};
use crunch_engine::{
    Engine, EngineError, RunRequest, TableInput,
    analysis::{AnalysisJob, ResultSummary},
};
use crunch_queue::{JobContext, JobFailure, JobKind, PgBackend, Queue, Registry, WorkerConfig};
use crunch_store::{DatasetId, Store, StoreError};

/// The queue kind of analysis jobs.
pub const ANALYSIS_KIND: &str = "analysis";

/// The analysis job kind: jobs named [`ANALYSIS_KIND`] whose payload is an
/// [`AnalysisJob`]. The server enqueues them, this crate's handler runs
/// them.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisKind;

impl JobKind for AnalysisKind {
    const KIND: &'static str = ANALYSIS_KIND;
    type Payload = AnalysisJob;
}

/// The kinds crunch's queue accepts: the one every binary and test opens
/// its [`Queue`] with.
pub fn registry() -> Registry {
    Registry::new().register::<AnalysisKind>()
}

/// What the handler needs besides the job.
#[derive(Clone)]
pub struct Deps {
    /// Datasets and results.
    pub store: Store,
    /// The analysis engine.
    pub engine: Engine,
}

fn store_failure(e: StoreError) -> JobFailure {
    if e.is_caller_fault() {
        JobFailure::fatal(e.to_string())
    } else {
        JobFailure::retry(e.to_string())
    }
}

fn engine_failure(e: EngineError) -> JobFailure {
    if e.is_permanent() {
        JobFailure::fatal(e.to_string())
    } else {
        JobFailure::retry(e.to_string())
    }
}

/// Runs one analysis job: reads only the committed parts of the job's
/// datasets (as the database lists them when the attempt starts), and
/// writes the result where the API will look for it.
pub async fn run_analysis(
    job: AnalysisJob,
    ctx: JobContext,
    deps: Data<Arc<Deps>>,
) -> Result<ResultSummary, JobFailure> {
    #[cfg(feature = "failpoints")]
    crate::failpoint::panic_if_marked(crate::failpoint::Place::Handler, &job.analysis);
    let tenant = ctx.tenant_id();
    let mut inputs = Vec::with_capacity(job.inputs.len());
    for input in &job.inputs {
        let (schema, parts) = deps
            .store
            .committed_parts(tenant, DatasetId(input.dataset))
            .await
            .map_err(store_failure)?
            .ok_or_else(|| {
                JobFailure::fatal(format!(
                    "dataset {} (input {:?}) does not exist; was it deleted?",
                    input.dataset, input.table
                ))
            })?;
        inputs.push(TableInput {
            name: input.table.clone(),
            schema,
            files: parts.into_iter().map(|p| p.path).collect(),
        });
    }
    let request = RunRequest {
        objects: deps.store.objects(),
        object_store_url: deps.store.object_store_url(),
        inputs,
        analysis: job.analysis,
        output: deps.store.result_path(tenant, ctx.id(), ctx.attempt()),
    };
    ctx.progress(0.0, Some("starting"));
    let reporter = ctx.clone();
    let stopper = ctx.clone();
    deps.engine
        .run(
            request,
            move |fraction, message| reporter.progress(fraction, Some(message)),
            async move { stopper.stopping().await },
        )
        .await
        .map_err(engine_failure)
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The queue settings (id, slots, lease, heartbeats, polling).
    pub queue: WorkerConfig,
    /// How long a shutdown waits for running jobs before releasing them.
    pub grace: Duration,
}

/// Runs analysis jobs until `shutdown` resolves, then stops claiming, gives
/// running jobs `grace` to finish, releases the rest back to the queue,
/// writes every outcome and returns.
pub async fn run_worker(
    queue: Queue,
    deps: Deps,
    options: WorkerOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), apalis::prelude::WorkerError> {
    let name = options.queue.worker_id().to_owned();
    let backend = PgBackend::for_kind::<AnalysisKind>(queue, options.queue);
    let handle = backend.handle();
    let grace = options.grace;
    let worker = WorkerBuilder::new(name.as_str())
        .backend(backend)
        .data(Arc::new(deps))
        .build(run_analysis);
    worker
        .run_until(async move {
            shutdown.await;
            tracing::info!("shutting down: no new jobs; waiting up to {grace:?} for running ones");
            handle.drain(grace).await;
            Ok::<(), std::io::Error>(())
        })
        .await
}
