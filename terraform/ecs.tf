# One cluster, two Fargate services on the same image:
# - api: crunch-server with no in-process workers (CRUNCH_WORKERS=0), behind
#   the ALB, at least 2 tasks spread over the AZs, CPU target tracking;
# - worker: crunch-worker, scaled 0..worker_max_tasks on BacklogPerTask.
# The server applies migrations at start-up (sqlx holds an advisory lock, so
# replicas starting together are safe); `crunch-server migrate` also exists
# as a one-shot (ECS run-task with a command override) for a separate step.

locals {
  image = "${aws_ecr_repository.app.repository_url}:${var.image_tag}"

  # Fargate CPU units -> allowed memory range in MiB.
  fargate_memory = {
    "256"   = [512, 2048]
    "512"   = [1024, 4096]
    "1024"  = [2048, 8192]
    "2048"  = [4096, 16384]
    "4096"  = [8192, 30720]
    "8192"  = [16384, 61440]
    "16384" = [32768, 122880]
  }

  # The SSM parameter with the first key's hash, as the task's secrets name
  # it; empty when none is configured.
  bootstrap_key_parameter_arn = var.bootstrap_key_sha256_parameter == "" ? "" : "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter/${trimprefix(var.bootstrap_key_sha256_parameter, "/")}"

  # Environment of the containers: only variables from the README's
  # Configuration table, or AWS's own (scripts/check_infra.py enforces it).
  # Unset: CRUNCH_METRICS_LISTEN (/metrics is not served; CloudWatch gets
  # the publisher's metrics) and CRUNCH_AUTH (every /v1 request needs a key).
  api_environment = {
    AWS_REGION    = local.region
    CRUNCH_LISTEN = "0.0.0.0:${local.container_port}"
    # The names the server answers for (besides IP addresses, which the
    # ALB's health checks use): its DNS name and the operator's domains.
    CRUNCH_ALLOWED_HOSTS      = join(",", concat([aws_lb.api.dns_name], var.api_host_names))
    CRUNCH_WORKERS            = "0"
    CRUNCH_STORE_URL          = "s3://${aws_s3_bucket.data.bucket}/data"
    CRUNCH_DB_MAX_CONNECTIONS = tostring(var.api_db_max_connections)
    CRUNCH_LEASE_SECONDS      = tostring(var.lease_seconds)
    # Turns on the worker-scaling metric publisher (one replica publishes).
    CRUNCH_ECS_CLUSTER    = local.cluster_name
    CRUNCH_WORKER_SERVICE = local.worker_service_name
    # The root filesystem is read-only; /tmp is the task's scratch volume.
    CRUNCH_DATA_DIR = "/tmp/crunch"
    CRUNCH_LOG      = var.log_level
    # Tenant defaults (empty: unset, no limit).
    CRUNCH_TENANT_MAX_RUNNING         = var.tenant_max_running == null ? "" : tostring(var.tenant_max_running)
    CRUNCH_TENANT_MAX_QUEUED          = var.tenant_max_queued == null ? "" : tostring(var.tenant_max_queued)
    CRUNCH_TENANT_STORAGE_QUOTA_BYTES = var.tenant_storage_quota_bytes == null ? "" : format("%d", var.tenant_storage_quota_bytes)
  }

  worker_environment = {
    AWS_REGION       = local.region
    CRUNCH_STORE_URL = "s3://${aws_s3_bucket.data.bucket}/data"
    # One job per task: the autoscaler's target of 1 job per task assumes it.
    CRUNCH_WORKER_SLOTS = "1"
    # SIGTERM -> stop claiming, let the job finish for 100 s, then release it
    # to the queue; 20 s of the 120 s stopTimeout remain to write outcomes.
    CRUNCH_SHUTDOWN_GRACE_SECONDS = "100"
    CRUNCH_LEASE_SECONDS          = tostring(var.lease_seconds)
    # The query engine's pool, a share of the task's memory (explicit rather
    # than read from the cgroup, so it is visible here and in the console).
    CRUNCH_MEMORY_LIMIT_BYTES = tostring(floor(var.worker_memory * 1048576 * var.worker_memory_fraction))
    CRUNCH_LOG                = var.log_level
    # The claim enforces it; empty: unset, no limit.
    CRUNCH_TENANT_MAX_RUNNING = var.tenant_max_running == null ? "" : tostring(var.tenant_max_running)
  }

  # Secrets Manager and SSM parameter ARNs, resolved by the ECS agent at
  # task start; an empty one is left out of the task definition.
  api_secrets = {
    DATABASE_URL = aws_secretsmanager_secret.database_url.arn
    # Only a hash (the key itself stays with the operator); read from SSM so
    # that it never enters the terraform state and can be replaced without
    # an apply (docs/security.md, "The first key").
    CRUNCH_BOOTSTRAP_KEY_SHA256 = local.bootstrap_key_parameter_arn
  }
  worker_secrets = {
    DATABASE_URL = aws_secretsmanager_secret.database_url.arn
  }
}

