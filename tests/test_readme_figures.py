"""README's "Tests" section states figures about the suite; each one here is read from the code
that sets it, so the section cannot drift from the suite it describes."""

import pytest

from tests import schemathesis_run, test_fuzz, test_resilience
from tests.sample_requests import DOCUMENTED_THRESHOLD, README

pytestmark = pytest.mark.unit


def readme_tests_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Tests\n")
    return " ".join(text[start : text.index("\n## ", start + 1)].split())


@pytest.mark.parametrize(
    "figure",
    [
        # two server runs of CASES requests, CASES events sent twice (text and base64) to Lambda
        f"{4 * test_fuzz.CASES:,} generated requests per run",
        f"a {test_resilience.SOAK_SECONDS} s soak at concurrency {test_resilience.CONCURRENCY}",
        f"memory within 20 % plus {test_resilience.MEMORY_NOISE_MB} MB",
        f"seed {schemathesis_run.SEED}, up to {schemathesis_run.MAX_EXAMPLES} examples per operation",
        f"the documented threshold, {DOCUMENTED_THRESHOLD}",
    ],
)
def test_the_tests_section_states_the_suites_figures(figure):
    assert figure in readme_tests_section()
