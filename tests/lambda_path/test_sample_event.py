"""deploy/sample-event.json is generated from src/config.py: the committed file is current."""

import json

import pytest

from deploy.sample_event import SAMPLE_EVENT, sample_event_text, sample_rows
from src import config

pytestmark = pytest.mark.unit


def test_the_committed_sample_event_is_the_generated_one():
    assert SAMPLE_EVENT.read_text() == sample_event_text(), "run `python -m deploy.sample_event`"


def test_its_rows_have_the_feature_count_and_its_length_header_is_right():
    event = json.loads(sample_event_text())
    rows = json.loads(event["body"])
    assert rows == sample_rows() and all(len(row) == config.N_FEATURES for row in rows)
    assert int(event["headers"]["content-length"]) == len(event["body"].encode())
