# Scaled down: one NAT gateway, a single-AZ db.t4g.micro, small tasks, workers
# mostly on Spot, short log retention, and everything destroyable.
environment = "dev"
aws_region  = "eu-west-1"

nat_gateway_mode        = "single"
alb_deletion_protection = false

api_cpu                = 512
api_memory             = 1024
api_min_count          = 2
api_max_count          = 2
api_db_max_connections = 10

worker_cpu                   = 1024
worker_memory                = 4096
worker_ephemeral_storage_gib = 30
worker_max_tasks             = 2
# Spot for workers (a Spot interruption is a 120 s SIGTERM like any scale-in:
# the job finishes or goes back to the queue); base 0 so scale-to-zero works.
worker_capacity_providers = [
  { capacity_provider = "FARGATE_SPOT", weight = 1 },
]

db_instance_class           = "db.t4g.micro"
db_allocated_storage        = 20
db_max_allocated_storage    = 50
db_multi_az                 = false
db_deletion_protection      = false
db_backup_retention_days    = 1
db_performance_insights     = false
db_monitoring_interval      = 0
db_apply_immediately        = true
secret_recovery_window_days = 0

s3_force_destroy           = true
s3_noncurrent_version_days = 7
ecr_keep_images            = 10

log_retention_days          = 30
oldest_queued_alarm_seconds = 1800
failed_jobs_alarm_threshold = 5
