"""The command-line client against the live server, as a user runs it."""

import numpy as np

from src import client
from tests.conftest import run_python


def test_client_posts_csv_rows_and_prints_labels(server, data_path, booster):
    result = run_python("-m", "src.client", "--url", server.url, "--csv", str(data_path), "--rows", "10")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 10
    rows = client.read_rows(data_path, 10)
    expected = (booster.inplace_predict(np.asarray(rows, dtype=np.float32)) >= 0.5).astype(int)
    assert [int(line.rsplit("-> ", 1)[1]) for line in lines] == expected.tolist()


def test_client_generated_rows_and_probability_endpoint(server):
    answers = client.post(server.url, client.random_rows(3), endpoint="predict_proba")
    assert len(answers) == 3 and all(0 <= p <= 1 for p in answers)


def test_client_reports_api_errors_readably(server):
    result = run_python("-m", "src.client", "--url", server.url + "/nowhere")
    assert result.returncode == 1
    assert result.stderr.startswith("error: 404")
