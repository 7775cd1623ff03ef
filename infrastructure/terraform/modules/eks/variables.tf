# null on an optional argument leaves it unset, exactly as a root that never wrote it.

variable "name" {
  description = "Cluster name, also the prefix of the roles, log group and launch template."
  type        = string
}

variable "kubernetes_version" {
  type = string
}

variable "kms_key_arn" {
  description = "Region key: secrets encryption, control-plane logs, node volumes."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the control plane ENIs and the nodes."
  type        = list(string)
}

variable "cluster_security_group_ids" {
  description = "Extra security groups on the control plane (null: only the one EKS creates)."
  type        = list(string)
  default     = null
}

variable "cluster_log_types" {
  type = list(string)
}

variable "authentication_mode" {
  description = "access_config.authentication_mode (null: no access_config block)."
  type        = string
  default     = null
}

variable "node_policy_arns" {
  description = "Managed policies attached to the node role."
  type        = list(string)
}

variable "node_volume_delete_on_termination" {
  type    = bool
  default = null
}

variable "node_instance_types" {
  type = list(string)
}

variable "node_capacity_type" {
  type    = string
  default = null
}

variable "node_min_size" {
  type = number
}

variable "node_desired_size" {
  description = "Only used at creation: desired_size is ignored afterwards."
  type        = number
}

variable "node_max_size" {
  type = number
}

variable "node_max_unavailable_percentage" {
  description = "update_config.max_unavailable_percentage (null: no update_config block)."
  type        = number
  default     = null
}

variable "addons" {
  description = "EKS add-ons installed after the node group exists."
  type        = list(string)
  default     = []
}
