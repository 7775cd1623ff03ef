# One region's public ALB with the blue and green pools. The engine shifts traffic by rewriting
# the HTTPS listener's weighted forward action; Terraform creates it once (blue 100 / green 0)
# and then leaves the weights alone. A second HTTPS listener on its own port (preview_port, not
# open to the world) is blue-green's preview route (aws.preview_listener_arn): the engine points
# it at the pool being previewed, or a fixed 503 while nothing is. Both roots call it; the
# failover DNS records that point at it stay in the roots (PRIMARY in ../terraform, SECONDARY in
# ../terraform-secondary).

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = var.security_group_description
  vpc_id      = var.vpc_id

  ingress {
    description = var.rule_descriptions ? "HTTPS from CloudFront and clients" : null
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  ingress {
    description = var.rule_descriptions ? "Preview listener: testers and the engine only" : null
    from_port   = var.preview_port
    to_port     = var.preview_port
    protocol    = "tcp"
    cidr_blocks = var.preview_cidr_blocks
  }

  egress {
    description = var.rule_descriptions ? "To pods in the VPC" : null
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }
}

resource "aws_lb" "main" {
  name                       = "${var.name}-alb"
  load_balancer_type         = "application"
  internal                   = var.internal
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  enable_deletion_protection = true
  drop_invalid_header_fields = true
  idle_timeout               = var.idle_timeout
}

resource "aws_acm_certificate" "alb" {
  domain_name               = var.domain_name
  subject_alternative_names = ["*.${var.domain_name}"]
  validation_method         = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

# DNS validation of the certificate, when the zone is given (the primary root does it).
resource "aws_route53_record" "alb_cert_validation" {
  # A conditional rather than a for-filter: with no zone the set is empty even when the
  # certificate's validation options are not known yet (a first apply of the DR root).
  for_each = var.validation_zone_id == null ? {} : {
    for o in aws_acm_certificate.alb.domain_validation_options : o.domain_name => o
  }
  zone_id         = var.validation_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "alb" {
  count                   = var.validation_zone_id == null ? 0 : 1
  certificate_arn         = aws_acm_certificate.alb.arn
  validation_record_fqdns = [for r in aws_route53_record.alb_cert_validation : r.fqdn]
}

# Pods register by IP (AWS Load Balancer Controller TargetGroupBinding): blue and green pools.
resource "aws_lb_target_group" "pool" {
  for_each             = toset(["blue", "green"])
  name                 = "${var.name}-${each.key}"
  port                 = 8080
  protocol             = "HTTP"
  target_type          = "ip"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay

  health_check {
    path                = "/healthz"
    port                = var.health_check.port
    matcher             = "200"
    interval            = var.health_check.interval
    timeout             = var.health_check.timeout
    healthy_threshold   = var.health_check.healthy_threshold
    unhealthy_threshold = var.health_check.unhealthy_threshold
  }

  tags = var.pool_tags ? { Pool = each.key } : null
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.validation_zone_id == null ? aws_acm_certificate.alb.arn : aws_acm_certificate_validation.alb[0].certificate_arn

  default_action {
    type = "forward"
    forward {
      target_group {
        arn    = aws_lb_target_group.pool["blue"].arn
        weight = 100
      }
      target_group {
        arn    = aws_lb_target_group.pool["green"].arn
        weight = 0
      }
      dynamic "stickiness" {
        for_each = var.explicit_stickiness_off ? [1] : []
        content {
          enabled  = false
          duration = 1
        }
      }
    }
  }

  # The deployment engine owns the weights after creation.
  lifecycle {
    ignore_changes = [default_action]
  }
}

# Blue-green's preview route: same certificate and TLS policy as the users' listener, on its own
# port. Created forwarding to green (the idle pool: the users' listener starts blue 100 / green 0);
# from the first blue-green release on the engine owns the action (a forward to the previewed
# pool's target group, or a fixed 503), so Terraform does not put it back.
resource "aws_lb_listener" "preview" {
  load_balancer_arn = aws_lb.main.arn
  port              = var.preview_port
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.validation_zone_id == null ? aws_acm_certificate.alb.arn : aws_acm_certificate_validation.alb[0].certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.pool["green"].arn
  }

  # The deployment engine rewrites the action for every blue-green release.
  lifecycle {
    ignore_changes = [default_action]
  }
}
