//! The arithmetic the autoscaler runs on, without I/O: the policy in force,
//! `BacklogPerTask`, and the other values derived from a [`Reading`].

use super::Reading;

/// The worker service's scaling policy as Application Auto Scaling has it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The target-tracking policy's target value (jobs per task).
    pub target: f64,
    /// The scalable target's minimum task count.
    pub min_tasks: i32,
    /// The scalable target's maximum task count.
    pub max_tasks: i32,
}

/// `(queued + running) / max(tasks, 1)`, raised to at least twice the
/// target when no task runs and work waits (target tracking cannot scale a
/// service of 0 tasks by ratio; the doubled target makes its high alarm
/// fire whatever the backlog).
pub fn backlog_per_task(backlog: i64, running_tasks: i32, target: f64) -> f64 {
    let per_task = backlog.max(0) as f64 / f64::from(running_tasks.max(1));
    if running_tasks <= 0 && backlog > 0 {
        per_task.max(2.0 * target)
    } else {
        per_task
    }
}

impl Reading {
    /// Queued plus running jobs.
    pub fn backlog(&self) -> i64 {
        self.queued + self.running_jobs
    }

    /// The published value: [`backlog_per_task`] of these numbers.
    pub fn backlog_per_task(&self) -> f64 {
        backlog_per_task(self.backlog(), self.running_tasks, self.policy.target)
    }

    /// Desired tasks beyond the running jobs while nothing is queued: what
    /// the idle step policy removes. Target tracking alone would keep them
    /// for its 15-minute scale-in alarm; this lets a finished burst go
    /// within minutes. Counted from the desired count, which is what a step
    /// subtracts from, so a removal can never take the desired count below
    /// the jobs running (tasks still stopping, or just launched, do not
    /// count twice). Zero whenever work waits, so it never fights a
    /// scale-out.
    pub fn idle_tasks(&self) -> i64 {
        if self.queued > 0 {
            return 0;
        }
        (i64::from(self.desired_tasks) - self.running_jobs).max(0)
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn reading(queued: i64, running_jobs: i64, running_tasks: i32, desired_tasks: i32) -> Reading {
        Reading {
            at: DateTime::UNIX_EPOCH,
            queued,
            running_jobs,
            running_tasks,
            desired_tasks,
            policy: Policy {
                target: 1.0,
                min_tasks: 0,
                max_tasks: 10,
            },
            oldest_queued_seconds: 0.0,
            succeeded: 0,
            failed: 0,
            run_times: None,
        }
    }

    #[test]
    fn backlog_per_task_divides_by_the_running_tasks() {
        assert_eq!(backlog_per_task(6, 3, 1.0), 2.0);
        assert_eq!(backlog_per_task(1, 4, 1.0), 0.25);
    }

    #[test]
    fn backlog_per_task_with_no_task_and_work_waiting_is_at_least_twice_the_target() {
        assert_eq!(backlog_per_task(1, 0, 1.0), 2.0);
        assert_eq!(backlog_per_task(5, 0, 1.0), 5.0);
        assert_eq!(backlog_per_task(1, 0, 4.0), 8.0);
    }

    #[test]
    fn backlog_per_task_with_no_work_is_zero() {
        assert_eq!(backlog_per_task(0, 0, 1.0), 0.0);
        assert_eq!(backlog_per_task(0, 3, 1.0), 0.0);
        assert_eq!(backlog_per_task(-2, 0, 1.0), 0.0);
    }

    #[test]
    fn busy_tasks_read_one_job_per_task() {
        let busy = reading(0, 4, 4, 4);
        assert_eq!(busy.backlog(), 4);
        assert_eq!(busy.backlog_per_task(), 1.0);
        assert_eq!(busy.idle_tasks(), 0);
    }

    #[test]
    fn idle_tasks_are_desired_tasks_beyond_the_running_jobs() {
        assert_eq!(reading(0, 1, 4, 4).idle_tasks(), 3);
        assert_eq!(reading(0, 3, 2, 2).idle_tasks(), 0);
    }

    #[test]
    fn idle_tasks_are_zero_while_work_waits() {
        assert_eq!(reading(1, 0, 5, 5).idle_tasks(), 0);
    }
}
