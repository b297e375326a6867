"""main.tf against the AWS provider's real schema: a stand-in for `terraform validate`.

The schema is the pinned package of tests/provider-schema.json, fetched into .cache/ on first
use (see tests/provider_schema.py). Mutated copies of main.tf prove each check can fail.
"""

import re

import pytest

from tests import provider_schema
from tests.provider_schema import (
    SchemaUnavailable,
    check_config,
    fetch_package,
    load_pin,
    parse_terraform,
    schema_from_document,
    tarball_name,
    version_admits,
)

MAIN_TF = provider_schema.PROJECT_ROOT / "main.tf"


@pytest.fixture(scope="session")
def aws_schema():
    """The pinned AWS provider schema; a failure (never a skip) when it cannot be had."""
    try:
        return provider_schema.pinned_schema()
    except SchemaUnavailable as error:
        pytest.fail(f"the AWS provider schema is unavailable: {error}", pytrace=False)


def check_text(text: str, schema):
    """Check Terraform source text against a schema."""
    return check_config(parse_terraform(text), schema)


def declared_blocks(text: str) -> int:
    """How many resource and data blocks Terraform text declares, counted from the parse alone."""
    document = parse_terraform(text)
    return sum(
        1
        for kind in ("resource", "data")
        for entry in document.get(kind, [])
        for named in entry.values()
        for name in named
        if name != "__is_block__"
    )


################################################################################
# The committed main.tf
################################################################################


def test_main_tf_fits_the_provider_schema(aws_schema, capsys):
    text = MAIN_TF.read_text()
    report = check_text(text, aws_schema)
    coverage = report.coverage
    with capsys.disabled():
        print(
            f"\nmain.tf vs {aws_schema.address} {aws_schema.version}: {coverage.resources} resources, "
            f"{coverage.data_sources} data sources, {coverage.providers} provider block, "
            f"{coverage.arguments} arguments, {coverage.blocks} nested blocks, "
            f"{coverage.references} references checked ({coverage.skipped} of other providers skipped); "
            f"{len(report.problems)} problems"
        )
    assert report.problems == []
    assert coverage.resources + coverage.data_sources + coverage.skipped == declared_blocks(text)
    assert coverage.resources > 0 and coverage.data_sources > 0 and coverage.providers == 1
    assert coverage.arguments >= 3 * coverage.resources
    assert coverage.blocks > 0 and coverage.references > 0


def test_main_tf_requires_a_provider_version_the_schema_is_of(aws_schema):
    document = parse_terraform(MAIN_TF.read_text())
    entry = document["terraform"][0]["required_providers"][0]["aws"]
    assert aws_schema.address.endswith(entry["source"])
    assert version_admits(entry["version"], aws_schema.version)


################################################################################
# Mutated copies of main.tf: each must be reported, naming the block and the argument
################################################################################

LAMBDA = 'resource "aws_lambda_function" "service"'


def edit_block(text: str, header: str | None, pattern: str, replacement: str) -> str:
    """main.tf's text with one regex substitution in the top-level block `header { ... }` (None: anywhere)."""
    start, end = 0, len(text)
    if header is not None:
        start = text.find(header + " {")
        assert start != -1, f"main.tf no longer has `{header}`: update this mutation"
        end = text.index("\n}\n", start) + 3
    edited = re.sub(pattern, replacement, text[start:end], count=1, flags=re.M)
    assert edited != text[start:end], f"`{pattern}` matches nothing in `{header}`: update this mutation"
    return text[:start] + edited + text[end:]


