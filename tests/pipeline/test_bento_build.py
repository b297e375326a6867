"""Stage 4: `bentoml build` packs exactly what the service needs, and `bentoml list` shows it;
bentoctl, in the deploy-only environment with its own older BentoML, reads that Bento."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.bento_handoff import NEWER_FIELDS, HandoffError, staged_home, without_newer_fields
from deploy.steps import DEPLOY_ENV
from src import config
from src.config import PROJECT_ROOT
from tests.commands import run_python
from tests.lambda_harness import build_context_via_bentoctl, install_operator


def run_probe(python: Path, probe: str, bentoml_home: Path | None = None) -> subprocess.CompletedProcess:
    """``python -c probe`` with another environment's Python (the deploy environment's), in
    ``bentoml_home`` when given; warnings off, so that stderr holds only an error."""
    env = {**os.environ, **({"BENTOML_HOME": str(bentoml_home)} if bentoml_home else {})}
    return subprocess.run(
        [str(python), "-W", "ignore", "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )


def bentoml_version(python: Path) -> str:
    result = run_probe(python, "import bentoml; print(bentoml.__version__)")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_build_makes_a_bento_with_only_the_service_code(built_bento, trained, bentoml_home):
    name, version = built_bento.split(":")
    assert name == config.SERVICE_NAME
    listed = run_python("-m", "bentoml", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert f'"{built_bento}"' in listed.stdout

    bento_dir = bentoml_home / "bentos" / name / version
    shipped = sorted(p.relative_to(bento_dir / "src").as_posix() for p in (bento_dir / "src").rglob("*") if p.is_file())
    included = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())["include"]
    assert shipped == sorted(["bentofile.yaml", *included]), "the Bento holds exactly bentofile.yaml's include list"
    assert "src/service.py" in included and not any("train" in name or "test" in name for name in included)

    info = yaml.safe_load((bento_dir / "bento.yaml").read_text())
    assert info["service"] == "src.service:svc"
    assert [m["tag"] for m in info["models"]] == [trained.tag]
    assert {api["name"] for api in info["apis"]} == {"classify", "predict_proba"}
    requirements = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    pins = (PROJECT_ROOT / "requirements-serve.txt").read_text().splitlines()
    serving_pin = next(line for line in pins if line.startswith("bentoml=="))
    assert serving_pin in requirements.splitlines() and "xgboost-cpu==" in requirements
    assert "scikit-learn" not in requirements and "pandas" not in requirements


def test_bentoctl_builds_the_lambda_context_from_the_serving_bento(built_bento, trained, bentoml_home, tmp_path):
    """The hand-off works: `bentoctl build --dry-run` in the deploy environment, with its own older
    BentoML, succeeds on the Bento the serving BentoML built, and its build context holds that
    Bento's code and model (docker is the stand-in that records the build)."""
    serving, deploying = bentoml_version(Path(sys.executable)), bentoml_version(DEPLOY_ENV / "bin" / "python")
    assert serving != deploying, "the deploy environment keeps its own BentoML"
    home = tmp_path / "bentoctl-home"
    assert install_operator(home, tmp_path).returncode == 0
    context = build_context_via_bentoctl(built_bento, home, tmp_path)

    name, version = built_bento.split(":")
    bento_dir = bentoml_home / "bentos" / name / version
    sources = list((bento_dir / "src").rglob("*.py"))
    assert any(source.name == "service.py" for source in sources)
    for source in sources:
        copied = context / "app" / source.relative_to(bento_dir / "src")
        assert copied.read_bytes() == source.read_bytes(), f"{copied} is not the Bento's {source.name}"
    model_name, model_version = trained.tag.split(":")
    models = context / "app" / "bentoml" / "models" / model_name
    assert (models / model_version / "model.yaml").is_file() and (models / "latest").read_text() == model_version
    assert f"XGB_MODEL_TAG={trained.tag}" in (context / "env" / "docker" / "Dockerfile").read_text()


def test_bentoctls_bentoml_refuses_the_raw_bento_so_the_handoff_is_still_needed(built_bento, bentoml_home, tmp_path):
    """Without the hand-off, bentoctl's BentoML stops on the newer fields the serving BentoML
    writes; when it reads them (a newer deploy environment), deploy/bento_handoff.py can go."""
    name, version = built_bento.split(":")
    result = run_probe(DEPLOY_ENV / "bin" / "python", f"import bentoml; bentoml.get({built_bento!r})", bentoml_home)
    assert result.returncode != 0
    assert any(field in result.stderr for _, field, _ in NEWER_FIELDS), result.stderr[-2000:]
    staged = staged_home(built_bento, tmp_path / "home")
    info = yaml.safe_load((staged / "bentos" / name / version / "bento.yaml").read_text())
    assert all(field not in info[section] for section, field, _ in NEWER_FIELDS)
    raw = yaml.safe_load((bentoml_home / "bentos" / name / version / "bento.yaml").read_text())
    for section, field, _ in NEWER_FIELDS:
        del raw[section][field]
    assert info == raw, "only the newer fields are left out"


@pytest.mark.unit
def test_a_newer_field_that_changes_the_bento_is_refused_not_dropped():
    text = "name: x\npython:\n  requirements_txt: r.txt\n  is_src_layout: true\n  wheels: null\nconda: null\n"
    with pytest.raises(HandoffError, match="is_src_layout: True"):
        without_newer_fields(text)
    kept = without_newer_fields(text.replace("is_src_layout: true", "is_src_layout: false"))
    assert kept == "name: x\npython:\n  requirements_txt: r.txt\n  wheels: null\nconda: null\n"


def test_the_handoff_command_writes_a_home_bentoctls_bentoml_reads_and_refuses_an_unknown_tag(built_bento, tmp_path):
    home = tmp_path / "home"
    made = run_python("-m", "deploy.bento_handoff", built_bento, str(home))
    assert made.returncode == 0 and made.stdout.strip() == str(home), made.stderr
    read = run_probe(DEPLOY_ENV / "bin" / "python", f"import bentoml; print(bentoml.get({built_bento!r}).tag)", home)
    assert read.returncode == 0 and read.stdout.strip() == built_bento, read.stderr[-2000:]
    unknown = run_python("-m", "deploy.bento_handoff", "xgb_classifier:nosuchversion", str(tmp_path / "other"))
    assert unknown.returncode == 2 and "nosuchversion" in unknown.stderr and "Traceback" not in unknown.stderr


@pytest.mark.unit
def test_a_missing_deploy_environment_says_how_to_make_it(monkeypatch, tmp_path):
    from deploy import steps

    monkeypatch.setattr(steps, "DEPLOY_ENV", tmp_path / ".venv-deploy")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(steps.StepFailed, match="bentoctl is not installed") as failed:
        steps.bentoctl_executable()
    assert "make setup" in failed.value.hint
