# The control plane's role may read the one token secret and write its own log
# group. It has no access to any bucket: the control plane never holds bucket
# credentials.

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "control_plane" {
  name               = "${var.name}-control-plane"
  description        = "Weir control plane: the agents' token secret and its log group; no bucket access."
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
  tags               = local.tags
}

data "aws_iam_policy_document" "control_plane" {
  statement {
    sid       = "ControlPlaneToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.control_plane_token_secret_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.control_plane.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt"]
      resources = var.kms_key_arns
    }
  }

  dynamic "statement" {
    for_each = local.binary_path == null ? [] : [local.binary_path]

    content {
      sid       = "WeirBinary"
      actions   = ["s3:GetObject"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${statement.value[0]}/${statement.value[1]}"]
    }
  }
}

resource "aws_iam_role_policy" "control_plane" {
  name   = "weir-control-plane"
  role   = aws_iam_role.control_plane.id
  policy = data.aws_iam_policy_document.control_plane.json
}

resource "aws_iam_role_policy_attachment" "additional" {
  for_each = { for i, arn in var.additional_iam_policy_arns : tostring(i) => arn }

  role       = aws_iam_role.control_plane.name
  policy_arn = each.value
}

resource "aws_iam_instance_profile" "control_plane" {
  name = "${var.name}-control-plane"
  role = aws_iam_role.control_plane.name
  tags = local.tags
}
