# Cross-region read replica of the primary PostgreSQL (promoted by the DR workflow) and a
# standby Redis (a cache: it starts cold after failover).

module "data_network" {
  source                   = "../terraform/modules/data-network"
  name                     = local.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.database_subnet_ids
  client_security_group_id = module.eks.cluster_security_group_id
  clients                  = "standby EKS nodes"
}

# The replica's own parameter group, from the same module as the primary's, so the same family and
# settings (parameter groups are regional). Own, not AWS's default: once promoted
# this instance is the primary, and the engine fences it at failback by setting
# default_transaction_read_only in its parameter group (activities/database/rds.py), which it
# refuses to do in a default or shared group.
module "db_parameters" {
  source = "../terraform/modules/db-parameters"
  name   = "${local.name}-postgres15"
}

resource "aws_db_instance" "replica" {
  identifier          = "${local.name}-db-replica"
  replicate_source_db = local.primary.primary_db_instance_arn
  instance_class      = var.db_instance_class

  storage_type      = "gp3"
  storage_encrypted = true
  kms_key_id        = aws_kms_key.main.arn

  multi_az               = true
  db_subnet_group_name   = module.data_network.db_subnet_group_name
  vpc_security_group_ids = [module.data_network.database_security_group_id]
  publicly_accessible    = false
  # A new group takes effect at the instance's next reboot (docs/runbooks: DR on AWS).
  parameter_group_name = module.db_parameters.name

  # Backups on the replica so that, once promoted, the new primary is already backed up.
  backup_retention_period   = var.db_backup_retention_days
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${local.name}-db-replica-final"

  performance_insights_enabled    = true
  performance_insights_kms_key_id = aws_kms_key.main.arn
  enabled_cloudwatch_logs_exports = ["postgresql"]
  auto_minor_version_upgrade      = true

  # After a promotion replicate_source_db is empty in AWS: do not let Terraform re-create it.
  lifecycle {
    prevent_destroy = true
    ignore_changes  = [replicate_source_db]
  }
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id       = "${local.name}-redis"
  description                = "claude-deployment DR cache (cluster mode)"
  engine                     = "redis"
  engine_version             = var.redis_engine_version
  node_type                  = var.redis_node_type
  parameter_group_name       = "default.redis7.cluster.on"
  num_node_groups            = 3
  replicas_per_node_group    = 1
  multi_az_enabled           = true
  automatic_failover_enabled = true
  subnet_group_name          = module.data_network.elasticache_subnet_group_name
  security_group_ids         = [module.data_network.redis_security_group_id]
  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  snapshot_retention_limit   = 7
}
