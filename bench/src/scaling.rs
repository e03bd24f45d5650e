//! A deterministic simulation of the worker service scaling on the
//! published metric, second by second, following Application Auto
//! Scaling's target-tracking rules as documented:
//!
//! - the server publishes one datapoint a minute, computed by the real
//!   [`backlog_per_task`], and the alarms act on it `alarm_lag` seconds
//!   later (30 s in the table: the server publishes at half past the
//!   minute and CloudWatch evaluates alarms once a minute), so a removal
//!   shows in the next datapoint;
//! - the high alarm fires after 3 consecutive datapoints above the target,
//!   and while it stays in alarm the policy acts every minute, setting the
//!   desired count to `ceil(desired × metric / target)`, or to 1 from 0;
//! - the low alarm fires after 15 consecutive datapoints below 90% of the
//!   target and sets the desired count the same way (rounded up, so it
//!   removes no more than the metric asks), no sooner than the scale-in
//!   cooldown after the last scale-in;
//! - a scale-out cooldown does not hold back a larger scale-out (the
//!   capacity it added counts toward the next one), so it is not modelled;
//! - ECS starts a task in `task_start` (image pull, container start, the
//!   worker's first poll), billed from launch; running tasks are the ones
//!   `DescribeServices` counts; a task holding a job is scale-in protected,
//!   so a scale-in stops idle tasks only and the rest as they go idle (that
//!   ECS stops pending tasks before idle ones is an assumption of this
//!   model);
//! - optionally, a step-scaling policy on `IdleTasks` (running tasks
//!   without a job while nothing is queued) removes idle tasks after a
//!   short alarm, since target tracking's 15-minute scale-in alarm would
//!   otherwise bill every task of a finished burst for 15 idle minutes.

use std::collections::VecDeque;

use crunch_server::scaling::backlog_per_task;

/// One minute, the datapoint period.
const MINUTE: u64 = 60;

/// The target-tracking policy and its surroundings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Jobs per task.
    pub target: f64,
    /// The scalable target's minimum.
    pub min_tasks: u32,
    /// The scalable target's maximum.
    pub max_tasks: u32,
    /// Seconds after a scale-in before another scale-in.
    pub scale_in_cooldown: u64,
    /// Seconds from launch until a task's worker claims.
    pub task_start: u64,
    /// Seconds from a datapoint's publication until the alarms act on it
    /// (CloudWatch's evaluation, then Application Auto Scaling's call).
    pub alarm_lag: u64,
    /// The idle step-scaling policy, when used.
    pub idle_step: Option<IdleStep>,
}

/// Step scaling on `IdleTasks`: after `datapoints` consecutive minutes
/// with idle tasks and nothing queued, remove [`idle_step_removal`] of
/// them, at most once per `cooldown`.
#[derive(Debug, Clone, Copy)]
pub struct IdleStep {
    /// Consecutive datapoints with idle tasks before the alarm fires.
    pub datapoints: usize,
    /// Seconds between two of its scale-ins.
    pub cooldown: u64,
}

/// The tasks the idle step removes for `idle` idle tasks: the largest
/// power of two not above it, capped at 64. The same steps as
/// terraform/autoscaling.tf (`[2^k, 2^(k+1))` idle tasks remove `2^k`),
/// so at least half of up to 127 idle tasks go per step.
pub fn idle_step_removal(idle: u32) -> u32 {
    if idle == 0 {
        return 0;
    }
    (1u32 << (31 - idle.leading_zeros())).min(64)
}

/// A job: when it arrives and how long it runs, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// Arrival, seconds from the start.
    pub arrival: u64,
    /// Run time, seconds.
    pub duration: u64,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The longest any job waited between arrival and start, seconds.
    pub max_wait: u64,
    /// Seconds from the first arrival until the last job started.
    pub all_started_after: u64,
    /// Mean wait, seconds.
    pub mean_wait: f64,
    /// Task-seconds billed (launch to stop).
    pub billed: u64,
    /// Task-seconds spent running jobs.
    pub busy: u64,
    /// The most tasks at once.
    pub peak_tasks: usize,
    /// Jobs that never started within the horizon.
    pub unstarted: usize,
}

