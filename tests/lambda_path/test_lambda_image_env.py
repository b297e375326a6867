"""The image's Python environment, rebuilt here by replaying the build context's Dockerfile (its
ENV, COPY and RUN lines, read from the file): proves the requirements list is complete and
serving-only, and that the image's entry command answers events through the real runtime
interface client."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from deploy.lambda_events import http_api_v2
from deploy.lambda_image_env import site_packages, site_packages_mb
from deploy.lambda_runtime import code_env, image_command, read_only_prefix, run_in_process
from src import config
from tests.lambda_harness import QueuedRuntimeApi
from tests.sample_requests import ROWS, counting_row, expected_labels, expected_probabilities

MAX_SITE_PACKAGES_MB = 250


@pytest.fixture(scope="module")
def image_python(image):
    return image[0]


@pytest.fixture(scope="module")
def image_task(image):
    return image[1]


def test_replayed_build_compiled_the_code_directory_and_left_the_shared_one_alone(image_task, task_dir):
    assert list(image_task.glob("__pycache__/lambda_app.*.pyc")), "the Dockerfile's last step did not run"
    assert list((image_task / "src" / "__pycache__").glob("service.*.pyc"))
    assert not list(task_dir.rglob("*.pyc")), "bytecode leaked into the handler tests' code directory"


def test_environment_is_complete_and_holds_only_serving_packages(image_python):
    check = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(image_python), "check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    site = site_packages(image_python)
    names = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"bentoml", "xgboost_cpu", "mangum", "awslambdaric"} <= names
    assert not names & {"xgboost", "nvidia_nccl_cu12", "scikit_learn", "pandas", "matplotlib"}
    assert not list(site.glob("*/tests")) and not list(site.glob("*/*/tests")), "test suites are removed"
    size_mb = site_packages_mb(image_python)
    print(f"\nimage Python environment: {size_mb:.0f} MB of site-packages")
    assert size_mb < MAX_SITE_PACKAGES_MB


def test_handler_answers_from_the_image_environment_read_only(image_python, image_task, booster):
    report = run_in_process(image_task, [http_api_v2(ROWS.tolist())], python=str(image_python), repeat=100)
    response = report["responses"][0]
    assert response["statusCode"] == 200, response
    expected = expected_labels(booster, ROWS)
    assert json.loads(response["body"]) == expected
    print(f"\ncold start {report['cold_start_s']:.2f} s, warm median {np.median(report['warm_s']) * 1000:.2f} ms")


def run_entry_command(image_task, image_python, events: list[dict], snap_start: bool = False):
    """The image's entry command under awslambdaric, fed ``events``: (the API, the output)."""
    api = QueuedRuntimeApi(events, snap_start=snap_start)
    command = image_command(image_task.parent / "Dockerfile")
    assert command[0] == "python", command
    env = {
        **code_env(image_task),
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "_HANDLER": command[-1],
        "AWS_LAMBDA_FUNCTION_NAME": "xgb-classifier",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start" if snap_start else "on-demand",
    }
    process = subprocess.Popen(
        read_only_prefix(image_task) + [str(image_python), *command[1:]],
        cwd=image_task,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        finished = api.done.wait(timeout=120)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0].decode(errors="replace")
        api.snapshot_seen = api.snapshot_at  # close() clears it
        api.close()
    assert finished and not api.errors, (api.errors, output[-3000:])
    return api, output


def test_entry_command_serves_events_through_awslambdaric(image_python, image_task, booster):
    events = [
        http_api_v2([counting_row()]),
        http_api_v2("[1, 2]"),
        http_api_v2(ROWS[:3].tolist(), path="/predict_proba"),
    ]
    api, _ = run_entry_command(image_task, image_python, events)
    labels, bad, proba = (api.results[f"request-{n}"] for n in range(3))
    assert labels["statusCode"] == 200 and json.loads(labels["body"]) == expected_labels(booster, [counting_row()])
    assert bad["statusCode"] == 400 and "wrap a single row" not in bad["body"] and "2-D" in bad["body"]
    assert proba["statusCode"] == 200
    np.testing.assert_allclose(json.loads(proba["body"]), expected_probabilities(booster, ROWS[:3]), rtol=1e-6)


def test_snapstart_init_warms_up_before_the_snapshot_and_then_serves(image_python, image_task, booster):
    api, output = run_entry_command(image_task, image_python, [http_api_v2([counting_row()])], snap_start=True)
    assert api.snapshot_seen is not None, "the runtime never reached the snapshot point (restore/next)"
    answer = api.results["request-0"]
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == expected_labels(booster, [counting_row()])
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    predictions = [line for line in lines if line.get("route") == config.PREDICTION_ROUTES[0]]
    assert [line["status"] for line in predictions] == [200, 200], output[-3000:]
    assert predictions[0]["request_id"] != "request-0" == predictions[1]["request_id"], "warm-up first, then the event"


def test_the_in_process_driver_plays_snapstarts_order_with_one_model_load(image_python, image_task, booster):
    report = run_in_process(
        image_task, [http_api_v2([counting_row()])], python=str(image_python), module="lambda_app:snapstart"
    )
    assert json.loads(report["responses"][0]["body"]) == expected_labels(booster, [counting_row()])
    assert report["model_loads"] == 1, "the warm-up and the first event use the model loaded at import"
    assert 0 < report["init_s"] < report["cold_s"] and 0 < report["restore_first_answer_s"] < report["cold_s"]
