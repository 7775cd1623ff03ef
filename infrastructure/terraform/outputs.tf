# Outputs read by the deployment engine's AWS providers (names are a contract: see
# monitoring/production/ENGINE_METRICS.md and the engine's activities) and by operators.

output "alb_listener_arn" {
  description = "HTTPS listener whose weighted forward action the engine rewrites."
  value       = module.alb.listener_arn
}

output "blue_target_group_arn" {
  value = module.alb.blue_target_group_arn
}

output "green_target_group_arn" {
  value = module.alb.green_target_group_arn
}

output "primary_db_instance_id" {
  value = aws_db_instance.primary.identifier
}

output "primary_db_instance_arn" {
  description = "Source of the cross-region replica in ../terraform-secondary."
  value       = aws_db_instance.primary.arn
}

output "route53_zone_id" {
  value = data.aws_route53_zone.main.zone_id
}

output "api_record_name" {
  description = "Failover record (PRIMARY here, SECONDARY in the secondary root) that the DR workflow flips."
  value       = local.api_record_name
}

output "public_hostname" {
  value = local.public_hostname
}

output "eks_cluster_name" {
  value = module.eks.cluster_name
}

output "ecr_ci_repository_url" {
  value = aws_ecr_repository.ci.repository_url
}

output "ecr_prod_repository_url" {
  value = aws_ecr_repository.prod.repository_url
}

output "redis_configuration_endpoint" {
  value = aws_elasticache_replication_group.redis.configuration_endpoint_address
}

output "sns_alerts_topic_arn" {
  value = aws_sns_topic.alerts.arn
}

output "irsa_role_arns" {
  description = "Annotate the service accounts in k8s/production/namespace.yaml with these."
  value       = { for k, r in aws_iam_role.irsa : k => r.arn }
}

output "ecr_engine_repository_url" {
  value = aws_ecr_repository.engine.repository_url
}
