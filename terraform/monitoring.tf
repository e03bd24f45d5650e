# Dashboard and alarms. The Crunch metrics are published by the server's
# metric publisher once a minute, all with the single dimension
# ServiceName = <worker service name> (see local.metric_names in main.tf):
# BacklogPerTask (drives the worker autoscaler), Backlog, RunningTasks,
# OldestQueuedSeconds, and the jobs finished in the minute (JobsSucceeded,
# JobsFailed) with their run times (JobRunSeconds).

resource "aws_sns_topic" "alarms" {
  name              = "${local.name}-alarms"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count = var.alarm_email == "" ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  crunch_dimension = { (local.metric_dimension) = aws_ecs_service.worker.name }
}

resource "aws_cloudwatch_metric_alarm" "oldest_queued_job" {
  alarm_name        = "${local.name}-oldest-queued-job"
  alarm_description = "A job has waited in the queue over ${var.oldest_queued_alarm_seconds} s: workers are not scaling out (max reached, tasks failing to start, or the backlog metric missing)."
  namespace         = local.metric_namespace
  metric_name       = local.metric_names.oldest_queued
  dimensions        = local.crunch_dimension
  statistic         = "Maximum"
  period            = 60

  evaluation_periods  = 3
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_queued_alarm_seconds
  # No data means no queued job or no publisher; the latter has its own alarm.
  treat_missing_data = "notBreaching"

  actions_enabled = true
  alarm_actions   = [aws_sns_topic.alarms.arn]
  ok_actions      = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "failed_jobs" {
  alarm_name        = "${local.name}-failed-jobs"
  alarm_description = "More than ${var.failed_jobs_alarm_threshold} jobs failed (no attempts left or a permanent error) within 5 minutes."
  namespace         = local.metric_namespace
  metric_name       = local.metric_names.jobs_failed
  dimensions        = local.crunch_dimension
  statistic         = "Sum"
  period            = 300

  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.failed_jobs_alarm_threshold
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = [aws_sns_topic.alarms.arn]
  ok_actions      = [aws_sns_topic.alarms.arn]
}

# The publisher publishes nothing in a minute whose AWS calls failed; the
# autoscaler then holds the worker count where it is. Ten silent minutes
# means workers cannot scale (out of zero in particular).
resource "aws_cloudwatch_metric_alarm" "backlog_metric_missing" {
  alarm_name        = "${local.name}-backlog-metric-missing"
  alarm_description = "No ${local.metric_names.backlog_per_task} datapoint for 10 minutes: the server's metric publisher is failing (see the API logs), so the workers are not autoscaled."
  namespace         = local.metric_namespace
  metric_name       = local.metric_names.backlog_per_task
  dimensions        = local.crunch_dimension
  statistic         = "SampleCount"
  period            = 60

  evaluation_periods  = 10
  datapoints_to_alarm = 10
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"

  actions_enabled = true
  alarm_actions   = [aws_sns_topic.alarms.arn]
  ok_actions      = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.name

  dashboard_body = jsonencode({
    widgets = [
      {
        type   = "metric"
        x      = 0
        y      = 0
        width  = 8
        height = 6
        properties = {
          title  = "Backlog (queued + running jobs)"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            [local.metric_namespace, local.metric_names.backlog, local.metric_dimension, aws_ecs_service.worker.name, { stat = "Maximum", label = "backlog" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 0
        width  = 8
        height = 6
        properties = {
          title  = "Backlog per worker task (scaling metric, target 1)"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            [local.metric_namespace, local.metric_names.backlog_per_task, local.metric_dimension, aws_ecs_service.worker.name, { stat = "Average", label = "backlog per task" }],
          ]
          annotations = {
            horizontal = [{ label = "target", value = 1 }]
          }
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 0
        width  = 8
        height = 6
        properties = {
          title  = "Worker tasks"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            [local.metric_namespace, local.metric_names.running_tasks, local.metric_dimension, aws_ecs_service.worker.name, { stat = "Maximum", label = "running (published)" }],
            ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", aws_ecs_cluster.main.name, "ServiceName", aws_ecs_service.worker.name, { stat = "Maximum", label = "running (Container Insights)" }],
            ["ECS/ContainerInsights", "DesiredTaskCount", "ClusterName", aws_ecs_cluster.main.name, "ServiceName", aws_ecs_service.worker.name, { stat = "Maximum", label = "desired" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 6
        width  = 8
        height = 6
        properties = {
          title  = "Job outcomes (per minute)"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            [local.metric_namespace, local.metric_names.jobs_succeeded, local.metric_dimension, aws_ecs_service.worker.name, { stat = "Sum", label = "succeeded" }],
            [local.metric_namespace, local.metric_names.jobs_failed, local.metric_dimension, aws_ecs_service.worker.name, { stat = "Sum", label = "failed" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 6
        width  = 8
        height = 6
        properties = {
          title  = "Job run time (seconds)"
          region = local.region
          view   = "timeSeries"
          period = 300
          metrics = [
            [local.metric_namespace, local.metric_names.job_run_seconds, local.metric_dimension, aws_ecs_service.worker.name, { stat = "Average", label = "average" }],
            [local.metric_namespace, local.metric_names.job_run_seconds, local.metric_dimension, aws_ecs_service.worker.name, { stat = "Maximum", label = "maximum" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 6
        width  = 8
        height = 6
        properties = {
          title  = "Oldest queued job (seconds)"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            [local.metric_namespace, local.metric_names.oldest_queued, local.metric_dimension, aws_ecs_service.worker.name, { stat = "Maximum", label = "oldest queued" }],
          ]
          annotations = {
            horizontal = [{ label = "alarm", value = var.oldest_queued_alarm_seconds }]
          }
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 12
        width  = 8
        height = 6
        properties = {
          title  = "API latency (seconds)"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", aws_lb.api.arn_suffix, { stat = "p50", label = "p50" }],
            ["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", aws_lb.api.arn_suffix, { stat = "p99", label = "p99" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 12
        width  = 8
        height = 6
        properties = {
          title  = "API errors (5xx per minute)"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", aws_lb.api.arn_suffix, { stat = "Sum", label = "from the server" }],
            ["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", aws_lb.api.arn_suffix, { stat = "Sum", label = "from the load balancer" }],
          ]
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 12
        width  = 8
        height = 6
        properties = {
          title  = "API requests and tasks"
          region = local.region
          view   = "timeSeries"
          period = 60
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", aws_lb.api.arn_suffix, { stat = "Sum", label = "requests" }],
            ["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", aws_ecs_cluster.main.name, "ServiceName", aws_ecs_service.api.name, { stat = "Maximum", label = "API tasks", yAxis = "right" }],
          ]
        }
      },
    ]
  })
}
