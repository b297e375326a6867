"""``server_settings.stored_model``: the model ``bentoml.models.get`` returns, from the same store,
without loading ``bentoml.models`` (and the cloud client its import pulls in). The BentoML
internals it relies on are checked by name, so a new pinned version that changes them fails here."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys

import pytest

from src import config
from src.config import PROJECT_ROOT
from src.server_settings import stored_model
from tests.commands import base_env


def test_bentoml_models_get_is_an_alias_lookup_then_the_store():
    import bentoml.models

    source = inspect.getsource(bentoml.models.get)
    assert '_model_store: "ModelStore" = Provide[BentoMLContainer.model_store]' in source
    assert "model_aliases: t.Dict[str, str] = Provide[BentoMLContainer.model_aliases]" in source
    assert re.search(r"tag = model_aliases\[tag\]\s+return _model_store\.get\(tag\)", source)


def test_same_model_as_bentoml_models_get(trained):
    import bentoml

    for tag in (trained.tag, f"{config.MODEL_NAME}:latest"):
        ours, theirs = stored_model(str(tag)), bentoml.models.get(str(tag))
        assert (ours.tag, ours.path) == (theirs.tag, theirs.path)


def test_missing_model_is_bentomls_not_found(trained):
    from bentoml.exceptions import NotFound

    with pytest.raises(NotFound):
        stored_model(f"{config.MODEL_NAME}:doesnotexist")


def test_bentoml_models_and_the_cloud_client_stay_unloaded(trained):
    probe = (
        "import json, sys\n"
        "from src.server_settings import stored_model\n"
        f"model = stored_model({str(trained.tag)!r})\n"
        "watched = ('bentoml.models', 'bentoml._internal.cloud', 'bentoml._internal.utils.analytics')\n"
        "print(json.dumps({'tag': str(model.tag), 'loaded': sorted(m for m in watched if m in sys.modules)}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=base_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"tag": str(trained.tag), "loaded": []}, seen