MUTATIONS = {
    "misspelled argument": (
        LAMBDA,
        r"^(\s*)memory_size(\s*=)",
        r"\1memory_szie\2",
        ["aws_lambda_function.service", 'unsupported argument "memory_szie"', 'did you mean "memory_size"'],
    ),
    "nonexistent resource type": (
        'resource "aws_cloudwatch_log_group" "api"',
        r'^resource "aws_cloudwatch_log_group"',
        'resource "aws_cloudwatch_loggroup"',
        [
            "aws_cloudwatch_loggroup.api",
            '"aws_cloudwatch_loggroup" does not exist',
            'did you mean "aws_cloudwatch_log_group"',
        ],
    ),
    "missing required argument": (
        LAMBDA,
        r"^\s*role\s*=.*\n",
        "",
        ["aws_lambda_function.service", 'missing required argument "role"'],
    ),
    "computed-only attribute set": (
        LAMBDA,
        r"^(\s*)(function_name\s*=.*\n)",
        r'\1\2\1invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/x"\n',
        ["aws_lambda_function.service", '"invoke_arn" is computed-only'],
    ),
    "bad attribute reference": (
        None,
        r"aws_lambda_function\.service\.function_name\b",
        "aws_lambda_function.service.function_nam",
        ["aws_lambda_function.service", 'no attribute "function_nam"', 'did you mean "function_name"'],
    ),
    "bad data source attribute reference": (
        LAMBDA,
        r"data\.aws_ecr_image\.service\.image_digest",
        "data.aws_ecr_image.service.digest",
        ["data.aws_ecr_image.service", 'no attribute "digest"'],
    ),
    "misspelled nested block": (
        LAMBDA,
        r"^(\s*)logging_config(\s*\{)",
        r"\1loging_config\2",
        ["aws_lambda_function.service", 'unsupported block type "loging_config"', 'did you mean "logging_config"'],
    ),
    "misspelled argument in a nested block": (
        LAMBDA,
        r"^(\s*)log_group(\s*=)",
        r"\1log_grup\2",
        ["aws_lambda_function.service.logging_config", 'unsupported argument "log_grup"'],
    ),
    "missing required argument in a nested block": (
        LAMBDA,
        r"^\s*log_format\s*=.*\n",
        "",
        ["aws_lambda_function.service.logging_config", 'missing required argument "log_format"'],
    ),
    "misspelled dynamic block": (
        'resource "aws_apigatewayv2_api" "service"',
        r'dynamic "cors_configuration"',
        'dynamic "cors_config"',
        ["aws_apigatewayv2_api.service", 'unsupported block type "cors_config"'],
    ),
    "misspelled argument in a dynamic block's content": (
        'resource "aws_apigatewayv2_api" "service"',
        r"^(\s*)max_age(\s*=)",
        r"\1max_agee\2",
        ["aws_apigatewayv2_api.service.cors_configuration", 'unsupported argument "max_agee"'],
    ),
    "block written as an argument": (
        LAMBDA,
        r"^(\s*)environment\s*\{",
        r"\1environment = {",
        ["aws_lambda_function.service", '"environment" is a block'],
    ),
    "reference to an undeclared resource": (
        'resource "aws_iam_role_policy" "write_own_logs"',
        r"aws_iam_role\.lambda\.id",
        "aws_iam_role.lambda_role.id",
        ["aws_iam_role.lambda_role", "not declared"],
    ),
    "misspelled data source argument": (
        'data "aws_ecr_image" "service"',
        r"^(\s*)image_tag(\s*=)",
        r"\1image_tagg\2",
        ["data.aws_ecr_image.service", 'unsupported argument "image_tagg"'],
    ),
    "misspelled lifecycle argument": (
        'resource "aws_apigatewayv2_api" "service"',
        r"^(\s*)precondition(\s*\{)",
        r"\1pre_condition\2",
        ["aws_apigatewayv2_api.service", 'unsupported lifecycle argument "pre_condition"'],
    ),
    "provider constraint that excludes the schema's version": (
        "terraform",
        r'^(\s*version\s*=\s*)"[^"]*"',
        r'\1"~> 5.40"',
        ["required_providers.aws", "'~> 5.40' does not admit"],
    ),
}


