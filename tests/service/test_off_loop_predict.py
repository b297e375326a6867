"""Large requests are predicted on the runner's thread while the event loop serves others; the
usual few rows stay inline; both give the booster's probabilities. Run in a fresh interpreter,
the service imported as `bentoml serve` imports it."""

from __future__ import annotations

import json

from tests.commands import run_python

PROBE = """
import asyncio, json
import numpy as np
import src.service as service
from src import bentoml_adapter
from tests.loop_ticks import while_ticking

async def main(rows):
    features = np.random.default_rng(5).standard_normal((rows, service.config.N_FEATURES)).astype(np.float32)
    await service.positive_probability(features)  # loads the model: not what is measured
    answer, ticks = await while_ticking(service.positive_probability(features))
    booster = bentoml_adapter.loaded_runnable(service.runner).booster
    expected = booster.inplace_predict(features, validate_features=False)
    return {"ticks": ticks, "same": bool(np.array_equal(answer, expected.astype(np.float64)))}

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
bentoml_adapter.start_app(service.svc.asgi_app)  # the runner loaded, as at a server's start
print(json.dumps({rows: loop.run_until_complete(main(rows)) for rows in (2, 100_000)}))
"""


def probe(model_tag: str, **env) -> dict:
    result = run_python("-c", PROBE, env={"XGB_MODEL_TAG": model_tag, **env}, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_large_request_is_predicted_while_the_loop_runs(trained):
    found = probe(trained.tag)
    assert found["2"] == {"ticks": 0, "same": True}, "a few rows are predicted inline"
    assert found["100000"]["same"] and found["100000"]["ticks"] >= 3, found


def test_zero_keeps_every_prediction_on_the_loop(trained):
    found = probe(trained.tag, XGB_OFF_LOOP_PREDICT_ROWS="0")
    assert found["100000"] == {"ticks": 0, "same": True}, found
