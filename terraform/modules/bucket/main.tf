# The bucket that holds Weir's objects. Agents write each object once under a
# fresh key (<prefix>/data/<ulid>.weir) and garbage collection deletes it once
# compaction or retention has released it; nothing is ever overwritten.

locals {
  tags = merge(var.tags, { "weir:component" = "bucket" })
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_21:Versioning is off on purpose: objects are immutable and keys are never overwritten, so versions would only keep deleted objects (and their cost) alive after garbage collection.
  #checkov:skip=CKV_AWS_144:No cross-region replication: BYOC customers choose their own disaster-recovery setup for this bucket.
  #checkov:skip=CKV2_AWS_62:No event notifications: agents learn of objects from the control plane, nothing consumes bucket events.
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = local.tags
}

# Explicitly disabled (see the skip above): with unique, write-once keys a
# version history holds nothing but garbage.
resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Disabled"
  }
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # An S3 bucket key cuts KMS requests (and their cost) by orders of magnitude.
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  count = var.access_logging == null ? 0 : 1

  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_logging.target_bucket
  target_prefix = coalesce(var.access_logging.target_prefix, "s3-access/${var.bucket_name}/")
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOutdatedTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.bucket.json

  # A bucket policy is rejected while the public access block is being set up.
  depends_on = [aws_s3_bucket_public_access_block.this]
}
