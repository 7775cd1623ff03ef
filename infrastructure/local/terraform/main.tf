# The local environment's infrastructure, as Terraform sees it: built-in resources only
# (no provider can be downloaded here). State lives in the platform's state dir; the
# release pipeline inits with -backend-config=path=STATE/terraform/terraform.tfstate.
terraform {
  required_version = ">= 1.4"
  backend "local" {}
}

variable "environment" {
  type    = string
  default = "local"
}

variable "instances" {
  type    = number
  default = 3
}

variable "cache_size_mb" {
  type    = number
  default = 64
}

variable "redis_maxmemory_mb" {
  type    = number
  default = 128
}

resource "terraform_data" "service" {
  input = {
    environment = var.environment
    instances   = var.instances
  }
}

resource "terraform_data" "cache" {
  input = {
    environment        = var.environment
    cache_size_mb      = var.cache_size_mb
    redis_maxmemory_mb = var.redis_maxmemory_mb
  }
}

output "service" {
  value = terraform_data.service.output
}

output "cache" {
  value = terraform_data.cache.output
}
