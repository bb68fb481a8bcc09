# A complete BYOC deployment in one account: the objects bucket, a self-hosted
# control plane in front of an existing FoundationDB cluster, and agents in
# every zone of an existing VPC.

provider "aws" {
  region = var.region
}

module "bucket" {
  source = "../../modules/bucket"

  bucket_name = var.bucket_name
  kms_key_arn = var.kms_key_arn
  tags        = var.tags
}

module "control_plane" {
  source = "../../modules/control-plane"

  name                           = var.name
  vpc_id                         = var.vpc_id
  subnet_ids                     = var.control_plane_subnet_ids
  ami_id                         = var.control_plane_ami_id
  instance_type                  = var.control_plane_instance_type
  fdb_cluster_file               = var.fdb_cluster_file
  foundationdb_cidr_blocks       = var.foundationdb_cidr_blocks
  agent_security_group_ids       = [module.agents.security_group_id]
  control_plane_token_secret_arn = var.control_plane_token_secret_arn
  tags                           = var.tags
}

module "agents" {
  source = "../../modules/agents"

  name                           = var.name
  vpc_id                         = var.vpc_id
  subnet_ids                     = var.agent_subnet_ids
  ami_id                         = var.agent_ami_id
  instance_type                  = var.agent_instance_type
  bucket_name                    = module.bucket.bucket_name
  kms_key_arns                   = var.kms_key_arn == null ? [] : [var.kms_key_arn]
  control_plane_url              = module.control_plane.endpoint
  control_plane_token_secret_arn = var.control_plane_token_secret_arn
  allowed_cidr_blocks            = var.client_cidr_blocks
  allowed_security_group_ids     = var.client_security_group_ids
  tags                           = var.tags
}
