# Edge: CloudFront + WAF (OWASP managed rules) -> Route53 failover record -> ALB -> blue/green target groups.
# The ALB, its pools and the listener whose weights the engine rewrites are modules/alb (shared with
# the DR root); the PRIMARY failover record, CloudFront and WAF are this region's own.

data "aws_route53_zone" "main" {
  name         = var.domain_name
  private_zone = false
}

module "alb" {
  source                     = "./modules/alb"
  name                       = local.name
  vpc_id                     = module.network.vpc_id
  vpc_cidr                   = var.vpc_cidr
  public_subnet_ids          = module.network.public_subnet_ids
  domain_name                = var.domain_name
  validation_zone_id         = data.aws_route53_zone.main.zone_id
  security_group_description = "Public HTTPS to the ALB; nothing else"
  rule_descriptions          = true
  internal                   = false
  idle_timeout               = 60
  deregistration_delay       = 30
  health_check = {
    port                = "traffic-port"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }
  pool_tags               = true
  explicit_stickiness_off = true
  # The engine runs in this region's cluster and reaches the public ALB through the NAT gateways.
  preview_cidr_blocks = concat([for ip in module.network.nat_public_ips : "${ip}/32"], var.preview_allowed_cidrs)
}

# Blue-green's preview route by a name the ALB's certificate covers (*.domain_name); the engine's
# aws.preview_url is output alb_preview_url.
resource "aws_route53_record" "preview" {
  zone_id = data.aws_route53_zone.main.zone_id
  name    = "${var.preview_subdomain}.${var.domain_name}"
  type    = "A"

  alias {
    name                   = module.alb.dns_name
    zone_id                = module.alb.zone_id
    evaluate_target_health = false
  }
}

# --- DNS: the origin record the engine fails over (PRIMARY here, SECONDARY in terraform-secondary) ---

resource "aws_route53_health_check" "primary" {
  fqdn              = module.alb.dns_name
  port              = 443
  type              = "HTTPS"
  resource_path     = "/healthz"
  failure_threshold = 3
  request_interval  = 30
  measure_latency   = true
  regions           = ["us-west-1", "us-east-1", "eu-west-1"]
}

resource "aws_route53_record" "api_primary" {
  zone_id         = data.aws_route53_zone.main.zone_id
  name            = local.api_record_name
  type            = "A"
  set_identifier  = "primary"
  health_check_id = aws_route53_health_check.primary.id

  failover_routing_policy {
    type = "PRIMARY"
  }

  alias {
    name                   = module.alb.dns_name
    zone_id                = module.alb.zone_id
    evaluate_target_health = true
  }

  # A DR failover (activities/global_entry/route53.py) UPSERTs this record as SECONDARY and the
  # other region's as PRIMARY; applying this root afterwards must not flip users back. The alias
  # and health check it writes are this root's outputs (deploy-code.yaml dr.aws), so those stay
  # Terraform's: a mismatch there is a configuration error that the next apply corrects.
  lifecycle {
    ignore_changes = [failover_routing_policy]
  }
}

locals {
  api_record_name = "${var.api_origin_subdomain}.${var.domain_name}"
  public_hostname = "${var.public_subdomain}.${var.domain_name}"
}

# --- CloudFront + WAF (both global, managed from us-east-1) ---

resource "aws_acm_certificate" "cloudfront" {
  provider          = aws.us_east_1
  domain_name       = local.public_hostname
  validation_method = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "cloudfront_cert_validation" {
  for_each = {
    for o in aws_acm_certificate.cloudfront.domain_validation_options : o.domain_name => o
  }
  zone_id         = data.aws_route53_zone.main.zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "cloudfront" {
  provider                = aws.us_east_1
  certificate_arn         = aws_acm_certificate.cloudfront.arn
  validation_record_fqdns = [for r in aws_route53_record.cloudfront_cert_validation : r.fqdn]
}

resource "aws_wafv2_web_acl" "cloudfront" {
  provider    = aws.us_east_1
  name        = "${local.name}-edge"
  description = "OWASP Top 10 managed rules and rate limiting in front of the API"
  scope       = "CLOUDFRONT"

  default_action {
    allow {}
  }

  dynamic "rule" {
    for_each = {
      AWSManagedRulesCommonRuleSet          = 10
      AWSManagedRulesKnownBadInputsRuleSet  = 20
      AWSManagedRulesSQLiRuleSet            = 30
      AWSManagedRulesAmazonIpReputationList = 40
    }
    content {
      name     = rule.key
      priority = rule.value
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.key
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = rule.key
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "RateLimitPerIP"
    priority = 100
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.waf_rate_limit_per_5m
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "RateLimitPerIP"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${local.name}-edge"
    sampled_requests_enabled   = true
  }
}

resource "aws_cloudfront_distribution" "main" {
  enabled         = true
  is_ipv6_enabled = true
  comment         = "${local.name} API edge"
  aliases         = [local.public_hostname]
  web_acl_id      = aws_wafv2_web_acl.cloudfront.arn
  price_class     = "PriceClass_100"
  http_version    = "http2and3"

  origin {
    origin_id   = "api-origin"
    domain_name = local.api_record_name

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  default_cache_behavior {
    target_origin_id       = "api-origin"
    viewer_protocol_policy = "redirect-to-https"
    allowed_methods        = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods         = ["GET", "HEAD"]
    compress               = true
    # AWS managed policies: CachingDisabled and AllViewerExceptHostHeader.
    cache_policy_id          = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    origin_request_policy_id = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn      = aws_acm_certificate_validation.cloudfront.certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }
}

resource "aws_route53_record" "public" {
  zone_id = data.aws_route53_zone.main.zone_id
  name    = local.public_hostname
  type    = "A"

  alias {
    name                   = aws_cloudfront_distribution.main.domain_name
    zone_id                = aws_cloudfront_distribution.main.hosted_zone_id
    evaluate_target_health = false
  }
}
