variable "name" {
  type        = string
  description = "Name prefix of every resource (IAM role, security groups, launch template, ASGs, NLBs, log group). Load balancers are named \"<name>-<zone key>\"."
  default     = "weir"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$", var.name)) && !can(regex("^(sg-|internal(-|$))", var.name))
    error_message = "name must be 1-16 lowercase letters, digits or hyphens, start with a letter, end with a letter or digit, and not start with sg- or internal (AWS reserves those)."
  }
}

variable "vpc_id" {
  type        = string
  description = "ID of the VPC the agents run in."

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  type        = map(string)
  description = "Private subnets, one per availability zone, keyed by the zone's name (e.g. us-east-1a) or ID (e.g. use1-az1). Each entry gets its own autoscaling group and internal NLB."

  validation {
    condition     = length(var.subnet_ids) >= 1 && alltrue([for zone, subnet in var.subnet_ids : can(regex("^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$", zone)) && can(regex("^subnet-[0-9a-f]{8,17}$", subnet))])
    error_message = "subnet_ids must map at least one zone key (an availability zone name or ID, at most 15 characters) to a subnet ID (subnet-...)."
  }
}

variable "ami_id" {
  type        = string
  description = "AMI the agents boot from. It must provide /usr/local/bin/weir (unless weir_binary is set), the AWS CLI v2, curl and systemd; amazon-cloudwatch-agent, if present, ships the agent log to CloudWatch."

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type of the agents; its architecture must match the AMI's (e.g. m7g.xlarge for arm64, m7i.xlarge for x86_64)."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an EC2 instance type such as m7g.xlarge."
  }
}

variable "min_size_per_zone" {
  type        = number
  description = "Minimum number of agents in each zone."
  default     = 1

  validation {
    condition     = var.min_size_per_zone >= 0 && floor(var.min_size_per_zone) == var.min_size_per_zone
    error_message = "min_size_per_zone must be a whole number >= 0."
  }
}

variable "max_size_per_zone" {
  type        = number
  description = "Maximum number of agents in each zone."
  default     = 4

  validation {
    condition     = var.max_size_per_zone >= 1 && floor(var.max_size_per_zone) == var.max_size_per_zone
    error_message = "max_size_per_zone must be a whole number >= 1."
  }
}

variable "desired_capacity_per_zone" {
  type        = number
  description = "Number of agents each zone starts with. Afterwards the CPU target-tracking policy owns the number, so later changes here are ignored. Null starts at min_size_per_zone."
  default     = null

  validation {
    condition     = var.desired_capacity_per_zone == null || try(var.desired_capacity_per_zone >= 0 && floor(var.desired_capacity_per_zone) == var.desired_capacity_per_zone, false)
    error_message = "desired_capacity_per_zone must be null or a whole number >= 0."
  }
}

variable "cpu_target_percent" {
  type        = number
  description = "Average CPU utilisation that each zone's target-tracking policy holds the agents at."
  default     = 60

  validation {
    condition     = var.cpu_target_percent >= 10 && var.cpu_target_percent <= 90
    error_message = "cpu_target_percent must be between 10 and 90."
  }
}

variable "kafka_port" {
  type        = number
  description = "TCP port of the Kafka listener, on the agents and on the NLBs."
  default     = 9092

  validation {
    condition     = var.kafka_port >= 1024 && var.kafka_port <= 65535 && floor(var.kafka_port) == var.kafka_port
    error_message = "kafka_port must be a whole number from 1024 to 65535."
  }
}

variable "http_port" {
  type        = number
  description = "TCP port of the agents' internal HTTP listener: health checks, metrics and peer block fetches between agents of a zone. Reachable only from the agents themselves and the NLBs."
  default     = 8080

  validation {
    condition     = var.http_port >= 1024 && var.http_port <= 65535 && floor(var.http_port) == var.http_port
    error_message = "http_port must be a whole number from 1024 to 65535."
  }
}

variable "health_check_path" {
  type        = string
  description = "HTTP path on http_port that answers 200 while the agent is serving; used by the NLB target groups and so by the ASGs' ELB health checks."
  default     = "/healthz"

  validation {
    condition     = startswith(var.health_check_path, "/") && length(var.health_check_path) <= 1024
    error_message = "health_check_path must start with / and be at most 1024 characters."
  }
}

variable "bucket_name" {
  type        = string
  description = "Name of the S3 bucket the agents write objects to (bucket module output bucket_name)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name."
  }
}

