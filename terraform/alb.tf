locals {
  https = var.certificate_arn != ""
}

# No WAF is created here: request bodies are arbitrary CSV/NDJSON/Parquet
# uploads up to 1 GiB and SQL text, which AWS's managed rule groups
# (SizeRestrictions_BODY, SQLi, XSS) would block. Attach an ACL tuned for this
# API with waf_web_acl_arn. Access logs need a bucket with the region's ELB
# log-delivery policy (usually the account's central log bucket): pass it as
# alb_access_logs_bucket.
resource "aws_lb" "api" {
  #checkov:skip=CKV2_AWS_76:No WAF by default (managed body rules block uploads and SQL jobs, see above); an ACL passed in through waf_web_acl_arn is managed, rule groups included, outside this module.
  name               = local.name
  load_balancer_type = "application"
  internal           = false
  security_groups    = [aws_security_group.alb.id]
  subnets            = local.public_subnet_ids

  drop_invalid_header_fields = true
  enable_deletion_protection = var.alb_deletion_protection
  # Long-polls (`wait` up to 30 s) and slow uploads must outlive it.
  idle_timeout = var.alb_idle_timeout

  dynamic "access_logs" {
    for_each = var.alb_access_logs_bucket == "" ? [] : [var.alb_access_logs_bucket]
    content {
      bucket  = access_logs.value
      prefix  = local.name
      enabled = true
    }
  }
}

resource "aws_wafv2_web_acl_association" "api" {
  count = var.waf_web_acl_arn == "" ? 0 : 1

  resource_arn = aws_lb.api.arn
  web_acl_arn  = var.waf_web_acl_arn
}

resource "aws_lb_target_group" "api" {
  #checkov:skip=CKV_AWS_378:TLS terminates at the load balancer; the targets are private-subnet tasks reachable only from the ALB's security group, and the server speaks plain HTTP.
  name        = "${local.name}-api"
  port        = local.container_port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = local.vpc_id

  # A stopping server finishes in-flight requests, long-polls included (30 s).
  deregistration_delay = 35

  health_check {
    path                = "/readyz"
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "https" {
  count = local.https ? 1 : 0

  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

# With a certificate, port 80 only redirects to HTTPS; without one (a dev
# stack with no domain) it serves the API.
resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:Redirects to HTTPS whenever certificate_arn is set; plain HTTP is served only by stacks deployed without a certificate.
  load_balancer_arn = aws_lb.api.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.https ? "redirect" : "forward"
    target_group_arn = local.https ? null : aws_lb_target_group.api.arn

    dynamic "redirect" {
      for_each = local.https ? [1] : []
      content {
        port        = "443"
        protocol    = "HTTPS"
        status_code = "HTTP_301"
      }
    }
  }
}
