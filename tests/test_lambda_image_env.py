"""The image's Python environment, rebuilt here from the build context's requirements alone,
as the Dockerfile installs it: proves the list is complete and serving-only, and that the
image's entry command answers events through the real runtime interface client."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.fake_runtime_api import FakeRuntimeApi
from tests.lambda_events import http_api_v2

from tests.lambda_harness import (build_image_env, invoke, lambda_env, precompile, read_only_prefix,
                                  site_packages, site_packages_mb)
from tests.test_lambda_handler import ROWS


@pytest.fixture(scope="session")
def image_python(lambda_context, task_dir):
    """The image's environment, built as the Dockerfile builds it, and the code directory
    compiled by it, as the image's last build step does."""
    root = Path(tempfile.mkdtemp(prefix="lambda-image-env-"))
    os.chmod(root, 0o755)
    python = build_image_env(lambda_context, root / "venv")
    precompile(python, task_dir)
    yield python
    shutil.rmtree(root, ignore_errors=True)


def test_environment_is_complete_and_holds_only_serving_packages(image_python):
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(image_python), "check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    site = site_packages(image_python)
    names = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"bentoml", "xgboost_cpu", "mangum", "awslambdaric"} <= names
    assert not names & {"xgboost", "nvidia_nccl_cu12", "scikit_learn", "pandas", "matplotlib"}
    assert not list(site.glob("*/tests")) and not list(site.glob("*/*/tests")), "test suites are removed"
    size_mb = site_packages_mb(image_python)
    print(f"\nimage Python environment: {size_mb:.0f} MB of site-packages")
    assert size_mb < 600


def test_handler_answers_from_the_image_environment_read_only(image_python, task_dir, booster):
    report = invoke(task_dir, [http_api_v2(ROWS.tolist())], python=str(image_python), repeat=100)
    response = report["responses"][0]
    assert response["statusCode"] == 200, response
    expected = (booster.inplace_predict(ROWS.astype(np.float32)) >= 0.5).astype(int).tolist()
    assert json.loads(response["body"]) == expected
    print(f"\ncold start {report['cold_start_s']:.2f} s, warm median {np.median(report['warm_s']) * 1000:.2f} ms")


def test_entry_command_serves_events_through_awslambdaric(image_python, task_dir):
    events = [http_api_v2([[1, 2, 3, 4, 5, 6, 7]]), http_api_v2("[1, 2]"), http_api_v2(ROWS[:3].tolist(), path="/predict_proba")]
    api = FakeRuntimeApi(events)
    env = {**lambda_env(task_dir), "AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": "lambda_app.handler",
           "AWS_LAMBDA_FUNCTION_NAME": "xgb-classifier", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}
    process = subprocess.Popen(read_only_prefix(task_dir) + [str(image_python), "-m", "awslambdaric", "lambda_app.handler"],
                               cwd=task_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        finished = api.done.wait(timeout=120)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate()[0].decode(errors="replace")
        api.close()
    assert finished and not api.errors, (api.errors, output[-3000:])
    labels, bad, proba = (api.results[f"request-{n}"] for n in range(3))
    assert labels["statusCode"] == 200 and json.loads(labels["body"]) in ([0], [1])
    assert bad["statusCode"] == 400 and "wrap a single row" not in bad["body"] and "2-D" in bad["body"]
    assert proba["statusCode"] == 200 and len(json.loads(proba["body"])) == 3
