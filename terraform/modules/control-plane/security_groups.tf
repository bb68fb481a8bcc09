# Agents reach the control plane only through its NLB, and only from the
# agents' security groups; the instances admit nothing but the NLB.

resource "aws_security_group" "control_plane" {
  name        = "${var.name}-control-plane"
  description = "Weir control plane: gRPC and health checks from its NLB only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane" })
}

resource "aws_security_group" "nlb" {
  name        = "${var.name}-control-plane-nlb"
  description = "Weir control plane NLB: gRPC from the agents only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-control-plane-nlb" })
}

# --- NLB ---

resource "aws_vpc_security_group_ingress_rule" "nlb_from_agents" {
  for_each = local.agent_security_group_ids

  security_group_id            = aws_security_group.nlb.id
  description                  = "Control-plane gRPC from Weir agents"
  ip_protocol                  = "tcp"
  from_port                    = local.listener_port
  to_port                      = local.listener_port
  referenced_security_group_id = each.value
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_control_plane" {
  for_each = toset([tostring(var.grpc_port), tostring(var.http_port)])

  security_group_id            = aws_security_group.nlb.id
  description                  = "gRPC and health checks to the control plane"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.control_plane.id
  tags                         = local.tags
}

# --- instances ---

resource "aws_vpc_security_group_ingress_rule" "control_plane_from_nlb" {
  for_each = toset([tostring(var.grpc_port), tostring(var.http_port)])

  security_group_id            = aws_security_group.control_plane.id
  description                  = "gRPC and health checks from the control plane NLB"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.nlb.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "control_plane_https" {
  for_each = local.egress_cidr_blocks

  security_group_id = aws_security_group.control_plane.id
  description       = "HTTPS to Secrets Manager and CloudWatch Logs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "control_plane_foundationdb" {
  for_each = local.foundationdb_cidr_blocks

  security_group_id = aws_security_group.control_plane.id
  description       = "FoundationDB cluster"
  ip_protocol       = "tcp"
  from_port         = var.foundationdb_port_range.from
  to_port           = var.foundationdb_port_range.to
  cidr_ipv4         = each.value
  tags              = local.tags
}
