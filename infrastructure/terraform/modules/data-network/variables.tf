variable "name" {
  description = "Prefix of the subnet groups and security groups."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "The database subnets (no route to the internet)."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "The only security group admitted (the EKS cluster security group)."
  type        = string
}

variable "clients" {
  description = "Who the clients are, in the security group descriptions (\"EKS nodes\")."
  type        = string
}

variable "rule_descriptions" {
  description = "Describe the ingress rules."
  type        = bool
  default     = false
}
