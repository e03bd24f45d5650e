# Three roles, each with only what its holder calls:
# - execution: the ECS agent pulls the image, reads the DATABASE_URL secret
#   (and the bootstrap key's hash, when configured) and writes the container
#   logs;
# - api: datasets and results in S3; the metric publisher's DescribeServices
#   (worker service), Application Auto Scaling describes and PutMetricData
#   (namespace Crunch only);
# - worker: datasets and results in S3; its own task's scale-in protection.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

# --- execution role ---------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }
  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
    resources = [aws_ecr_repository.app.arn]
  }
  statement {
    sid     = "Logs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [
      "${aws_cloudwatch_log_group.api.arn}:*",
      "${aws_cloudwatch_log_group.worker.arn}:*",
    ]
  }
  statement {
    sid       = "DatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.database_url.arn]
  }
  dynamic "statement" {
    for_each = local.bootstrap_key_parameter_arn == "" ? [] : [local.bootstrap_key_parameter_arn]
    content {
      sid       = "BootstrapKeyHash"
      actions   = ["ssm:GetParameters"]
      resources = [statement.value]
    }
  }
  statement {
    sid       = "DecryptSecret"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-image-read-secret-write-logs"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- shared: the dataset store --------------------------------------------------------

data "aws_iam_policy_document" "store" {
  statement {
    sid       = "ListStorePrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["data", "data/*"]
    }
  }
  statement {
    sid = "ReadWriteStoreObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.data.arn}/data/*"]
  }
  statement {
    sid       = "StoreEncryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

# --- API task role ------------------------------------------------------------------

resource "aws_iam_role" "api" {
  name               = "${local.name}-api-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "api_store" {
  name   = "dataset-store"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.store.json
}

data "aws_iam_policy_document" "api_scaling" {
  statement {
    sid       = "RunningWorkerTasks"
    actions   = ["ecs:DescribeServices"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:service/${local.cluster_name}/${local.worker_service_name}"]
  }
  statement {
    # Target value of the policy and min/max of the scalable target. These
    # describe calls have no resource-level permissions.
    sid = "ScalingPolicy"
    actions = [
      "application-autoscaling:DescribeScalableTargets",
      "application-autoscaling:DescribeScalingPolicies",
    ]
    resources = ["*"]
  }
  statement {
    # PutMetricData has no resource-level permissions; the condition keeps
    # the role to the Crunch namespace.
    sid       = "PublishBacklog"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.metric_namespace]
    }
  }
}

resource "aws_iam_role_policy" "api_scaling" {
  name   = "publish-worker-backlog"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api_scaling.json
}

# --- worker task role ----------------------------------------------------------------

resource "aws_iam_role" "worker" {
  name               = "${local.name}-worker-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "worker_store" {
  name   = "dataset-store"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.store.json
}

data "aws_iam_policy_document" "worker_protection" {
  statement {
    # The agent endpoint ($ECS_AGENT_URI/task-protection/v1/state) calls these
    # with the task role's credentials, for the calling task.
    sid       = "OwnScaleInProtection"
    actions   = ["ecs:UpdateTaskProtection", "ecs:GetTaskProtection"]
    resources = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${local.cluster_name}/*"]
  }
}

resource "aws_iam_role_policy" "worker_protection" {
  name   = "task-scale-in-protection"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker_protection.json
}
