//! The [`Engine`]: its runtime, its memory pool and spill directory, and
//! one run from planning to the written result.

use std::{
    future::Future,
    num::NonZeroUsize,
    path::PathBuf,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use datafusion::{
    arrow::datatypes::SchemaRef,
    execution::{
        disk_manager::{DiskManagerBuilder, DiskManagerMode},
        memory_pool::{FairSpillPool, TrackConsumersPool},
        object_store::ObjectStoreUrl,
        runtime_env::{RuntimeEnv, RuntimeEnvBuilder},
    },
};
use object_store::{ObjectStore, ObjectStoreExt, path::Path};

use crate::{
    EngineError, analyses,
    analysis::{Analysis, ColumnSummary, ResultSummary},
    execution::Stop,
    memory,
    output::ResultWriter,
    progress::{DONE, Progress, WRITING},
    run::{RunContext, SpillCounters},
    session, sql,
};

/// How long a cancelled run may take to stop on its own (abort the upload,
/// drop the plan) before its task is aborted outright.
const CANCEL_GRACE: Duration = Duration::from_secs(2);

/// Stack of each engine thread, and of the thread [`check_sql`] runs on.
const ENGINE_STACK_BYTES: usize = 16 << 20;

/// Default for [`EngineConfig::max_sql_bytes`].
pub const DEFAULT_MAX_SQL_BYTES: usize = 100 * 1024;

/// Default for [`EngineConfig::batch_size`].
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// How the engine is set up. A zero in `threads`, `target_partitions`,
/// `batch_size` or `max_sql_bytes` means its default.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// DataFusion memory pool size in bytes, shared by concurrent runs.
    /// None: half the cgroup memory limit (`/sys/fs/cgroup/memory.max`,
    /// or cgroup v1's `memory.limit_in_bytes`), else half the machine's
    /// memory (`/proc/meminfo`) divided by `engines_per_host`.
    pub memory_limit: Option<usize>,
    /// Where spill files go (created if missing); None: the OS temp dir.
    pub spill_dir: Option<PathBuf>,
    /// Threads of the engine's own runtime (default: available
    /// parallelism).
    pub threads: usize,
    /// DataFusion's `target_partitions`: how many partitions a plan
    /// processes in parallel (default: `threads`).
    pub target_partitions: usize,
    /// DataFusion's `batch_size`: rows per batch (default 8192).
    pub batch_size: usize,
    /// Longest SQL text accepted, in bytes (default 100 kB).
    pub max_sql_bytes: usize,
    /// Processes with an engine that share this machine when no container
    /// limit bounds this one (0 means 1): the default pool is this
    /// process's share of the machine, and a pool that would make them
    /// together promise more than the machine has is warned about.
    pub engines_per_host: usize,
    /// Called on the engine's runtime as each run starts, before planning:
    /// where a panicking operator would surface. The worker's fault-suite
    /// failpoint is the one user; None in every other build.
    pub on_run_start: Option<fn(&Analysis)>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            memory_limit: None,
            spill_dir: None,
            threads: 0,
            target_partitions: 0,
            batch_size: DEFAULT_BATCH_SIZE,
            max_sql_bytes: DEFAULT_MAX_SQL_BYTES,
            engines_per_host: 1,
            on_run_start: None,
        }
    }
}

impl EngineConfig {
    /// The configuration with every zero replaced by its default.
    fn resolved(mut self) -> Self {
        let share = memory::HostShare::detect(self.engines_per_host);
        let pool = *self
            .memory_limit
            .get_or_insert_with(|| share.default_pool());
        if let Some(warning) = share.overcommit(pool) {
            tracing::warn!("memory overcommitted: {warning}");
        }
        if self.threads == 0 {
            self.threads = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        }
        if self.target_partitions == 0 {
            self.target_partitions = self.threads;
        }
        if self.batch_size == 0 {
            self.batch_size = DEFAULT_BATCH_SIZE;
        }
        if self.max_sql_bytes == 0 {
            self.max_sql_bytes = DEFAULT_MAX_SQL_BYTES;
        }
        self
    }
}