@pytest.fixture(scope="module")
def main_tf_baseline(aws_schema):
    """main.tf's text and the problems it has unmutated (none, if the first test passes)."""
    text = MAIN_TF.read_text()
    return text, set(check_text(text, aws_schema).problems)


@pytest.mark.parametrize("name", MUTATIONS)
def test_a_mutated_main_tf_is_reported(name, aws_schema, main_tf_baseline):
    header, pattern, replacement, expected = MUTATIONS[name]
    original, before = main_tf_baseline
    problems = check_text(edit_block(original, header, pattern, replacement), aws_schema).problems
    new = [problem for problem in problems if problem not in before]
    assert any(all(piece in problem for piece in expected) for problem in new), (
        f"{name}: no new problem names all of {expected}; new problems: {new}"
    )


################################################################################
# The checker is driven by the schema, so resources main.tf will gain are checked too
################################################################################

PLANNED = """
resource "aws_sns_topic" "planned" {
  name = "${var.deployment_name}-alarms"
}

resource "aws_sns_topic_subscription" "planned" {
  topic_arn = aws_sns_topic.planned.arn
  protocol  = "email"
  endpoint  = "ops@example.com"
}

resource "aws_lambda_alias" "planned" {
  name             = "live"
  function_name    = aws_lambda_function.service.function_name
  function_version = aws_lambda_function.service.version
}

resource "aws_lambda_function_url" "planned" {
  function_name      = aws_lambda_function.service.function_name
  qualifier          = aws_lambda_alias.planned.name
  authorization_type = "NONE"
  cors {
    allow_origins = ["https://example.com"]
    allow_methods = ["POST"]
  }
}

resource "aws_cloudwatch_metric_alarm" "planned" {
  alarm_name          = "${var.deployment_name}-errors"
  comparison_operator = "GreaterThanThreshold"
  evaluation_periods  = 1
  metric_name         = "Errors"
  namespace           = "AWS/Lambda"
  period              = 60
  statistic           = "Sum"
  threshold           = 0
  dimensions          = { FunctionName = aws_lambda_function.service.function_name }
  alarm_actions       = [aws_sns_topic.planned.arn]
}

resource "aws_cloudwatch_dashboard" "planned" {
  dashboard_name = var.deployment_name
  dashboard_body = jsonencode({ widgets = [] })
}

resource "aws_codedeploy_app" "planned" {
  name             = var.deployment_name
  compute_platform = "Lambda"
}

resource "aws_codedeploy_deployment_group" "planned" {
  app_name               = aws_codedeploy_app.planned.name
  deployment_group_name  = var.deployment_name
  service_role_arn       = aws_iam_role.lambda.arn
  deployment_config_name = "CodeDeployDefault.LambdaCanary10Percent5Minutes"
  deployment_style {
    deployment_option = "WITH_TRAFFIC_CONTROL"
    deployment_type   = "BLUE_GREEN"
  }
  auto_rollback_configuration {
    enabled = true
    events  = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
  }
  alarm_configuration {
    alarms  = [aws_cloudwatch_metric_alarm.planned.alarm_name]
    enabled = true
  }
}

output "planned_url" {
  value = aws_lambda_function_url.planned.function_url
}

output "planned_alias" {
  value = aws_lambda_alias.planned.invoke_arn
}

resource "terraform_data" "planned" {
  input = aws_lambda_alias.planned.arn
}
"""


def test_main_tf_with_resources_of_the_kinds_it_will_gain_fits_the_schema(aws_schema, tmp_path):
    planned = tmp_path / "planned.tf"
    planned.write_text(PLANNED)
    alone = provider_schema.check_files([MAIN_TF], aws_schema).coverage
    report = provider_schema.check_files([MAIN_TF, planned], aws_schema)
    assert report.problems == []
    assert (report.coverage.resources, report.coverage.skipped) == (alone.resources + 8, alone.skipped + 1)
    assert report.coverage.references >= alone.references + 12


