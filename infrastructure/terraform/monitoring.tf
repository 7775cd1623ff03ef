# CloudWatch alarms on the AWS-managed pieces (Prometheus covers the workloads, see
# monitoring/production/) and the SNS topic they page through.

resource "aws_sns_topic" "alerts" {
  name              = "${local.name}-alerts"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_subscription" "alerts_email" {
  for_each  = toset(var.alert_emails)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarms = {
    alb-5xx = {
      namespace   = "AWS/ApplicationELB"
      metric      = "HTTPCode_ELB_5XX_Count"
      statistic   = "Sum"
      threshold   = 50
      comparison  = "GreaterThanThreshold"
      periods     = 3
      dimensions  = { LoadBalancer = module.alb.arn_suffix }
      description = "ALB itself returns 5xx (no healthy target in the active pool?)"
    }
    alb-target-latency = {
      namespace   = "AWS/ApplicationELB"
      metric      = "TargetResponseTime"
      statistic   = "Average"
      threshold   = 0.5
      comparison  = "GreaterThanThreshold"
      periods     = 5
      dimensions  = { LoadBalancer = module.alb.arn_suffix }
      description = "Average target response time above the 500 ms P95 objective"
    }
    rds-cpu = {
      namespace   = "AWS/RDS"
      metric      = "CPUUtilization"
      statistic   = "Average"
      threshold   = 80
      comparison  = "GreaterThanThreshold"
      periods     = 3
      dimensions  = { DBInstanceIdentifier = aws_db_instance.primary.identifier }
      description = "Primary database CPU above 80 %"
    }
    rds-free-storage = {
      namespace   = "AWS/RDS"
      metric      = "FreeStorageSpace"
      statistic   = "Minimum"
      threshold   = 20 * 1024 * 1024 * 1024
      comparison  = "LessThanThreshold"
      periods     = 1
      dimensions  = { DBInstanceIdentifier = aws_db_instance.primary.identifier }
      description = "Primary database has less than 20 GiB free"
    }
    rds-connections = {
      namespace   = "AWS/RDS"
      metric      = "DatabaseConnections"
      statistic   = "Maximum"
      threshold   = 400
      comparison  = "GreaterThanThreshold"
      periods     = 3
      dimensions  = { DBInstanceIdentifier = aws_db_instance.primary.identifier }
      description = "Primary database connections near max_connections"
    }
    redis-cpu = {
      namespace   = "AWS/ElastiCache"
      metric      = "EngineCPUUtilization"
      statistic   = "Average"
      threshold   = 75
      comparison  = "GreaterThanThreshold"
      periods     = 3
      dimensions  = { ReplicationGroupId = aws_elasticache_replication_group.redis.id }
      description = "Redis engine CPU above 75 %"
    }
    redis-memory = {
      namespace   = "AWS/ElastiCache"
      metric      = "DatabaseMemoryUsagePercentage"
      statistic   = "Maximum"
      threshold   = 85
      comparison  = "GreaterThanThreshold"
      periods     = 3
      dimensions  = { ReplicationGroupId = aws_elasticache_replication_group.redis.id }
      description = "Redis memory above 85 %"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each            = local.alarms
  alarm_name          = "${local.name}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  evaluation_periods  = each.value.periods
  period              = 60
  dimensions          = each.value.dimensions
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}

resource "aws_cloudwatch_metric_alarm" "route53_primary_unhealthy" {
  provider            = aws.us_east_1
  alarm_name          = "${local.name}-primary-origin-unhealthy"
  alarm_description   = "Route53 health check of the primary ALB failing: DNS fails over to the secondary region"
  namespace           = "AWS/Route53"
  metric_name         = "HealthCheckStatus"
  statistic           = "Minimum"
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  evaluation_periods  = 2
  period              = 60
  dimensions          = { HealthCheckId = aws_route53_health_check.primary.id }
  alarm_actions       = [aws_sns_topic.alerts_us_east_1.arn]
}

# Route53 metrics only exist in us-east-1, so that alarm needs a topic there.
resource "aws_kms_key" "alerts_us_east_1" {
  provider                = aws.us_east_1
  description             = "${local.name} SNS encryption (us-east-1 alarms)"
  deletion_window_in_days = 30
  enable_key_rotation     = true
}

resource "aws_sns_topic" "alerts_us_east_1" {
  provider          = aws.us_east_1
  name              = "${local.name}-alerts-global"
  kms_master_key_id = aws_kms_key.alerts_us_east_1.arn
}

resource "aws_cloudwatch_dashboard" "main" {
  dashboard_name = local.name
  dashboard_body = jsonencode({
    widgets = [
      {
        type   = "metric"
        width  = 12
        height = 6
        properties = {
          title  = "ALB requests and 5xx"
          region = var.region
          metrics = [
            ["AWS/ApplicationELB", "RequestCount", "LoadBalancer", module.alb.arn_suffix],
            [".", "HTTPCode_Target_5XX_Count", ".", "."],
          ]
          stat = "Sum"
        }
      },
      {
        type   = "metric"
        width  = 12
        height = 6
        properties = {
          title   = "RDS CPU and connections"
          region  = var.region
          metrics = [["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", aws_db_instance.primary.identifier], [".", "DatabaseConnections", ".", "."]]
          stat    = "Average"
        }
      }
    ]
  })
}
