"""The evaluator of main.tf's expressions (tests/terraform_eval.py): it reads main.tf as
written, reaches locals and variables transitively, stands in for what only a plan knows, and
checks the values given, not the defaults left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.deployment import operator_config
from tests.terraform_eval import (
    EvaluationError,
    attributes,
    configuration,
    evaluate,
    expression,
    mutated_main_tf,
)

pytestmark = pytest.mark.unit


def test_locals_variables_and_defaults_come_from_main_tf():
    assert evaluate("local.alias_resource", deployment_name="svc") == f"svc:{operator_config.ALIAS_NAME}"
    assert evaluate("local.function_env", deployment_name="svc", timeout=10) == {"XGB_REQUEST_TIMEOUT_S": "9"}
    assert evaluate("local.function_env", deployment_name="svc", timeout=3) == {"XGB_REQUEST_TIMEOUT_S": "2"}


def test_a_resource_reference_becomes_its_address_or_the_known_value():
    assert evaluate("local.newest_version") == "aws_lambda_function.service.version"
    assert evaluate("local.newest_version", known={"aws_lambda_function.service.version": "7"}) == "7"
    odd = 'a "${b}" %{c} \\'
    assert evaluate("local.newest_version", known={"aws_lambda_function.service.version": odd}) == odd
    target = expression("resource", "aws_apigatewayv2_route", "service", "target")
    assert evaluate(target) == "integrations/aws_apigatewayv2_integration.lambda[0].id"


def test_only_known_refuses_what_only_a_plan_knows():
    with pytest.raises(EvaluationError, match="only a plan knows"):
        evaluate("local.newest_version", only_known=True)
    assert evaluate("local.newest_version", known={"aws_lambda_function.service.version": "7"}, only_known=True) == "7"


def test_the_answer_follows_the_file(tmp_path: Path):
    changed = mutated_main_tf(tmp_path, f'= "{operator_config.ALIAS_NAME}"', '= "current"')
    assert evaluate("local.alias_resource", main_tf=changed, deployment_name="svc") == "svc:current"


def test_an_undeclared_local_is_refused():
    with pytest.raises(EvaluationError, match="local.nowhere is not declared"):
        configuration("local.nowhere")


def test_a_value_given_is_validated_a_default_left_alone_is_not():
    """image_repository's default, "", fails its own validation: evaluating something that uses
    it without setting it must still work; setting it to "" is refused as main.tf would."""
    assert evaluate("var.image_repository") == ""
    with pytest.raises(EvaluationError, match="Invalid value for variable") as refused:
        evaluate("var.image_repository", image_repository="")
    assert refused.value.refused
    repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/svc"
    assert evaluate("local.repository_name", image_repository=repository) == "team/svc"


def test_expressions_are_read_as_written_strings_comments_and_nested_blocks_included(tmp_path: Path):
    body = """
      a = "x \\" # not a comment ${local.b} }" # a comment with local.nowhere
      /* a block comment = 1 */
      nested "label" {
        c = 1
      }
      d = {
        e = [1, # local.nowhere either
          2]
      }
    """
    assert attributes(body) == {
        "a": '"x \\" # not a comment ${local.b} }"',
        "d": "{\n        e = [1, \n          2]\n      }",
    }
    main_tf = tmp_path / "main.tf"
    main_tf.write_text(f"locals {{\n  b = 1\n{body}\n}}\n")
    assert evaluate("local.a", main_tf=main_tf) == 'x " # not a comment 1 }'
    assert evaluate("local.d", main_tf=main_tf) == {"e": [1, 2]}
