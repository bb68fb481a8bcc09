# A self-hosted Weir control plane: an autoscaling group of at least two
# instances across zones behind an internal NLB, in front of an existing
# FoundationDB cluster. It holds no bucket credentials and never sees record
# bytes; agents dial in to it from their own security group only.

data "aws_partition" "current" {}

data "aws_subnet" "control_plane" {
  # Keyed by position, so the keys are known even when the IDs are not.
  for_each = { for i, id in var.subnet_ids : tostring(i) => id }

  id = each.value

  lifecycle {
    postcondition {
      condition     = self.vpc_id == var.vpc_id
      error_message = "Subnet ${self.id} is not in vpc_id."
    }
  }
}

# Read for the root device name, so the launch template encrypts the real root
# volume whatever the AMI's layout.
data "aws_ami" "control_plane" {
  filter {
    name   = "image-id"
    values = [var.ami_id]
  }
}

locals {
  tags = merge(var.tags, { "weir:component" = "control-plane" })

  zones         = distinct([for subnet in data.aws_subnet.control_plane : subnet.availability_zone])
  listener_port = var.tls == null ? var.grpc_port : 443
  endpoint      = var.tls == null ? "http://${aws_lb.control_plane.dns_name}:${var.grpc_port}" : "https://${var.tls.domain_name}"
  binary_path   = var.weir_binary == null ? null : regex("^s3://([^/]+)/(.+)$", var.weir_binary.s3_uri)

  # Indexed maps, so for_each keys are known at plan time even when the IDs are not.
  agent_security_group_ids = { for i, id in var.agent_security_group_ids : tostring(i) => id }
  egress_cidr_blocks       = { for i, cidr in var.egress_cidr_blocks : tostring(i) => cidr }
  foundationdb_cidr_blocks = { for i, cidr in var.foundationdb_cidr_blocks : tostring(i) => cidr }
}

resource "aws_cloudwatch_log_group" "control_plane" {
  name              = "/weir/${var.name}/control-plane"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = local.tags
}
