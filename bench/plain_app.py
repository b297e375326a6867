"""The practical ceiling: the same model and the same input checks as the service, in a
framework-free ASGI app on uvicorn. Anything BentoML costs beyond this is overhead.

    MODEL_FILE=<store>/models/xgb_model/<version>/saved_model.ubj \
        uvicorn bench.plain_app:app --port 3100 --workers 1
"""

import json
import os

import numpy as np
import xgboost as xgb

from src import config
from src.validation import InvalidInput, check_content_type, parse_features

booster = xgb.Booster(model_file=os.environ["MODEL_FILE"])
booster.set_param({"nthread": 1})


async def _read_body(receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _send(send, status: int, payload) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    path = scope["path"]
    if scope["method"] == "GET" and path == "/readyz":
        return await _send(send, 200, "ok")
    if scope["method"] != "POST" or path not in ("/classify", "/predict_proba"):
        return await _send(send, 404, "not found")
    headers = dict(scope["headers"])
    try:
        check_content_type(headers.get(b"content-type", b"").decode("latin-1"))
        features = parse_features(await _read_body(receive))
    except InvalidInput as exc:
        return await _send(send, exc.status, str(exc))
    proba = booster.inplace_predict(features, validate_features=False)
    if path == "/classify":
        return await _send(send, 200, (proba >= config.DECISION_THRESHOLD).astype(np.int64).tolist())
    return await _send(send, 200, proba.astype(np.float64).tolist())
