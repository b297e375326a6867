"""The ECR repository the image is pushed to, managed with boto3.

Created with scan-on-push and immutable tags (a tag, the Bento version, always names the same
bytes; Terraform pins the digest anyway), AES-256 encryption, and a lifecycle rule that keeps
the newest images only, so old versions stop costing storage.
"""

from __future__ import annotations

import base64
import json

import boto3

KEEP_IMAGES = 10
LIFECYCLE_POLICY = {
    "rules": [{
        "rulePriority": 1,
        "description": f"keep the newest {KEEP_IMAGES} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
        "action": {"type": "expire"},
    }]
}


def _client(operator_spec: dict):
    return boto3.client("ecr", region_name=operator_spec.get("region"))


def create_repository(repository_name: str, operator_spec: dict) -> tuple[str, str, str]:
    """Create the repository unless it exists; return (repository URL, user, password) for docker push."""
    ecr = _client(operator_spec)
    try:
        repository = ecr.create_repository(
            repositoryName=repository_name,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "AES256"},
        )["repository"]
        ecr.put_lifecycle_policy(repositoryName=repository_name, lifecyclePolicyText=json.dumps(LIFECYCLE_POLICY))
    except ecr.exceptions.RepositoryAlreadyExistsException:
        repository = ecr.describe_repositories(repositoryNames=[repository_name])["repositories"][0]

    auth = ecr.get_authorization_token(registryIds=[repository["registryId"]])["authorizationData"][0]
    username, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    return repository["repositoryUri"], username, password


def delete_repository(repository_name: str, operator_spec: dict) -> None:
    """Delete the repository and its images; a repository already gone is not an error."""
    ecr = _client(operator_spec)
    try:
        ecr.delete_repository(repositoryName=repository_name, force=True)
    except ecr.exceptions.RepositoryNotFoundException:
        pass
