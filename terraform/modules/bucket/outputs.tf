output "bucket_name" {
  description = "Name of the bucket; pass it to the agents module."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "bucket_region" {
  description = "Region the bucket lives in; agents must run with AWS_REGION set to it."
  value       = aws_s3_bucket.this.region
}
