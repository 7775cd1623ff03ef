variable "name" {
  description = "Name of the parameter group (\"<prefix>-postgres15\")."
  type        = string
}

variable "family" {
  description = "Parameter group family; must match the instance's engine version."
  type        = string
  default     = "postgres15"
}
