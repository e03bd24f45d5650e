# Multi-AZ everywhere: NAT per AZ, Multi-AZ RDS with deletion protection and
# two weeks of backups, large on-demand workers, a year of logs.
environment = "prod"
aws_region  = "eu-west-1"

nat_gateway_mode        = "per_az"
alb_deletion_protection = true
# certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/..."
# alarm_email     = "oncall@example.com"

api_cpu       = 1024
api_memory    = 2048
api_min_count = 2
api_max_count = 8

worker_cpu                   = 4096
worker_memory                = 16384
worker_ephemeral_storage_gib = 200
worker_max_tasks             = 50
worker_capacity_providers = [
  { capacity_provider = "FARGATE", weight = 1 },
]

db_instance_class        = "db.m7g.large"
db_allocated_storage     = 100
db_max_allocated_storage = 1000
db_multi_az              = true
db_deletion_protection   = true
db_backup_retention_days = 14
db_performance_insights  = true
db_monitoring_interval   = 60

s3_noncurrent_version_days = 30

log_retention_days          = 365
oldest_queued_alarm_seconds = 900
failed_jobs_alarm_threshold = 0
