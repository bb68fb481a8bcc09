output "bootstrap_servers" {
  description = "Kafka bootstrap address per zone; give each client the one of its own zone."
  value       = module.agents.bootstrap_servers
}

output "control_plane_endpoint" {
  description = "URL the agents use to reach the control plane."
  value       = module.control_plane.endpoint
}

output "bucket_name" {
  description = "Name of the objects bucket."
  value       = module.bucket.bucket_name
}

output "agent_security_group_id" {
  description = "Security group of the agents, for extra rules (e.g. metrics scraping)."
  value       = module.agents.security_group_id
}

output "control_plane_security_group_id" {
  description = "Security group of the control-plane instances; admit it on the FoundationDB hosts."
  value       = module.control_plane.security_group_id
}
