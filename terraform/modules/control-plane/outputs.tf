output "endpoint" {
  description = "URL the agents dial (agents module input control_plane_url): http://<NLB DNS>:<grpc_port>, or https://<tls.domain_name> when tls is set."
  value       = local.endpoint
}

output "load_balancer_dns_name" {
  description = "DNS name of the internal NLB; with tls set, point tls.domain_name at it (an alias record)."
  value       = aws_lb.control_plane.dns_name
}

output "security_group_id" {
  description = "ID of the control-plane instances' security group; admit it on your FoundationDB hosts."
  value       = aws_security_group.control_plane.id
}

output "role_arn" {
  description = "ARN of the control plane's IAM role."
  value       = aws_iam_role.control_plane.arn
}

output "autoscaling_group_name" {
  description = "Name of the control plane's autoscaling group."
  value       = aws_autoscaling_group.control_plane.name
}

output "log_group_name" {
  description = "CloudWatch log group the control plane's logs are shipped to."
  value       = aws_cloudwatch_log_group.control_plane.name
}
