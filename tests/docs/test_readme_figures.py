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
TESTS = Path(__file__).resolve().parent.parent
DOCS = TESTS.parent / "docs"
TESTING = DOCS / "testing.md"


def constant(module: str, name: str):
    """A module-level constant of a test module, read from its syntax tree (test modules are not imported)."""
    (path,) = TESTS.rglob(f"{module}.py")
    for node in ast.parse(path.read_text()).body:
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


def relative_links(path: Path) -> list[tuple[str, str]]:
    """(file, anchor) of each Markdown link that points into the repository; an empty file is the
    document itself, an empty anchor the file's top."""
    targets = re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8"))
    return [tuple((t + "#").split("#")[:2]) for t in targets if "://" not in t]


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the file's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_readme_links_every_document_in_docs():
    linked = {(README.parent / target).resolve() for target, _ in relative_links(README) if target}
    documents = set(DOCS.glob("*.md"))
    assert documents, "docs/ holds no document"
    assert {d.resolve() for d in documents} <= linked, sorted(d.name for d in documents if d.resolve() not in linked)


@pytest.mark.parametrize("document", [README, *sorted(DOCS.glob("*.md"))], ids=lambda p: p.name)
def test_every_relative_link_leads_to_a_file_and_heading(document):
    broken = []
    for target, anchor in relative_links(document):
        file = document.parent / target if target else document
        if not file.exists() or (anchor and (file.suffix != ".md" or anchor not in anchors(file))):
            broken.append(f"{target}#{anchor}")
    assert not broken, broken
