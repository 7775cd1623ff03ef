# Replica lag (the RPO is 15 minutes) and standby health alarms.

resource "aws_sns_topic" "alerts" {
  name              = "${local.name}-alerts"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_cloudwatch_metric_alarm" "replica_lag" {
  alarm_name          = "${local.name}-replica-lag"
  alarm_description   = "Cross-region replica more than 5 minutes behind (RPO budget is 15 minutes)"
  namespace           = "AWS/RDS"
  metric_name         = "ReplicaLag"
  statistic           = "Maximum"
  threshold           = 300
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 3
  period              = 60
  dimensions          = { DBInstanceIdentifier = aws_db_instance.replica.identifier }
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
  ok_actions          = [aws_sns_topic.alerts.arn]
}
