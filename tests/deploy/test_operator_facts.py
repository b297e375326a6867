"""Facts of the deployment whose one home is the operator (deploy/aws-lambda-operator/operator_config.py)
and that main.tf, the local Lambda emulation and the texts for readers derive or restate.

- The request timeout rule and the alias's name: main.tf's locals are rendered from
  operator_config.py; Terraform (``terraform console``, tests/terraform_eval.py) must give what
  the Python rule gives for every timeout the schema allows, and what the emulation sets.
- The settings' defaults: the emulation's function configuration takes them from the schema.
- deployment_config.yaml's comments and docs/deploy.md's settings table restate limits and
  choices for readers; each range, bound or choice they name must be the schema's.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from aws_lambda_operator.terraform_config import operator_config
from deploy.lambda_runtime import FunctionConfiguration
from src.config import PROJECT_ROOT
from tests.terraform_eval import ALIAS, attributes, block, evaluate

pytestmark = pytest.mark.unit

CONFIG = operator_config()
SCHEMA = CONFIG.OPERATOR_SCHEMA


def allowed_timeouts() -> list[int]:
    rule = SCHEMA["timeout"]
    return list(range(rule["min"], rule["max"] + 1))


def test_terraform_and_the_emulation_set_the_request_timeout_by_the_operators_rule():
    emulated = FunctionConfiguration(name="svc", timeout_s=0, memory_mb=128, region="us-east-1")
    for timeout in allowed_timeouts():
        terraform = evaluate("local.function_env", deployment_name="svc", timeout=timeout)["XGB_REQUEST_TIMEOUT_S"]
        local = replace(emulated, timeout_s=float(timeout))
        assert float(terraform) == CONFIG.request_timeout_s(timeout), timeout
        assert float(local.lambda_env("127.0.0.1:9001")["XGB_REQUEST_TIMEOUT_S"]) == float(terraform), timeout


def test_the_rule_ends_requests_before_lambda_does_and_never_below_half():
    for timeout in allowed_timeouts():
        request = CONFIG.request_timeout_s(timeout)
        assert timeout / 2 <= request < timeout
        assert request == timeout - CONFIG.REQUEST_TIMEOUT_MARGIN_S or request == timeout / 2


def test_the_alias_terraform_creates_has_the_operators_name():
    name = attributes(block("resource", *ALIAS))["name"]
    assert evaluate(name, only_known=True) == CONFIG.ALIAS_NAME


def write_config(directory: Path, spec: str = "") -> Path:
    (directory / "deployment_config.yaml").write_text(
        f"api_version: v1\nname: svc\noperator:\n  name: {CONFIG.OPERATOR_NAME}\ntemplate: terraform\n{spec}"
    )
    return directory


def test_the_emulated_function_takes_the_schemas_defaults_for_keys_left_out(tmp_path: Path):
    configuration = FunctionConfiguration.from_project(write_config(tmp_path))
    assert (configuration.name, configuration.timeout_s, configuration.memory_mb, configuration.region) == (
        "svc",
        SCHEMA["timeout"]["default"],
        SCHEMA["memory_size"]["default"],
        SCHEMA["region"]["default"],
    )


def test_the_emulated_function_takes_the_values_given(tmp_path: Path):
    spec = "spec:\n  timeout: 3\n  memory_size: 2048\n  region: eu-west-1\n"
    configuration = FunctionConfiguration.from_project(write_config(tmp_path, spec))
    assert (configuration.timeout_s, configuration.memory_mb, configuration.region) == (3, 2048, "eu-west-1")
    assert float(configuration.lambda_env("x")["XGB_REQUEST_TIMEOUT_S"]) == CONFIG.request_timeout_s(3)


# ---------------------------------------------------------------------------- texts for readers


def number(text: str) -> float:
    return float(text.replace(",", ""))


def disagreements(key: str, note: str) -> list[str]:
    """What ``note`` (a comment or a table's notes on ``key``) says of the key's limits or choices
    that the schema does not: a range "N-M", "at most N", "at least N", or the choices named
    before any parenthesis ("or arm64", "none, iam or jwt")."""
    rule, found = SCHEMA[key], []
    for low, high in re.findall(r"(?<![\w.])(-?\d[\d,]*)-(\d[\d,]*)\b", note):
        if (number(low), number(high)) != (rule.get("min"), rule.get("max")):
            found.append(f"{key}: {low}-{high}, the schema says {rule.get('min')}-{rule.get('max')}")
    for bound, value in re.findall(r"\bat (most|least) (\d[\d,]*)", note):
        limit = rule.get("max" if bound == "most" else "min")
        if number(value) != limit:
            found.append(f"{key}: at {bound} {value}, the schema says {limit}")
    choices = [choice for choice in rule.get("allowed", []) if isinstance(choice, str)]
    if choices:
        head = re.split(r"[(:]", note, maxsplit=1)[0]
        named = re.findall(r"`?([a-z][a-z0-9_]*)`?", head.replace(" or ", ", "))
        found += [f"{key}: {word} is not one of {choices}" for word in named if word not in choices + ["or"]]
    return found


def config_comments(text: str) -> dict[str, str]:
    """deployment_config.yaml's spec keys and the comment on each one's line."""
    spec = text[text.index("\nspec:\n") :]
    return dict(re.findall(r"^  (\w+):[^#\n]*#\s*(.+)$", spec, re.MULTILINE))


def test_deployment_config_comments_state_the_schemas_limits_and_choices():
    comments = config_comments((PROJECT_ROOT / "deployment_config.yaml").read_text())
    assert {"timeout", "memory_size", "architecture", "auth", "endpoint"} <= set(comments)
    assert set(comments) <= set(SCHEMA), set(comments) - set(SCHEMA)
    assert [problem for key, note in comments.items() for problem in disagreements(key, note)] == []


def test_a_comment_that_disagrees_with_the_schema_is_reported():
    text = (PROJECT_ROOT / "deployment_config.yaml").read_text()
    for written, wrong, key in [
        ("# MB, 128-10240", "# MB, 128-4096", "memory_size"),
        ("at most 29", "at most 30", "timeout"),
        ("# or arm64", "# or arm32", "architecture"),
    ]:
        assert written in text, f"deployment_config.yaml no longer holds {written!r}: update this mutation"
        note = config_comments(text.replace(written, wrong))[key]
        assert disagreements(key, note), (key, note)


def settings_table_notes() -> dict[str, str]:
    """docs/deploy.md's settings table: each schema key and the notes of its row."""
    text = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    table = text[text.index("| key | default | notes |") :].split("\n\n", 1)[0]
    notes = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        keys = [key for key in re.findall(r"`(\w+)`", cells[0]) if key in SCHEMA]
        if len(keys) == 1:  # a row of two keys names neither's limits
            notes[keys[0]] = cells[2]
    return notes


def test_the_settings_tables_limits_and_choices_are_the_schemas():
    notes = settings_table_notes()
    assert {"timeout", "memory_size", "architecture", "auth", "endpoint"} <= set(notes)
    assert [problem for key, note in notes.items() for problem in disagreements(key, note)] == []


def test_every_architecture_the_schema_allows_has_an_image_platform():
    from deploy.deployment import PLATFORMS

    assert sorted(PLATFORMS) == sorted(SCHEMA["architecture"]["allowed"])
