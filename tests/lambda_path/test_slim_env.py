"""The Lambda image's environment trimmed by slim_env.py: what it removes, that serving never
loads any of it, and the size it leaves (at most 180 MB of site-packages)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

from deploy.lambda_events import http_api_v2
from deploy.lambda_image_env import site_packages, site_packages_mb
from deploy.lambda_runtime import code_env, run_read_only
from src.config import PROJECT_ROOT
from tests.sample_requests import ROW, expected_labels

SLIM_ENV = PROJECT_ROOT / "deploy" / "aws-lambda-operator" / "aws_lambda_operator" / "image" / "slim_env.py"
MAX_SITE_PACKAGES_MB = 180
REMOVED_MODULES = (
    "scipy.special",
    "scipy.linalg",
    "scipy.sparse.linalg",
    "scipy.sparse.csgraph",
    "httpx._main",
    "xgboost.sklearn",
    "xgboost.plotting",
)


def slim_env():
    spec = importlib.util.spec_from_file_location("slim_env", SLIM_ENV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def test_removes_exactly_what_serving_never_loads(tmp_path):
    kept = [
        "scipy/__init__.py",
        "scipy/version.py",
        "scipy/_lib/_util.py",
        "scipy/sparse/__init__.py",
        "scipy/sparse/_csr.py",
        "httpx/__init__.py",
        "httpx/_client.py",
        "numpy/__init__.py",
        "numpy/testing/__init__.py",
        "xgboost/sklearn.py",
        "bentoml/_internal/server/static_content/index.html",
    ]
    removed = [
        "scipy/special/__init__.py",
        "scipy/linalg/_basic.py",
        "scipy/optimize/__init__.py",
        "scipy/sparse/linalg/__init__.py",
        "scipy/sparse/csgraph/__init__.py",
        "scipy.libs/libopenblas.so",
        "httpx/_main.py",
        "numpy/__init__.pyi",
        "scipy/sparse/_base.pxd",
        "pkg/tests/test_pkg.py",
        "pkg/sub/test/test_sub.py",
    ]
    make_tree(tmp_path, kept + removed)
    slim_env().main(tmp_path)
    assert [name for name in kept if not (tmp_path / name).exists()] == []
    assert [name for name in removed if (tmp_path / name).exists()] == []


def test_site_packages_fit_in_180_mb(image):
    python, _ = image
    size = site_packages_mb(python)
    print(f"\nimage Python environment: {size:.0f} MB of site-packages (bytecode included)")
    assert size <= MAX_SITE_PACKAGES_MB
    site = site_packages(python)
    assert not (site / "scipy" / "special").exists() and not (site / "scipy.libs").exists()
    assert (site / "scipy" / "sparse" / "__init__.py").is_file(), "xgboost imports scipy.sparse"


def test_serving_loads_nothing_that_was_removed_and_still_answers(image, booster):
    python, task = image
    probe = task.parent / "slim-probe.py"
    probe.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(task)!r})\n"
        "import lambda_app, xgboost\n"
        "from src.bentoml_adapter import loaded_runnable\n"
        f"event = json.loads({json.dumps(json.dumps(http_api_v2([ROW])))})\n"
        "answer = lambda_app.handler(event, None)\n"
        f"loaded = sorted(m for m in {list(REMOVED_MODULES)!r} if m in sys.modules)\n"
        "booster = type(loaded_runnable(lambda_app.service.runners[0]).booster).__name__\n"
        "print(json.dumps({'status': answer['statusCode'], 'body': answer['body'], 'loaded': loaded,\n"
        "                  'booster': booster, 'sklearn_wrappers': hasattr(xgboost, 'XGBClassifier')}))\n"
    )
    probe.chmod(0o644)
    result = run_read_only([str(python), str(probe)], task, code_env(task))
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["status"] == 200 and json.loads(seen["body"]) == expected_labels(booster, [ROW]), seen
    assert seen["loaded"] == [], f"serving loaded removed modules: {seen['loaded']}"
    assert seen["booster"] == "Booster" and seen["sklearn_wrappers"] is False, seen


def test_removed_modules_fail_to_import_cleanly(image):
    """What is gone raises ImportError (the fallback xgboost and httpx expect), not a crash."""
    python, task = image
    code = (
        "import importlib, json\n"
        "out = {}\n"
        f"for name in {list(REMOVED_MODULES)!r}:\n"
        "    try:\n"
        "        importlib.import_module(name); out[name] = 'imported'\n"
        "    except ImportError:\n"
        "        out[name] = 'ImportError'\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [str(python), "-c", code], env=code_env(task), capture_output=True, text=True, cwd="/tmp", timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(json.loads(result.stdout.strip().splitlines()[-1]).values()) == {"ImportError"}
