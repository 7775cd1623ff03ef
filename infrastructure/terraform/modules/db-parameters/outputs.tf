output "name" {
  description = "For the instance's parameter_group_name."
  value       = aws_db_parameter_group.this.name
}
