# Standby EKS cluster: same shape as the primary, scaled down (3 nodes) until a failover
# scales it up. The node group keeps the 3..20 bounds.

module "eks" {
  source             = "../terraform/modules/eks"
  name               = local.name
  kubernetes_version = var.kubernetes_version
  kms_key_arn        = aws_kms_key.main.arn
  subnet_ids         = module.network.private_subnet_ids
  cluster_log_types  = ["api", "audit", "authenticator"]
  node_policy_arns = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
  ]
  node_instance_types = var.node_instance_types
  node_min_size       = var.node_min_size
  # Failover scales the group up; Terraform must not scale it back down (desired_size is ignored).
  node_desired_size = var.node_min_size
  node_max_size     = var.node_max_size
}
