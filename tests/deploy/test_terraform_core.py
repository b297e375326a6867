"""main.tf under the real Terraform core: `terraform init`, `validate` and `plan -var-file=bentoctl.tfvars`.

The AWS provider is tests/aws_provider_plugin.py serving the pinned schema (installed from a
filesystem mirror by tests/terraform_core.py); everything else is Terraform itself: the version
constraint, argument and block checks, references, variable validation, preconditions, and the
graph each setting gives. Mutated copies of main.tf show that each check can fail.
"""

from __future__ import annotations

import json
import re

import pytest

from deploy.deployment import operator_config
from src import config, reference
from src.generate_data import make_dataset
from src.train import feature_importance, fit, predict_proba
from tests import terraform_core
from tests.deploy_harness import copy_deployment
from tests.terraform_core import PlanRefused, Workspace

pytestmark = pytest.mark.skipif(terraform_core.TERRAFORM is None, reason="no terraform binary on PATH")
MAIN_TF = terraform_core.PROJECT_ROOT / "main.tf"
LAMBDA = 'resource "aws_lambda_function" "service"'


@pytest.fixture(scope="module")
def cli_config(tmp_path_factory):
    """The CLI configuration that installs the test provider (a failure, never a skip, without the schema)."""
    problem = terraform_core.missing_tool()
    if problem:
        pytest.fail(problem, pytrace=False)
    return terraform_core.install_provider(tmp_path_factory.mktemp("terraform-provider"))


@pytest.fixture(scope="module")
def deployed():
    """deployed.auto.tfvars.json as `make deploy` writes it, with a drift reference of a real model."""
    frame = make_dataset(n_rows=3_000, seed=5)
    x, y = frame[list(config.FEATURE_NAMES)].to_numpy(), frame[config.TARGET_NAME].to_numpy()
    booster = fit(x[:2_000], y[:2_000], rounds=10, params={"objective": "binary:logistic", "nthread": 1})
    stored = reference.build(x[:2_000], predict_proba(booster, x[2_000:]), feature_importance(booster)).to_metadata()
    return {
        "image_repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/xgb-classifier",
        "image_version": "0123abcd-x86_64",
        "bento_tag": "xgb_classifier:abc123",
        "model_tag": "xgb_model:def456",
        "data_sha256": "ab" * 32,
        "drift_reference": {key: stored[key] for key in ("series", "shares", "smoothing")},
    }


@pytest.fixture
def make_workspace(tmp_path, cli_config, deployed):
    """A deployment folder (main.tf, or a given text of it, bentoctl.tfvars, deployed values), initialised."""
    made = []

    def make(main_tf: str | None = None, init: bool = True, **files: str) -> Workspace:
        folder = copy_deployment(tmp_path / f"deployment-{len(made)}")
        (folder / "deployed.auto.tfvars.json").write_text(json.dumps(deployed))
        if main_tf is not None:
            (folder / "main.tf").write_text(main_tf)
        for name, text in files.items():
            (folder / name).write_text(text)
        workspace = Workspace(folder, cli_config)
        if init:
            workspace.init()
        made.append(workspace)
        return workspace

    return make


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


def changes(plan: dict) -> dict[str, dict]:
    """The plan's resource changes by address: {address: change}."""
    return {change["address"]: change["change"] for change in plan["resource_changes"]}


def created(plan: dict, kind: str) -> dict[str, dict]:
    """What the plan creates of one resource type: {address: planned values}."""
    return {
        change["address"]: change["change"]["after"]
        for change in plan["resource_changes"]
        if change["type"] == kind and change["change"]["actions"] == ["create"]
    }


################################################################################
# validate: the committed main.tf, and mutated copies that must be refused
################################################################################


def test_main_tf_validates(make_workspace):
    workspace = make_workspace(init=False)
    assert refusals(workspace) == []
    verdict = workspace.validate()
    assert verdict["valid"], verdict["diagnostics"]
    assert verdict["diagnostics"] == []


def test_init_installs_the_pinned_provider_version(make_workspace):
    workspace = make_workspace()
    lock = (workspace.folder / ".terraform.lock.hcl").read_text()
    version = terraform_core.provider_schema.load_pin()["provider_version"]
    assert re.search(rf'provider "registry.terraform.io/hashicorp/aws" {{\s*version\s*=\s*"{re.escape(version)}"', lock)


