"""README's "Tests" section states figures about the suite; each one here is read from the code
that sets it, so the section cannot drift from the suite it describes."""

import ast
from pathlib import Path

import pytest

from tests import schemathesis_run
from tests.sample_requests import DOCUMENTED_THRESHOLD, README

pytestmark = pytest.mark.unit
TESTS = Path(__file__).resolve().parent


def constant(module: str, name: str):
    """A module-level constant of a test module, read from its syntax tree (test modules are not imported)."""
    for node in ast.parse((TESTS / f"{module}.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{module}.py sets no {name}")


def readme_tests_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Tests\n")
    return " ".join(text[start : text.index("\n## ", start + 1)].split())


@pytest.mark.parametrize(
    "figure",
    [
        # two server runs of CASES requests, CASES events sent twice (text and base64) to Lambda
        f"{4 * constant('test_fuzz', 'CASES'):,} generated requests per run",
        "a {} s soak at concurrency {}".format(
            *(constant("test_resilience", n) for n in ("SOAK_SECONDS", "CONCURRENCY"))
        ),
        f"memory within 20 % plus {constant('test_resilience', 'MEMORY_NOISE_MB')} MB",
        f"seed {schemathesis_run.SEED}, up to {schemathesis_run.MAX_EXAMPLES} examples per operation",
        f"the documented threshold, {DOCUMENTED_THRESHOLD}",
    ],
)
def test_the_tests_section_states_the_suites_figures(figure):
    assert figure in readme_tests_section()


def test_the_api_section_states_schemathesis_s_examples_per_operation():
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert f"up to {schemathesis_run.MAX_EXAMPLES} examples per operation (`tests/schemathesis_run.py`)" in text
