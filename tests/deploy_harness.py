"""Running `python -m deploy` as a user runs it, for the deploy tests: stand-ins for docker and
terraform on PATH that record their calls (tests/standins), moto's server for AWS, a deployment
folder copied from the repository, and readers for what a run left behind."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
import yaml

from bench.processes import free_port
from deploy.deployment import operator_config
from src.config import PROJECT_ROOT
from tests.standins import record

STANDINS = PROJECT_ROOT / "tests" / "standins" / "bin"
REGION = "us-east-1"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


@pytest.fixture(scope="session")
def moto_url():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_url, monkeypatch):
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    for key, value in {**AWS_ENV, "AWS_ENDPOINT_URL": moto_url}.items():
        monkeypatch.setenv(key, value)
    return moto_url


@pytest.fixture
def workdir(tmp_path):
    """A deployment folder as the repository has it: config, main.tf, tfvars."""
    return copy_deployment(tmp_path / "deployment")


def copy_deployment(work: Path) -> Path:
    """``work``, made, with the repository's deployment files in it: config, main.tf, tfvars."""
    work.mkdir()
    for name in ("deployment_config.yaml", "main.tf", "bentoctl.tfvars"):
        shutil.copyfile(PROJECT_ROOT / name, work / name)
    return work


class Run:
    def __init__(self, result: subprocess.CompletedProcess, state: Path):
        self.returncode, self.stdout, self.stderr, self.state = result.returncode, result.stdout, result.stderr, state

    def calls(self, tool: str | None = None) -> list[list[str]]:
        os.environ["STANDIN_STATE"] = str(self.state)
        return [call["argv"] for call in record.calls() if tool in (None, call["tool"])]

    def entries(self) -> list[dict]:
        os.environ["STANDIN_STATE"] = str(self.state)
        return record.calls()


def run_deploy(
    command: str,
    workdir: Path,
    endpoint: str,
    tmp_path: Path,
    env: dict | None = None,
    path: str | None = None,
    args: tuple = (),
) -> Run:
    state = tmp_path / "standin-state"
    state.mkdir(exist_ok=True)
    full_env = {
        **os.environ,
        "STANDIN_STATE": str(state),
        "STANDIN_PYTHON": sys.executable,
        "STANDIN_ENDPOINT": endpoint,
        "BENTOCTL_HOME": str(tmp_path / "bentoctl-home"),
        "PATH": path if path is not None else f"{STANDINS}{os.pathsep}{os.environ['PATH']}",
        **(env or {}),
    }
    for key in [key for key, value in full_env.items() if value is None]:
        del full_env[key]
    result = subprocess.run(
        [sys.executable, "-m", "deploy", "--dir", str(workdir), command, *args],
        cwd=PROJECT_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Run(result, state)


def ecr_tags(name: str = "xgb-classifier") -> set[str]:
    images = boto3.client("ecr", region_name=REGION).describe_images(repositoryName=name)["imageDetails"]
    return {tag for image in images for tag in image.get("imageTags", [])}


def tfvars(workdir: Path) -> dict:
    """The string settings of bentoctl.tfvars with what is deployed (deployed.auto.tfvars.json)."""
    values = dict(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', (workdir / "bentoctl.tfvars").read_text(), re.MULTILINE))
    deployed = workdir / "deployed.auto.tfvars.json"
    return {
        **values,
        **dict.fromkeys(("image_repository", "image_version"), ""),
        **(json.loads(deployed.read_text()) if deployed.exists() else {}),
    }


def first_index(calls: list[list[str]], *prefix: str) -> int:
    return next(i for i, argv in enumerate(calls) if argv[: len(prefix)] == list(prefix))


def lambda_client():
    return boto3.client("lambda", region_name=REGION)


def live_alias() -> dict:
    return lambda_client().get_alias(FunctionName="xgb-classifier", Name=operator_config.ALIAS_NAME)


def new_image_version(workdir: Path, server, built_bento, tmp_path, env=None) -> Run:
    """Deploy once more as if a retrained Bento had been built: another architecture tag, so a new
    image is pushed and a new version published (the same Bento would reuse its image)."""
    config = yaml.safe_load((workdir / "deployment_config.yaml").read_text())
    config["spec"]["architecture"] = "arm64" if config["spec"].get("architecture", "x86_64") == "x86_64" else "x86_64"
    (workdir / "deployment_config.yaml").write_text(yaml.safe_dump(config))
    return run_deploy(
        "deploy", workdir, server.url, tmp_path, env=env, args=("--bento", built_bento, "--bake-seconds", "3")
    )


def set_spec(workdir: Path, **values) -> None:
    config = yaml.safe_load((workdir / "deployment_config.yaml").read_text())
    config["spec"].update(values)
    (workdir / "deployment_config.yaml").write_text(yaml.safe_dump(config))
