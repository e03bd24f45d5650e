//! Progress reports while an analysis runs.
//!
//! The fraction moves through phases: planning up to [`EXECUTING`], then
//! executing up to [`WRITING`] in proportion to the rows the file scans
//! have read out of the rows the files hold (from their Parquet footers,
//! which planning reads anyway), then writing, then [`DONE`]. Reports never
//! go backwards.

use std::sync::{Arc, Mutex};

use datafusion::{
    common::stats::Precision,
    datasource::{physical_plan::FileScanConfig, source::DataSourceExec},
    physical_plan::{
        ExecutionPlan,
        statistics::{StatisticsArgs, StatisticsContext},
    },
};

/// Where execution starts.
pub(crate) const EXECUTING: f32 = 0.05;
/// Where writing the last batches and the footer starts.
pub(crate) const WRITING: f32 = 0.95;
/// The end.
pub(crate) const DONE: f32 = 1.0;

/// The caller's progress callback.
pub(crate) type Report = Arc<dyn Fn(f32, &str) + Send + Sync>;

/// Reports progress through the caller's callback, never backwards.
#[derive(Clone)]
pub(crate) struct Progress {
    report: Report,
    last: Arc<Mutex<f32>>,
}

impl Progress {
    /// Progress through `report`, starting at 0.
    pub(crate) fn new(report: Report) -> Self {
        Progress {
            report,
            last: Arc::new(Mutex::new(0.0)),
        }
    }

    /// Reports `fraction` (clamped to 0..=1, and to no less than the last
    /// report) with a message.
    pub(crate) fn report(&self, fraction: f32, message: &str) {
        let fraction = {
            // A poisoned lock only means a callback panicked earlier; the
            // number inside is still good.
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            *last = fraction.clamp(0.0, 1.0).max(*last);
            *last
        };
        (self.report)(fraction, message);
    }

    /// The last fraction reported.
    pub(crate) fn current(&self) -> f32 {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The file scans of a physical plan, to tell how far execution has read.
pub(crate) struct ScanWatch {
    scans: Vec<Arc<dyn ExecutionPlan>>,
    total_rows: usize,
}

impl ScanWatch {
    /// Finds the file scans of `plan` and the rows their files hold.
    pub(crate) fn new(plan: &Arc<dyn ExecutionPlan>) -> Self {
        let mut scans = Vec::new();
        collect_scans(plan, &mut scans);
        let statistics = StatisticsContext::new();
        let total_rows = scans
            .iter()
            .filter_map(|scan| {
                statistics
                    .compute(scan.as_ref(), &StatisticsArgs::new())
                    .ok()
            })
            .map(|stats| match stats.num_rows {
                Precision::Exact(n) | Precision::Inexact(n) => n,
                Precision::Absent => 0,
            })
            .sum();
        ScanWatch { scans, total_rows }
    }

    /// Rows read so far.
    pub(crate) fn scanned_rows(&self) -> usize {
        self.scans
            .iter()
            .filter_map(|scan| scan.metrics())
            .filter_map(|metrics| metrics.output_rows())
            .sum()
    }

    /// Rows the scanned files hold (0 when unknown).
    pub(crate) fn total_rows(&self) -> usize {
        self.total_rows
    }

    /// The share of rows read, 0..=1; None when the total is unknown. A
    /// recursive query rescans, so the share is capped at 1.
    pub(crate) fn fraction(&self) -> Option<f32> {
        (self.total_rows > 0)
            .then(|| (self.scanned_rows() as f64 / self.total_rows as f64).min(1.0) as f32)
    }
}

fn collect_scans(plan: &Arc<dyn ExecutionPlan>, scans: &mut Vec<Arc<dyn ExecutionPlan>>) {
    let is_file_scan = plan.downcast_ref::<DataSourceExec>().is_some_and(|exec| {
        exec.data_source()
            .downcast_ref::<FileScanConfig>()
            .is_some()
    });
    if is_file_scan {
        scans.push(Arc::clone(plan));
    }
    for child in plan.children() {
        collect_scans(child, scans);
    }
}

/// Spills of an executed plan: (spill files, bytes spilled), summed over
/// every operator.
pub(crate) fn spills(plan: &Arc<dyn ExecutionPlan>) -> (usize, usize) {
    let (mut count, mut bytes) = plan
        .metrics()
        .map(|m| (m.spill_count().unwrap_or(0), m.spilled_bytes().unwrap_or(0)))
        .unwrap_or((0, 0));
    for child in plan.children() {
        let (c, b) = spills(child);
        count += c;
        bytes += b;
    }
    (count, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_never_goes_backwards() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let progress = Progress::new(Arc::new(move |f, _| sink.lock().unwrap().push(f)));
        progress.report(0.5, "half");
        progress.report(0.2, "less");
        progress.report(1.5, "more than all");
        assert_eq!(*seen.lock().unwrap(), vec![0.5, 0.5, 1.0]);
    }
}
