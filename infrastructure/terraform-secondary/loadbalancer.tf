# Standby ALB with the same blue/green pools, and the SECONDARY half of the failover record.

module "alb" {
  source                     = "../terraform/modules/alb"
  name                       = local.name
  vpc_id                     = module.network.vpc_id
  vpc_cidr                   = var.vpc_cidr
  public_subnet_ids          = module.network.public_subnet_ids
  domain_name                = var.domain_name
  security_group_description = "Public HTTPS to the DR ALB"
}

resource "aws_route53_health_check" "secondary" {
  fqdn              = module.alb.dns_name
  port              = 443
  type              = "HTTPS"
  resource_path     = "/healthz"
  failure_threshold = 3
  request_interval  = 30
}

resource "aws_route53_record" "api_secondary" {
  zone_id         = local.primary.route53_zone_id
  name            = local.primary.api_record_name
  type            = "A"
  set_identifier  = "secondary"
  health_check_id = aws_route53_health_check.secondary.id

  failover_routing_policy {
    type = "SECONDARY"
  }

  alias {
    name                   = module.alb.dns_name
    zone_id                = module.alb.zone_id
    evaluate_target_health = true
  }
}