# Each: (the top-level block to edit or None, the regex, its replacement, what core's error says).
MUTATIONS = {
    "misspelled argument": (
        LAMBDA,
        r"^(\s*)memory_size(\s*=)",
        r"\1memory_szie\2",
        ["Unsupported argument", '"memory_szie" is not expected here', 'Did you mean "memory_size"'],
    ),
    "nonexistent resource type": (
        'resource "aws_cloudwatch_log_group" "api"',
        r'^resource "aws_cloudwatch_log_group"',
        'resource "aws_cloudwatch_loggroup"',
        ["Invalid resource type", 'does not support resource type "aws_cloudwatch_loggroup"'],
    ),
    "missing required argument": (
        LAMBDA,
        r"^\s*role\s*=.*\n",
        "",
        ["Missing required argument", '"role" is required'],
    ),
    "computed-only attribute set": (
        LAMBDA,
        r"^(\s*)(function_name\s*=.*\n)",
        r'\1\2\1invoke_arn = "arn:aws:apigateway:us-east-1:lambda:path/x"\n',
        ["Invalid Configuration for Read-Only Attribute", "invoke_arn"],
    ),
    "wrong type of value": (
        LAMBDA,
        r"^(\s*)memory_size(\s*=).*$",
        r'\1memory_size\2 ["a lot"]',
        ["Incorrect attribute value type", "memory_size", "number required"],
    ),
    "bad attribute reference": (
        None,
        r"aws_lambda_function\.service\.function_name\b",
        "aws_lambda_function.service.function_nam",
        ["Unsupported attribute", '"function_nam"', 'Did you mean "function_name"'],
    ),
    "bad data source attribute reference": (
        LAMBDA,
        r"data\.aws_ecr_image\.service\.image_digest",
        "data.aws_ecr_image.service.digest",
        ["Unsupported attribute", '"digest"'],
    ),
    "misspelled nested block": (
        LAMBDA,
        r"^(\s*)logging_config(\s*\{)",
        r"\1loging_config\2",
        [
            "Unsupported block type",
            'Blocks of type "loging_config" are not expected here',
            'Did you mean "logging_config"',
        ],
    ),
    "misspelled argument in a nested block": (
        LAMBDA,
        r"^(\s*)log_group(\s*=)",
        r"\1log_grup\2",
        ["Unsupported argument", '"log_grup" is not expected here'],
    ),
    "missing required argument in a nested block": (
        LAMBDA,
        r"^\s*log_format\s*=.*\n",
        "",
        ["Missing required argument", '"log_format" is required'],
    ),
    "two blocks where one is allowed": (
        LAMBDA,
        r"^(\s*)logging_config(\s*\{)",
        '\\1logging_config {\n    log_format = "Text"\n  }\n\\1logging_config\\2',
        ["Too many logging_config blocks", "No more than 1"],
    ),
    "misspelled dynamic block": (
        'resource "aws_apigatewayv2_api" "service"',
        r'dynamic "cors_configuration"',
        'dynamic "cors_config"',
        ["Unsupported block type", 'Blocks of type "cors_config" are not expected here'],
    ),
    "misspelled argument in a dynamic block's content": (
        'resource "aws_apigatewayv2_api" "service"',
        r"^(\s*)max_age(\s*=)",
        r"\1max_agee\2",
        ["Unsupported argument", '"max_agee" is not expected here'],
    ),
    "block written as an argument": (
        LAMBDA,
        r"^(\s*)environment\s*\{",
        r"\1environment = {",
        ["Unsupported argument", '"environment" is not expected here', "Did you mean to define a block"],
    ),
    "reference to an undeclared resource": (
        'resource "aws_iam_role_policy" "write_own_logs"',
        r"aws_iam_role\.lambda\.id",
        "aws_iam_role.lambda_role.id",
        ["Reference to undeclared resource", '"aws_iam_role" "lambda_role" has not been declared'],
    ),
    "misspelled data source argument": (
        'data "aws_ecr_image" "service"',
        r"^(\s*)image_tag(\s*=)",
        r"\1image_tagg\2",
        ["Unsupported argument", '"image_tagg" is not expected here'],
    ),
    "misspelled lifecycle argument": (
        'resource "aws_apigatewayv2_api" "service"',
        r"^(\s*)precondition(\s*\{)",
        r"\1pre_condition\2",
        ["Unsupported block type", 'Blocks of type "pre_condition" are not expected here'],
    ),
}