/// Checks an SQL analysis before it is queued, without its data: the
/// checks a run makes before planning (length within `max_sql_bytes`, one
/// read-only query, nesting within the limits, every table it reads one of
/// `inputs`), then the planning itself, exactly as a run plans, over
/// `inputs` as empty tables with their schemas (their `files` are not
/// read). So a query this accepts does not fail to run for a reason
/// visible before its data is read: an unknown column, a type error or an
/// unknown function is an error here ([`EngineError::UnknownColumn`] or
/// [`EngineError::InvalidQuery`]), as a too long or DDL query is.
///
/// Parsing, planning and dropping a deeply nested query recurse, so the
/// check runs on a thread of its own with the engine threads' stack, never
/// on the caller's. Planning a legal query can take a while (a long chain
/// of terms takes DataFusion's optimizer seconds in a debug build), so at
/// most as many checks as there are cores plan at once: a burst of submits
/// waits its turn instead of taking every core of the caller's machine.
pub async fn check_sql(
    query: String,
    inputs: Vec<TableInput>,
    max_sql_bytes: usize,
) -> Result<(), EngineError> {
    static CHECKS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
        std::sync::LazyLock::new(|| {
            let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
            Arc::new(tokio::sync::Semaphore::new(cores))
        });
    let permit = Arc::clone(&CHECKS)
        .acquire_owned()
        .await
        .map_err(|_| EngineError::Execution("the SQL checks are closed".into()))?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("crunch-sql-check".into())
        .stack_size(ENGINE_STACK_BYTES)
        .spawn(move || {
            let _ = sender.send(sql::check_planned(&query, inputs, max_sql_bytes));
            // Held by the thread, not the caller: a caller that gave up
            // waiting does not stop the planning.
            drop(permit);
        })?;
    receiver.await.unwrap_or_else(|_| {
        Err(EngineError::Execution(
            "the SQL check stopped without an answer".into(),
        ))
    })
}

/// One input table of a run.
#[derive(Debug, Clone)]
pub struct TableInput {
    /// The name SQL and the named analyses use.
    pub name: String,
    /// The table's schema; files are read as this schema (missing columns
    /// are null).
    pub schema: SchemaRef,
    /// Exactly the Parquet files to read; other files beside them are not
    /// read. No files: an empty table.
    pub files: Vec<Path>,
}

/// One analysis to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The store holding the inputs and receiving the output.
    pub objects: Arc<dyn ObjectStore>,
    /// The URL `objects` is registered under for the run (e.g.
    /// `s3://bucket`); input paths are relative to it.
    pub object_store_url: ObjectStoreUrl,
    /// The input tables.
    pub inputs: Vec<TableInput>,
    /// What to compute.
    pub analysis: Analysis,
    /// Where the result Parquet file goes.
    pub output: Path,
}

/// Spill totals since the engine started, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpillTotals {
    /// Spill files written.
    pub files: u64,
    /// Bytes spilled.
    pub bytes: u64,
}

/// The analysis engine. Cheap to clone; clones share the runtime and the
/// memory pool.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Always Some until dropped; taken in `drop` to shut down without
    /// blocking (dropping a runtime inside another one would panic).
    runtime: Option<tokio::runtime::Runtime>,
    env: Arc<RuntimeEnv>,
    config: EngineConfig,
    memory_limit: usize,
    spills: Arc<SpillCounters>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Engine {
    /// Builds the engine's runtime, memory pool and spill directory.
    pub fn new(config: EngineConfig) -> Result<Engine, EngineError> {
        let config = config.resolved();
        let memory_limit = config
            .memory_limit
            .unwrap_or_else(|| memory::HostShare::detect(config.engines_per_host).default_pool());
        let mode = match &config.spill_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                DiskManagerMode::Directories(vec![dir.clone()])
            }
            None => DiskManagerMode::OsTmpDirectory,
        };
        // Tracking the largest consumers makes an out-of-memory message say
        // which operators held the memory.
        let pool = TrackConsumersPool::new(
            FairSpillPool::new(memory_limit),
            NonZeroUsize::new(5).unwrap_or(NonZeroUsize::MIN),
        );
        let env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(pool))
            .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
            .build_arc()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("crunch-engine")
            // Planning recurses over expression trees; debug builds need a
            // lot of stack per level. The memory is only reserved, not used.
            .thread_stack_size(ENGINE_STACK_BYTES)
            .enable_all()
            .build()?;
        Ok(Engine {
            inner: Arc::new(Inner {
                runtime: Some(runtime),
                env,
                config,
                memory_limit,
                spills: Arc::default(),
            }),
        })
    }

    /// The configuration in effect (defaults and the detected memory limit
    /// filled in).
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The memory pool's size in bytes.
    pub fn memory_limit(&self) -> usize {
        self.inner.memory_limit
    }

    /// Tasks alive on the engine's runtime: a run's own task and the tasks
    /// its plan spawned (one per partition of a repartition, for example).
    /// Zero when no run is in progress; a cancelled run's tasks are gone
    /// once it has stopped, so this is how tests and metrics see that a
    /// cancel ended the work and not only the wait for it.
    pub fn alive_tasks(&self) -> usize {
        self.inner
            .runtime
            .as_ref()
            .map_or(0, |runtime| runtime.metrics().num_alive_tasks())
    }

    /// What runs have spilled to disk since the engine started.
    pub fn spill_totals(&self) -> SpillTotals {
        SpillTotals {
            files: self.inner.spills.files.load(Ordering::Relaxed),
            bytes: self.inner.spills.bytes.load(Ordering::Relaxed),
        }
    }

    /// Plans and executes `request` on the engine's own runtime, streams
    /// the result into a Parquet file at `request.output`, and reports
    /// progress (a fraction from 0 to 1 and a message) through `progress`
    /// as it goes.
    ///
    /// When `cancel` resolves, the run stops within about two seconds and
    /// returns [`EngineError::Cancelled`], unless it finished first: a
    /// result that exists is returned. Dropping the returned future stops
    /// the run too. A failed run leaves no file at `request.output`.
    pub async fn run(
        &self,
        request: RunRequest,
        progress: impl Fn(f32, &str) + Send + Sync + 'static,
        cancel: impl Future<Output = ()> + Send,
    ) -> Result<ResultSummary, EngineError> {
        let runtime = self.runtime()?;
        let objects = Arc::clone(&request.objects);
        let output = request.output.clone();
        let (trigger, stop) = Stop::new();
        let inner = Arc::clone(&self.inner);
        let progress = Progress::new(Arc::new(progress));
        let mut task = runtime.spawn(async move { inner.execute(request, progress, stop).await });

        tokio::pin!(cancel);
        tokio::select! {
            joined = &mut task => match joined {
                Ok(result) => result,
                Err(error) => {
                    // The task panicked and may have left a file behind.
                    delete_quietly(objects.as_ref(), &output).await;
                    Err(EngineError::Execution(format!("the analysis task failed: {error}")))
                }
            },
            () = &mut cancel => {
                trigger.stop();
                let grace = grace_timer();
                tokio::select! {
                    joined = &mut task => match joined {
                        Ok(Ok(summary)) => Ok(summary),
                        Ok(Err(_)) => Err(EngineError::Cancelled),
                        Err(_) => {
                            delete_quietly(objects.as_ref(), &output).await;
                            Err(EngineError::Cancelled)
                        }
                    },
                    _ = grace => {
                        tracing::warn!("a cancelled run did not stop in time; aborting it");
                        task.abort();
                        delete_quietly(objects.as_ref(), &output).await;
                        Err(EngineError::Cancelled)
                    }
                }
            }
        }
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, EngineError> {
        self.inner
            .runtime
            .as_ref()
            .ok_or_else(|| EngineError::Execution("the engine's runtime is shut down".into()))
    }
}

