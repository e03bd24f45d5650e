//! Making every operator give its thread back now and then, so a cancel
//! is noticed.
//!
//! DataFusion makes its leaves (scans) cooperative: they spend tokio's task
//! budget per batch and return `Pending` when it runs out. An operator that
//! makes many batches out of few (a cross join, an unnest, a recursive
//! query's later rounds) can then feed its parent indefinitely without a
//! single `Pending`, and a parent that loops over its input (an aggregate)
//! never returns from one poll: the task cannot see the cancel, and an
//! abort only lands at the next yield. Wrapping every operator in
//! `CooperativeExec` makes each batch spend budget, bounding a poll.

use std::sync::Arc;

use datafusion::{
    common::{
        Result,
        tree_node::{Transformed, TreeNode},
    },
    physical_plan::{ExecutionPlan, coop::CooperativeExec, execution_plan::SchedulingType},
};

/// `plan` with every non-cooperative inner operator wrapped in
/// [`CooperativeExec`].
pub(crate) fn cooperative(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let wrapped = node.children().is_empty()
            || node.properties().scheduling_type == SchedulingType::Cooperative;
        if wrapped {
            Ok(Transformed::no(node))
        } else {
            Ok(Transformed::yes(
                Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
            ))
        }
    })
    .map(|transformed| transformed.data)
}
