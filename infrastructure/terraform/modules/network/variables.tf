variable "name" {
  description = "Prefix of every Name tag (the primary's cluster name, or it with -dr)."
  type        = string
}

variable "vpc_cidr" {
  description = "VPC range; subnets are carved from it (public /24s, private /20s, database /24s from .200)."
  type        = string
}

variable "private_subnet_tags" {
  description = "Extra tags on the private subnets (the primary adds kubernetes.io/cluster/<name> = shared)."
  type        = map(string)
  default     = {}
}

variable "name_gateways_and_routes" {
  description = "Name-tag the internet/NAT gateways, their EIPs and the route tables (the DR root does not)."
  type        = bool
  default     = true
}
