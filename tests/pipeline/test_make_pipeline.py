"""`make ready` (what `make serve` and `make deploy` run first) makes data, model and Bento only
where needed and says which steps ran, in a copy of the project with its own BentoML home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.config import PROJECT_ROOT

STEPS = ("==> data:", "==> train:", "==> build:")


@pytest.fixture
def project(tmp_path):
    copy = tmp_path / "project"
    copy.mkdir()
    for name in (
        "Makefile",
        "bentofile.yaml",
        "requirements.txt",
        "constraints.txt",
        "requirements-serve.txt",
        "requirements-tools.txt",
        "constraints-tools.txt",
    ):
        shutil.copy2(PROJECT_ROOT / name, copy / name)
    shutil.copytree(
        PROJECT_ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"), copy_function=shutil.copy2
    )
    (copy / "data").mkdir()
    return copy


def make_ready(project: Path, home: Path) -> str:
    venv = Path(sys.executable).parent.parent
    result = subprocess.run(
        ["make", "--no-print-directory", f"VENV={venv}", "ready"],
        cwd=project,
        env={**os.environ, "BENTOML_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def steps_run(output: str) -> list[str]:
    return [step for step in STEPS if step in output]


def test_each_step_runs_only_when_its_inputs_changed(project, tmp_path):
    home = tmp_path / "bentoml-home"
    first = make_ready(project, home)
    assert steps_run(first) == list(STEPS)
    model = (project / ".make" / "model").read_text().strip()
    bento = (project / ".make" / "bento").read_text().strip()
    assert (home / "models" / model.replace(":", "/")).is_dir() and (home / "bentos" / bento.replace(":", "/")).is_dir()

    again = make_ready(project, home)
    assert steps_run(again) == [], again
    assert f"model {model}, Bento {bento}" in again

    os.utime(project / "src" / "service.py")
    assert steps_run(make_ready(project, home)) == ["==> build:"], "a service change rebuilds the Bento only"

    os.utime(project / "src" / "train.py")
    assert steps_run(make_ready(project, home)) == ["==> train:", "==> build:"]

    retrained = (project / ".make" / "model").read_text().strip()
    shutil.rmtree(home / "models" / retrained.split(":")[0] / retrained.split(":")[1])
    gone = make_ready(project, home)
    assert "is not in the model store" in gone and steps_run(gone) == ["==> train:", "==> build:"]
