# Outputs read by the deployment engine's AWS providers (names are a contract: see
# monitoring/production/ENGINE_METRICS.md and the engine's activities) and by operators.

output "alb_listener_arn" {
  description = "HTTPS listener whose weighted forward action the engine rewrites."
  value       = module.alb.listener_arn
}

output "alb_preview_listener_arn" {
  description = "Preview listener (blue-green's preview route, its own port): the engine's aws.preview_listener_arn."
  value       = module.alb.preview_listener_arn
}

output "alb_preview_url" {
  description = "The engine's aws.preview_url: the preview listener by a name its certificate covers."
  value       = "https://${aws_route53_record.preview.fqdn}:${module.alb.preview_port}"
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

output "primary_health_check_id" {
  description = "Health check of the PRIMARY record: deploy-code.yaml dr.aws.regions.<primary>.health_check_id (the engine's UPSERT writes it back)."
  value       = aws_route53_health_check.primary.id
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
