output "listener_arn" {
  description = "HTTPS listener whose weighted forward action the engine rewrites."
  value       = aws_lb_listener.https.arn
}

output "preview_listener_arn" {
  description = "Preview listener (blue-green's preview route) whose action the engine rewrites."
  value       = aws_lb_listener.preview.arn
}

output "preview_port" {
  value = aws_lb_listener.preview.port
}

output "blue_target_group_arn" {
  value = aws_lb_target_group.pool["blue"].arn
}

output "green_target_group_arn" {
  value = aws_lb_target_group.pool["green"].arn
}

output "dns_name" {
  value = aws_lb.main.dns_name
}

output "zone_id" {
  value = aws_lb.main.zone_id
}

output "arn_suffix" {
  value = aws_lb.main.arn_suffix
}
