"""Shared fixtures: an isolated BentoML home, a model trained once per session, a live server.

BENTOML_HOME is set here, before any test module imports bentoml, so no test ever reads or
writes the user's ~/bentoml. The service's own variables (XGB_*) and BentoML's (BENTOML_*) are
dropped from the developer's environment at the same moment, so neither the tests nor the
servers and commands they start see them; each test that wants one sets it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.commands import clean_environ, serve

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="bentoml-home-"))
for _name in set(os.environ) - set(clean_environ()):
    del os.environ[_name]
os.environ["BENTOML_HOME"] = str(_SESSION_HOME)
os.environ["BENTOML_DO_NOT_TRACK"] = "true"

# The deploy tests' fixtures; imported once the environment is clean (it reads src.config).
from tests.deploy_harness import aws, moto_url, workdir  # noqa: E402, F401


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_HOME, ignore_errors=True)


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
    from deploy.lambda_runtime import read_only_copy

    task = read_only_copy(lambda_context)
    yield task
    shutil.rmtree(task.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def image(lambda_context):
    """The image's Python environment and a code directory of its own, both through the
    Dockerfile's steps (the last one writes bytecode into the code directory, which the handler
    tests' shared copy must not get). Built once for every test that runs the image's environment."""
    from deploy.lambda_image_env import build_image_env, precompile
    from deploy.lambda_runtime import read_only_copy

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
    srv = serve(tmp_path_factory.mktemp("server"), env={"XGB_MODEL_TAG": trained.tag})
    yield srv
    srv.stop()
