output "db_subnet_group_name" {
  value = aws_db_subnet_group.main.name
}

output "elasticache_subnet_group_name" {
  value = aws_elasticache_subnet_group.main.name
}

output "database_security_group_id" {
  value = aws_security_group.store["database"].id
}

output "redis_security_group_id" {
  value = aws_security_group.store["redis"].id
}
