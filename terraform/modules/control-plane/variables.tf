variable "name" {
  type        = string
  description = "Name prefix of every resource (IAM role, security groups, launch template, ASG, NLB \"<name>-cp\", log group)."
  default     = "weir"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,14}[a-z0-9])?$", var.name)) && !can(regex("^(sg-|internal(-|$))", var.name))
    error_message = "name must be 1-16 lowercase letters, digits or hyphens, start with a letter, end with a letter or digit, and not start with sg- or internal (AWS reserves those)."
  }
}

variable "vpc_id" {
  type        = string
  description = "ID of the VPC the control plane runs in."

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets in at least two availability zones; the autoscaling group spreads the instances over them and the NLB has a node in each."

  validation {
    condition     = length(var.subnet_ids) >= 2 && alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "subnet_ids must list at least two subnet IDs (subnet-...)."
  }
}

variable "ami_id" {
  type        = string
  description = "AMI the control plane boots from. It must provide /usr/local/bin/weir built with FoundationDB support (unless weir_binary is set), the FoundationDB 7.3 client library (libfdb_c), the AWS CLI v2, curl and systemd."

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  type        = string
  description = "EC2 instance type of the control plane; its architecture must match the AMI's."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an EC2 instance type such as m7g.large."
  }
}

variable "instance_count" {
  type        = number
  description = "Number of control-plane instances (at least 2: one holds the sequencer lease, the others stand by and serve reads)."
  default     = 2

  validation {
    condition     = var.instance_count >= 2 && var.instance_count <= 20 && floor(var.instance_count) == var.instance_count
    error_message = "instance_count must be a whole number from 2 to 20."
  }
}

variable "grpc_port" {
  type        = number
  description = "TCP port of the control plane's gRPC listener on the instances (and on the NLB when tls is null)."
  default     = 9090

  validation {
    condition     = var.grpc_port >= 1024 && var.grpc_port <= 65535 && floor(var.grpc_port) == var.grpc_port
    error_message = "grpc_port must be a whole number from 1024 to 65535."
  }
}

variable "http_port" {
  type        = number
  description = "TCP port of the control plane's HTTP listener (health, metrics); reachable only from the NLB."
  default     = 9091

  validation {
    condition     = var.http_port >= 1024 && var.http_port <= 65535 && floor(var.http_port) == var.http_port
    error_message = "http_port must be a whole number from 1024 to 65535."
  }
}

variable "health_check_path" {
  type        = string
  description = "HTTP path on http_port the NLB target group checks. /readyz answers 200 only on the instance holding the sequencer lease (with the metadata store reachable), so the NLB sends agents' connections there; /healthz answers 200 while the process is alive."
  default     = "/readyz"

  validation {
    condition     = startswith(var.health_check_path, "/") && length(var.health_check_path) <= 1024
    error_message = "health_check_path must start with / and be at most 1024 characters."
  }
}

variable "fdb_cluster_file" {
  type        = string
  description = "Contents of the FoundationDB cluster file (description:ID@host:port,...), written to /etc/foundationdb/fdb.cluster at boot."
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9_]+:[A-Za-z0-9]+@[^,\\s]+(,[^,\\s]+)*\\s*$", var.fdb_cluster_file))
    error_message = "fdb_cluster_file must be a FoundationDB cluster string: description:ID@host:port[,host:port...]."
  }
}

variable "foundationdb_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks of the FoundationDB cluster's hosts; the control plane may connect to them on foundationdb_port_range."

  validation {
    condition     = length(var.foundationdb_cidr_blocks) >= 1 && alltrue([for cidr in var.foundationdb_cidr_blocks : can(cidrnetmask(cidr))])
    error_message = "foundationdb_cidr_blocks must hold at least one IPv4 CIDR block."
  }
}

variable "foundationdb_port_range" {
  type = object({
    from = number
    to   = number
  })
  description = "TCP ports of the FoundationDB processes (4500 and up by default, one per process)."
  default     = { from = 4500, to = 4599 }

  validation {
    condition     = var.foundationdb_port_range.from >= 1 && var.foundationdb_port_range.from <= var.foundationdb_port_range.to && var.foundationdb_port_range.to <= 65535
    error_message = "foundationdb_port_range must satisfy 1 <= from <= to <= 65535."
  }
}

variable "agent_security_group_ids" {
  type        = list(string)
  description = "Security groups of the agents (agents module output security_group_id); the only sources admitted to the control plane's gRPC endpoint."

  validation {
    condition     = length(var.agent_security_group_ids) >= 1 && alltrue([for id in var.agent_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))])
    error_message = "agent_security_group_ids must list at least one security group ID (sg-...)."
  }
}

variable "control_plane_token_secret_arn" {
  type        = string
  description = "ARN of the Secrets Manager secret holding the token agents present to the control plane (the same secret the agents read). Read at every start; never written to Terraform state or user data."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.control_plane_token_secret_arn))
    error_message = "control_plane_token_secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "kms_key_arns" {
  type        = list(string)
  description = "Customer-managed KMS keys the control plane must use (the token secret's key, if customer-managed). The role gets kms:Decrypt on exactly these."
  default     = []

  validation {
    condition     = alltrue([for arn in var.kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", arn))])
    error_message = "Every kms_key_arns entry must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "tls" {
  type = object({
    certificate_arn = string
    domain_name     = string
  })
  description = "Terminate TLS on the NLB (port 443, HTTP/2 ALPN) with this ACM certificate; endpoint then becomes https://<domain_name>, which you point at load_balancer_dns_name. Null serves plain gRPC on grpc_port inside the VPC."
  default     = null

  validation {
    condition     = var.tls == null || try(can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$", var.tls.certificate_arn)) && can(regex("^[A-Za-z0-9.-]+$", var.tls.domain_name)), false)
    error_message = "tls must be null or { certificate_arn = ACM certificate ARN, domain_name = host name the certificate covers }."
  }
}

variable "access_logs_bucket" {
  type        = string
  description = "S3 bucket for the NLB's access logs (written for TLS listeners only, so set tls too). Null disables them. The bucket policy must allow log delivery."
  default     = null

  validation {
    condition     = var.access_logs_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.access_logs_bucket))
    error_message = "access_logs_bucket must be a valid S3 bucket name or null."
  }
}

variable "egress_cidr_blocks" {
  type        = list(string)
  description = "IPv4 CIDR blocks the control plane may reach on HTTPS (Secrets Manager, CloudWatch Logs). Narrow it when those are reached through VPC endpoints or a proxy."
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.egress_cidr_blocks) >= 1 && alltrue([for cidr in var.egress_cidr_blocks : can(cidrnetmask(cidr))])
    error_message = "egress_cidr_blocks must hold at least one IPv4 CIDR block."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the control plane's CloudWatch log group, in days."
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
  description = "Managed IAM policies to attach to the control plane's role as well, e.g. AmazonSSMManagedInstanceCore for Session Manager access."
  default     = []

  validation {
    condition     = alltrue([for arn in var.additional_iam_policy_arns : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", arn))])
    error_message = "Every additional_iam_policy_arns entry must be an IAM policy ARN."
  }
}

variable "load_balancer_deletion_protection" {
  type        = bool
  description = "Protect the NLB from deletion (set false before destroying the module)."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource of this module, and to the instances and volumes."
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) <= 128 && length(v) <= 256])
    error_message = "Tag keys must be at most 128 characters and values at most 256."
  }
}
