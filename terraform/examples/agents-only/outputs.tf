output "bootstrap_servers" {
  description = "Kafka bootstrap address per zone; give each client the one of its own zone."
  value       = module.agents.bootstrap_servers
}

output "bucket_name" {
  description = "Name of the objects bucket."
  value       = module.bucket.bucket_name
}

output "agent_role_arn" {
  description = "ARN of the agents' IAM role."
  value       = module.agents.role_arn
}
