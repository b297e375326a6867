"""The deployment's security checklist, each item checked where it is enforced."""

import re
import subprocess

import hcl2
import pytest

from aws_lambda_operator.terraform_config import SpecError, tfvars_text
from src.config import PROJECT_ROOT
from tests.terraform_files import PLAIN, committed_tfvars, locals_block, terraform_resources, terraform_variables

pytestmark = pytest.mark.unit


def test_throttling_is_on_by_default():
    values = committed_tfvars()
    assert values["throttling_rate_limit"] > 0 and values["throttling_burst_limit"] > 0
    settings = terraform_resources()["aws_apigatewayv2_stage.default"]["default_route_settings"]
    settings = settings[0] if isinstance(settings, list) else settings
    assert settings["throttling_rate_limit"] == "${var.throttling_rate_limit}"
    assert settings["throttling_burst_limit"] == "${var.throttling_burst_limit}"


def map_indexed_by(expression: str, index: str) -> dict:
    """The object literal of a parsed ``${{...}[index]}`` expression, itself parsed."""
    match = re.fullmatch(r"\$\{(\{.*\})\[" + re.escape(index) + r"\]\}", expression, re.DOTALL)
    assert match, expression
    return hcl2.loads(f"value = {match.group(1)}", serialization_options=PLAIN)["value"]


def test_authentication_is_off_by_default_and_one_setting_away():
    values = committed_tfvars()
    assert values["auth"] == "none"
    route = terraform_resources()["aws_apigatewayv2_route.service"]
    assert route["authorization_type"] == (
        '${contains(local.protected_routes, each.value) ? local.authorization_type : "NONE"}'
    )
    assert route["authorizer_id"] == (
        '${contains(local.protected_routes, each.value) && var.auth == "jwt" '
        "? aws_apigatewayv2_authorizer.jwt[0].id : null}"
    )
    assert locals_block()["protected_routes"] == '${toset(["ANY /classify", "ANY /predict_proba"])}'
    assert map_indexed_by(locals_block()["authorization_type"], "var.auth") == {
        "none": "NONE",
        "iam": "AWS_IAM",
        "jwt": "JWT",
    }
    authorizer = terraform_resources()["aws_apigatewayv2_authorizer.jwt"]
    assert authorizer["count"] == '${local.use_api && var.auth == "jwt" ? 1 : 0}'
    assert authorizer["jwt_configuration"] == [{"issuer": "${var.jwt_issuer}", "audience": "${var.jwt_audience}"}]
    jwt = tfvars_text("svc", {"auth": "jwt", "jwt_issuer": "https://issuer.example.com", "jwt_audience": ["api"]})
    assert hcl2.loads(jwt, serialization_options=PLAIN)["auth"] == "jwt"


def test_cors_is_off_by_default_and_configurable():
    values = committed_tfvars()
    assert values["cors_allow_origins"] == []
    api = terraform_resources()["aws_apigatewayv2_api.service"]
    [cors] = [block["cors_configuration"] for block in api["dynamic"] if "cors_configuration" in block]
    assert cors["for_each"] == "${length(var.cors_allow_origins) > 0 ? [1] : []}"
    assert cors["content"][0]["allow_origins"] == "${var.cors_allow_origins}"


def test_logs_are_kept_for_a_bounded_time():
    for group in ("aws_cloudwatch_log_group.lambda", "aws_cloudwatch_log_group.api"):
        assert terraform_resources()[group]["retention_in_days"] == "${var.log_retention_days}"
    assert "validation" in terraform_variables()["log_retention_days"]


@pytest.mark.parametrize("name", ["DB_PASSWORD", "API_KEY", "github_token", "MY_SECRET", "AWS_ACCESS_KEY_ID"])
def test_secret_looking_environment_variables_are_refused(name):
    with pytest.raises(SpecError, match="plain text"):
        tfvars_text("svc", {"env": {name: "x"}})


def test_ordinary_environment_variables_pass():
    text = tfvars_text("svc", {"env": {"LOG_LEVEL": "INFO", "XGB_ACCESS_LOG": "1"}})
    assert '"LOG_LEVEL" = "INFO"' in text


def git(*args):
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True)


def test_no_state_credentials_or_build_output_is_tracked():
    tracked = git("ls-files").stdout.splitlines()
    assert tracked, "run inside the git checkout"
    forbidden = (".tfstate", ".tfstate.backup", ".pem", ".env", "credentials", ".terraform/")
    assert not [path for path in tracked if any(mark in path for mark in forbidden)]


@pytest.mark.parametrize(
    "path",
    [
        "terraform.tfstate",
        "terraform.tfstate.backup",
        ".terraform/providers/x",
        "deploy.tfplan",
        ".env",
        "key.pem",
        ".aws/credentials",
        ".venv/bin/python",
        "models/x.bentomodel",
        "data/data.csv",
        "reports/metrics.json",
    ],
)
def test_gitignore_guards_state_credentials_and_generated_files(path):
    assert git("check-ignore", "--no-index", "-q", path).returncode == 0, f"{path} is not ignored"
