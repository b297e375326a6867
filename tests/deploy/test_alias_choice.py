"""What the live alias serves (pinned, canary base with the newest on a weight, or the newest),
evaluated from main.tf's own expressions by the real Terraform core (tests/terraform_eval.py).

The expected answers are written here from the release story in docs/operations.md, not from
main.tf: a rollback pins a version whatever else is set; during a canary the base version keeps
the traffic and the newest gets canary_percent; a canary whose base is already the newest, or of
0 %, is no canary.
"""

from pathlib import Path

import pytest

from tests import terraform_eval
from tests.terraform_eval import AliasChoice, EvaluationError, alias_choice, mutated_main_tf

CASES = {
    "newest": (dict(newest_version="7"), AliasChoice("7", {})),
    "pinned": (dict(pinned_version="3", newest_version="7"), AliasChoice("3", {})),
    "pinned during a canary": (
        dict(pinned_version="3", canary_base_version="6", canary_percent=10, newest_version="7"),
        AliasChoice("3", {}),
    ),
    "canary": (dict(canary_base_version="6", canary_percent=10, newest_version="7"), AliasChoice("6", {"7": 0.1})),
    "canary of 50 %": (
        dict(canary_base_version="2", canary_percent=50, newest_version="14"),
        AliasChoice("2", {"14": 0.5}),
    ),
    "canary base is the newest": (
        dict(canary_base_version="7", canary_percent=10, newest_version="7"),
        AliasChoice("7", {}),
    ),
    "canary base is a prefix of the newest": (
        dict(canary_base_version="1", canary_percent=10, newest_version="14"),
        AliasChoice("1", {"14": 0.1}),
    ),
    "canary of 0 %": (dict(canary_base_version="6", canary_percent=0, newest_version="7"), AliasChoice("7", {})),
}


@pytest.mark.parametrize("case", list(CASES))
def test_main_tf_points_the_alias_as_documented(case):
    values, expected = CASES[case]
    assert alias_choice(**values) == expected


@pytest.mark.parametrize(
    "values",
    [dict(pinned_version="v3"), dict(canary_base_version="latest"), dict(canary_percent=51), dict(canary_percent=2.5)],
)
def test_values_main_tf_refuses_are_refused(values):
    with pytest.raises(EvaluationError, match="Invalid value for variable"):
        alias_choice(newest_version="7", **values)


def test_the_answer_comes_from_the_file_as_written(tmp_path: Path):
    """A copy of main.tf with live_version's branches swapped answers differently: the evaluator
    reads the file, it does not carry a copy of the logic."""
    swapped = mutated_main_tf(
        tmp_path,
        "(local.canary_active ? var.canary_base_version : local.newest_version)",
        "(local.canary_active ? local.newest_version : var.canary_base_version)",
    )
    values = dict(canary_base_version="6", canary_percent=10, newest_version="7")
    assert alias_choice(**values) == AliasChoice("6", {"7": 0.1})
    assert alias_choice(main_tf=swapped, **values) == AliasChoice("7", {"7": 0.1})


@pytest.mark.unit
def test_only_the_function_version_reference_is_replaced():
    configuration, choice = terraform_eval.lifted_configuration(terraform_eval.MAIN_TF)
    assert terraform_eval.NEWEST not in configuration
    assert "aws_" not in configuration.split("locals {", 1)[1]
    assert "local.live_version" in choice and "local.canary_active" in choice
    for name in ("pinned_version", "canary_base_version", "canary_percent"):
        assert f'variable "{name}" {{' in configuration


@pytest.mark.unit
def test_an_expression_that_needs_a_plan_is_refused_not_guessed(tmp_path: Path):
    changed = mutated_main_tf(
        tmp_path,
        "newest_version = aws_lambda_function.service.version",
        "newest_version = aws_lambda_function.service.qualified_arn",
    )
    with pytest.raises(EvaluationError, match="only a plan knows"):
        terraform_eval.lifted_configuration(changed)
