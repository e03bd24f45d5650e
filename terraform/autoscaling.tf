# --- API: CPU target tracking ---------------------------------------------------------

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.api_min_count
  max_capacity       = var.api_max_count
}

resource "aws_appautoscaling_policy" "api_cpu" {
  name               = "${local.api_service_name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
    target_value       = var.api_cpu_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}

# --- workers: backlog per task ---------------------------------------------------------
# The server publishes BacklogPerTask = (queued + running jobs) /
# max(running worker tasks, 1) every minute (one publisher across replicas),
# and at least twice the target when no task runs and work waits, so the
# service wakes from zero. Counting running jobs keeps the ratio at 1 while
# every task is busy, so busy tasks are not scaled in; idle ones are, and a
# worker holding a job is protected from scale-in anyway. The server reads
# this policy's target value and the target's min/max back through
# DescribeScalingPolicies / DescribeScalableTargets.

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = 0
  max_capacity       = var.worker_max_tasks
}

resource "aws_appautoscaling_policy" "worker_backlog" {
  name               = "${local.worker_service_name}-backlog-per-task"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    customized_metric_specification {
      namespace   = local.metric_namespace
      metric_name = local.metric_names.backlog_per_task
      statistic   = "Average"

      dimensions {
        name  = local.metric_dimension
        value = aws_ecs_service.worker.name
      }
    }

    # One job per task (CRUNCH_WORKER_SLOTS=1).
    target_value       = 1
    scale_out_cooldown = var.worker_scale_out_cooldown
    scale_in_cooldown  = var.worker_scale_in_cooldown
  }
}

# --- workers: idle tasks go after a minute ----------------------------------------------
# Target tracking scales in only after 15 datapoints below 90% of the target,
# so every task of a finished burst would be billed for 15 idle minutes
# (docs/scaling.md: 65% of billed task time busy). IdleTasks counts desired
# tasks beyond the running jobs while nothing is queued (0 whenever work
# waits, so it never works against a scale-out; counted from the desired
# count, so a removal never takes it below the running jobs); one datapoint
# above 0 removes the largest power of two not above it (at most 64), at
# most once a minute. The server publishes at half past each minute, so the
# datapoint after a removal (decided just after the minute) already shows
# it, and one datapoint never removes twice. Tasks holding a job are
# scale-in protected, so a removal can only ever stop idle ones.

resource "aws_appautoscaling_policy" "worker_idle" {
  count = var.worker_idle_scale_in ? 1 : 0

  name               = "${local.worker_service_name}-idle-tasks"
  policy_type        = "StepScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  step_scaling_policy_configuration {
    adjustment_type         = "ChangeInCapacity"
    cooldown                = 60
    metric_aggregation_type = "Maximum"

    # Bounds are relative to the alarm threshold (1 idle task):
    # [2^k - 1, 2^(k+1) - 1) above it removes 2^k, for k = 0..5; 64 and up
    # removes 64.
    dynamic "step_adjustment" {
      for_each = range(6)
      content {
        metric_interval_lower_bound = pow(2, step_adjustment.value) - 1
        metric_interval_upper_bound = pow(2, step_adjustment.value + 1) - 1
        scaling_adjustment          = -pow(2, step_adjustment.value)
      }
    }
    step_adjustment {
      metric_interval_lower_bound = 63
      scaling_adjustment          = -64
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "worker_idle" {
  count = var.worker_idle_scale_in ? 1 : 0

  alarm_name          = "${local.worker_service_name}-idle-tasks"
  alarm_description   = "Worker tasks idle with nothing queued: remove them (step scaling)."
  namespace           = local.metric_namespace
  metric_name         = local.metric_names.idle_tasks
  dimensions          = { (local.metric_dimension) = aws_ecs_service.worker.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  threshold           = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  # No datapoint (publisher down) is no reason to remove tasks.
  treat_missing_data = "notBreaching"
  alarm_actions      = [aws_appautoscaling_policy.worker_idle[0].arn]
}
