# null on an optional argument leaves it unset, exactly as a root that never wrote it.

variable "name" {
  description = "Prefix of the ALB, its security group and the target groups."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  description = "Where the ALB may send traffic (the pods)."
  type        = string
}

variable "public_subnet_ids" {
  type = list(string)
}

variable "domain_name" {
  description = "Certificate for the domain and *.domain."
  type        = string
}

variable "validation_zone_id" {
  description = "Route53 zone for the certificate's DNS validation (null: not validated here)."
  type        = string
  default     = null
}

variable "security_group_description" {
  type = string
}

variable "rule_descriptions" {
  description = "Describe the ingress and egress rules of the security group."
  type        = bool
  default     = false
}

variable "internal" {
  type    = bool
  default = null
}

variable "idle_timeout" {
  type    = number
  default = null
}

variable "deregistration_delay" {
  type    = number
  default = null
}

variable "health_check" {
  description = "Target group health check beyond path /healthz and matcher 200 (unset fields: AWS defaults)."
  type = object({
    port                = optional(string)
    interval            = optional(number)
    timeout             = optional(number)
    healthy_threshold   = optional(number)
    unhealthy_threshold = optional(number)
  })
  default = {}
}

variable "pool_tags" {
  description = "Tag each target group with Pool = blue|green."
  type        = bool
  default     = false
}

variable "explicit_stickiness_off" {
  description = "Write stickiness { enabled = false } in the forward action (off either way)."
  type        = bool
  default     = false
}

variable "preview_port" {
  description = "Port of the preview listener (blue-green's preview route); not 443."
  type        = number
  default     = 8443
  validation {
    condition     = var.preview_port != 443
    error_message = "The preview listener needs its own port (443 is the users' listener)."
  }
}

variable "preview_cidr_blocks" {
  description = "Who may reach the preview listener (the engine's egress, testers); never the whole internet."
  type        = list(string)
  validation {
    condition     = length(var.preview_cidr_blocks) > 0 && alltrue([for c in var.preview_cidr_blocks : !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "preview_cidr_blocks must name at least one network and not 0.0.0.0/0 or ::/0: the preview route serves an unreleased version."
  }
}
