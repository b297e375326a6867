"""Peer: the tutorial's service as the tutorial writes it, on BentoML 1.4.

The stock ``bentoml.xgboost`` runner (its own process, a DMatrix per call), ``NumpyNdarray`` in
and out, BentoML's default settings. The one change BentoML 1.4 needs: ``bentoml.Service`` no
longer takes runners, ``bentoml.legacy.Service`` does. Like the tutorial's, ``classify``
answers probabilities, and the body is a bare JSON 2-D array.

    bentoml serve bench.peers.tutorial_service:svc
"""

import bentoml
from bentoml.io import NumpyNdarray

from src import config

model_runner = bentoml.models.get(config.MODEL_TAG).to_runner()  # the tutorial: "xgb_model:latest"

svc = bentoml.legacy.Service(config.SERVICE_NAME, runners=[model_runner])  # 1.4: was bentoml.Service


@svc.api(input=NumpyNdarray(), output=NumpyNdarray())
def classify(input_series):
    return model_runner.predict.run(input_series)
