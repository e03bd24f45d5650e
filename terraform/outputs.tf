output "api_url" {
  description = "Base URL of the API (the load balancer's DNS name; point a CNAME or alias at it for the certificate's domain)."
  value       = "${local.https ? "https" : "http"}://${aws_lb.api.dns_name}"
}

output "ecr_repository_url" {
  description = "Push the crunch image here, tagged with image_tag."
  value       = aws_ecr_repository.app.repository_url
}

output "data_bucket" {
  description = "S3 bucket holding datasets and results (under data/)."
  value       = aws_s3_bucket.data.bucket
}

output "cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.main.name
}

output "api_service_name" {
  description = "ECS service running crunch-server."
  value       = aws_ecs_service.api.name
}

output "worker_service_name" {
  description = "ECS service running crunch-worker; also the ServiceName dimension of the Crunch metrics."
  value       = aws_ecs_service.worker.name
}

output "database_url_secret_arn" {
  description = "Secrets Manager secret holding DATABASE_URL."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "database_endpoint" {
  description = "RDS endpoint (host:port), reachable only from the tasks' security groups."
  value       = aws_db_instance.main.endpoint
}

output "dashboard_url" {
  description = "CloudWatch dashboard."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards/dashboard/${aws_cloudwatch_dashboard.main.dashboard_name}"
}

output "alarm_topic_arn" {
  description = "SNS topic the alarms notify."
  value       = aws_sns_topic.alarms.arn
}

output "vpc_id" {
  description = "VPC the stack runs in."
  value       = local.vpc_id
}