impl Outcome {
    /// Busy share of billed task time.
    pub fn busy_share(&self) -> f64 {
        if self.billed == 0 {
            return 1.0;
        }
        self.busy as f64 / self.billed as f64
    }
}

#[derive(Debug, Clone, Copy)]
enum TaskState {
    /// Launched; its worker claims from `ready_at`.
    Pending { ready_at: u64 },
    /// Running with no job.
    Idle,
    /// Running a job until `until`.
    Busy { until: u64 },
}

/// Runs `jobs` (in arrival order) from zero tasks until every job finished
/// and the service is back to its minimum, or `horizon` seconds.
pub fn simulate(policy: &Policy, jobs: &[Job], horizon: u64) -> Outcome {
    let mut arrivals: VecDeque<(usize, Job)> = jobs.iter().copied().enumerate().collect();
    let mut queue: VecDeque<(usize, Job)> = VecDeque::new();
    let mut starts: Vec<Option<u64>> = vec![None; jobs.len()];
    let mut tasks: Vec<TaskState> = Vec::new();
    let mut desired: u32 = policy.min_tasks;
    let mut datapoints: Vec<f64> = Vec::new();
    let mut idle_datapoints: Vec<u32> = Vec::new();
    let mut last_scale_in: Option<u64> = None;
    let mut last_idle_step: Option<u64> = None;
    let (mut billed, mut busy, mut peak, mut finished) = (0u64, 0u64, 0usize, 0usize);

    for t in 0..horizon {
        while arrivals.front().is_some_and(|(_, j)| j.arrival <= t) {
            if let Some(job) = arrivals.pop_front() {
                queue.push_back(job);
            }
        }
        // Tasks come up, jobs end, idle workers claim (FIFO).
        for task in tasks.iter_mut() {
            match *task {
                TaskState::Pending { ready_at } if ready_at <= t => *task = TaskState::Idle,
                TaskState::Busy { until } if until <= t => {
                    finished += 1;
                    *task = TaskState::Idle;
                }
                _ => {}
            }
            if matches!(task, TaskState::Idle)
                && let Some((i, job)) = queue.pop_front()
            {
                starts[i] = Some(t);
                *task = TaskState::Busy {
                    until: t + job.duration,
                };
            }
        }
        // ECS converges on the desired count: launches, or stops pending
        // then idle tasks; busy ones are protected and wait their turn.
        while tasks.len() < desired as usize {
            tasks.push(TaskState::Pending {
                ready_at: t + policy.task_start,
            });
        }
        while tasks.len() > desired as usize {
            let Some(at) = tasks
                .iter()
                .position(|s| matches!(s, TaskState::Pending { .. }))
                .or_else(|| tasks.iter().position(|s| matches!(s, TaskState::Idle)))
            else {
                break;
            };
            tasks.swap_remove(at);
        }
        peak = peak.max(tasks.len());
        billed += tasks.len() as u64;
        busy += tasks
            .iter()
            .filter(|s| matches!(s, TaskState::Busy { .. }))
            .count() as u64;

        if t > 0 && t % MINUTE == 0 {
            let running_tasks = tasks
                .iter()
                .filter(|s| !matches!(s, TaskState::Pending { .. }))
                .count();
            let running_jobs = tasks
                .iter()
                .filter(|s| matches!(s, TaskState::Busy { .. }))
                .count();
            let backlog = (queue.len() + running_jobs) as i64;
            let metric = backlog_per_task(
                backlog,
                i32::try_from(running_tasks).unwrap_or(i32::MAX),
                policy.target,
            );
            datapoints.push(metric);
            // As the server publishes it: desired tasks beyond the jobs
            // running, when nothing waits.
            let idle = if queue.is_empty() {
                desired.saturating_sub(running_jobs as u32)
            } else {
                0
            };
            idle_datapoints.push(idle);
        }
        // The alarms act on the datapoints published `alarm_lag` ago.
        if t >= policy.alarm_lag + MINUTE && (t - policy.alarm_lag).is_multiple_of(MINUTE) {
            let seen = ((t - policy.alarm_lag) / MINUTE) as usize;
            let datapoints = &datapoints[..seen];
            let idle_datapoints = &idle_datapoints[..seen];
            let metric = datapoints[seen - 1];
            let idle = idle_datapoints[seen - 1];
            let last = |n: usize| -> Option<&[f64]> {
                (datapoints.len() >= n).then(|| &datapoints[datapoints.len() - n..])
            };
            let proposal = |metric: f64| -> u32 {
                let wanted = if desired == 0 {
                    1.0
                } else {
                    (f64::from(desired) * metric / policy.target).ceil()
                };
                (wanted as u32).clamp(policy.min_tasks, policy.max_tasks)
            };
            if last(3).is_some_and(|d| d.iter().all(|v| *v > policy.target)) {
                desired = desired.max(proposal(metric));
            } else if last(15).is_some_and(|d| d.iter().all(|v| *v < 0.9 * policy.target))
                && last_scale_in.is_none_or(|at| t - at >= policy.scale_in_cooldown)
            {
                let to = proposal(metric);
                if to < desired {
                    desired = to;
                    last_scale_in = Some(t);
                }
            }
            if let Some(step) = policy.idle_step
                && idle_datapoints.len() >= step.datapoints
                && idle_datapoints[idle_datapoints.len() - step.datapoints..]
                    .iter()
                    .all(|n| *n > 0)
                && last_idle_step.is_none_or(|at| t - at >= step.cooldown)
            {
                let to = desired
                    .saturating_sub(idle_step_removal(idle))
                    .max(policy.min_tasks);
                if to < desired {
                    desired = to;
                    last_idle_step = Some(t);
                }
            }
        }
        if finished == jobs.len() && arrivals.is_empty() && tasks.len() <= policy.min_tasks as usize
        {
            break;
        }
    }

    let waits: Vec<u64> = jobs
        .iter()
        .zip(&starts)
        .filter_map(|(j, s)| s.map(|s| s - j.arrival))
        .collect();
    let first_arrival = jobs.iter().map(|j| j.arrival).min().unwrap_or(0);
    Outcome {
        max_wait: waits.iter().copied().max().unwrap_or(0),
        all_started_after: starts
            .iter()
            .flatten()
            .max()
            .map_or(0, |s| s - first_arrival),
        mean_wait: if waits.is_empty() {
            0.0
        } else {
            waits.iter().sum::<u64>() as f64 / waits.len() as f64
        },
        billed,
        busy,
        peak_tasks: peak,
        unstarted: starts.iter().filter(|s| s.is_none()).count(),
    }
}

