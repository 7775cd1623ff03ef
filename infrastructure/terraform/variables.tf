# Inputs of the primary-region root. production.tfvars holds the production values.

variable "environment" {
  description = "Environment name, used in tags."
  type        = string
  default     = "production"
}

variable "region" {
  description = "Primary AWS region."
  type        = string
  default     = "us-west-2"
}

variable "secondary_region" {
  description = "DR region (backups replica, ECR replication; the standby stack is ../terraform-secondary)."
  type        = string
  default     = "us-east-1"
}

variable "cluster_name" {
  description = "EKS cluster name, also the prefix of every resource name."
  type        = string
  default     = "claude-deployment-prod"
}

variable "namespace" {
  description = "Kubernetes namespace of the workloads (IRSA trust)."
  type        = string
  default     = "claude-deployment-prod"
}

variable "kubernetes_version" {
  type    = string
  default = "1.32"
}

variable "vpc_cidr" {
  type    = string
  default = "10.0.0.0/16"
}

variable "node_instance_types" {
  type    = list(string)
  default = ["m6i.2xlarge"]
}

variable "node_min_size" {
  type    = number
  default = 3
  validation {
    condition     = var.node_min_size >= 3
    error_message = "At least one node per availability zone."
  }
}

variable "node_desired_size" {
  type    = number
  default = 6
}

variable "node_max_size" {
  type    = number
  default = 20
  validation {
    condition     = var.node_max_size <= 20
    error_message = "The node group is capped at 20 nodes."
  }
}

variable "db_engine_version" {
  type    = string
  default = "15.8"
  validation {
    condition     = startswith(var.db_engine_version, "15")
    error_message = "PostgreSQL 15 only."
  }
}

variable "db_instance_class" {
  type    = string
  default = "db.r6g.xlarge"
}

variable "db_allocated_storage" {
  type    = number
  default = 200
}

variable "db_max_allocated_storage" {
  type    = number
  default = 1000
}

variable "db_backup_retention_days" {
  type    = number
  default = 14
  validation {
    condition     = var.db_backup_retention_days >= 7
    error_message = "Backups are kept at least 7 days."
  }
}

variable "redis_engine_version" {
  type    = string
  default = "7.1"
}

variable "redis_node_type" {
  type    = string
  default = "cache.r6g.large"
}

variable "redis_shards" {
  type    = number
  default = 3
}

variable "redis_replicas_per_shard" {
  type    = number
  default = 1
}

variable "redis_snapshot_retention_days" {
  type    = number
  default = 7
  validation {
    condition     = var.redis_snapshot_retention_days >= 7
    error_message = "Snapshots are kept at least 7 days."
  }
}

variable "domain_name" {
  description = "Public hosted zone (must already exist in Route53)."
  type        = string
  default     = "claude-deployment.com"
}

variable "api_origin_subdomain" {
  description = "Failover origin record behind CloudFront; the engine's DR workflow flips it."
  type        = string
  default     = "api-origin"
}

variable "public_subdomain" {
  description = "Public API hostname served by CloudFront."
  type        = string
  default     = "api"
}

variable "waf_rate_limit_per_5m" {
  type    = number
  default = 2000
}

variable "alert_emails" {
  type    = list(string)
  default = []
}

variable "preview_allowed_cidrs" {
  description = "Testers' networks allowed on the ALB's preview listener, besides this region's NAT egress (the engine)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.preview_allowed_cidrs : !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "The preview route serves an unreleased version: not to 0.0.0.0/0 or ::/0."
  }
}

variable "preview_subdomain" {
  description = "Name of the preview route ({preview_subdomain}.{domain_name}:8443), covered by the ALB's *.domain certificate."
  type        = string
  default     = "preview-api-origin"
}
