"""The alarm topic's key: the key policy main.tf writes, evaluated by Terraform, lets CloudWatch
use the key for this deployment's alarms (and nothing else), keeps the account in control, and
the topic is encrypted with this key, not the AWS-managed one CloudWatch cannot use."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest

from tests.terraform_eval import attributes, block, block_names, evaluate, expression
from tests.terraform_files import terraform_resources

pytestmark = pytest.mark.unit

RESOURCES = terraform_resources()
ACCOUNT = "123456789012"
KNOWN = {"data.aws_caller_identity.current.account_id": ACCOUNT, "data.aws_partition.current.partition": "aws"}
SETTINGS = dict(deployment_name="svc", region="eu-west-1", alarm_email="ops@example.com")


def key_policy() -> dict:
    policy = expression("resource", "aws_kms_key", "alarms", "policy")
    return json.loads(evaluate(policy, known=KNOWN, **SETTINGS))


def statements_for(principal: dict) -> list[dict]:
    return [statement for statement in key_policy()["Statement"] if statement["Principal"] == principal]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def alarm_names() -> list[str]:
    """Every alarm main.tf creates (a canary's included), as Terraform names them."""
    names = []
    for alarm in block_names("resource", "aws_cloudwatch_metric_alarm"):
        body = attributes(block("resource", "aws_cloudwatch_metric_alarm", alarm))
        name = body["alarm_name"]
        if "for_each" in body:
            name = re.sub(r"\beach\.key\b", "alarm_key", name)
            names += evaluate(f"[for alarm_key, _ in {body['for_each']} : {name}]", **SETTINGS)
        else:
            names.append(evaluate(name, canary_percent=10, **SETTINGS))
    return names


def test_cloudwatch_may_use_the_key_for_this_deployments_alarms_only():
    [statement] = statements_for({"Service": "cloudwatch.amazonaws.com"})
    assert statement["Effect"] == "Allow"
    assert set(as_list(statement["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    condition = statement["Condition"]
    assert condition["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    [pattern] = as_list(condition["ArnLike"]["aws:SourceArn"])
    names = alarm_names()
    assert len(names) == 7 and {"svc-canary-errors", "svc-batch-failed"} <= set(names)
    for name in names:
        assert fnmatch.fnmatchcase(f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{name}", pattern), (name, pattern)
    for other in (
        f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:other-5xx",
        "arn:aws:cloudwatch:eu-west-1:9:alarm:svc-5xx",
    ):
        assert not fnmatch.fnmatchcase(other, pattern), other


def test_the_account_keeps_full_control_and_nobody_else_gets_any():
    [statement] = statements_for({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})
    assert statement["Effect"] == "Allow" and statement["Action"] == "kms:*" and "Condition" not in statement
    principals = [statement["Principal"] for statement in key_policy()["Statement"]]
    assert principals == [{"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, {"Service": "cloudwatch.amazonaws.com"}]


def test_the_key_rotates_and_comes_and_goes_with_the_topic():
    key, topic = RESOURCES["aws_kms_key.alarms"], RESOURCES["aws_sns_topic.alarms"]
    assert key["enable_key_rotation"] is True
    assert key["count"] == topic["count"] == RESOURCES["aws_kms_alias.alarms"]["count"]
    for email, created in (("", 0), ("ops@example.com", 1)):
        assert evaluate(expression("resource", "aws_kms_key", "alarms", "count"), alarm_email=email) == created


def test_the_topic_is_encrypted_with_this_key():
    assert RESOURCES["aws_sns_topic.alarms"]["kms_master_key_id"] == "${aws_kms_key.alarms[0].arn}"
    alias = RESOURCES["aws_kms_alias.alarms"]
    assert alias["target_key_id"] == "${aws_kms_key.alarms[0].key_id}"
    assert evaluate(expression("resource", "aws_kms_alias", "alarms", "name"), **SETTINGS) == "alias/svc-alarms"