def diagnostics_text(verdict: dict) -> list[str]:
    return [f"{item['summary']}: {item.get('detail', '')}" for item in verdict["diagnostics"]]


def refusals(workspace: Workspace) -> list[str]:
    """What core says is wrong with the folder's configuration: at init (what it parses there,
    such as lifecycle blocks), else at validate; [] when both accept it."""
    try:
        workspace.init()
    except PlanRefused as refused:
        return refused.messages
    return diagnostics_text(workspace.validate())


@pytest.mark.parametrize("name", MUTATIONS)
def test_a_mutated_main_tf_is_refused(name, make_workspace):
    header, pattern, replacement, expected = MUTATIONS[name]
    found = refusals(make_workspace(edit_block(MAIN_TF.read_text(), header, pattern, replacement), init=False))
    assert any(all(piece in text for piece in expected) for text in found), (
        f"{name}: no diagnostic names all of {expected}: {found}"
    )


def test_a_provider_constraint_that_excludes_the_pinned_version_fails_init(make_workspace):
    text = edit_block(MAIN_TF.read_text(), "terraform", r'^(\s*version\s*=\s*)"[^"]*"', r'\1"~> 5.40"')
    workspace = make_workspace(text, init=False)
    with pytest.raises(PlanRefused) as refused:
        workspace.init()
    assert any("Failed to query available provider packages" in message for message in refused.value.messages)
    assert "~> 5.40" in refused.value.output


def test_resources_of_the_kinds_main_tf_will_gain_validate(make_workspace):
    """The schema, not a list of main.tf's resources, is what core checks: other types pass and fail too."""
    assert refusals(make_workspace(init=False, **{"planned.tf": PLANNED})) == []
    found = refusals(make_workspace(init=False, **{"planned.tf": PLANNED.replace('  protocol  = "email"\n', "")}))
    assert any('"protocol" is required' in text for text in found), found


################################################################################
# plan: what each setting gives, as core plans it
################################################################################


def test_the_default_plan_serves_the_newest_version_through_the_http_api(make_workspace, deployed):
    plan = make_workspace().plan()
    planned = changes(plan)
    function = planned["aws_lambda_function.service"]["after"]
    assert function["image_uri"].startswith(deployed["image_repository"] + "@sha256:")
    assert function["tags"]["model"] == deployed["model_tag"]
    assert function["publish"] is True
    alias = planned["aws_lambda_alias.live"]
    assert alias["after"]["name"] == operator_config.ALIAS_NAME
    assert alias["after_unknown"]["function_version"] is True  # the version this apply publishes
    assert "aws_apigatewayv2_api.service[0]" in planned
    assert not created(plan, "aws_lambda_function_url")
    assert not created(plan, "aws_sns_topic")
    assert function["tracing_config"] == [{"mode": "PassThrough"}]


# Every setting that changes the graph, in a covering array: each access mode (endpoint and auth)
# with both values of canary, tracing and alarm email, and every pair of those three's values.
ACCESS = [
    ("http_api", "none"),
    ("http_api", "iam"),
    ("http_api", "jwt"),
    ("function_url", "none"),
    ("function_url", "iam"),
]
SWITCHES = [((0, 0, 0), (1, 1, 1)), ((0, 1, 1), (1, 0, 0)), ((1, 0, 1), (0, 1, 0)), ((1, 1, 0), (0, 0, 1))]
COMBINATIONS = [
    (endpoint, auth, *switches)
    for (endpoint, auth), pair in zip(ACCESS, [*SWITCHES, SWITCHES[0]], strict=True)
    for switches in pair
]
ISSUER = "https://issuer.example.com/pool"


