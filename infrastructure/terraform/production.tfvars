# Example production values: terraform plan -var-file=production.tfvars
environment      = "production"
region           = "us-west-2"
secondary_region = "us-east-1"
cluster_name     = "claude-deployment-prod"
namespace        = "claude-deployment-prod"

kubernetes_version  = "1.32"
vpc_cidr            = "10.0.0.0/16"
node_instance_types = ["m6i.2xlarge", "m6a.2xlarge"]
node_min_size       = 3
node_desired_size   = 6
node_max_size       = 20

db_engine_version        = "15.8"
db_instance_class        = "db.r6g.xlarge"
db_allocated_storage     = 200
db_max_allocated_storage = 1000
db_backup_retention_days = 14

redis_engine_version          = "7.1"
redis_node_type               = "cache.r6g.large"
redis_shards                  = 3
redis_replicas_per_shard      = 1
redis_snapshot_retention_days = 7

domain_name           = "claude-deployment.com"
api_origin_subdomain  = "api-origin"
public_subdomain      = "api"
waf_rate_limit_per_5m = 2000
alert_emails          = ["platform-oncall@claude-deployment.com"]
