# Standby ALB with the same blue/green pools, and the SECONDARY half of the failover record.

module "alb" {
  source                     = "../terraform/modules/alb"
  name                       = local.name
  vpc_id                     = module.network.vpc_id
  vpc_cidr                   = var.vpc_cidr
  public_subnet_ids          = module.network.public_subnet_ids
  domain_name                = var.domain_name
  security_group_description = "Public HTTPS to the DR ALB"
  # The engine runs in this region's cluster and reaches the public ALB through the NAT gateways.
  preview_cidr_blocks = concat([for ip in module.network.nat_public_ips : "${ip}/32"], var.preview_allowed_cidrs)
}

# Blue-green's preview route by a name the ALB's certificate covers (*.domain_name): output alb_preview_url.
resource "aws_route53_record" "preview" {
  zone_id = local.primary.route53_zone_id
  name    = "${var.preview_subdomain}.${var.domain_name}"
  type    = "A"

  alias {
    name                   = module.alb.dns_name
    zone_id                = module.alb.zone_id
    evaluate_target_health = false
  }
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

  # A DR failover (activities/global_entry/route53.py) UPSERTs this record as PRIMARY and the
  # other region's as SECONDARY; applying this root afterwards must not flip users back. The alias
  # and health check it writes are this root's outputs (deploy-code.yaml dr.aws), so those stay
  # Terraform's: a mismatch there is a configuration error that the next apply corrects.
  lifecycle {
    ignore_changes = [failover_routing_policy]
  }
}