def settings_of(endpoint: str, auth: str, canary: int, tracing: int, email: int) -> dict:
    settings = {"endpoint": endpoint, "auth": auth, "tracing": bool(tracing)}
    if auth == "jwt":
        settings |= {"jwt_issuer": ISSUER, "jwt_audience": ["client-a"]}
    if canary:
        settings |= {"canary_percent": 10, "canary_base_version": "3"}
    if email:
        settings["alarm_email"] = "ops@example.com"
    return settings


@pytest.mark.parametrize(("endpoint", "auth", "canary", "tracing", "email"), COMBINATIONS)
def test_each_combination_of_settings_plans_what_it_asks_for(make_workspace, endpoint, auth, canary, tracing, email):
    plan = make_workspace().plan(**settings_of(endpoint, auth, canary, tracing, email))
    planned = changes(plan)
    required = {"NONE": "none", "AWS_IAM": "iam", "JWT": "jwt"}
    server_errors = planned["aws_cloudwatch_metric_alarm.server_errors"]["after"]
    if endpoint == "http_api":
        assert not created(plan, "aws_lambda_function_url")
        routes = {
            after["route_key"]: after["authorization_type"]
            for after in created(plan, "aws_apigatewayv2_route").values()
        }
        assert required[routes["ANY /classify"]] == required[routes["ANY /predict_proba"]] == auth
        assert routes["GET /livez"] == routes["GET /readyz"] == routes["GET /"] == "NONE"
        authorizers = list(created(plan, "aws_apigatewayv2_authorizer").values())
        assert [a["jwt_configuration"] for a in authorizers] == (
            [[{"audience": ["client-a"], "issuer": ISSUER}]] if auth == "jwt" else []
        )
        assert (server_errors["namespace"], server_errors["metric_name"]) == ("AWS/ApiGateway", "5xx")
    else:
        assert not created(plan, "aws_apigatewayv2_api") and not created(plan, "aws_apigatewayv2_route")
        (url,) = created(plan, "aws_lambda_function_url").values()
        assert required[url["authorization_type"]] == auth
        assert url["qualifier"] == operator_config.ALIAS_NAME
        assert bool(created(plan, "aws_lambda_permission")) is (auth == "none")  # anyone may invoke
        assert (server_errors["namespace"], server_errors["metric_name"]) == ("AWS/Lambda", "Url5xxCount")
    assert ("aws_cloudwatch_metric_alarm.canary_errors[0]" in planned) is bool(canary)
    function = planned["aws_lambda_function.service"]["after"]
    assert function["tracing_config"] == [{"mode": "Active" if tracing else "PassThrough"}]
    assert ("aws_iam_role_policy.send_traces[0]" in planned) is bool(tracing)
    subscriptions = [(s["protocol"], s["endpoint"]) for s in created(plan, "aws_sns_topic_subscription").values()]
    assert subscriptions == ([("email", "ops@example.com")] if email else [])
    assert bool(created(plan, "aws_kms_key")) is bool(email)  # the topic is encrypted with its own key
    alarm = planned["aws_cloudwatch_metric_alarm.server_errors"]
    notifies = alarm["after_unknown"].get("alarm_actions") is True or bool(alarm["after"].get("alarm_actions"))
    assert notifies is bool(email)  # the topic's ARN, known after apply


def test_a_pinned_version_is_what_the_alias_serves(make_workspace):
    alias = changes(make_workspace().plan(pinned_version="4"))["aws_lambda_alias.live"]["after"]
    assert alias["function_version"] == "4"
    assert alias["description"].startswith("Pinned to version 4")


def test_a_canary_is_watched_by_its_own_alarm(make_workspace):
    """Whether the canary starts depends on the version this apply publishes (it must differ from
    the base), so core leaves the alias's version and weights to the apply; the alarm is planned."""
    plan = make_workspace().plan(canary_percent=10, canary_base_version="3")
    alias = changes(plan)["aws_lambda_alias.live"]
    assert alias["after_unknown"]["function_version"] is True
    assert alias["after_unknown"]["routing_config"]
    assert "aws_cloudwatch_metric_alarm.canary_errors[0]" in created(plan, "aws_cloudwatch_metric_alarm")


