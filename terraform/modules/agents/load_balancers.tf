# One internal NLB per zone, with cross-zone load balancing off: a client
# bootstraps through its own zone's NLB and reaches only that zone's agents, so
# no byte crosses a zone (and no inter-AZ transfer is billed).

resource "aws_lb" "kafka" {
  #checkov:skip=CKV_AWS_152:Cross-zone load balancing is off on purpose: each zone has its own NLB so Kafka traffic stays in the client's zone.
  #checkov:skip=CKV_AWS_91:The NLB forwards plain TCP; NLB access logs are written only for TLS listeners.
  for_each = var.subnet_ids

  name                             = "${var.name}-${each.key}"
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = [data.aws_subnet.agents[each.key].id]
  security_groups                  = [aws_security_group.nlb.id]
  enable_cross_zone_load_balancing = false
  enable_deletion_protection       = var.load_balancer_deletion_protection
  tags                             = merge(local.tags, { "weir:zone" = each.key })
}

resource "aws_lb_target_group" "kafka" {
  for_each = var.subnet_ids

  name                 = "${var.name}-${each.key}"
  vpc_id               = var.vpc_id
  port                 = var.kafka_port
  protocol             = "TCP"
  target_type          = "instance"
  preserve_client_ip   = false # traffic arrives from the NLB's security group
  deregistration_delay = 30
  # Close connections of a deregistered agent so clients reconnect elsewhere.
  connection_termination = true

  health_check {
    protocol            = "HTTP"
    port                = tostring(var.http_port)
    path                = var.health_check_path
    matcher             = "200"
    interval            = 10
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = merge(local.tags, { "weir:zone" = each.key })
}

resource "aws_lb_listener" "kafka" {
  for_each = var.subnet_ids

  load_balancer_arn = aws_lb.kafka[each.key].arn
  port              = var.kafka_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.kafka[each.key].arn
  }

  tags = local.tags
}
