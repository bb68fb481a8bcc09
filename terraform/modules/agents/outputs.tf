output "bootstrap_servers" {
  description = "Kafka bootstrap address per zone (\"<NLB DNS name>:<kafka_port>\"), keyed like subnet_ids. Give each client the one of its own zone, and weir_az=<zone> in its client.id."
  value       = { for zone, lb in aws_lb.kafka : zone => "${lb.dns_name}:${var.kafka_port}" }
}

output "role_arn" {
  description = "ARN of the agents' IAM role; reference it in the bucket's or a KMS key's policy if those are locked down further."
  value       = aws_iam_role.agent.arn
}

output "security_group_id" {
  description = "ID of the agents' security group; admit it wherever the agents must connect (e.g. the control plane's agent_security_group_ids), or add your own rules to it (e.g. metrics scraping on http_port)."
  value       = aws_security_group.agent.id
}

output "autoscaling_group_names" {
  description = "Name of each zone's autoscaling group, keyed like subnet_ids."
  value       = { for zone, asg in aws_autoscaling_group.agent : zone => asg.name }
}

output "log_group_name" {
  description = "CloudWatch log group the agents' logs are shipped to."
  value       = aws_cloudwatch_log_group.agent.name
}
