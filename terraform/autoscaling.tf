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
