"""docs/testing.md's counts of the suite are pytest's own: collected here, in a pytest of its own
(so not a unit test)."""

import re
import subprocess
import sys

import pytest

from src.config import PROJECT_ROOT

TESTING = PROJECT_ROOT / "docs" / "testing.md"


@pytest.mark.parametrize("marker", [None, "unit"])
def test_the_suites_counts_are_what_pytest_collects(marker):
    """docs/testing.md's counts, the whole suite's and the unit tests', are pytest's own."""
    text = " ".join(TESTING.read_text(encoding="utf-8").split())
    stated = re.search(r"counts (\d[\d,]*) tests, (\d[\d,]*) of them unit tests", text)
    assert stated, "docs/testing.md states the suite's counts"
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [*command, *(["-m", marker] if marker else [])], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )
    collected = re.search(r"^(\d+)(?:/\d+)? tests collected", result.stdout, re.MULTILINE)
    assert result.returncode == 0 and collected, result.stdout[-2000:]
    expected = stated.group(2 if marker else 1).replace(",", "")
    assert collected.group(1) == expected
