# Internal NLB in front of the control plane, across all its zones. Agents in
# every zone reach it, so cross-zone load balancing stays on here.

resource "aws_lb" "control_plane" {
  name                             = "${var.name}-cp"
  internal                         = true
  load_balancer_type               = "network"
  subnets                          = var.subnet_ids
  security_groups                  = [aws_security_group.nlb.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.load_balancer_deletion_protection
  tags                             = local.tags

  dynamic "access_logs" {
    for_each = var.access_logs_bucket == null ? [] : [var.access_logs_bucket]

    content {
      bucket  = access_logs.value
      prefix  = "${var.name}-cp"
      enabled = true
    }
  }
}

resource "aws_lb_target_group" "control_plane" {
  name                 = "${var.name}-cp"
  vpc_id               = var.vpc_id
  port                 = var.grpc_port
  protocol             = "TCP"
  target_type          = "instance"
  preserve_client_ip   = false # traffic arrives from the NLB's security group
  deregistration_delay = 30
  # Close connections of a deregistered instance so agents reconnect elsewhere.
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

  tags = local.tags
}

resource "aws_lb_listener" "control_plane" {
  load_balancer_arn = aws_lb.control_plane.arn
  port              = local.listener_port
  protocol          = var.tls == null ? "TCP" : "TLS"
  certificate_arn   = var.tls == null ? null : var.tls.certificate_arn
  ssl_policy        = var.tls == null ? null : "ELBSecurityPolicy-TLS13-1-2-2021-06"
  alpn_policy       = var.tls == null ? null : "HTTP2Only"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.control_plane.arn
  }

  tags = local.tags
}
