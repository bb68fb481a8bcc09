# Agents and their bucket in your account, with the control plane hosted by a
# vendor: the agents dial out to it over HTTPS; nothing connects in, and the
# vendor never holds credentials for the bucket.

provider "aws" {
  region = var.region
}

module "bucket" {
  source = "../../modules/bucket"

  bucket_name = var.bucket_name
  tags        = var.tags
}

module "agents" {
  source = "../../modules/agents"

  name                           = var.name
  vpc_id                         = var.vpc_id
  subnet_ids                     = var.subnet_ids
  ami_id                         = var.ami_id
  instance_type                  = var.instance_type
  bucket_name                    = module.bucket.bucket_name
  control_plane_url              = var.control_plane_url
  control_plane_token_secret_arn = var.control_plane_token_secret_arn
  allowed_cidr_blocks            = var.client_cidr_blocks
  allowed_security_group_ids     = var.client_security_group_ids
  tags                           = var.tags
}
