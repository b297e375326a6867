"""The operator's ECR repository management against moto's mock of the ECR API."""

import base64
import json

import boto3
import pytest
from moto import mock_aws

from aws_lambda_operator import create_repository, delete_repository
from aws_lambda_operator.ecr import DEPLOYED_PREFIX, KEEP_IMAGES, RepositoryInUse

pytestmark = pytest.mark.unit  # moto's mock in process: no server, no network

SPEC = {"region": "eu-west-1"}


@pytest.fixture
def aws(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("ecr", region_name=SPEC["region"])


def test_create_returns_url_and_docker_credentials(aws):
    url, username, password = create_repository("xgb-classifier", SPEC)
    assert url.endswith(".dkr.ecr.eu-west-1.amazonaws.com/xgb-classifier")
    assert username == "AWS" and password
    repo = aws.describe_repositories(repositoryNames=["xgb-classifier"])["repositories"][0]
    assert repo["repositoryUri"] == url


def test_repository_is_hardened(aws):
    create_repository("xgb-classifier", SPEC)
    repo = aws.describe_repositories(repositoryNames=["xgb-classifier"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"


def test_lifecycle_never_expires_a_deployed_image(aws):
    """ECR lets a lower-priority rule expire no image that a higher-priority rule's tags match:
    the deployed-* rule comes first, and its count is beyond any repository's size."""
    create_repository("xgb-classifier", SPEC)
    policy = json.loads(aws.get_lifecycle_policy(repositoryName="xgb-classifier")["lifecyclePolicyText"])
    rules = sorted(policy["rules"], key=lambda rule: rule["rulePriority"])
    protect, expire = rules
    assert protect["selection"]["tagStatus"] == "tagged"
    assert protect["selection"]["tagPrefixList"] == [DEPLOYED_PREFIX]
    assert protect["selection"]["countNumber"] >= 10_000
    assert expire["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES}


def test_existing_repository_gets_the_current_lifecycle_policy(aws):
    aws.create_repository(repositoryName="xgb-classifier")
    aws.put_lifecycle_policy(
        repositoryName="xgb-classifier",
        lifecyclePolicyText=json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
                        "action": {"type": "expire"},
                    }
                ]
            }
        ),
    )
    create_repository("xgb-classifier", SPEC)
    policy = json.loads(aws.get_lifecycle_policy(repositoryName="xgb-classifier")["lifecyclePolicyText"])
    assert [rule["selection"].get("tagPrefixList") for rule in policy["rules"]][0] == [DEPLOYED_PREFIX]


def test_create_is_idempotent_for_redeploys(aws):
    first = create_repository("xgb-classifier", SPEC)
    second = create_repository("xgb-classifier", SPEC)
    assert first[0] == second[0]
    assert len(aws.describe_repositories()["repositories"]) == 1


def image_manifest(digit: str) -> str:
    """A Docker image manifest whose config digest is ``digit`` 64 times, no layers."""
    config = {
        "digest": "sha256:" + digit * 64,
        "size": 1,
        "mediaType": "application/vnd.docker.container.image.v1+json",
    }
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": config,
            "layers": [],
        }
    )


def test_delete_removes_repository_with_images_and_tolerates_absence(aws):
    create_repository("xgb-classifier", SPEC)
    aws.put_image(repositoryName="xgb-classifier", imageManifest=image_manifest("a"), imageTag="v1")
    delete_repository("xgb-classifier", SPEC)
    assert aws.describe_repositories()["repositories"] == []
    delete_repository("xgb-classifier", SPEC)  # already gone: no error


def test_delete_refuses_while_the_function_still_runs_from_the_repository(aws):
    """bentoctl destroy deletes the repository even after a failed terraform destroy."""
    url, _, _ = create_repository("xgb-classifier", SPEC)
    aws.put_image(repositoryName="xgb-classifier", imageManifest=image_manifest("b"), imageTag="v1")
    iam = boto3.client("iam", region_name=SPEC["region"])
    role = iam.create_role(RoleName="xgb-classifier-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    functions = boto3.client("lambda", region_name=SPEC["region"])
    functions.create_function(
        FunctionName="xgb-classifier", Role=role, PackageType="Image", Code={"ImageUri": f"{url}:v1"}
    )
    with pytest.raises(RepositoryInUse, match="terraform destroy"):
        delete_repository("xgb-classifier", SPEC)
    assert len(aws.describe_repositories()["repositories"]) == 1
    functions.delete_function(FunctionName="xgb-classifier")
    delete_repository("xgb-classifier", SPEC)
    assert aws.describe_repositories()["repositories"] == []


def test_credentials_decode_like_docker_login(aws):
    _, username, password = create_repository("xgb-classifier", SPEC)
    token = aws.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert base64.b64decode(token).decode() == f"{username}:{password}"
