output "cluster_name" {
  value = aws_eks_cluster.main.name
}

output "cluster_security_group_id" {
  description = "The security group EKS creates for the cluster and its managed nodes."
  value       = aws_eks_cluster.main.vpc_config[0].cluster_security_group_id
}

output "oidc_issuer_url" {
  value = aws_eks_cluster.main.identity[0].oidc[0].issuer
}
