//! What one run carries while it plans and executes: its session, its
//! progress, its stop signal.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use datafusion::{arrow::record_batch::RecordBatch, dataframe::DataFrame, prelude::SessionContext};

use super::{
    EngineError,
    execution::{Execution, Stop},
    progress::{EXECUTING, Progress, WRITING},
};

/// Spill totals since the engine started.
#[derive(Debug, Default)]
pub(crate) struct SpillCounters {
    pub(crate) files: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

/// One run in progress.
pub(crate) struct RunContext {
    ctx: SessionContext,
    progress: Progress,
    stop: Stop,
    max_sql_bytes: usize,
    spills: Arc<SpillCounters>,
}

impl RunContext {
    pub(crate) fn new(
        ctx: SessionContext,
        progress: Progress,
        stop: Stop,
        max_sql_bytes: usize,
        spills: Arc<SpillCounters>,
    ) -> Self {
        RunContext {
            ctx,
            progress,
            stop,
            max_sql_bytes,
            spills,
        }
    }

    /// The run's session.
    pub(crate) fn ctx(&self) -> &SessionContext {
        &self.ctx
    }

    /// The longest SQL text accepted.
    pub(crate) fn max_sql_bytes(&self) -> usize {
        self.max_sql_bytes
    }

    /// Where execution ends in the progress fraction (writing follows).
    pub(crate) fn executing_end(&self) -> f32 {
        WRITING
    }

    /// Starts executing `df`, its progress running up to `until`.
    pub(crate) async fn execute(
        &self,
        df: DataFrame,
        until: f32,
    ) -> Result<Execution, EngineError> {
        let plan = super::yielding::cooperative(df.create_physical_plan().await?, &self.stop)?;
        self.progress.report(EXECUTING, "executing");
        Execution::start(
            plan,
            self.ctx.task_ctx(),
            self.progress.clone(),
            until,
            self.stop.clone(),
        )
    }

    /// Executes `df` to the end (for a small intermediate result).
    pub(crate) async fn collect(
        &self,
        df: DataFrame,
        until: f32,
    ) -> Result<Vec<RecordBatch>, EngineError> {
        let mut execution = self.execute(df, until).await?;
        let batches = execution.collect().await?;
        self.record_spills(&execution);
        Ok(batches)
    }

    /// Adds what `execution` spilled to the engine's totals.
    pub(crate) fn record_spills(&self, execution: &Execution) {
        let (files, bytes) = execution.spills();
        if files > 0 {
            tracing::info!(files, bytes, "the analysis spilled to disk");
        }
        self.spills.files.fetch_add(files as u64, Ordering::Relaxed);
        self.spills.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}
