# Three security groups: one on the agents, one on the NLBs, and one more on
# the agents holding only the egress to the control plane. Kafka clients reach
# the Kafka port on the agents and on the NLBs (a client bootstraps through its
# zone's NLB, then connects to the agents' advertised private addresses
# directly). The HTTP port is internal: peers of the same cluster fetch cached
# blocks over it and the NLBs health-check it.

resource "aws_security_group" "agent" {
  name        = "${var.name}-agent"
  description = "Weir agents: Kafka from allowed clients, HTTP from peers and the NLBs"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-agent" })

  lifecycle {
    precondition {
      condition     = length(var.allowed_cidr_blocks) + length(var.allowed_security_group_ids) > 0
      error_message = "Give allowed_cidr_blocks or allowed_security_group_ids: no Kafka client could reach the agents."
    }
  }
}

# The control plane's port is known only from its URL, possibly not before
# apply, and may be 443: a group of its own keeps its rule from ever
# duplicating the HTTPS rule of the agents' group.
resource "aws_security_group" "control_plane_egress" {
  name        = "${var.name}-agent-cp-egress"
  description = "Weir agents: egress to the control plane"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-agent-cp-egress" })
}

resource "aws_security_group" "nlb" {
  name        = "${var.name}-agent-nlb"
  description = "Weir agent NLBs: Kafka from allowed clients"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-agent-nlb" })
}

# --- agents: ingress ---

resource "aws_vpc_security_group_ingress_rule" "agent_kafka_from_cidr" {
  for_each = local.allowed_cidr_blocks

  security_group_id = aws_security_group.agent.id
  description       = "Kafka from allowed clients"
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "agent_kafka_from_sg" {
  for_each = local.allowed_security_group_ids

  security_group_id            = aws_security_group.agent.id
  description                  = "Kafka from allowed client security group"
  ip_protocol                  = "tcp"
  from_port                    = var.kafka_port
  to_port                      = var.kafka_port
  referenced_security_group_id = each.value
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "agent_from_nlb" {
  for_each = toset([tostring(var.kafka_port), tostring(var.http_port)])

  security_group_id            = aws_security_group.agent.id
  description                  = "Kafka traffic and health checks from the agent NLBs"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.nlb.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "agent_http_from_peers" {
  security_group_id            = aws_security_group.agent.id
  description                  = "Peer block fetches between agents"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.agent.id
  tags                         = local.tags
}

# --- agents: egress ---

resource "aws_vpc_security_group_egress_rule" "agent_https" {
  for_each = local.egress_cidr_blocks

  security_group_id = aws_security_group.agent.id
  description       = "HTTPS to S3, Secrets Manager and CloudWatch Logs"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "agent_control_plane" {
  for_each = local.egress_cidr_blocks

  security_group_id = aws_security_group.control_plane_egress.id
  description       = "Control plane"
  ip_protocol       = "tcp"
  from_port         = local.control_plane_port
  to_port           = local.control_plane_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "agent_http_to_peers" {
  security_group_id            = aws_security_group.agent.id
  description                  = "Peer block fetches between agents"
  ip_protocol                  = "tcp"
  from_port                    = var.http_port
  to_port                      = var.http_port
  referenced_security_group_id = aws_security_group.agent.id
  tags                         = local.tags
}

# --- NLBs ---

resource "aws_vpc_security_group_ingress_rule" "nlb_kafka_from_cidr" {
  for_each = local.allowed_cidr_blocks

  security_group_id = aws_security_group.nlb.id
  description       = "Kafka from allowed clients"
  ip_protocol       = "tcp"
  from_port         = var.kafka_port
  to_port           = var.kafka_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "nlb_kafka_from_sg" {
  for_each = local.allowed_security_group_ids

  security_group_id            = aws_security_group.nlb.id
  description                  = "Kafka from allowed client security group"
  ip_protocol                  = "tcp"
  from_port                    = var.kafka_port
  to_port                      = var.kafka_port
  referenced_security_group_id = each.value
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "nlb_to_agent" {
  for_each = toset([tostring(var.kafka_port), tostring(var.http_port)])

  security_group_id            = aws_security_group.nlb.id
  description                  = "Kafka traffic and health checks to the agents"
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
  referenced_security_group_id = aws_security_group.agent.id
  tags                         = local.tags
}
