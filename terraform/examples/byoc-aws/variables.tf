variable "region" {
  type        = string
  description = "AWS region of the deployment (bucket, agents and control plane)."

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region such as us-east-1."
  }
}

variable "name" {
  type        = string
  description = "Name prefix of every resource."
  default     = "weir"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$", var.name)) && !can(regex("^(sg-|internal(-|$))", var.name))
    error_message = "name must be 1-16 lowercase letters, digits or hyphens, start with a letter, end with a letter or digit, and not start with sg- or internal (AWS reserves those)."
  }
}

variable "vpc_id" {
  type        = string
  description = "ID of the existing VPC to deploy into."

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "agent_subnet_ids" {
  type        = map(string)
  description = "Private subnets for the agents, one per availability zone, keyed by zone name (e.g. { \"us-east-1a\" = \"subnet-...\" })."

  validation {
    condition     = length(var.agent_subnet_ids) >= 1
    error_message = "agent_subnet_ids must have at least one zone."
  }
}

variable "control_plane_subnet_ids" {
  type        = list(string)
  description = "Private subnets for the control plane, in at least two availability zones."

  validation {
    condition     = length(var.control_plane_subnet_ids) >= 2
    error_message = "control_plane_subnet_ids must list at least two subnets."
  }
}

variable "agent_ami_id" {
  type        = string
  description = "AMI of the agents (weir, AWS CLI v2, curl; amazon-cloudwatch-agent recommended)."
}

variable "agent_instance_type" {
  type        = string
  description = "Instance type of the agents; must match the AMI's architecture."
  default     = "m7g.xlarge"
}

variable "control_plane_ami_id" {
  type        = string
  description = "AMI of the control plane (weir built with FoundationDB support, libfdb_c 7.3, AWS CLI v2, curl)."
}

variable "control_plane_instance_type" {
  type        = string
  description = "Instance type of the control plane; must match the AMI's architecture."
  default     = "m7g.large"
}

variable "bucket_name" {
  type        = string
  description = "Name of the new S3 bucket for Weir's objects (globally unique)."
}

variable "kms_key_arn" {
  type        = string
  description = "Customer-managed KMS key for the bucket's default encryption; null uses SSE-S3."
  default     = null
}

variable "control_plane_token_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding the agents' control-plane token (create it first; see README)."
}

variable "fdb_cluster_file" {
  type        = string
  description = "Contents of the FoundationDB cluster file of the cluster the control plane uses."
  sensitive   = true
}

variable "foundationdb_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks of the FoundationDB hosts."
}

variable "client_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks of the Kafka clients allowed to reach the agents."
  default     = []
}

variable "client_security_group_ids" {
  type        = list(string)
  description = "Security groups of the Kafka clients allowed to reach the agents."
  default     = []
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource."
  default     = {}
}
