variable "region" {
  type        = string
  description = "AWS region of the bucket and the agents."

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
  description = "ID of the existing VPC to deploy the agents into."

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  type        = map(string)
  description = "Private subnets for the agents, one per availability zone, keyed by zone name (e.g. { \"us-east-1a\" = \"subnet-...\" }). They need outbound HTTPS to the vendor's control plane (NAT or proxy)."

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "subnet_ids must have at least one zone."
  }
}

variable "ami_id" {
  type        = string
  description = "AMI of the agents (weir, AWS CLI v2, curl; amazon-cloudwatch-agent recommended)."
}

variable "instance_type" {
  type        = string
  description = "Instance type of the agents; must match the AMI's architecture."
  default     = "m7g.xlarge"
}

variable "bucket_name" {
  type        = string
  description = "Name of the new S3 bucket for Weir's objects (globally unique)."
}

variable "control_plane_url" {
  type        = string
  description = "URL of the vendor-hosted control plane, as given by the vendor (https://...)."

  validation {
    condition     = startswith(var.control_plane_url, "https://")
    error_message = "A control plane outside your network must be reached over https://."
  }
}

variable "control_plane_token_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding the agent token the vendor issued (create it first; see README)."
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