/// A named workload.
pub struct Scenario {
    /// What it is.
    pub name: &'static str,
    /// Its jobs.
    pub jobs: Vec<Job>,
}

/// `count` jobs of `minutes`, one every `every` minutes.
fn trickle(count: u64, every: u64, minutes: u64) -> Vec<Job> {
    (0..count)
        .map(|i| Job {
            arrival: i * every * MINUTE,
            duration: minutes * MINUTE,
        })
        .collect()
}

/// The workloads of `docs/scaling.md`.
pub fn scenarios() -> Vec<Scenario> {
    let burst = |n: u64, minutes: u64| {
        (0..n).map(move |_| Job {
            arrival: 0,
            duration: minutes * MINUTE,
        })
    };
    vec![
        Scenario {
            name: "burst: 50 jobs of 30 min at once",
            jobs: burst(50, 30).collect(),
        },
        Scenario {
            name: "burst: 200 jobs of 5 min at once",
            jobs: burst(200, 5).collect(),
        },
        Scenario {
            name: "trickle: a 30-min job every 3 min for 4 h",
            jobs: trickle(80, 3, 30),
        },
        Scenario {
            name: "trickle: a 10-min job every 15 min for 4 h",
            jobs: trickle(16, 15, 10),
        },
    ]
}

/// The policies compared: target tracking alone, and with the idle step.
pub fn policies() -> Vec<(&'static str, Policy)> {
    let tracking = Policy {
        target: 1.0,
        min_tasks: 0,
        max_tasks: 50,
        scale_in_cooldown: 60,
        task_start: 60,
        alarm_lag: 30,
        idle_step: None,
    };
    vec![
        ("target tracking", tracking),
        (
            "target tracking + idle step",
            Policy {
                idle_step: Some(IdleStep {
                    datapoints: 1,
                    cooldown: 60,
                }),
                ..tracking
            },
        ),
    ]
}

