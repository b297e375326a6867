"""The command-line client against the live server, as a user runs it."""

import numpy as np

from src import client
from tests.commands import run_python
from tests.sample_requests import expected_labels, expected_probabilities


def test_client_posts_csv_rows_and_prints_labels(server, data_path, booster):
    result = run_python("-m", "src.client", "--url", server.url, "--csv", str(data_path), "--rows", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 10
    rows = client.read_rows(data_path, 10)
    assert [int(line.rsplit("-> ", 1)[1]) for line in lines] == expected_labels(booster, rows)


def test_client_generated_rows_and_probability_endpoint(server, booster):
    rows = client.random_rows(20)
    answers = client.post(server.url, rows, endpoint="predict_proba")
    np.testing.assert_allclose(answers, expected_probabilities(booster, rows), rtol=1e-6)


def test_client_reports_api_errors_readably(server):
    result = run_python("-m", "src.client", "--url", server.url + "/nowhere")
    assert result.returncode == 1
    assert result.stderr.startswith("error: 404")
