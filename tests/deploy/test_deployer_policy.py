"""The deployer's IAM policy (deploy/deployer-policy.json) covers what the deploy code calls and
what main.tf creates, names this deployment's resources, and explains every statement."""

from __future__ import annotations

import ast
import json
import re

import boto3
import pytest
import yaml

from deploy import endpoint
from deploy.deployment import operator_config
from src.config import PROJECT_ROOT
from tests.terraform_files import parsed

pytestmark = pytest.mark.unit

POLICY = json.loads((PROJECT_ROOT / "deploy" / "deployer-policy.json").read_text())
DOC = (PROJECT_ROOT / "deploy" / "deployer-policy.md").read_text()
# The code that calls AWS directly: the modules that use boto3 (Terraform's calls are covered
# through main.tf's types).
CALLERS = [
    path
    for path in [
        *(PROJECT_ROOT / "deploy").glob("*.py"),
        *(PROJECT_ROOT / "deploy" / "aws-lambda-operator" / "aws_lambda_operator").glob("*.py"),
    ]
    if "boto3" in path.read_text()
]
SERVICES = ("ecr", "lambda", "cloudwatch", "sts", "stepfunctions", "s3")
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}
IAM_PREFIX = {"stepfunctions": "states"}  # boto3's service name -> IAM's action prefix, where they differ


def allowed_actions() -> set[str]:
    actions = set()
    for statement in POLICY["Statement"]:
        assert statement["Effect"] == "Allow"
        found = statement["Action"]
        actions |= {found} if isinstance(found, str) else set(found)
    return actions


def called_operations() -> set[str]:
    """service:Operation for each boto3 client method the deploy code calls (or paginates)."""
    names = set()
    for path in CALLERS:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
                if node.func.attr == "get_paginator" and node.args and isinstance(node.args[0], ast.Constant):
                    names.add(node.args[0].value)
    operations = set()
    for service in SERVICES:
        mapping = boto3.client(service, region_name="us-east-1").meta.method_to_api_mapping
        prefix = IAM_PREFIX.get(service, service)
        operations |= {f"{prefix}:{mapping[name]}" for name in names if name in mapping}
    return operations


def test_every_aws_call_of_the_deploy_code_is_allowed():
    calls = called_operations()
    assert {
        "ecr:CreateRepository",
        "ecr:BatchGetImage",
        "ecr:PutImage",
        "lambda:UpdateAlias",
        "lambda:ListVersionsByFunction",
        "cloudwatch:DescribeAlarms",
        "states:StartExecution",
        "states:DescribeMapRun",
        "s3:GetObject",
    } <= calls, calls
    missing = calls - allowed_actions() - NEEDS_NO_PERMISSION
    assert not missing, f"the deploy code calls {sorted(missing)}, which deploy/deployer-policy.json does not allow"


def doc_table(heading: str) -> dict[str, list[str]]:
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("`"):
            rows[cells[0].split("`")[1]] = re.findall(r"`([a-z0-9]+:[A-Za-z]+)`", cells[1])
    return rows


def main_tf_types() -> set[str]:
    main = parsed(PROJECT_ROOT / "main.tf")
    return {kind for key in ("resource", "data") for block in main.get(key, []) for kind in block}


def test_every_terraform_type_in_main_tf_is_covered_by_the_policy():
    table = doc_table("## Terraform resource types and the actions they use")
    undocumented = main_tf_types() - set(table)
    assert not undocumented, f"add these types and their actions to deploy/deployer-policy.md: {undocumented}"
    allowed = allowed_actions()
    for kind, actions in table.items():
        assert set(actions) <= allowed, (kind, set(actions) - allowed)


