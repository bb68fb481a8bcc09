# One launch template for every zone: each agent reads its zone and private
# address from the instance metadata service at boot (see the user data).

resource "aws_launch_template" "agent" {
  name                   = "${var.name}-agent"
  description            = "Weir agent"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  ebs_optimized          = true
  update_default_version = true

  user_data = base64encode(templatefile("${path.module}/templates/user-data.sh.tftpl", {
    control_plane_url  = var.control_plane_url
    ca_pem_b64         = var.control_plane_ca_pem == null ? "" : base64encode(var.control_plane_ca_pem)
    bucket_url         = local.bucket_url
    kafka_port         = var.kafka_port
    http_port          = var.http_port
    token_secret_arn   = var.control_plane_token_secret_arn
    log_group_name     = aws_cloudwatch_log_group.agent.name
    weir_binary_s3_uri = var.weir_binary == null ? "" : var.weir_binary.s3_uri
    weir_binary_sha256 = var.weir_binary == null ? "" : var.weir_binary.sha256
  }))

  iam_instance_profile {
    arn = aws_iam_instance_profile.agent.arn
  }

  # IMDSv2 only, and a hop limit of 1 so that nothing one network hop away
  # (a container, a forwarded packet) can borrow the instance's credentials.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  network_interfaces {
    associate_public_ip_address = false
    delete_on_termination       = true
    security_groups             = [aws_security_group.agent.id, aws_security_group.control_plane_egress.id]
  }

  block_device_mappings {
    device_name = data.aws_ami.agent.root_device_name

    ebs {
      encrypted             = true
      volume_type           = "gp3"
      delete_on_termination = true
    }
  }

  dynamic "tag_specifications" {
    for_each = toset(["instance", "volume", "network-interface"])

    content {
      resource_type = tag_specifications.value
      tags          = merge(local.tags, { Name = "${var.name}-agent" })
    }
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.kafka_port != var.http_port
      error_message = "kafka_port and http_port must differ."
    }
  }
}

resource "aws_autoscaling_group" "agent" {
  for_each = var.subnet_ids

  name                      = "${var.name}-agent-${each.key}"
  vpc_zone_identifier       = [data.aws_subnet.agents[each.key].id]
  min_size                  = var.min_size_per_zone
  max_size                  = var.max_size_per_zone
  desired_capacity          = coalesce(var.desired_capacity_per_zone, var.min_size_per_zone)
  target_group_arns         = [aws_lb_target_group.kafka[each.key].arn]
  health_check_type         = "ELB"
  health_check_grace_period = 120
  default_instance_warmup   = 120
  enabled_metrics           = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances", "GroupTerminatingInstances", "GroupTotalInstances"]

  launch_template {
    id      = aws_launch_template.agent.id
    version = aws_launch_template.agent.latest_version
  }

  # A new launch template version (AMI, user data, instance type) rolls
  # through each zone, launching each replacement before terminating the agent
  # it replaces, so a zone never has fewer agents serving.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-agent-${each.key}" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    # The target-tracking policy owns the running count after creation.
    ignore_changes = [desired_capacity]

    precondition {
      condition     = var.min_size_per_zone <= var.max_size_per_zone
      error_message = "min_size_per_zone must not exceed max_size_per_zone."
    }
    precondition {
      condition     = var.desired_capacity_per_zone == null || try(var.desired_capacity_per_zone >= var.min_size_per_zone && var.desired_capacity_per_zone <= var.max_size_per_zone, false)
      error_message = "desired_capacity_per_zone must lie between min_size_per_zone and max_size_per_zone."
    }
  }
}

resource "aws_autoscaling_policy" "cpu" {
  for_each = var.subnet_ids

  name                   = "${var.name}-agent-${each.key}-cpu"
  autoscaling_group_name = aws_autoscaling_group.agent[each.key].name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.cpu_target_percent

    predefined_metric_specification {
      predefined_metric_type = "ASGAverageCPUUtilization"
    }
  }
}
