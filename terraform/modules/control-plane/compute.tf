resource "aws_launch_template" "control_plane" {
  name                   = "${var.name}-control-plane"
  description            = "Weir control plane"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  ebs_optimized          = true
  update_default_version = true

  user_data = base64encode(templatefile("${path.module}/templates/user-data.sh.tftpl", {
    grpc_port            = var.grpc_port
    http_port            = var.http_port
    advertise_url        = local.endpoint
    token_secret_arn     = var.control_plane_token_secret_arn
    fdb_cluster_file_b64 = base64encode(var.fdb_cluster_file)
    log_group_name       = aws_cloudwatch_log_group.control_plane.name
    weir_binary_s3_uri   = var.weir_binary == null ? "" : var.weir_binary.s3_uri
    weir_binary_sha256   = var.weir_binary == null ? "" : var.weir_binary.sha256
  }))

  iam_instance_profile {
    arn = aws_iam_instance_profile.control_plane.arn
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
    security_groups             = [aws_security_group.control_plane.id]
  }

  block_device_mappings {
    device_name = data.aws_ami.control_plane.root_device_name

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
      tags          = merge(local.tags, { Name = "${var.name}-control-plane" })
    }
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.grpc_port != var.http_port
      error_message = "grpc_port and http_port must differ."
    }
  }
}

resource "aws_autoscaling_group" "control_plane" {
  name                = "${var.name}-control-plane"
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.instance_count
  max_size            = var.instance_count
  desired_capacity    = var.instance_count
  target_group_arns   = [aws_lb_target_group.control_plane.arn]
  # EC2 status, not the target group's: the target group checks readiness, which only
  # the lease holder passes, and standbys must not be replaced for standing by. A
  # crashed process is restarted by systemd.
  health_check_type         = "EC2"
  health_check_grace_period = 120
  default_instance_warmup   = 120
  enabled_metrics           = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances", "GroupTerminatingInstances", "GroupTotalInstances"]

  launch_template {
    id      = aws_launch_template.control_plane.id
    version = aws_launch_template.control_plane.latest_version
  }

  # A new launch template version rolls through the group, launching each
  # replacement before terminating the instance it replaces.
  instance_refresh {
    strategy = "Rolling"

    preferences {
      min_healthy_percentage = 100
      max_healthy_percentage = 200
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = "${var.name}-control-plane" })

    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    precondition {
      condition     = length(local.zones) >= 2
      error_message = "subnet_ids must span at least two availability zones."
    }
  }
}
