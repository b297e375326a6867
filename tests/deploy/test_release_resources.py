"""main.tf's day-2 resources, read from its parse: published versions behind the live alias,
canary routing, the function URL option, alarms, notifications, the dashboard and logs."""

from __future__ import annotations

import pytest

from src.config import PROJECT_ROOT
from tests.terraform_eval import evaluate, expression
from tests.terraform_files import locals_block, parsed, terraform_resources, terraform_variables

pytestmark = pytest.mark.unit

MAIN = parsed(PROJECT_ROOT / "main.tf")
RESOURCES = terraform_resources()
LOCALS = locals_block()


def test_every_apply_publishes_a_version_that_says_what_it_serves():
    function = RESOURCES["aws_lambda_function.service"]
    assert function["publish"] is True
    assert function["description"] == "${local.release}"
    for variable in ("var.bento_tag", "var.model_tag", "var.data_sha256"):
        assert variable in LOCALS["release"]
    assert function["tags"] == {
        "bento": "${var.bento_tag}",
        "model": "${var.model_tag}",
        "data_sha256": "${var.data_sha256}",
    }


def test_the_alias_serves_a_pinned_version_a_canary_or_the_newest():
    alias = RESOURCES["aws_lambda_alias.live"]
    assert alias["function_version"] == "${local.live_version}"
    live = LOCALS["live_version"]
    assert live.index("var.pinned_version") < live.index("local.canary_active") < live.index("local.newest_version")
    canary = LOCALS["canary_active"]
    for condition in (
        'var.pinned_version == ""',
        'var.canary_base_version != ""',
        "var.canary_percent > 0",
        "var.canary_base_version != local.newest_version",
    ):
        assert condition in canary
    routing = alias["dynamic"][0]["routing_config"]
    assert routing["for_each"] == "${local.canary_active ? [1] : []}"
    assert routing["content"][0]["additional_version_weights"] == {
        "${(local.newest_version)}": "${var.canary_percent / 100}"
    }


RELEASE = dict(
    bento_tag="xgb_classifier:4fbw2cxh4kfpuax4", model_tag="xgb_model:fsxtdkxh72vbsax4", data_sha256="ab" * 32
)
NEWEST = {"aws_lambda_function.service.version": "7"}


@pytest.mark.parametrize(
    "values, expected",
    [
        (
            {},
            "The newest version, 7: Bento xgb_classifier:4fbw2cxh4kfpuax4, model xgb_model:fsxtdkxh72vbsax4, "
            "data sha256 abababababababab",
        ),
        (
            dict(pinned_version="3", canary_base_version="6", canary_percent=10),
            "Pinned to version 3 by a rollback (the version's description names its Bento)",
        ),
        (
            dict(canary_base_version="6", canary_percent=10),
            "Canary: version 7 (Bento xgb_classifier:4fbw2cxh4kfpuax4, model xgb_model:fsxtdkxh72vbsax4, "
            "data sha256 abababababababab) takes 10 %, version 6 the rest",
        ),
    ],
    ids=["newest", "pinned", "canary"],
)
def test_the_alias_description_says_what_it_serves(values, expected):
    described = evaluate(
        expression("resource", "aws_lambda_alias", "live", "description"), known=NEWEST, **RELEASE, **values
    )
    assert described == expected
    assert len(described) <= 256, "Lambda refuses an alias description over 256 characters"


def test_the_function_waits_for_every_policy_of_its_role():
    policies = {
        f"${{{name}}}"
        for name, body in RESOURCES.items()
        if name.startswith("aws_iam_role_policy.") and body["role"] == "${aws_iam_role.lambda.id}"
    }
    assert "${aws_iam_role_policy.send_traces}" in policies
    assert set(RESOURCES["aws_lambda_function.service"]["depends_on"]) == policies


def test_clients_reach_the_alias_never_latest():
    assert RESOURCES["aws_apigatewayv2_integration.lambda"]["integration_uri"] == "${aws_lambda_alias.live.invoke_arn}"
    for name in (
        "aws_lambda_permission.api",
        "aws_lambda_permission.url_public",
        "aws_lambda_permission.url_public_invoke",
    ):
        assert RESOURCES[name]["qualifier"] == "${aws_lambda_alias.live.name}", name
    assert RESOURCES["aws_lambda_function_url.live"]["qualifier"] == "${aws_lambda_alias.live.name}"


