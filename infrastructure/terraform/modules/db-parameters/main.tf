# One RDS instance's own PostgreSQL parameter group (never AWS's default, never shared): the DR
# workflow fences an instance in its own group and refuses default or shared ones
# (activities/database/rds.py). Both roots call it, one group per instance, so the replica has
# the same family and settings as the primary (parameter groups are regional).

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

resource "aws_db_parameter_group" "this" {
  name   = var.name
  family = var.family

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }

  # The DR workflow fences this instance by setting default_transaction_read_only = 1 here
  # (activities/database/rds.py); the AWS provider reads user-set parameters back, so an apply
  # would reset it and make a fenced old primary writable again. Changing a parameter below
  # therefore also needs `aws rds modify-db-parameter-group` (or an apply without this ignore
  # while no instance is fenced): docs/runbooks (DR on AWS).
  lifecycle {
    ignore_changes = [parameter]
  }
}