resource "aws_ecs_cluster" "main" {
  name = local.cluster_name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# --- API ------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "api" {
  name              = "/ecs/${local.name}/api"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_task_definition" "api" {
  family                   = local.api_service_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.api_cpu)
  memory                   = tostring(var.api_memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.api.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Scratch space (upload spooling) on the task's ephemeral storage.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = "api"
      image                  = local.image
      essential              = true
      command                = ["crunch-server"]
      readonlyRootFilesystem = true
      portMappings = [
        { name = "http", containerPort = local.container_port, protocol = "tcp" },
      ]
      environment = [for k, v in local.api_environment : { name = k, value = v } if length(v) > 0]
      secrets     = [for k, v in local.api_secrets : { name = k, valueFrom = v } if length(v) > 0]
      mountPoints = [
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.api.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "api"
        }
      }
    },
  ])

  lifecycle {
    precondition {
      condition = (
        var.api_memory >= local.fargate_memory[tostring(var.api_cpu)][0] &&
        var.api_memory <= local.fargate_memory[tostring(var.api_cpu)][1]
      )
      error_message = "api_memory is not a valid Fargate memory size for api_cpu."
    }
  }
}

resource "aws_ecs_service" "api" {
  name             = local.api_service_name
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.api.arn
  desired_count    = var.api_min_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # Rolling deploys keep full capacity: new tasks start before old ones stop.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
  health_check_grace_period_seconds = 60

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.api.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = "api"
    container_port   = local.container_port
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  lifecycle {
    # Application Auto Scaling owns the task count after creation.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.http, aws_lb_listener.https]
}

# --- worker -----------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "worker" {
  name              = "/ecs/${local.name}/worker"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_task_definition" "worker" {
  family                   = local.worker_service_name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.worker_cpu)
  memory                   = tostring(var.worker_memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Queries spill to the system temp dir: give it the task's ephemeral disk.
  ephemeral_storage {
    size_in_gib = var.worker_ephemeral_storage_gib
  }
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name                   = "worker"
      image                  = local.image
      essential              = true
      command                = ["crunch-worker"]
      readonlyRootFilesystem = true
      # Fargate's maximum. A scale-in, a deploy or a Spot interruption sends
      # SIGTERM and SIGKILLs 120 s later; the worker drains within
      # CRUNCH_SHUTDOWN_GRACE_SECONDS (100) and releases what is left, so a
      # job is either finished or back in the queue, never lost or run twice.
      stopTimeout = 120
      environment = [for k, v in local.worker_environment : { name = k, value = v } if length(v) > 0]
      secrets     = [for k, v in local.worker_secrets : { name = k, valueFrom = v }]
      mountPoints = [
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.worker.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "worker"
        }
      }
    },
  ])

  lifecycle {
    precondition {
      condition = (
        var.worker_memory >= local.fargate_memory[tostring(var.worker_cpu)][0] &&
        var.worker_memory <= local.fargate_memory[tostring(var.worker_cpu)][1]
      )
      error_message = "worker_memory is not a valid Fargate memory size for worker_cpu."
    }
  }
}

resource "aws_ecs_service" "worker" {
  name             = local.worker_service_name
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.worker.arn
  platform_version = "LATEST"

  # Starts at zero; from then on the target-tracking policy sets the count.
  desired_count = 0

  dynamic "capacity_provider_strategy" {
    for_each = var.worker_capacity_providers
    content {
      capacity_provider = capacity_provider_strategy.value.capacity_provider
      weight            = capacity_provider_strategy.value.weight
      base              = capacity_provider_strategy.value.base
    }
  }

  # A deploy may not stop a task that holds scale-in protection (a running
  # job), so old tasks must be allowed to stay while new ones start beside
  # them: never below 100 % of the desired count, up to 200 % during the
  # deploy. Old tasks stop as their jobs finish and protection clears.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.private_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  lifecycle {
    # Application Auto Scaling owns desired_count (0..worker_max_tasks). Without
    # this every `terraform apply` would reset it to 0 and SIGTERM every busy
    # worker; with it, applies leave the running fleet alone.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_ecs_cluster_capacity_providers.main]
}
