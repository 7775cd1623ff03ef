# RDS PostgreSQL 15 (Multi-AZ, the DR replica is in ../terraform-secondary) and ElastiCache Redis 7
# in cluster mode. Nothing here is reachable from outside the VPC.

module "data_network" {
  source                   = "./modules/data-network"
  name                     = local.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.database_subnet_ids
  client_security_group_id = module.eks.cluster_security_group_id
  clients                  = "EKS nodes"
  rule_descriptions        = true
}

# The primary's own parameter group (never AWS's default, never shared): the engine fences this
# instance there when the DR workflow fails over to the replica. The DR root's replica gets its own
# group from the same module (settings, fence and ignore_changes: modules/db-parameters).
module "db_parameters" {
  source = "./modules/db-parameters"
  name   = "${local.name}-postgres15"
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${local.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "primary" {
  identifier     = "${local.name}-db"
  engine         = "postgres"
  engine_version = var.db_engine_version
  instance_class = var.db_instance_class

  allocated_storage     = var.db_allocated_storage
  max_allocated_storage = var.db_max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.main.arn

  db_name                       = "claude_deployment"
  username                      = "claude_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.main.arn

  multi_az               = true
  db_subnet_group_name   = module.data_network.db_subnet_group_name
  vpc_security_group_ids = [module.data_network.database_security_group_id]
  publicly_accessible    = false
  parameter_group_name   = module.db_parameters.name

  backup_retention_period   = var.db_backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.name}-db-final"

  iam_database_authentication_enabled   = true
  auto_minor_version_upgrade            = true
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.main.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 30
  monitoring_role_arn                   = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  lifecycle {
    prevent_destroy = true
  }
}

# Point-in-time-restore backups copied to the DR region: restores there meet the 15 min RPO
# even if the cross-region replica is lost together with the primary.
resource "aws_db_instance_automated_backups_replication" "dr" {
  provider               = aws.secondary
  source_db_instance_arn = aws_db_instance.primary.arn
  kms_key_id             = aws_kms_key.backups_replica.arn
  retention_period       = var.db_backup_retention_days
}

# --- ElastiCache Redis 7, cluster mode enabled ---

resource "random_password" "redis_auth" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "redis_auth" {
  name       = "claude-deployment/prod/redis-auth"
  kms_key_id = aws_kms_key.main.arn
}

resource "aws_secretsmanager_secret_version" "redis_auth" {
  secret_id     = aws_secretsmanager_secret.redis_auth.id
  secret_string = random_password.redis_auth.result
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = "${local.name}-redis"
  description          = "claude-deployment production cache (cluster mode)"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  parameter_group_name = "default.redis7.cluster.on"
  port                 = 6379

  num_node_groups         = var.redis_shards
  replicas_per_node_group = var.redis_replicas_per_shard

  multi_az_enabled           = true
  automatic_failover_enabled = true
  subnet_group_name          = module.data_network.elasticache_subnet_group_name
  security_group_ids         = [module.data_network.redis_security_group_id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis_auth.result

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "02:00-03:00"
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}

resource "aws_cloudwatch_log_group" "redis" {
  name              = "/aws/elasticache/${local.name}-redis"
  retention_in_days = 30
  kms_key_id        = aws_kms_key.main.arn
}
