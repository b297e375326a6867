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

from tests.lambda_harness import invoke, lambda_env, read_only_prefix
from tests.test_lambda_handler import ROWS


@pytest.fixture(scope="session")
def image_python(lambda_context):
    """A fresh venv with exactly requirements-lambda.txt, installed as the Dockerfile does."""
    root = Path(tempfile.mkdtemp(prefix="lambda-image-env-"))
    os.chmod(root, 0o755)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
         "--disable-pip-version-check", "--no-deps", "-r", str(lambda_context / "requirements-lambda.txt")],
        capture_output=True, text=True, timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    yield venv / "bin" / "python"
    shutil.rmtree(root, ignore_errors=True)


def site_packages(python: Path) -> Path:
    return next((python.parent.parent / "lib").glob("python3.*/site-packages"))


def test_environment_is_complete_and_holds_only_serving_packages(image_python):
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(image_python), "check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    names = {p.name.split("-")[0].lower() for p in site_packages(image_python).glob("*.dist-info")}
    assert {"bentoml", "xgboost_cpu", "mangum", "awslambdaric"} <= names
    assert not names & {"xgboost", "nvidia_nccl_cu12", "scikit_learn", "pandas", "matplotlib"}
    size_mb = sum(f.stat().st_size for f in site_packages(image_python).rglob("*") if f.is_file()) / 2**20
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
