# Inputs of the secondary-region (DR) root. secondary.tfvars holds the production values.

variable "environment" {
  type    = string
  default = "production"
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "cluster_name" {
  description = "Primary cluster name; the DR resources add a -dr suffix."
  type        = string
  default     = "claude-deployment-prod"
}

variable "kubernetes_version" {
  type    = string
  default = "1.32"
}

variable "vpc_cidr" {
  description = "Must not overlap the primary VPC (peering / restore tooling)."
  type        = string
  default     = "10.1.0.0/16"
}

variable "node_instance_types" {
  type    = list(string)
  default = ["m6i.2xlarge"]
}

variable "node_min_size" {
  type    = number
  default = 3
}

variable "node_max_size" {
  type    = number
  default = 20
}

variable "db_instance_class" {
  type    = string
  default = "db.r6g.xlarge"
}

variable "db_backup_retention_days" {
  type    = number
  default = 7
}

variable "redis_engine_version" {
  type    = string
  default = "7.1"
}

variable "redis_node_type" {
  type    = string
  default = "cache.r6g.large"
}

variable "domain_name" {
  type    = string
  default = "claude-deployment.com"
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
  default     = "preview-api-origin-dr"
}