def test_every_statement_is_explained_and_every_action_is_used_by_something():
    explained = doc_table("## Statements")
    sids = [statement["Sid"] for statement in POLICY["Statement"]]
    assert sorted(explained) == sorted(sids)
    used = (
        {
            action
            for heading in ("## Terraform resource types and the actions they use", "## Terraform's state in S3")
            for actions in doc_table(heading).values()
            for action in actions
        }
        | called_operations()
        | {action for _, action in endpoint.SIGNED_CALL.values()}
    )
    documented_elsewhere = {
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetLifecyclePolicy",
        "ecr:SetRepositoryPolicy",
        "ecr:GetRepositoryPolicy",
        "lambda:GetFunctionConfiguration",
        "lambda:GetFunctionConcurrency",
        "lambda:UntagResource",
        "lambda:ListTags",
        "logs:ListTagsLogGroup",
        "logs:TagResource",
        "logs:UntagResource",
        "logs:DescribeLogStreams",
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
        "apigateway:PUT",
        "cloudwatch:TagResource",
        "cloudwatch:UntagResource",
        "sns:TagResource",
        "sns:UntagResource",
        "states:UntagResource",
    }
    unexplained = allowed_actions() - used - documented_elsewhere
    assert not unexplained, f"allowed but used by nothing listed: {sorted(unexplained)}"
    assert documented_elsewhere <= allowed_actions(), "the list above names actions the policy no longer has"


NAME = yaml.safe_load((PROJECT_ROOT / "deployment_config.yaml").read_text())["name"]


def statement(sid: str) -> dict:
    return next(s for s in POLICY["Statement"] if s["Sid"] == sid)


def resources_of(sid: str) -> list[str]:
    found = statement(sid)["Resource"]
    return found if isinstance(found, list) else [found]


def actions_of(sid: str) -> set[str]:
    found = statement(sid)["Action"]
    return {found} if isinstance(found, str) else set(found)


@pytest.mark.parametrize(
    "sid",
    [
        "EcrRepositoryAndPush",
        "LambdaFunction",
        "FunctionRole",
        "Alarms",
        "Dashboard",
        "AlarmTopic",
        "AlarmKeyAlias",
        "BatchStateMachine",
        "BatchJobs",
    ],
)
def test_statements_are_scoped_to_this_deployments_names(sid):
    resources = resources_of(sid)
    assert all(NAME in resource for resource in resources), resources


@pytest.mark.parametrize("sid, key", [("AlarmKeyCreate", "aws:RequestTag"), ("AlarmKey", "aws:ResourceTag")])
def test_the_alarm_key_is_reached_through_this_deployments_tag(sid, key):
    """A KMS key's id is random, so its statements require the tag main.tf gives the key."""
    tags = parsed(PROJECT_ROOT / "main.tf")["resource"]
    [key_tags] = [named["alarms"]["tags"] for block in tags for kind, named in block.items() if kind == "aws_kms_key"]
    assert key_tags == {"deployment": "${var.deployment_name}"}
    assert statement(sid)["Condition"] == {"StringEquals": {f"{key}/deployment": NAME}}


def test_the_state_statements_name_the_state_and_its_lock_only():
    from aws_lambda_operator.terraform_config import state_key

    bucket = "arn:aws:s3:::YOUR-STATE-BUCKET"
    assert "`YOUR-STATE-BUCKET`" in DOC
    assert resources_of("StateBucketList") == [bucket] and actions_of("StateBucketList") == {"s3:ListBucket"}
    assert resources_of("StateObject") == [f"{bucket}/{state_key(NAME)}"]
    assert actions_of("StateObject") == {"s3:GetObject", "s3:PutObject"}
    assert resources_of("StateLock") == [f"{bucket}/{state_key(NAME)}.tflock"]
    assert actions_of("StateLock") == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}


def test_the_signed_first_call_is_allowed_on_the_prediction_route_and_the_live_alias_only():
    statement = next(s for s in POLICY["Statement"] if s["Sid"] == "FirstCallSigned")
    assert sorted(statement["Action"]) == sorted(action for _, action in endpoint.SIGNED_CALL.values())
    assert statement["Resource"] == [
        "arn:aws:execute-api:*:*:*/$default/POST/classify",
        f"arn:aws:lambda:*:*:function:xgb-classifier:{operator_config.ALIAS_NAME}",
    ]
