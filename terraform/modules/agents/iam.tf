# The agents' role may touch exactly: objects under the cluster's prefix, the
# listing of that prefix, the one token secret, and its own log group.

data "aws_iam_policy_document" "assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "agent" {
  name               = "${var.name}-agent"
  description        = "Weir agents: objects under s3://${var.bucket_name}/${var.bucket_prefix}/, the control-plane token, their log group."
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
  tags               = local.tags
}

data "aws_iam_policy_document" "agent" {
  statement {
    sid       = "Objects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.bucket_arn}/${var.bucket_prefix}/*"]
  }

  statement {
    sid       = "ListPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.bucket_prefix}/*"]
    }
  }

  statement {
    sid       = "ControlPlaneToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.control_plane_token_secret_arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.agent.arn}:*"]
  }

  dynamic "statement" {
    for_each = length(var.kms_key_arns) > 0 ? [1] : []

    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
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

resource "aws_iam_role_policy" "agent" {
  name   = "weir-agent"
  role   = aws_iam_role.agent.id
  policy = data.aws_iam_policy_document.agent.json
}

resource "aws_iam_role_policy_attachment" "additional" {
  for_each = { for i, arn in var.additional_iam_policy_arns : tostring(i) => arn }

  role       = aws_iam_role.agent.name
  policy_arn = each.value
}

resource "aws_iam_instance_profile" "agent" {
  name = "${var.name}-agent"
  role = aws_iam_role.agent.name
  tags = local.tags
}
