# State moves of the primary root's resources that now live in the shared modules (./modules).
# Terraform applies them at the next plan/apply, before anything else, so the VPC, EKS, ALB and
# data-store resources keep their remote objects: no destroy, no re-create. Keep the blocks until
# every state that had the old addresses (production and DR) has been applied with them.

# --- module.network ---

moved {
  from = aws_vpc.main
  to   = module.network.aws_vpc.main
}

moved {
  from = aws_subnet.public
  to   = module.network.aws_subnet.public
}

moved {
  from = aws_subnet.private
  to   = module.network.aws_subnet.private
}

moved {
  from = aws_subnet.database
  to   = module.network.aws_subnet.database
}

moved {
  from = aws_internet_gateway.main
  to   = module.network.aws_internet_gateway.main
}

moved {
  from = aws_eip.nat
  to   = module.network.aws_eip.nat
}

moved {
  from = aws_nat_gateway.main
  to   = module.network.aws_nat_gateway.main
}

moved {
  from = aws_route_table.public
  to   = module.network.aws_route_table.public
}

moved {
  from = aws_route_table_association.public
  to   = module.network.aws_route_table_association.public
}

moved {
  from = aws_route_table.private
  to   = module.network.aws_route_table.private
}

moved {
  from = aws_route_table_association.private
  to   = module.network.aws_route_table_association.private
}

moved {
  from = aws_route_table.database
  to   = module.network.aws_route_table.database
}

moved {
  from = aws_route_table_association.database
  to   = module.network.aws_route_table_association.database
}

# --- module.eks ---

moved {
  from = aws_cloudwatch_log_group.eks
  to   = module.eks.aws_cloudwatch_log_group.eks
}

moved {
  from = aws_iam_role.eks_cluster
  to   = module.eks.aws_iam_role.eks_cluster
}

moved {
  from = aws_iam_role_policy_attachment.eks_cluster
  to   = module.eks.aws_iam_role_policy_attachment.eks_cluster
}

moved {
  from = aws_eks_cluster.main
  to   = module.eks.aws_eks_cluster.main
}

moved {
  from = aws_iam_role.eks_nodes
  to   = module.eks.aws_iam_role.eks_nodes
}

moved {
  from = aws_iam_role_policy_attachment.eks_nodes
  to   = module.eks.aws_iam_role_policy_attachment.eks_nodes
}

moved {
  from = aws_launch_template.nodes
  to   = module.eks.aws_launch_template.nodes
}

moved {
  from = aws_eks_node_group.general
  to   = module.eks.aws_eks_node_group.general
}

moved {
  from = aws_eks_addon.this
  to   = module.eks.aws_eks_addon.this
}

# --- module.alb ---

moved {
  from = aws_security_group.alb
  to   = module.alb.aws_security_group.alb
}

moved {
  from = aws_lb.main
  to   = module.alb.aws_lb.main
}

moved {
  from = aws_acm_certificate.alb
  to   = module.alb.aws_acm_certificate.alb
}

moved {
  from = aws_lb_target_group.pool
  to   = module.alb.aws_lb_target_group.pool
}

moved {
  from = aws_lb_listener.https
  to   = module.alb.aws_lb_listener.https
}

moved {
  from = aws_route53_record.alb_cert_validation
  to   = module.alb.aws_route53_record.alb_cert_validation
}

moved {
  from = aws_acm_certificate_validation.alb
  to   = module.alb.aws_acm_certificate_validation.alb[0]
}

# --- module.data_network ---

moved {
  from = aws_db_subnet_group.main
  to   = module.data_network.aws_db_subnet_group.main
}

moved {
  from = aws_elasticache_subnet_group.main
  to   = module.data_network.aws_elasticache_subnet_group.main
}

moved {
  from = aws_security_group.database
  to   = module.data_network.aws_security_group.store["database"]
}

moved {
  from = aws_security_group.redis
  to   = module.data_network.aws_security_group.store["redis"]
}

# --- module.db_parameters ---

moved {
  from = aws_db_parameter_group.postgres15
  to   = module.db_parameters.aws_db_parameter_group.this
}