variable "bucket_prefix" {
  type        = string
  description = "Key prefix of this cluster's objects in the bucket, without leading or trailing slash. The agents' IAM role is confined to it."
  default     = "weir"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.bucket_prefix))
    error_message = "bucket_prefix must be non-empty, use only letters, digits, _ . - and / and have no leading, trailing or doubled slash."
  }
}

variable "kms_key_arns" {
  type        = list(string)
  description = "Customer-managed KMS keys the agents must use: the bucket's SSE-KMS key and the token secret's key, if either is customer-managed. The role gets kms:Decrypt and kms:GenerateDataKey on exactly these."
  default     = []

  validation {
    condition     = alltrue([for arn in var.kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", arn))])
    error_message = "Every kms_key_arns entry must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "control_plane_url" {
  type        = string
  description = "URL the agents dial out to for the control plane, e.g. https://weir-cp.example.com or http://internal-nlb:9090 (control-plane module output endpoint)."

  validation {
    condition     = can(regex("^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$", var.control_plane_url))
    error_message = "control_plane_url must be http(s)://HOST[:PORT]."
  }
}

variable "control_plane_ca_pem" {
  type        = string
  description = "PEM CA certificates the agents trust for an https:// control_plane_url instead of the system's roots (a private CA). Null trusts the system's roots."
  default     = null

  validation {
    condition     = var.control_plane_ca_pem == null || can(regex("-----BEGIN CERTIFICATE-----", var.control_plane_ca_pem))
    error_message = "control_plane_ca_pem must be null or PEM certificates (-----BEGIN CERTIFICATE-----)."
  }
}

variable "control_plane_token_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret whose SecretString is the agents' control-plane token. Read at every agent start; never written to Terraform state or user data."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.control_plane_token_secret_arn))
    error_message = "control_plane_token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "allowed_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks of Kafka clients allowed to reach the Kafka port (on the NLBs and, after bootstrap, on the agents directly)."
  default     = []

  validation {
    condition     = alltrue([for cidr in var.allowed_cidr_blocks : can(cidrnetmask(cidr))])
    error_message = "Every allowed_cidr_blocks entry must be an IPv4 CIDR block such as 10.0.0.0/16."
  }
}

variable "allowed_security_group_ids" {
  type        = list(string)
  description = "Security groups of Kafka clients allowed to reach the Kafka port."
  default     = []

  validation {
    condition     = alltrue([for id in var.allowed_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))])
    error_message = "Every allowed_security_group_ids entry must be a security group ID (sg-...)."
  }
}

variable "egress_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks the agents may reach on HTTPS (S3, Secrets Manager, CloudWatch Logs) and on the control plane's port. Narrow it when those are reached through VPC endpoints or a proxy."
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.egress_cidr_blocks) >= 1 && alltrue([for cidr in var.egress_cidr_blocks : can(cidrnetmask(cidr))])
    error_message = "egress_cidr_blocks must hold at least one IPv4 CIDR block."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the agents' CloudWatch log group, in days."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_arn" {
  type        = string
  description = "KMS key ARN that encrypts the log group. Null keeps CloudWatch Logs' default encryption. The key policy must allow the logs service principal of this region."
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN or null."
  }
}

variable "weir_binary" {
  type = object({
    s3_uri = string
    sha256 = string
  })
  description = "Optional: install the weir binary at boot from your own artifact bucket (s3://bucket/key) instead of using the one baked into the AMI. The download is checked against sha256; the role may read exactly that object."
  default     = null

  validation {
    condition     = var.weir_binary == null || try(can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.()/+=-]+$", var.weir_binary.s3_uri)) && can(regex("^[0-9a-f]{64}$", var.weir_binary.sha256)), false)
    error_message = "weir_binary must be null or { s3_uri = \"s3://bucket/key\", sha256 = \"<64 lowercase hex digits>\" }."
  }
}

variable "additional_iam_policy_arns" {
  type        = list(string)
  description = "Managed IAM policies to attach to the agents' role as well, e.g. AmazonSSMManagedInstanceCore for Session Manager access."
  default     = []

  validation {
    condition     = alltrue([for arn in var.additional_iam_policy_arns : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", arn))])
    error_message = "Every additional_iam_policy_arns entry must be an IAM policy ARN."
  }
}

variable "load_balancer_deletion_protection" {
  type        = bool
  description = "Protect the NLBs from deletion (set false before destroying the module)."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of this module, and to the agents' instances and volumes."
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be at most 128 characters and values at most 256."
  }
}
