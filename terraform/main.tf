data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "${var.name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  container_port = 8080

  cluster_name        = local.name
  api_service_name    = "${local.name}-api"
  worker_service_name = "${local.name}-worker"

  # The worker-scaling metric contract, shared with the server's publisher
  # (server/src/scaling/; scripts/check_infra.py fails when they differ).
  # Every metric in the namespace carries one dimension, ServiceName = the
  # worker service's name. BacklogPerTask drives the autoscaler; the others
  # are published with it each minute and feed the dashboard and alarms.
  metric_namespace = "Crunch"
  metric_dimension = "ServiceName"
  metric_names = {
    backlog_per_task = "BacklogPerTask" # (queued + running) / max(running tasks, 1)
    backlog          = "Backlog"        # queued + running jobs
    running_tasks    = "RunningTasks"   # running worker tasks (ECS DescribeServices)
    idle_tasks       = "IdleTasks"      # desired tasks beyond the running jobs while nothing is queued
    oldest_queued    = "OldestQueuedSeconds"
    jobs_succeeded   = "JobsSucceeded" # jobs finished in the last minute, by outcome
    jobs_failed      = "JobsFailed"
    job_run_seconds  = "JobRunSeconds" # run time of the jobs finished in the minute
  }
}

# One customer-managed key encrypts everything the module stores: the dataset
# bucket, the database and its Performance Insights, the database secret, ECR,
# log groups and the alarm topic. Rotated yearly.
resource "aws_kms_key" "main" {
  description             = "${local.name}: data, database, secrets, logs, images"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # IAM policies in the account decide who else may use the key (the
        # task roles get kms:Decrypt/GenerateDataKey on it, nothing more).
        Sid       = "AccountAdministration"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
          }
        }
      },
      {
        # Alarms publish to the encrypted SNS topic.
        Sid       = "CloudWatchAlarms"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}
