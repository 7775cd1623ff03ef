# Secondary (DR) region, us-east-1: a warm standby of the primary stack in ../terraform.
# Separate root and state, so it can be planned and applied while the primary region is down.
# It reads the primary's outputs from remote state only to create the replica and the
# SECONDARY DNS record; both are already in place when a failover starts. The network, EKS, ALB
# and data-store access are the primary root's modules (../terraform/modules), called with the
# settings of this region.

terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }

  # State lives in the DR region so that it is reachable when us-west-2 is not.
  backend "s3" {
    bucket         = "claude-deployment-terraform-state-dr"
    key            = "production/secondary.tfstate"
    region         = "us-east-1"
    encrypt        = true
    dynamodb_table = "claude-deployment-terraform-locks-dr"
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

data "terraform_remote_state" "primary" {
  backend = "s3"
  config = {
    bucket = "claude-deployment-terraform-state"
    key    = "production/primary.tfstate"
    region = "us-west-2"
  }
}

data "aws_caller_identity" "current" {}

locals {
  name    = "${var.cluster_name}-dr"
  primary = data.terraform_remote_state.primary.outputs

  tags = {
    Project     = "claude-deployment"
    Environment = var.environment
    ManagedBy   = "terraform"
    Region      = "secondary"
  }
}

resource "aws_kms_key" "main" {
  description             = "${local.name} encryption at rest (DR region)"
  deletion_window_in_days = 30
  enable_key_rotation     = true
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}

module "network" {
  source                   = "../terraform/modules/network"
  name                     = local.name
  vpc_cidr                 = var.vpc_cidr
  name_gateways_and_routes = false
}