/// The table for `docs/scaling.md`.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "Generated by `cargo run -p crunch-bench -- scaling --write docs/scaling.md` \
         (deterministic: the same table on every run). Target 1 job per task, \
         min 0, max 50 tasks, scale-in cooldown 60 s, 60 s from launch to a \
         polling worker, alarms acting 30 s after each datapoint.\n\n",
    );
    out.push_str(
        "| workload | policy | all started after | longest wait | mean wait | peak tasks | billed task-min | busy task-min | busy share |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for scenario in scenarios() {
        let horizon = scenario
            .jobs
            .iter()
            .map(|j| j.arrival + j.duration)
            .max()
            .unwrap_or(0)
            + 6 * 3600;
        for (name, policy) in policies() {
            let o = simulate(&policy, &scenario.jobs, horizon);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} min | {} | {:.0} | {:.0} | {:.1}% |\n",
                scenario.name,
                name,
                minutes(o.all_started_after),
                minutes(o.max_wait),
                o.mean_wait / 60.0,
                o.peak_tasks,
                o.billed as f64 / 60.0,
                o.busy as f64 / 60.0,
                o.busy_share() * 100.0,
            ));
        }
    }
    out
}

fn minutes(secs: u64) -> String {
    format!("{}:{:02}", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracking() -> Policy {
        policies()[0].1
    }

    fn with_idle_step() -> Policy {
        policies()[1].1
    }

    fn burst_of_50() -> Vec<Job> {
        scenarios().remove(0).jobs
    }

    #[test]
    fn a_burst_from_zero_wakes_after_three_datapoints_and_then_scales_to_the_backlog() {
        let o = simulate(&tracking(), &burst_of_50(), 6 * 3600);
        assert_eq!(o.unstarted, 0);
        // Three datapoints above target (minutes 1-3) act at 3:30: 0 -> 1.
        // The 4:00 datapoint (work waits and no task runs yet, so 50)
        // acts at 4:30 and takes the service to 50, launched the next
        // second and running a minute later.
        assert_eq!(o.all_started_after, 5 * MINUTE + 31);
        assert_eq!(o.peak_tasks, 50);
        assert!(o.all_started_after <= 8 * MINUTE);
    }

    #[test]
    fn target_tracking_alone_bills_a_finished_burst_for_its_scale_in_alarm() {
        let o = simulate(&tracking(), &burst_of_50(), 6 * 3600);
        // Every task idles through 15 low datapoints before the scale-in.
        assert!(o.busy_share() < 0.7, "{}", o.busy_share());
        let stepped = simulate(&with_idle_step(), &burst_of_50(), 6 * 3600);
        assert_eq!(stepped.all_started_after, o.all_started_after);
        assert!(stepped.busy_share() >= 0.9, "{}", stepped.busy_share());
        assert_eq!(stepped.busy, o.busy, "the same work was done");
    }

    #[test]
    fn the_idle_step_removes_at_least_half_of_the_idle_tasks() {
        let removed: Vec<u32> = [0, 1, 2, 3, 4, 7, 8, 50, 64, 500]
            .iter()
            .map(|n| idle_step_removal(*n))
            .collect();
        assert_eq!(removed, vec![0, 1, 2, 2, 4, 4, 8, 32, 64, 64]);
    }

    #[test]
    fn busy_tasks_are_never_stopped() {
        for scenario in scenarios() {
            for (_, policy) in policies() {
                let o = simulate(&policy, &scenario.jobs, 12 * 3600);
                let work: u64 = scenario.jobs.iter().map(|j| j.duration).sum();
                // Every job ran to its end exactly once: busy time is the
                // sum of run times.
                assert_eq!(o.busy, work, "{}", scenario.name);
                assert_eq!(o.unstarted, 0, "{}", scenario.name);
            }
        }
    }

    #[test]
    fn the_service_never_exceeds_its_maximum() {
        let jobs: Vec<Job> = (0..500)
            .map(|_| Job {
                arrival: 0,
                duration: 120,
            })
            .collect();
        let o = simulate(&tracking(), &jobs, 12 * 3600);
        assert_eq!(o.peak_tasks, 50);
        assert_eq!(o.unstarted, 0);
    }
}
