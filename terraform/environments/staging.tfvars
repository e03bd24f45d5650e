# Production-shaped but smaller: NAT per AZ, single-AZ database with
# deletion protection, mid-sized tasks, workers mixed Spot/on-demand.
environment = "staging"
aws_region  = "eu-west-1"

nat_gateway_mode        = "per_az"
alb_deletion_protection = true

api_cpu       = 1024
api_memory    = 2048
api_min_count = 2
api_max_count = 4

worker_cpu                   = 2048
worker_memory                = 8192
worker_ephemeral_storage_gib = 60
worker_max_tasks             = 6
worker_capacity_providers = [
  { capacity_provider = "FARGATE", weight = 1 },
  { capacity_provider = "FARGATE_SPOT", weight = 3 },
]

db_instance_class        = "db.t4g.medium"
db_allocated_storage     = 20
db_max_allocated_storage = 200
db_multi_az              = false
db_deletion_protection   = true
db_backup_retention_days = 7
db_performance_insights  = true
db_monitoring_interval   = 60

s3_noncurrent_version_days = 14

log_retention_days          = 90
oldest_queued_alarm_seconds = 900
failed_jobs_alarm_threshold = 2
