# Outputs read by the engine's DR workflow (python starters/failover.py).

output "replica_db_instance_id" {
  description = "Cross-region read replica the DR workflow promotes."
  value       = aws_db_instance.replica.identifier
}

output "alb_listener_arn" {
  value = module.alb.listener_arn
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
