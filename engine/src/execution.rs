//! Running a physical plan: batches out, progress reported while they are
//! computed, and a prompt stop when the run is cancelled.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use datafusion::{
    arrow::record_batch::RecordBatch,
    execution::{SendableRecordBatchStream, TaskContext},
    physical_plan::{ExecutionPlan, execute_stream},
};
use futures_util::StreamExt;
use tokio::{
    sync::watch,
    time::{Interval, MissedTickBehavior},
};

use super::{
    EngineError,
    progress::{Progress, ScanWatch},
};

/// How often progress is reported while batches are computed.
const TICK: Duration = Duration::from_millis(500);

/// Resolves when the run must stop: a cancel, or the caller gone.
///
/// Besides the signal that the run's own code awaits, it carries a flag
/// that the plan's expressions read while they compute (see
/// `yielding::interruptible`): an operator that loops inside one poll
/// never reaches an await point, so only a check inside its loop can end
/// it.
#[derive(Clone)]
pub(crate) struct Stop {
    signal: watch::Receiver<bool>,
    halted: Arc<AtomicBool>,
}

/// Stops a run: on [`StopTrigger::stop`], or when dropped (the caller
/// stopped waiting for the run, so nobody wants its result).
pub(crate) struct StopTrigger {
    signal: watch::Sender<bool>,
    halted: Arc<AtomicBool>,
}

impl StopTrigger {
    /// Asks the run to stop.
    pub(crate) fn stop(&self) {
        self.halted.store(true, Ordering::Relaxed);
        let _ = self.signal.send(true);
    }
}

impl Drop for StopTrigger {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Stop {
    /// A stop signal and its trigger.
    pub(crate) fn new() -> (StopTrigger, Stop) {
        let (signal, receiver) = watch::channel(false);
        let halted = Arc::new(AtomicBool::new(false));
        (
            StopTrigger {
                signal,
                halted: Arc::clone(&halted),
            },
            Stop {
                signal: receiver,
                halted,
            },
        )
    }

    /// Resolves once a stop is requested or the trigger is dropped.
    pub(crate) async fn requested(&mut self) {
        let _ = self.signal.wait_for(|stop| *stop).await;
    }

    /// The flag that says, without awaiting, that the run must stop.
    pub(crate) fn halted(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.halted)
    }
}

/// A plan being executed.
pub(crate) struct Execution {
    plan: Arc<dyn ExecutionPlan>,
    stream: SendableRecordBatchStream,
    scans: ScanWatch,
    ticker: Interval,
    progress: Progress,
    /// The progress fraction at the start and at the end of this execution.
    span: (f32, f32),
    stop: Stop,
}

impl Execution {
    /// Starts executing `plan`; its progress moves from where `progress`
    /// stands now up to `until`.
    pub(crate) fn start(
        plan: Arc<dyn ExecutionPlan>,
        task: Arc<TaskContext>,
        progress: Progress,
        until: f32,
        stop: Stop,
    ) -> Result<Self, EngineError> {
        let scans = ScanWatch::new(&plan);
        let stream = execute_stream(Arc::clone(&plan), task)?;
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let span = (progress.current(), until);
        Ok(Execution {
            plan,
            stream,
            scans,
            ticker,
            progress,
            span,
            stop,
        })
    }

    /// The next batch, None at the end; reports progress meanwhile and
    /// fails with [`EngineError::Cancelled`] when the run must stop.
    /// Dropping the execution stops the plan's tasks.
    pub(crate) async fn next(&mut self) -> Result<Option<RecordBatch>, EngineError> {
        loop {
            tokio::select! {
                batch = self.stream.next() => return Ok(batch.transpose()?),
                _ = self.ticker.tick() => self.report(),
                _ = self.stop.requested() => return Err(EngineError::Cancelled),
            }
        }
    }

    /// Every remaining batch.
    pub(crate) async fn collect(&mut self) -> Result<Vec<RecordBatch>, EngineError> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next().await? {
            batches.push(batch);
        }
        Ok(batches)
    }

    /// The schema of the batches.
    pub(crate) fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.plan.schema()
    }

    /// What the execution spilled so far: (spill files, bytes).
    pub(crate) fn spills(&self) -> (usize, usize) {
        super::progress::spills(&self.plan)
    }

    fn report(&self) {
        let (from, to) = self.span;
        match self.scans.fraction() {
            Some(read) => {
                let message = format!(
                    "executing: {} of {} rows read",
                    self.scans.scanned_rows(),
                    self.scans.total_rows()
                );
                self.progress.report(from + (to - from) * read, &message);
            }
            None => self.progress.report(from, "executing"),
        }
    }
}
