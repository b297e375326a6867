"""The ECR repository the image is pushed to, managed with boto3.

Created with scan-on-push and immutable tags (a tag, the Bento version, always names the same
bytes; Terraform pins the digest anyway) and AES-256 encryption. Its lifecycle policy expires
old images but never one that was deployed: a deploy adds a ``deployed-<version>`` tag to its
image, and a tag-matched rule of higher priority keeps such images out of reach of the
count-based rule (an image that matches a rule's tags cannot be expired by a lower rule).
"""

from __future__ import annotations

import base64
import json

import boto3

KEEP_IMAGES = 10
DEPLOYED_PREFIX = "deployed-"
# Larger than any repository will hold: the rule exists to claim deployed images, not to expire them.
KEEP_DEPLOYED = 10_000
LIFECYCLE_POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "never expire an image that was deployed (rollback targets)",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": [DEPLOYED_PREFIX],
                "countType": "imageCountMoreThan",
                "countNumber": KEEP_DEPLOYED,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": f"keep the newest {KEEP_IMAGES} of the other images",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
            "action": {"type": "expire"},
        },
    ]
}


class RepositoryInUse(RuntimeError):
    """The repository still serves a deployed function and must not be deleted."""


def _client(operator_spec: dict, service: str = "ecr"):
    return boto3.client(service, region_name=operator_spec.get("region"))


def create_repository(repository_name: str, operator_spec: dict) -> tuple[str, str, str]:
    """Create the repository unless it exists and (re)apply its lifecycle policy; return
    (repository URL, user, password) for docker push."""
    ecr = _client(operator_spec)
    try:
        repository = ecr.create_repository(
            repositoryName=repository_name,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "AES256"},
        )["repository"]
    except ecr.exceptions.RepositoryAlreadyExistsException:
        repository = ecr.describe_repositories(repositoryNames=[repository_name])["repositories"][0]
    ecr.put_lifecycle_policy(repositoryName=repository_name, lifecyclePolicyText=json.dumps(LIFECYCLE_POLICY))

    auth = ecr.get_authorization_token(registryIds=[repository["registryId"]])["authorizationData"][0]
    username, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    return repository["repositoryUri"], username, password


def function_exists(function_name: str, operator_spec: dict) -> bool:
    lambda_client = _client(operator_spec, "lambda")
    try:
        lambda_client.get_function(FunctionName=function_name)
    except lambda_client.exceptions.ResourceNotFoundException:
        return False
    return True


def delete_repository(repository_name: str, operator_spec: dict) -> None:
    """Delete the repository and its images, unless the function still runs from it.

    `bentoctl destroy` calls this even when its `terraform destroy` failed; deleting the images
    then would leave a function and a Terraform state that point at nothing. The function has
    the deployment's name, as the repository has."""
    if function_exists(repository_name, operator_spec):
        raise RepositoryInUse(
            f"the Lambda function {repository_name!r} still exists, so its image repository is kept: "
            "`terraform destroy -var-file=bentoctl.tfvars` did not finish. Run it (or `make destroy`) "
            "again, then delete the repository."
        )
    ecr = _client(operator_spec)
    try:
        ecr.delete_repository(repositoryName=repository_name, force=True)
    except ecr.exceptions.RepositoryNotFoundException:
        pass