def test_a_mistake_in_a_second_file_of_the_module_is_reported(aws_schema, tmp_path):
    planned = tmp_path / "planned.tf"
    planned.write_text(PLANNED.replace('  protocol  = "email"\n', ""))
    problems = provider_schema.check_files([MAIN_TF, planned], aws_schema).problems
    assert problems == [
        'aws_sns_topic_subscription.planned: missing required argument "protocol" '
        f"(resource schema of hashicorp/aws {aws_schema.version})"
    ]


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
    assert lambda_blocks["logging_config"]["block"]["attributes"]["log_format"] == {"required": True}
    assert "variables" in lambda_blocks["environment"]["block"]["attributes"]
    assert "metric_query" in aws_schema.resources["aws_cloudwatch_metric_alarm"]["block_types"]
    assert {"image_digest", "image_uri"} <= set(aws_schema.data_sources["aws_ecr_image"]["attributes"])
    assert "statement" in aws_schema.data_sources["aws_iam_policy_document"]["block_types"]
    assert "region" in aws_schema.provider["attributes"]


def test_schema_is_the_pinned_provider_version(aws_schema):
    pin = load_pin()
    assert (aws_schema.address, aws_schema.version) == (pin["provider"], pin["provider_version"])
    assert len(aws_schema.resources) > 1500 and len(aws_schema.data_sources) > 600


@pytest.mark.unit
def test_a_schema_in_terraform_providers_schema_layout_is_checked_alike():
    document = {
        "format_version": "1.0",
        "provider_schemas": {
            "registry.terraform.io/hashicorp/aws": {
                "provider": {"block": {"attributes": {"region": {"type": "string", "optional": True}}}},
                "resource_schemas": {
                    "aws_thing": {
                        "version": 0,
                        "block": {
                            "attributes": {
                                "name": {"type": "string", "required": True},
                                "arn": {"type": "string", "computed": True},
                            },
                            "block_types": {
                                "part": {
                                    "nesting_mode": "list",
                                    "max_items": 1,
                                    "block": {"attributes": {"size": {"type": "number", "optional": True}}},
                                }
                            },
                        },
                    }
                },
            }
        },
    }
    schema = schema_from_document(document, "registry.terraform.io/hashicorp/aws", "6.1.0")
    text = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "~> 6.0" }
  }
}
resource "aws_thing" "a" {
  arn = "x"
  part { sise = 1 }
}
output "o" { value = aws_thing.a.nmae }
moved {
  from = aws_thing.old
  to   = aws_thing.a
}
"""
    problems = check_text(text, schema).problems
    assert len(problems) == 4, problems
    for piece in (
        'missing required argument "name"',
        '"arn" is computed-only',
        'aws_thing.a.part: unsupported argument "sise"',
        'no attribute "nmae"',
    ):
        assert any(piece in problem for problem in problems), (piece, problems)


################################################################################
# Version constraints and fetching
################################################################################


@pytest.mark.unit
@pytest.mark.parametrize(
    ("constraint", "version", "admitted"),
    [
        (">= 5.40, < 7.0", "6.66.0", True),
        (">= 5.40, < 7.0", "7.0.0", False),
        (">= 5.40, < 7.0", "5.39.9", False),
        ("~> 6.0", "6.66.0", True),
        ("~> 5.40", "6.0.0", False),
        ("~> 6.2.1", "6.2.9", True),
        ("~> 6.2.1", "6.3.0", False),
        ("~> 6", "6.99.0", True),
        ("6.25.0", "6.25.0", True),
        ("!= 6.25.0", "6.25.0", False),
        ("> 6.25", "6.25.1", True),
        ("<= 6", "6.0.1", False),
    ],
)
def test_version_constraints_follow_terraform(constraint, version, admitted):
    assert version_admits(constraint, version) is admitted


@pytest.mark.unit
def test_a_version_constraint_that_is_not_one_is_refused():
    with pytest.raises(ValueError, match="not a version constraint"):
        version_admits(">= six", "6.0.0")


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
