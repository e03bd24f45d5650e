# Defaults are the safe, production-shaped choice (Multi-AZ, deletion
# protection, a year of logs); environments/dev.tfvars opts out explicitly.

# --- naming -----------------------------------------------------------------

variable "name" {
  description = "Application name; prefixes every resource (with the environment)."
  type        = string
  default     = "crunch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name))
    error_message = "name must be 2-16 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Deployment environment: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "aws_region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}

# --- network ----------------------------------------------------------------

variable "vpc_id" {
  description = "An existing VPC to deploy into. Empty: create a VPC with public and private subnets and NAT."
  type        = string
  default     = ""
}

variable "public_subnet_ids" {
  description = "Public subnets of the existing VPC for the load balancer (at least 2 AZs). Only with vpc_id."
  type        = list(string)
  default     = []
}

variable "private_subnet_ids" {
  description = "Private subnets (with a route to the internet through NAT) of the existing VPC for tasks and the database (at least 2 AZs). Only with vpc_id."
  type        = list(string)
  default     = []
}

variable "vpc_cidr" {
  description = "CIDR block of the created VPC."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block of /20 or larger."
  }
}

variable "az_count" {
  description = "Availability zones the created VPC spans."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 3
    error_message = "az_count must be 2 or 3 (the ALB and RDS subnet group need at least 2)."
  }
}

variable "availability_zones" {
  description = "Zones for the created VPC (overrides az_count). Empty: the region's first az_count zones."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || (length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3)
    error_message = "availability_zones must be empty or list 2 or 3 zones."
  }
}

variable "nat_gateway_mode" {
  description = "NAT for the created VPC: \"single\" (one gateway, cheaper, one AZ's outage cuts egress) or \"per_az\"."
  type        = string
  default     = "per_az"

  validation {
    condition     = contains(["single", "per_az"], var.nat_gateway_mode)
    error_message = "nat_gateway_mode must be single or per_az."
  }
}

variable "enable_flow_logs" {
  description = "Send the created VPC's flow logs to CloudWatch Logs."
  type        = bool
  default     = true
}

# --- load balancer ------------------------------------------------------------

variable "certificate_arn" {
  description = "ACM certificate for an HTTPS listener (port 80 then redirects to 443). Empty: plain HTTP on port 80."
  type        = string
  default     = ""
}

variable "alb_ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the load balancer."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "alb_deletion_protection" {
  description = "Deletion protection on the load balancer."
  type        = bool
  default     = true
}

variable "alb_access_logs_bucket" {
  description = "An existing S3 bucket (with the ELB log-delivery policy) for ALB access logs. Empty: no access logs."
  type        = string
  default     = ""
}

variable "alb_idle_timeout" {
  description = "ALB idle timeout in seconds; must exceed the longest long-poll (`wait`, 30 s) and slow uploads."
  type        = number
  default     = 120
}

variable "api_host_names" {
  description = "Host names clients reach the API by besides the load balancer's own DNS name (the certificate's domain, a CNAME). The server answers requests for these names, that DNS name and IP addresses only (CRUNCH_ALLOWED_HOSTS, against DNS rebinding)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for n in var.api_host_names : can(regex("^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.?$", n))])
    error_message = "api_host_names must be DNS names, without a scheme or port."
  }
}

variable "waf_web_acl_arn" {
  description = "An existing WAFv2 web ACL to associate with the load balancer. Empty: none."
  type        = string
  default     = ""
}

# --- image and containers -------------------------------------------------------

variable "image_tag" {
  description = "Tag of the crunch image in the module's ECR repository (tags are immutable: use a version or commit id)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid Docker tag."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture the image is built for: X86_64 or ARM64 (Graviton, cheaper)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_level" {
  description = "CRUNCH_LOG for server and workers (tracing env-filter syntax)."
  type        = string
  default     = "info"
}

variable "lease_seconds" {
  description = "CRUNCH_LEASE_SECONDS: a job's lease; a dead worker's job is rescued after it."
  type        = number
  default     = 30

  validation {
    condition     = var.lease_seconds >= 5 && var.lease_seconds <= 600
    error_message = "lease_seconds must be between 5 and 600."
  }
}

# --- API service ------------------------------------------------------------------

variable "api_cpu" {
  description = "API task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 1024

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.api_cpu)
    error_message = "api_cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "api_memory" {
  description = "API task memory in MiB (must be valid for api_cpu on Fargate)."
  type        = number
  default     = 2048
}