def test_no_canary_without_a_base_version(make_workspace):
    """The first deploy with canary_percent set: nothing to keep, the newest version serves."""
    alias = changes(make_workspace().plan(canary_percent=10))["aws_lambda_alias.live"]
    assert alias["after_unknown"]["function_version"] is True  # the version this apply publishes
    assert "function_version" not in alias["after"]


def test_batch_adds_the_state_machine(make_workspace):
    plan = make_workspace().plan(batch=True, batch_input="s3://in-bucket/in/", batch_output="s3://out-bucket/out/")
    (machine,) = created(plan, "aws_sfn_state_machine").values()
    assert machine["name"].startswith("xgb-classifier")
    assert created(plan, "aws_iam_role")


################################################################################
# plan: values main.tf refuses
################################################################################

REFUSED = {
    "a deployment name with upper case": ({"deployment_name": "Bad_Name"}, "deployment_name"),
    "a timeout API Gateway cannot wait for": ({"timeout": 30}, "timeout must be a whole number from 1 to 29"),
    "all traffic to a canary": ({"canary_percent": 100}, "canary_percent must be a whole number from 0 to 50"),
    "an unknown auth mode": ({"auth": "basic"}, "auth must be one of none, iam, jwt"),
    "jwt without an issuer": ({"auth": "jwt"}, 'auth = "jwt" needs jwt_issuer'),
    "jwt on a function URL": (
        {"auth": "jwt", "endpoint": "function_url", "jwt_issuer": "https://i.example.com", "jwt_audience": ["a"]},
        'auth = "jwt" needs endpoint = "http_api"',
    ),
    "batch without its prefixes": ({"batch": True}, "batch = true needs batch_input and batch_output"),
    "a version that is not one": ({"pinned_version": "latest"}, "pinned_version must be empty or a version number"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_plan_with_values_main_tf_refuses_fails(make_workspace, name):
    settings, message = REFUSED[name]
    with pytest.raises(PlanRefused) as refused:
        make_workspace().plan(**settings)
    assert message in refused.value.output.replace("\n", " "), refused.value.messages


def test_a_plan_without_deployed_values_is_refused(make_workspace):
    workspace = make_workspace()
    (workspace.folder / "deployed.auto.tfvars.json").unlink()
    with pytest.raises(PlanRefused) as refused:
        workspace.plan()
    assert "image_repository is not set" in refused.value.output.replace("\n", " ")


################################################################################
# The state in S3: init and plan against moto's S3 through Terraform's own S3 backend
################################################################################


def test_an_s3_backend_initialises_and_plans_against_s3(make_workspace, aws, tmp_path):
    import boto3

    from deploy.deployment import terraform_config

    bucket = "team-terraform-state"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    backend = terraform_config.backend_tf_text("xgb-classifier", {"state_bucket": bucket, "region": "us-east-1"})
    workspace = make_workspace(init=False, **{"backend.tf": backend})
    moto = tmp_path / "moto.s3.tfbackend"
    moto.write_text(
        f'endpoints = {{ s3 = "{aws}" }}\nuse_path_style = true\nskip_credentials_validation = true\n'
        "skip_requesting_account_id = true\nskip_metadata_api_check = true\n"
    )
    workspace.init(f"-backend-config={moto}")
    recorded = json.loads((workspace.folder / ".terraform" / "terraform.tfstate").read_text())["backend"]
    assert recorded["type"] == "s3"
    assert (recorded["config"]["bucket"], recorded["config"]["key"]) == (bucket, "xgb-classifier/terraform.tfstate")
    plan = workspace.plan(lock=True)  # the backend's use_lockfile: a lock object beside the state
    assert "aws_lambda_function.service" in changes(plan)
    assert not (workspace.folder / "terraform.tfstate").exists()
    left = boto3.client("s3", region_name="us-east-1").list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [item["Key"] for item in left if item["Key"].endswith(".tflock")] == []  # released
    lock = {"ID": "another-run", "Operation": "OperationTypeApply", "Who": "someone@elsewhere"}
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=bucket, Key="xgb-classifier/terraform.tfstate.tflock", Body=json.dumps(lock).encode()
    )
    with pytest.raises(PlanRefused) as refused:
        workspace.plan(lock=True)
    assert "Error acquiring the state lock" in refused.value.output
