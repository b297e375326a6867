"""The AWS provider's schema as tests/provider_schema.py reads it back out of the pinned bindings.

Terraform core checks main.tf against it (tests/deploy/test_terraform_core.py); these tests pin
what the reading gives for types whose schema is known: required and computed-only attributes,
attribute types, nested blocks, data sources, and the pinned version. The package is fetched
into .cache/ on first use.
"""

import re

import pytest

from tests import provider_schema
from tests.provider_schema import SchemaUnavailable, fetch_package, load_pin, tarball_name


@pytest.fixture(scope="session")
def aws_schema():
    """The pinned AWS provider schema; a failure (never a skip) when it cannot be had."""
    try:
        return provider_schema.pinned_schema()
    except SchemaUnavailable as error:
        pytest.fail(f"the AWS provider schema is unavailable: {error}", pytrace=False)


@pytest.mark.parametrize(
    ("resource", "required", "computed_only"),
    [
        ("aws_lambda_alias", {"function_name", "function_version", "name"}, {"arn", "invoke_arn"}),
        ("aws_sns_topic", set(), {"arn", "owner"}),
        ("aws_sns_topic_subscription", {"endpoint", "protocol", "topic_arn"}, {"arn", "owner_id"}),
        ("aws_lambda_function_url", {"authorization_type", "function_name"}, {"function_url", "url_id"}),
        ("aws_cloudwatch_dashboard", {"dashboard_body", "dashboard_name"}, {"dashboard_arn"}),
        ("aws_codedeploy_deployment_group", {"app_name", "deployment_group_name", "service_role_arn"}, {"arn"}),
        ("aws_lambda_function", {"function_name", "role"}, {"arn", "invoke_arn", "qualified_arn", "version"}),
        ("aws_iam_role", {"assume_role_policy"}, {"arn", "unique_id"}),
    ],
)
def test_schema_reads_required_and_computed_only_attributes(aws_schema, resource, required, computed_only):
    attributes = aws_schema.resources[resource]["attributes"]
    assert {name for name, value in attributes.items() if value.get("required")} == required
    assert computed_only <= {
        name for name, value in attributes.items() if value.get("computed") and not value.get("optional")
    }


def test_schema_reads_nested_blocks_and_data_sources(aws_schema):
    lambda_blocks = aws_schema.resources["aws_lambda_function"]["block_types"]
    assert lambda_blocks["environment"]["max_items"] == 1
    assert lambda_blocks["logging_config"]["block"]["attributes"]["log_format"] == {"required": True, "type": "string"}
    assert "variables" in lambda_blocks["environment"]["block"]["attributes"]
    assert "metric_query" in aws_schema.resources["aws_cloudwatch_metric_alarm"]["block_types"]
    assert {"image_digest", "image_uri"} <= set(aws_schema.data_sources["aws_ecr_image"]["attributes"])
    assert "statement" in aws_schema.data_sources["aws_iam_policy_document"]["block_types"]
    assert "region" in aws_schema.provider["attributes"]


def test_schema_is_the_pinned_provider_version(aws_schema):
    pin = load_pin()
    assert (aws_schema.address, aws_schema.version) == (pin["provider"], pin["provider_version"])
    assert len(aws_schema.resources) > 1500 and len(aws_schema.data_sources) > 600


@pytest.mark.parametrize(
    ("resource", "attribute", "kind"),
    [
        ("aws_lambda_function", "memory_size", "number"),
        ("aws_lambda_function", "publish", "bool"),
        ("aws_lambda_function", "architectures", ["list", "string"]),
        ("aws_lambda_function", "tags", ["map", "string"]),
        ("aws_lambda_function", "tags_all", ["map", "string"]),
        ("aws_lambda_function", "version", "string"),
        ("aws_iam_role", "managed_policy_arns", ["set", "string"]),
        ("aws_apigatewayv2_stage", "auto_deploy", "bool"),
    ],
)
def test_schema_reads_attribute_types(aws_schema, resource, attribute, kind):
    assert aws_schema.resources[resource]["attributes"][attribute]["type"] == kind


def test_schema_types_the_providers_own_arguments(aws_schema):
    """The provider block's arguments have no getters: their TypeScript declarations type them."""
    attributes = aws_schema.provider["attributes"]
    assert attributes["region"]["type"] == "string"
    assert attributes["max_retries"]["type"] == "number"
    assert attributes["skip_credentials_validation"]["type"] == "bool"


def test_schema_types_nearly_every_attribute(aws_schema):
    """Only attributes the bindings give as "any" go untyped (served as dynamic)."""
    untyped, total = 0, 0

    def walk(block):
        nonlocal untyped, total
        for attribute in block.get("attributes", {}).values():
            total += 1
            untyped += "type" not in attribute and "nested_type" not in attribute
        for nested in block.get("block_types", {}).values():
            walk(nested["block"])

    for block in [aws_schema.provider, *aws_schema.resources.values(), *aws_schema.data_sources.values()]:
        walk(block)
    assert total > 30_000 and untyped < 50, (untyped, total)


@pytest.mark.unit
def test_a_cached_package_with_the_wrong_bytes_is_refused(tmp_path):
    pin = load_pin()
    (tmp_path / tarball_name(pin)).write_bytes(b"not the pinned package")
    with pytest.raises(SchemaUnavailable, match="differs from the pinned"):
        fetch_package(pin, tmp_path)


def test_a_package_that_cannot_be_fetched_fails_with_its_name(tmp_path):
    pin = {**load_pin(), "version": "0.0.0-no-such-version"}
    with pytest.raises(SchemaUnavailable, match=re.escape(f"cannot fetch {pin['package']}@0.0.0-no-such-version")):
        fetch_package(pin, tmp_path, timeout=120)