variable "api_min_count" {
  description = "Minimum API tasks; at least 2 so one AZ or one deploy never takes the API down."
  type        = number
  default     = 2

  validation {
    condition     = var.api_min_count >= 2
    error_message = "api_min_count must be at least 2 (one task per AZ)."
  }
}

variable "api_max_count" {
  description = "Maximum API tasks under CPU target tracking."
  type        = number
  default     = 6
}

variable "api_cpu_target" {
  description = "Target average CPU utilisation (%) of the API service."
  type        = number
  default     = 60

  validation {
    condition     = var.api_cpu_target >= 10 && var.api_cpu_target <= 90
    error_message = "api_cpu_target must be between 10 and 90."
  }
}

variable "bootstrap_key_sha256_parameter" {
  description = "Name of an SSM parameter (String, or SecureString under the AWS-managed key) holding the hex SHA-256 of the first API key, from `crunch-server keys generate`. The API tasks read it at start (CRUNCH_BOOTSTRAP_KEY_SHA256) and make it an all-scopes key of the default tenant. Empty: no bootstrap key (see docs/security.md)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(/?[A-Za-z0-9_.-]+)*$", var.bootstrap_key_sha256_parameter))
    error_message = "bootstrap_key_sha256_parameter must be an SSM parameter name such as /crunch/prod/bootstrap-key-sha256 (not an ARN)."
  }
}

variable "api_db_max_connections" {
  description = "CRUNCH_DB_MAX_CONNECTIONS per API task. Mind RDS max_connections: api_max_count times this, plus workers."
  type        = number
  default     = 20
}

# --- tenants ------------------------------------------------------------------------
# Defaults for tenants without limits of their own (null: no limit). A
# tenant's own limits are set in the database and always win.

variable "tenant_max_running" {
  description = "Jobs of one tenant running at once across all workers (CRUNCH_TENANT_MAX_RUNNING, on the workers and on the API, whose backlog metric counts only jobs the limits let start). Null: no limit."
  type        = number
  default     = null

  validation {
    condition     = var.tenant_max_running == null || try(var.tenant_max_running >= 1, false)
    error_message = "tenant_max_running must be at least 1, or null."
  }
}

variable "tenant_max_queued" {
  description = "Queued jobs a tenant may have; a submit past it is 429 (CRUNCH_TENANT_MAX_QUEUED). Null: no limit."
  type        = number
  default     = null

  validation {
    condition     = var.tenant_max_queued == null || try(var.tenant_max_queued >= 1, false)
    error_message = "tenant_max_queued must be at least 1, or null."
  }
}

variable "tenant_storage_quota_bytes" {
  description = "Bytes a tenant's datasets may take in the store; an upload past it is refused (CRUNCH_TENANT_STORAGE_QUOTA_BYTES). Null: no quota."
  type        = number
  default     = null

  validation {
    condition     = var.tenant_storage_quota_bytes == null || try(var.tenant_storage_quota_bytes >= 1, false)
    error_message = "tenant_storage_quota_bytes must be at least 1, or null."
  }
}

# --- worker service ------------------------------------------------------------------

variable "worker_cpu" {
  description = "Worker task CPU units (1024 = 1 vCPU)."
  type        = number
  default     = 4096

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.worker_cpu)
    error_message = "worker_cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "worker_memory" {
  description = "Worker task memory in MiB (must be valid for worker_cpu on Fargate)."
  type        = number
  default     = 16384
}

variable "worker_memory_fraction" {
  description = "Share of the task memory given to the query engine's pool (CRUNCH_MEMORY_LIMIT_BYTES); the rest is for the process, Arrow batches in flight and the page cache."
  type        = number
  default     = 0.6

  validation {
    condition     = var.worker_memory_fraction > 0.2 && var.worker_memory_fraction <= 0.8
    error_message = "worker_memory_fraction must be in (0.2, 0.8]."
  }
}

variable "worker_ephemeral_storage_gib" {
  description = "Fargate ephemeral storage per worker task (GiB, 21-200); queries spill here."
  type        = number
  default     = 100

  validation {
    condition     = var.worker_ephemeral_storage_gib >= 21 && var.worker_ephemeral_storage_gib <= 200
    error_message = "worker_ephemeral_storage_gib must be between 21 and 200."
  }
}

