"""docs/testing.md and the README state figures about the suite; each one here is read from the
code that sets it, so the text cannot drift from the suite it describes. The README links every
file in docs/, and every relative link in them leads to a file that exists."""

import ast
import re
from pathlib import Path

import pytest

from tests import schemathesis_run
from tests.sample_requests import DOCUMENTED_THRESHOLD, README

pytestmark = pytest.mark.unit
TESTS = Path(__file__).resolve().parent
DOCS = TESTS.parent / "docs"
TESTING = DOCS / "testing.md"


def constant(module: str, name: str):
    """A module-level constant of a test module, read from its syntax tree (test modules are not imported)."""
    for node in ast.parse((TESTS / f"{module}.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{module}.py sets no {name}")


def words(path: Path) -> str:
    """The file's text with every run of white space made one space, as a reader sees it."""
    return " ".join(path.read_text(encoding="utf-8").split())


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
def test_the_testing_document_states_the_suites_figures(figure):
    assert figure in words(TESTING)


def test_the_api_section_states_schemathesis_s_examples_per_operation():
    text = words(README)
    assert f"up to {schemathesis_run.MAX_EXAMPLES} examples per operation (`tests/schemathesis_run.py`)" in text


def relative_links(path: Path) -> list[str]:
    """The targets of the file's Markdown links that point into the repository (no URL, no anchor alone)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))
    return [t.split("#", 1)[0] for t in targets if "://" not in t and not t.startswith("#")]


def test_the_readme_links_every_document_in_docs():
    linked = {(README.parent / target).resolve() for target in relative_links(README)}
    documents = set(DOCS.glob("*.md"))
    assert documents, "docs/ holds no document"
    assert {d.resolve() for d in documents} <= linked, sorted(d.name for d in documents if d.resolve() not in linked)


@pytest.mark.parametrize("document", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file(document):
    missing = [t for t in relative_links(document) if not (document.parent / t).exists()]
    assert not missing, missing