impl Inner {
    /// The run itself, on the engine's runtime.
    async fn execute(
        &self,
        request: RunRequest,
        progress: Progress,
        stop: Stop,
    ) -> Result<ResultSummary, EngineError> {
        progress.report(0.0, "planning");
        if let Some(hook) = self.config.on_run_start {
            hook(&request.analysis);
        }
        let RunRequest {
            objects,
            object_store_url,
            inputs,
            analysis,
            output,
        } = request;

        let mut stopped = stop.clone();
        let planned = async {
            let ctx = session::session(
                &self.env,
                &self.config,
                Arc::clone(&objects),
                &object_store_url,
                &inputs,
            )
            .await?;
            let run = RunContext::new(
                ctx,
                progress.clone(),
                stop.clone(),
                self.config.max_sql_bytes,
                Arc::clone(&self.spills),
            );
            let df = analyses::build(&run, &analysis).await?;
            let execution = run.execute(df, WRITING).await?;
            Ok::<_, EngineError>((run, execution))
        };
        // Planning reads Parquet footers and, for some analyses, runs a
        // first pass: it must stop on cancel too.
        let (run, mut execution) = tokio::select! {
            planned = planned => planned?,
            () = stopped.requested() => return Err(EngineError::Cancelled),
        };

        let schema = execution.schema();
        let mut writer = ResultWriter::new(objects, output.clone(), Arc::clone(&schema))?;
        let written = async {
            while let Some(batch) = execution.next().await? {
                writer.write(&batch).await?;
            }
            Ok::<_, EngineError>(())
        }
        .await;
        run.record_spills(&execution);
        drop(execution);
        if let Err(error) = written {
            writer.abort().await;
            return Err(error);
        }

        progress.report(WRITING, "writing the result");
        let rows = writer.rows();
        let bytes = writer.finish().await?;
        progress.report(DONE, "done");
        Ok(ResultSummary {
            rows,
            bytes,
            columns: schema
                .fields()
                .iter()
                .map(|field| ColumnSummary {
                    name: field.name().clone(),
                    data_type: field.data_type().to_string(),
                    nullable: field.is_nullable(),
                })
                .collect(),
            path: output.to_string(),
        })
    }
}

/// Resolves after [`CANCEL_GRACE`]. The timer is a thread of its own: the
/// caller's runtime may have no time driver, and the engine's threads may
/// be the ones that are stuck.
fn grace_timer() -> tokio::sync::oneshot::Receiver<()> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("crunch-cancel-grace".into())
        .spawn(move || {
            std::thread::sleep(CANCEL_GRACE);
            let _ = sender.send(());
        });
    if let Err(error) = spawned {
        // Without a timer the wait is unbounded; a dropped sender ends it
        // at once instead.
        tracing::warn!(%error, "could not start the cancel grace timer");
    }
    receiver
}

/// Deletes a result that may have been left behind; a missing one is fine
/// and other failures are only logged.
async fn delete_quietly(objects: &dyn ObjectStore, path: &Path) {
    match objects.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(error) => tracing::warn!(%error, %path, "could not delete a failed run's result"),
    }
}
