# Weir agents in the customer's VPC: one launch template, then per zone one
# autoscaling group and one internal NLB, so that a client's bytes never cross a
# zone. Agents dial out to the control plane; nothing connects into this VPC
# from outside.

data "aws_partition" "current" {}

# The subnet map is keyed by zone; check that each subnet really is in that
# zone and in the given VPC, so that a typo cannot put two "zones" in one AZ.
data "aws_subnet" "agents" {
  for_each = var.subnet_ids

  id = each.value

  lifecycle {
    postcondition {
      condition     = contains([self.availability_zone, self.availability_zone_id], each.key)
      error_message = "subnet_ids[\"${each.key}\"] is in availability zone ${self.availability_zone} (${self.availability_zone_id}), not ${each.key}."
    }
    postcondition {
      condition     = self.vpc_id == var.vpc_id
      error_message = "subnet_ids[\"${each.key}\"] is not in vpc_id."
    }
  }
}

# Read for the root device name, so the launch template encrypts the real root
# volume whatever the AMI's layout.
data "aws_ami" "agent" {
  filter {
    name   = "image-id"
    values = [var.ami_id]
  }
}

locals {
  tags = merge(var.tags, { "weir:component" = "agent" })

  bucket_arn  = "arn:${data.aws_partition.current.partition}:s3:::${var.bucket_name}"
  bucket_url  = "s3://${var.bucket_name}/${var.bucket_prefix}"
  binary_path = var.weir_binary == null ? null : regex("^s3://([^/]+)/(.+)$", var.weir_binary.s3_uri)

  # The agents open connections to the control plane on this port. It may be
  # unknown until apply (the URL of a control plane created alongside), so it is
  # only ever a value of a rule, never part of a for_each key.
  control_plane_url_parts = regex("^(https?)://[^/:]+(?::([0-9]+))?", var.control_plane_url)
  control_plane_port      = local.control_plane_url_parts[1] != null ? tonumber(local.control_plane_url_parts[1]) : (local.control_plane_url_parts[0] == "https" ? 443 : 80)

  # Indexed maps, so for_each keys are known at plan time even when the values are not.
  allowed_cidr_blocks        = { for i, cidr in var.allowed_cidr_blocks : tostring(i) => cidr }
  allowed_security_group_ids = { for i, id in var.allowed_security_group_ids : tostring(i) => id }
  egress_cidr_blocks         = { for i, cidr in var.egress_cidr_blocks : tostring(i) => cidr }
}

resource "aws_cloudwatch_log_group" "agent" {
  name              = "/weir/${var.name}/agent"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = local.tags
}
