"""The decision threshold is the documented one, 0.5, written here as a literal.

Every other oracle (tests/sample_requests.py, tests/oracle.py, tests/service/test_fuzz.py) labels rows
with the documented value too, not with ``src.config.DECISION_THRESHOLD``: a test that took the
threshold from the constant it checks would pass with any threshold. README's API table says
"class label per row, 0 or 1 (probability ≥ 0.5 → 1)".
"""

import json

import numpy as np
import pytest
import requests

from src import config
from tests.sample_requests import DOCUMENTED_THRESHOLD, README, random_rows

THRESHOLD = 0.5  # README.md, the API table's /classify row


@pytest.mark.unit
def test_the_documented_threshold_is_the_one_configured():
    assert f"(probability ≥ {THRESHOLD} → 1)" in README.read_text(encoding="utf-8")
    assert DOCUMENTED_THRESHOLD == THRESHOLD
    assert config.DECISION_THRESHOLD == THRESHOLD, "README promises probability ≥ 0.5 → 1"


def rows_with_probability_between(booster, low: float, high: float, count: int = 5) -> np.ndarray:
    """Rows (seeded, so the same every run) whose probability under the stored model lies in (low, high)."""
    rows = random_rows(5_000, seed=18, scale=2)
    proba = booster.inplace_predict(rows.astype(np.float32))
    chosen = rows[(proba > low) & (proba < high)][:count]
    assert len(chosen) == count, f"only {len(chosen)} of 5,000 rows have a probability in ({low}, {high})"
    return chosen


@pytest.mark.parametrize(("low", "high", "label"), [(0.5, 0.6, 1), (0.4, 0.5, 0)])
def test_rows_near_the_threshold_get_the_documented_label(server, booster, low, high, label):
    """Rows with probability in (0.5, 0.6) are 1 under the documented threshold (a threshold of 0.6
    would answer 0); rows in (0.4, 0.5) are 0 (a threshold of 0.4 would answer 1)."""
    rows = rows_with_probability_between(booster, low, high)
    response = requests.post(
        f"{server.url}/classify",
        data=json.dumps(rows.tolist()),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json() == [label] * len(rows), booster.inplace_predict(rows.astype(np.float32)).tolist()
