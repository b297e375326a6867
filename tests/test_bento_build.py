"""Stage 4: `bentoml build` packs exactly what the service needs, and `bentoml list` shows it."""

import yaml

from src import config
from src.config import PROJECT_ROOT
from tests.commands import run_python


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
    assert "bentoml==1.4.19" in requirements and "xgboost-cpu==" in requirements
    assert "scikit-learn" not in requirements and "pandas" not in requirements
