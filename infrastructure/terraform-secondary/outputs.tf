# Outputs read by the engine's DR workflow (python starters/failover.py).

output "replica_db_instance_id" {
  description = "Cross-region read replica the DR workflow promotes."
  value       = aws_db_instance.replica.identifier
}

output "alb_listener_arn" {
  value = module.alb.listener_arn
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

output "eks_cluster_name" {
  value = module.eks.cluster_name
}

output "route53_zone_id" {
  value = local.primary.route53_zone_id
}

output "api_record_name" {
  value = local.primary.api_record_name
}

output "secondary_health_check_id" {
  value = aws_route53_health_check.secondary.id
}
