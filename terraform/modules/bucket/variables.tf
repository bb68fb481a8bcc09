variable "bucket_name" {
  type        = string
  description = "Name of the S3 bucket that holds Weir's objects. Globally unique."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) && !can(regex("\\.\\.|^xn--|-s3alias$|--ol-s3$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
  }
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of a customer-managed KMS key for SSE-KMS default encryption. Null uses SSE-S3 (AES-256). The agents' role must be granted kms:GenerateDataKey and kms:Decrypt on this key (agents module: kms_key_arns)."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or null."
  }
}

variable "access_logging" {
  type = object({
    target_bucket = string
    target_prefix = optional(string)
  })
  description = "Server access logging into a bucket you already run for logs. Null disables access logging. target_prefix defaults to \"s3-access/<bucket_name>/\"."
  default     = null

  validation {
    condition     = var.access_logging == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.access_logging.target_bucket))
    error_message = "access_logging.target_bucket must be a valid S3 bucket name."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  type        = number
  description = "Days after which S3 aborts a multipart upload that was never completed, freeing its parts."
  default     = 1

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1 && var.abort_incomplete_multipart_upload_days <= 365 && floor(var.abort_incomplete_multipart_upload_days) == var.abort_incomplete_multipart_upload_days
    error_message = "abort_incomplete_multipart_upload_days must be a whole number from 1 to 365."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Allow `terraform destroy` to delete the bucket while it still holds objects. Leave false outside of test environments."
  default     = false
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of this module."
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be at most 128 characters and values at most 256."
  }
}
