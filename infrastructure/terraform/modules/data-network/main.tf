# Where one region's data stores live and who may reach them: the RDS and ElastiCache subnet
# groups (database subnets only) and one security group per store that admits its port from
# the EKS cluster security group and nothing else. Both roots call it; the instances
# themselves (primary + replica source, or the replica) stay in the roots.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

locals {
  stores = {
    database = { port = 5432, engine = "PostgreSQL", rule = "PostgreSQL from EKS nodes" }
    redis    = { port = 6379, engine = "Redis", rule = "Redis TLS from EKS nodes" }
  }
}

resource "aws_db_subnet_group" "main" {
  name       = "${var.name}-db"
  subnet_ids = var.subnet_ids
}

resource "aws_elasticache_subnet_group" "main" {
  name       = "${var.name}-redis"
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "store" {
  for_each    = local.stores
  name        = "${var.name}-${each.key}"
  description = "${each.value.engine} from the ${var.clients} only"
  vpc_id      = var.vpc_id

  ingress {
    description     = var.rule_descriptions ? each.value.rule : null
    from_port       = each.value.port
    to_port         = each.value.port
    protocol        = "tcp"
    security_groups = [var.client_security_group_id]
  }
}