variable "worker_max_tasks" {
  description = "Most worker tasks the autoscaler may run (the minimum is 0). A burst of N jobs starts within about 5 minutes only if N <= this (docs/scaling.md)."
  type        = number
  default     = 50

  validation {
    condition     = var.worker_max_tasks >= 1 && var.worker_max_tasks <= 500
    error_message = "worker_max_tasks must be between 1 and 500."
  }
}

variable "worker_capacity_providers" {
  description = "Capacity provider strategy of the worker service. FARGATE_SPOT is safe for workers: an interruption is a SIGTERM with 120 s notice, the same drain as a scale-in."
  type = list(object({
    capacity_provider = string
    weight            = number
    base              = optional(number, 0)
  }))
  default = [{ capacity_provider = "FARGATE", weight = 1 }]

  validation {
    condition = length(var.worker_capacity_providers) > 0 && alltrue([
      for s in var.worker_capacity_providers : contains(["FARGATE", "FARGATE_SPOT"], s.capacity_provider)
    ])
    error_message = "worker_capacity_providers must name FARGATE and/or FARGATE_SPOT."
  }
}

variable "worker_scale_in_cooldown" {
  description = "Seconds after a scale-in before another scale-in."
  type        = number
  default     = 60
}

variable "worker_idle_scale_in" {
  description = "Remove idle worker tasks (IdleTasks > 0 with nothing queued) after one minute through a step-scaling policy, instead of after target tracking's 15-minute scale-in alarm. docs/scaling.md: 93% instead of 65% of billed task time busy for a burst of 30-minute jobs; the cost is a cold start (about a minute) for a job that arrives after its task went."
  type        = bool
  default     = true
}

variable "worker_scale_out_cooldown" {
  description = "Seconds after a scale-out before another scale-out."
  type        = number
  default     = 60
}

# --- database --------------------------------------------------------------------

variable "db_engine_version" {
  description = "PostgreSQL major version (minor versions are upgraded automatically)."
  type        = string
  default     = "16"

  validation {
    condition     = contains(["15", "16"], var.db_engine_version)
    error_message = "db_engine_version must be 15 or 16."
  }
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_allocated_storage" {
  description = "Initial RDS storage in GiB."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage" {
  description = "Upper bound for RDS storage autoscaling in GiB (0 disables it)."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Run RDS Multi-AZ (a synchronous standby in another AZ)."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Deletion protection on the RDS instance; also takes a final snapshot on destroy."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35 (backups stay on)."
  }
}

variable "db_performance_insights" {
  description = "Performance Insights (free 7-day tier). Not available on the smallest burstable classes."
  type        = bool
  default     = true
}

variable "db_monitoring_interval" {
  description = "Enhanced monitoring interval in seconds (0 disables it)."
  type        = number
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.db_monitoring_interval)
    error_message = "db_monitoring_interval must be one of 0, 1, 5, 10, 15, 30, 60."
  }
}

variable "db_iam_auth" {
  description = "Allow IAM database authentication (for operators; the services use the generated password)."
  type        = bool
  default     = true
}

variable "db_require_tls" {
  description = "Force TLS on database connections (rds.force_ssl = 1, sslmode=require). The binaries' sqlx links rustls."
  type        = bool
  default     = true
}

variable "db_apply_immediately" {
  description = "Apply RDS changes at once instead of in the maintenance window."
  type        = bool
  default     = false
}

variable "secret_recovery_window_days" {
  description = "Days a deleted Secrets Manager secret can be restored (0 deletes at once)."
  type        = number
  default     = 7
}

# --- storage -----------------------------------------------------------------------

variable "s3_noncurrent_version_days" {
  description = "Days a replaced or deleted dataset/result object version is kept."
  type        = number
  default     = 30
}

variable "s3_force_destroy" {
  description = "Allow destroying the dataset bucket while it holds objects (dev only)."
  type        = bool
  default     = false
}

variable "ecr_keep_images" {
  description = "Most recent images kept in the ECR repository."
  type        = number
  default     = 30
}

# --- monitoring ---------------------------------------------------------------------

variable "log_retention_days" {
  description = "CloudWatch Logs retention for service, database and flow logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts."
  }
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (confirm the subscription mail). Empty: no subscription."
  type        = string
  default     = ""
}

variable "oldest_queued_alarm_seconds" {
  description = "Alarm when the oldest queued job has waited longer than this (scale-out from zero takes a few minutes)."
  type        = number
  default     = 900
}

variable "failed_jobs_alarm_threshold" {
  description = "Alarm when more than this many jobs fail within 5 minutes."
  type        = number
  default     = 0
}
