# EKS cluster, its node group (3 to 20 nodes over 3 AZs) and add-ons (modules/eks), the control plane's
# security group, IRSA roles and the ECR repositories.

resource "aws_security_group" "eks_cluster" {
  name        = "${var.cluster_name}-cluster"
  description = "EKS control plane: HTTPS from inside the VPC only"
  vpc_id      = module.network.vpc_id

  ingress {
    description = "Kubernetes API from nodes and the VPN"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

module "eks" {
  source                     = "./modules/eks"
  name                       = var.cluster_name
  kubernetes_version         = var.kubernetes_version
  kms_key_arn                = aws_kms_key.main.arn
  subnet_ids                 = module.network.private_subnet_ids
  cluster_security_group_ids = [aws_security_group.eks_cluster.id]
  cluster_log_types          = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  authentication_mode        = "API"
  node_policy_arns = [
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
  ]
  node_volume_delete_on_termination = true
  node_instance_types               = var.node_instance_types
  node_capacity_type                = "ON_DEMAND"
  node_min_size                     = var.node_min_size
  # The cluster autoscaler owns desired_size once the group exists.
  node_desired_size               = var.node_desired_size
  node_max_size                   = var.node_max_size
  node_max_unavailable_percentage = 33
  addons                          = ["vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent"]
}

# --- IRSA: one role per Kubernetes service account (k8s/production/namespace.yaml) ---

data "tls_certificate" "eks" {
  url = module.eks.oidc_issuer_url
}

resource "aws_iam_openid_connect_provider" "eks" {
  url             = module.eks.oidc_issuer_url
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = [data.tls_certificate.eks.certificates[0].sha1_fingerprint]
}

locals {
  oidc_issuer = replace(module.eks.oidc_issuer_url, "https://", "")
  service_accounts = {
    api              = "claude-deployment-api"
    worker           = "claude-deployment-worker"
    deploy-engine    = "deploy-engine-worker"
    external-secrets = "external-secrets"
  }
}

resource "aws_iam_role" "irsa" {
  for_each = local.service_accounts
  name     = "${var.cluster_name}-${each.key}"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.eks.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_issuer}:sub" = "system:serviceaccount:${var.namespace}:${each.value}"
          "${local.oidc_issuer}:aud" = "sts.amazonaws.com"
        }
      }
    }]
  })
}

# What the deployment engine's AWS providers do: shift ALB weights, flip Route53 failover,
# promote the DR replica, promote images between ECR repositories, read CloudWatch.
resource "aws_iam_role_policy" "deploy_engine" {
  name = "deploy-engine"
  role = aws_iam_role.irsa["deploy-engine"].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:ModifyRule", "elasticloadbalancing:Describe*"]
        Resource = "*"
      },
      {
        Effect   = "Allow"
        Action   = ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets", "route53:GetChange", "route53:GetHealthCheckStatus"]
        Resource = ["arn:aws:route53:::hostedzone/${data.aws_route53_zone.main.zone_id}", "arn:aws:route53:::change/*", "arn:aws:route53:::healthcheck/*"]
      },
      {
        Effect   = "Allow"
        Action   = ["rds:PromoteReadReplica", "rds:DescribeDBInstances", "rds:RebootDBInstance"]
        Resource = "*"
      },
      {
        Effect = "Allow"
        Action = [
          "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages", "ecr:PutImage",
          "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
        ]
        Resource = [aws_ecr_repository.ci.arn, aws_ecr_repository.prod.arn]
      },
      {
        Effect   = "Allow"
        Action   = ["ecr:GetAuthorizationToken", "eks:DescribeCluster", "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms"]
        Resource = "*"
      }
    ]
  })
}

resource "aws_iam_role_policy" "external_secrets" {
  name = "read-app-secrets"
  role = aws_iam_role.irsa["external-secrets"].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Resource = "arn:aws:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}:secret:claude-deployment/prod/*"
      },
      {
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Resource = [aws_db_instance.primary.master_user_secret[0].secret_arn, aws_secretsmanager_secret.redis_auth.arn]
      },
      {
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = aws_kms_key.main.arn
      }
    ]
  })
}

# --- Container images: CI pushes to the ci repository, the engine promotes to prod ---

resource "aws_ecr_repository" "ci" {
  name                 = "claude-deployment/ci"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_repository" "prod" {
  name                 = "claude-deployment/prod"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

# The engine's own Temporal worker image (k8s/production/deployments.yaml: deploy-engine-worker).
resource "aws_ecr_repository" "engine" {
  name                 = "deploy-engine"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "ci" {
  repository = aws_ecr_repository.ci.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 200 CI images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 200 }
      action       = { type = "expire" }
    }]
  })
}

# Production images are pulled by the DR region too.
resource "aws_ecr_replication_configuration" "prod" {
  replication_configuration {
    rule {
      destination {
        region      = var.secondary_region
        registry_id = data.aws_caller_identity.current.account_id
      }
      repository_filter {
        filter      = "claude-deployment/prod"
        filter_type = "PREFIX_MATCH"
      }
    }
  }
}
