"""The Lambda handler on Step Functions batches (a Distributed Map's ItemBatcher events, the rows as
an ItemReader reads a CSV with its header in the first row), from the build context `bentoctl
build` makes, read-only: every row answered, bad rows with their reason, against the booster and
against the local batch command on the same file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deploy.lambda_runtime import run_in_process
from src import batch_event, config
from tests.batch_items import csv_items, wrapped
from tests.lambda_harness import request_lines, run_entry_command
from tests.service.test_batch_score import BAD, read_csv, score, write_csv

FEATURES = list(config.FEATURE_NAMES)


@pytest.fixture(scope="module")
def mixed_file(tmp_path_factory):
    """A CSV with an id column, the features out of order, and one row of every bad kind."""
    folder = tmp_path_factory.mktemp("batch-event")
    rows = np.random.default_rng(11).normal(scale=2, size=(60, config.N_FEATURES)).round(6)
    header = ["id", *reversed(FEATURES)]
    table = [[f"r{i}", *[repr(value) for value in reversed(row.tolist())]] for i, row in enumerate(rows)]
    bad_at = {}
    column = header.index(FEATURES[2])
    for offset, (name, (value, _)) in enumerate(BAD.items()):
        index = 3 + offset * 8
        table[index][column] = value
        bad_at[index] = name
    write_csv(folder / "in.csv", header, table)
    return folder, rows, bad_at


@pytest.fixture(scope="module")
def answers(task_dir, mixed_file):
    folder, _, _ = mixed_file
    items = csv_items(folder / "in.csv")
    events = {
        "first half": {"Items": wrapped(items[:30]), "BatchInput": {"job": "test"}},
        "second half": {"Items": wrapped(items[30:], first=30)},
        "bare rows": {"Items": items[:3]},  # AWS's documented shape, without main.tf's ItemSelector
        "odd items": {"Items": [items[0], "text", None, {"index": 9, "row": [1, 2]}, {**items[1], "extra": "x"}]},
        "json numbers": {"Items": [{name: float(i + 1) for i, name in enumerate(FEATURES)}, {FEATURES[0]: True}]},
        "empty": {"Items": []},
    }
    report = run_in_process(task_dir, list(events.values()))
    return dict(zip(events, report["responses"], strict=True))


def test_every_row_of_a_file_is_answered_by_its_index_as_the_booster_and_the_local_command_score_it(
    answers, mixed_file, booster, trained
):
    folder, rows, bad_at = mixed_file
    answered = answers["first half"]["rows"] + answers["second half"]["rows"]
    assert [row["index"] for row in answered] == list(range(60))
    assert answers["first half"]["scored"] + answers["second half"]["scored"] == 60 - len(bad_at)
    assert answers["first half"]["rejected"] + answers["second half"]["rejected"] == len(bad_at)
    assert answers["first half"]["model"] == trained.tag

    good = [i for i in range(60) if i not in bad_at]
    expected = booster.inplace_predict(rows[good].astype(np.float32))
    got = np.asarray([answered[i]["probability"] for i in good], dtype=np.float32)
    np.testing.assert_array_equal(got, expected)
    assert [answered[i]["label"] for i in good] == (expected >= config.DECISION_THRESHOLD).astype(int).tolist()
    for index, name in bad_at.items():
        assert set(answered[index]) == {"index", "error"} and BAD[name][1] in answered[index]["error"], name

    # The same file through `python -m src.batch_score`: the same rows refused, the same answers.
    result = score(folder / "in.csv", folder / "out.csv", model_tag=trained.tag)
    assert result.returncode == 0, result.stderr
    local = read_csv(folder / "out.csv")
    assert [float(row["probability"]) for row in local] == pytest.approx([answered[i]["probability"] for i in good])
    rejects = {int(row["line"]) - 2: row["reason"] for row in read_csv(folder / "out.rejects.csv")}
    assert rejects == {index: answered[index]["error"] for index in bad_at}


def test_bare_rows_are_answered_by_their_place_in_the_batch(answers, mixed_file, booster):
    _, rows, _ = mixed_file
    bare = answers["bare rows"]
    assert [row["index"] for row in bare["rows"]] == [0, 1, 2]
    expected = booster.inplace_predict(rows[:3].astype(np.float32))
    np.testing.assert_array_equal(np.asarray([row["probability"] for row in bare["rows"]], np.float32), expected)


def test_items_that_are_not_rows_are_refused_one_by_one_and_the_rest_scored(answers):
    odd = answers["odd items"]
    assert [set(row) for row in odd["rows"]] == [
        {"index", "label", "probability"},
        {"index", "error"},
        {"index", "error"},
        {"index", "error"},
        {"index", "label", "probability"},  # an extra column is ignored, as by the local command
    ]
    assert [row["index"] for row in odd["rows"]] == [0, 1, 2, 9, 4]
    assert "not an object keyed by the CSV header" in odd["rows"][1]["error"]
    assert odd["scored"] == 2 and odd["rejected"] == 3


def test_json_numbers_are_taken_and_a_boolean_or_missing_column_refused(answers):
    numbers = answers["json numbers"]["rows"]
    assert set(numbers[0]) == {"index", "label", "probability"}
    assert numbers[1]["error"] == f"{FEATURES[0]} is not a number (bool)"


def test_an_empty_batch_is_answered_with_no_rows(answers, trained):
    assert answers["empty"] == {"rows": [], "scored": 0, "rejected": 0, "model": trained.tag}


def test_under_the_runtime_client_a_batch_logs_one_request_line_and_a_non_batch_fails_with_its_reason(
    task_dir, mixed_file, tmp_path
):
    """The image's entry command: the batch is one request of its valid rows in the request log;
    an ``Items`` that is not a list is the invocation's error (Step Functions retries or fails that
    batch), named, not an answer that would pass for a scored batch."""
    folder, _, bad_at = mixed_file
    items = wrapped(csv_items(folder / "in.csv"))
    finished, api, output = run_entry_command(
        task_dir, [{"Items": items}, {"Items": "not a list"}], tmp_path / "log.txt", lines=1, env={}
    )
    assert finished or api.errors, output[-3000:]
    assert api.results["request-0"]["scored"] == 60 - len(bad_at)
    [error] = api.errors
    assert error["request"] == "request-1" and error["errorType"] == batch_event.BatchEventError.__name__
    assert "'Items' must be a list" in error["errorMessage"]
    [line] = request_lines(output)
    assert line["route"] == config.PREDICTION_ROUTES[1] and line["status"] == 200
    assert line["rows"] == 60 - len(bad_at)
    assert json.dumps(api.results["request-0"]).count('"error"') == len(bad_at)
