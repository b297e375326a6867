"""``bentoml_adapter.stored_model`` and ``load_booster``: the model ``bentoml.models.get`` returns
and the booster ``bentoml.xgboost.load_model`` loads, without loading ``bentoml.models`` (and the
cloud client its import pulls in), in the service's start-up too."""

from __future__ import annotations

import json

import pytest

from src import config
from src.bentoml_adapter import stored_model
from tests.commands import run_python
from tests.sample_requests import random_rows


def test_same_model_as_bentoml_models_get(trained):
    import bentoml

    for tag in (trained.tag, f"{config.MODEL_NAME}:latest"):
        ours, theirs = stored_model(str(tag)), bentoml.models.get(str(tag))
        assert (ours.tag, ours.path) == (theirs.tag, theirs.path)


def test_missing_model_is_bentomls_not_found(trained):
    from bentoml.exceptions import NotFound

    with pytest.raises(NotFound):
        stored_model(f"{config.MODEL_NAME}:doesnotexist")


def test_load_booster_gives_the_booster_bentoml_xgboost_loads(trained, booster):
    from src.bentoml_adapter import load_booster

    rows = random_rows(200, seed=11, scale=2).astype("float32")
    ours = load_booster(stored_model(str(trained.tag)))
    assert ours.inplace_predict(rows).tolist() == booster.inplace_predict(rows).tolist()


def test_the_service_starts_without_bentoml_models_or_the_cloud_client(trained):
    """Import the service and run its start-up (the runner loads the booster), as the Lambda
    handler's cold start does: neither bentoml.models nor what it pulls in gets loaded."""
    probe = (
        "import asyncio, json, sys\n"
        "import src.service as service\n"
        "from src.bentoml_adapter import CLOUD_CLIENT_MODULES, loaded_runnable, start_app\n"
        "asyncio.set_event_loop(asyncio.new_event_loop())\n"
        "start_app(service.svc.asgi_app)\n"
        "loaded = sorted(m for m in CLOUD_CLIENT_MODULES if m in sys.modules)\n"
        "runnable = loaded_runnable(service.runner)\n"
        "print(json.dumps({'loaded': loaded, 'booster': type(runnable.booster).__name__}))\n"
    )
    result = run_python("-c", probe, env={"XGB_MODEL_TAG": str(trained.tag)}, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"loaded": [], "booster": "Booster"}
