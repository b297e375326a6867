"""Shared fixtures: an isolated BentoML home, a model trained once per session, a live server.

BENTOML_HOME is set here, before any test module imports bentoml, so no test ever reads or
writes the user's ~/bentoml. The service's own variables (XGB_*) and BentoML's (BENTOML_*) are
dropped from the developer's environment at the same moment, so neither the tests nor the
servers and commands they start see them; each test that wants one sets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import free_port, stop_process_group


def clean_environ() -> dict:
    """os.environ without the variables that configure the service or BentoML."""
    return {name: value for name, value in os.environ.items() if not name.startswith(("XGB_", "BENTOML_"))}


_SESSION_HOME = Path(tempfile.mkdtemp(prefix="bentoml-home-"))
for _name in set(os.environ) - set(clean_environ()):
    del os.environ[_name]
os.environ["BENTOML_HOME"] = str(_SESSION_HOME)
os.environ["BENTOML_DO_NOT_TRACK"] = "true"


def base_env(**overrides: str) -> dict:
    """The environment for a command the tests start: clean, in the session's store."""
    return {**clean_environ(), "BENTOML_HOME": str(_SESSION_HOME), "BENTOML_DO_NOT_TRACK": "true", **overrides}


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


def run_python(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the project root as a user would; capture its output."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=base_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def bentoml_home() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="session")
def data_path(tmp_path_factory) -> Path:
    from src.generate_data import write_dataset

    return write_dataset(tmp_path_factory.mktemp("data") / "data.csv")


@pytest.fixture(scope="session")
def trained(data_path, tmp_path_factory):
    """A model trained on the full default data set, saved in the session's store."""
    from src.train import train

    return train(data_path, report_dir=tmp_path_factory.mktemp("reports"))


@pytest.fixture(scope="session")
def booster(trained):
    import bentoml

    return bentoml.xgboost.load_model(trained.tag)


class Server:
    def __init__(self, url: str, process: subprocess.Popen, log: Path):
        self.url, self.process, self.log = url, process, log

    def alive(self) -> bool:
        return self.process.poll() is None


def start_server(log_dir: Path, env: dict | None = None, ready_timeout: float = 90) -> Server:
    """Start ``bentoml serve`` on a free port in its own process group; wait until it is ready."""
    port = free_port()
    log = log_dir / f"serve-{port}.log"
    handle = open(log, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "src.service:svc", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=base_env(**(env or {})),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return Server(url, process, log)
        except OSError:
            time.sleep(0.2)
    stop_process_group(process)
    raise RuntimeError(f"bentoml serve not ready in {ready_timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def built_bento(trained) -> str:
    """`bentoml build` of the project, run as a user runs it; returns the Bento's tag."""
    from tests.lambda_harness import bentoml_build

    return bentoml_build(env={"XGB_MODEL_TAG": trained.tag})


@pytest.fixture(scope="session")
def lambda_context(built_bento, tmp_path_factory):
    work = tmp_path_factory.mktemp("bentoctl-build")
    home = work / "bentoctl-home"
    from tests.lambda_harness import build_context_via_bentoctl, install_operator

    result = install_operator(home, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    return build_context_via_bentoctl(built_bento, home, work)


@pytest.fixture(scope="session")
def task_dir(lambda_context):
    from tests.lambda_harness import read_only_copy

    task = read_only_copy(lambda_context)
    yield task
    shutil.rmtree(task.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def image(lambda_context):
    """The image's Python environment and a code directory of its own, both through the
    Dockerfile's steps (the last one writes bytecode into the code directory, which the handler
    tests' shared copy must not get). Built once for every test that runs the image's environment."""
    from tests.lambda_harness import build_image_env, precompile, read_only_copy

    root = Path(tempfile.mkdtemp(prefix="lambda-image-env-"))
    os.chmod(root, 0o755)
    python = build_image_env(lambda_context, root / "venv")
    task = read_only_copy(lambda_context)
    precompile(python, task)
    yield python, task
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(task.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def server(trained, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("server"), env={"XGB_MODEL_TAG": trained.tag})
    yield srv
    stop_process_group(srv.process)