def test_the_endpoint_setting_chooses_the_api_or_the_function_url():
    assert "function_url" in str(terraform_variables()["endpoint"]["validation"])
    for name in (
        "aws_apigatewayv2_api.service",
        "aws_apigatewayv2_integration.lambda",
        "aws_apigatewayv2_stage.default",
        "aws_cloudwatch_log_group.api",
        "aws_lambda_permission.api",
    ):
        assert RESOURCES[name]["count"] == "${local.use_api ? 1 : 0}", name
    url = RESOURCES["aws_lambda_function_url.live"]
    assert url["count"] == "${local.use_api ? 0 : 1}"
    assert url["authorization_type"] == '${var.auth == "iam" ? "AWS_IAM" : "NONE"}'
    public = RESOURCES["aws_lambda_permission.url_public"]
    assert public["function_url_auth_type"] == "NONE" and public["action"] == "lambda:InvokeFunctionUrl"
    invoke = RESOURCES["aws_lambda_permission.url_public_invoke"]
    assert invoke["action"] == "lambda:InvokeFunction" and invoke["invoked_via_function_url"] is True
    for name in ("aws_lambda_permission.url_public", "aws_lambda_permission.url_public_invoke"):
        assert RESOURCES[name]["count"] == '${!local.use_api && var.auth == "none" ? 1 : 0}'
    assert "function_url" in MAIN["output"][0]["endpoint"]["value"]


@pytest.mark.parametrize(
    "alarm, metric, statistic",
    [
        ("aws_cloudwatch_metric_alarm.server_errors", "${local.requests_metric.error5}", "Sum"),
        ("aws_cloudwatch_metric_alarm.slow", "Duration", None),
        ("aws_cloudwatch_metric_alarm.canary_errors", "Errors", "Sum"),
    ],
)
def test_alarms_watch_the_live_alias_and_notify(alarm, metric, statistic):
    body = RESOURCES[alarm]
    assert body["metric_name"] == metric
    assert body.get("statistic") == statistic
    assert body["alarm_actions"] == "${local.alarm_actions}"


def test_the_alarm_set():
    assert set(LOCALS["function_alarms"]) == {"function-errors", "throttles"}
    assert [row[0] for row in LOCALS["function_alarms"].values()] == ["Errors", "Throttles"]
    slow = RESOURCES["aws_cloudwatch_metric_alarm.slow"]
    assert slow["extended_statistic"] == "p99" and slow["threshold"] == "${var.timeout * 1000 * 0.8}"
    rate = RESOURCES["aws_cloudwatch_metric_alarm.client_errors"]
    expression = next(q for q in rate["metric_query"] if q.get("return_data"))
    assert expression["expression"] == "IF(requests >= 20, 100 * refused / requests, 0)"
    canary = RESOURCES["aws_cloudwatch_metric_alarm.canary_errors"]
    assert canary["count"] == "${var.canary_percent > 0 ? 1 : 0}"
    assert "ExecutedVersion = local.newest_version" in canary["dimensions"]
    assert "aws_cloudwatch_metric_alarm.canary_errors[*].alarm_name" in LOCALS["canary_alarms"]


def test_alarm_email_is_optional_and_encrypted():
    topic = RESOURCES["aws_sns_topic.alarms"]
    assert topic["count"] == '${var.alarm_email == "" ? 0 : 1}'
    assert topic["kms_master_key_id"] == "${aws_kms_key.alarms[0].arn}"  # its key: tests/deploy/test_tf_alarm_key.py
    subscription = RESOURCES["aws_sns_topic_subscription.alarm_email"]
    assert subscription["protocol"] == "email" and subscription["endpoint"] == "${var.alarm_email}"
    assert LOCALS["alarm_actions"] == '${var.alarm_email == "" ? [] : [aws_sns_topic.alarms[0].arn]}'


def test_dashboard_shows_requests_latency_errors_and_cold_starts():
    widgets = str(LOCALS["dashboard_widgets"])
    for title in ("Requests", "Function duration (ms)", "Errors", "Cold starts"):
        assert title in widgets
    assert '["p50", "p90", "p99"]' in widgets
    assert "initDurationMs" in widgets
    assert (
        RESOURCES["aws_cloudwatch_dashboard.service"]["dashboard_body"]
        == "${jsonencode({widgets = local.dashboard_widgets})}"
    )


def test_logs_are_json_and_tracing_is_a_switch():
    function = RESOURCES["aws_lambda_function.service"]
    logging = function["logging_config"][0]
    assert logging["log_format"] == "JSON" and logging["application_log_level"] == "INFO"
    assert function["tracing_config"][0]["mode"] == '${var.tracing ? "Active" : "PassThrough"}'
    assert RESOURCES["aws_iam_role_policy.send_traces"]["count"] == "${var.tracing ? 1 : 0}"
    assert terraform_variables()["tracing"]["default"] is False


def test_snapstart_is_a_switch_on_published_versions_with_nothing_aws_refuses_beside_it():
    function = RESOURCES["aws_lambda_function.service"]
    [snap] = [block["snap_start"] for block in function["dynamic"] if "snap_start" in block]
    assert snap["for_each"] == "${var.snapstart ? [1] : []}"
    assert snap["content"][0]["apply_on"] == "PublishedVersions"
    assert terraform_variables()["snapstart"]["default"] is False
    # AWS refuses SnapStart with provisioned concurrency, EFS and more than 512 MB of /tmp.
    assert not [name for name in RESOURCES if name.startswith("aws_lambda_provisioned_concurrency_config.")]
    assert "file_system_config" not in function
    assert all(block["size"] <= 512 for block in function.get("ephemeral_storage", []))
