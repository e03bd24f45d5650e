//! Making every operator give its thread back now and then, and stop when
//! the run is stopped, so a cancel ends the work and not only the wait.
//!
//! DataFusion makes its leaves (scans) cooperative: they spend tokio's task
//! budget per batch and return `Pending` when it runs out. An operator that
//! makes many batches out of few (a cross join, an unnest, a recursive
//! query's later rounds) can then feed its parent indefinitely without a
//! single `Pending`, and a parent that loops over its input (an aggregate)
//! never returns from one poll: the task cannot see the cancel, and an
//! abort only lands at the next yield. Wrapping every operator in
//! `CooperativeExec` makes each batch spend budget, bounding a poll.
//!
//! Some joins loop inside one poll without asking their input for a batch:
//! a nested-loop join probes each left row against the current right batch
//! until it has output to return, and a hash join with a filter that
//! rejects every candidate pair probes on. With a selective filter over a
//! large cross product one poll lasts minutes, the task cannot be aborted,
//! and the engine thread it runs on is lost to every other run meanwhile.
//! Their filter is evaluated once per step of that loop, so it is wrapped
//! in [`Interruptible`], which fails the evaluation once the run is
//! stopped: the join returns the error, the plan unwinds, and the thread is
//! free within one step (one left row against one batch).

use std::{
    fmt,
    hash::{Hash, Hasher},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use datafusion::{
    arrow::{
        datatypes::{FieldRef, Schema},
        record_batch::RecordBatch,
    },
    common::{
        DataFusionError, Result,
        tree_node::{Transformed, TreeNode},
    },
    logical_expr::ColumnarValue,
    physical_expr::PhysicalExpr,
    physical_plan::{
        ExecutionPlan,
        coop::CooperativeExec,
        execution_plan::SchedulingType,
        joins::{HashJoinExec, NestedLoopJoinExec, NestedLoopJoinExecBuilder, utils::JoinFilter},
    },
};

use super::execution::Stop;

/// The message of the error a stopped run's expressions fail with.
pub(crate) const STOPPED: &str = "the run was stopped";

/// `plan` with every non-cooperative operator wrapped in
/// [`CooperativeExec`], and the filters of its joins made to fail once
/// `stop` is requested.
pub(crate) fn cooperative(
    plan: Arc<dyn ExecutionPlan>,
    stop: &Stop,
) -> Result<Arc<dyn ExecutionPlan>> {
    let halted = stop.halted();
    plan.transform_up(|node| {
        let node = interruptible_join(node, &halted)?;
        if node.properties().scheduling_type == SchedulingType::Cooperative {
            Ok(Transformed::yes(node))
        } else {
            Ok(Transformed::yes(
                Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
            ))
        }
    })
    .map(|transformed| transformed.data)
}

/// `node` rebuilt with an [`Interruptible`] filter, if it is a join that
/// loops over a filter.
fn interruptible_join(
    node: Arc<dyn ExecutionPlan>,
    halted: &Arc<AtomicBool>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if let Some(join) = node.downcast_ref::<NestedLoopJoinExec>()
        && let Some(filter) = join.filter()
    {
        let rebuilt = NestedLoopJoinExecBuilder::from(join)
            .with_filter(Some(interruptible_filter(filter, halted)))
            .build()?;
        return Ok(Arc::new(rebuilt));
    }
    if let Some(join) = node.downcast_ref::<HashJoinExec>()
        && let Some(filter) = join.filter()
    {
        let filter = interruptible_filter(filter, halted);
        return join.builder().with_filter(Some(filter)).build_exec();
    }
    Ok(node)
}

fn interruptible_filter(filter: &JoinFilter, halted: &Arc<AtomicBool>) -> JoinFilter {
    JoinFilter::new(
        Arc::new(Interruptible {
            inner: Arc::clone(filter.expression()),
            halted: Arc::clone(halted),
        }),
        filter.column_indices().to_vec(),
        Arc::clone(filter.schema()),
    )
}

/// An expression that evaluates `inner`, or fails once its run is stopped.
#[derive(Debug)]
pub(crate) struct Interruptible {
    inner: Arc<dyn PhysicalExpr>,
    halted: Arc<AtomicBool>,
}

impl fmt::Display for Interruptible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Plans print as if it were not there.
        fmt::Display::fmt(&self.inner, f)
    }
}

impl PartialEq for Interruptible {
    fn eq(&self, other: &Self) -> bool {
        self.inner.as_ref() == other.inner.as_ref()
    }
}

impl Eq for Interruptible {}

impl Hash for Interruptible {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.as_ref().hash(state);
    }
}

impl PhysicalExpr for Interruptible {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if self.halted.load(Ordering::Relaxed) {
            return Err(DataFusionError::Execution(STOPPED.to_owned()));
        }
        self.inner.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        match (children.pop(), children.is_empty()) {
            (Some(inner), true) => Ok(Arc::new(Interruptible {
                inner,
                halted: Arc::clone(&self.halted),
            })),
            _ => Err(DataFusionError::Internal(
                "an interruptible expression has exactly one child".to_owned(),
            )),
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}
