terraform {
  # 1.5 for `check` blocks and validation messages that reference other values.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State holds the generated database password (random_password and the
  # secret version): keep it in an encrypted, access-controlled backend, e.g.
  #
  #   terraform init -backend-config=environments/prod.backend.hcl
  #
  # with an S3 backend block added here by the deploying account.
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Application = var.name
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}
