"""Peer: the same model as BentoML 1.4 recommends writing a service (``@bentoml.service``).

The model from the store as a ``BentoModel``, loaded once per worker; a typed, validated
``np.ndarray`` input (n rows of ``config.N_FEATURES`` float32 features); ``classify`` answers
class labels. New-style APIs take a JSON object keyed by parameter name:
``{"features": [[...], ...]}``. Default settings otherwise (one worker).

    XGB_MODEL_TAG=xgb_model:<version> bentoml serve bench.peers.new_style_service:Classifier
"""

from typing import Annotated

import bentoml
import numpy as np
from bentoml.validators import DType, Shape

from src import config

Features = Annotated[np.ndarray, Shape((-1, config.N_FEATURES)), DType("float32")]


@bentoml.service(name="xgb_classifier_new_style")
class Classifier:
    model_ref = bentoml.models.BentoModel(config.MODEL_TAG)

    def __init__(self):
        self.booster = bentoml.xgboost.load_model(self.model_ref)
        self.booster.set_param({"nthread": 1})

    @bentoml.api
    def classify(self, features: Features) -> np.ndarray:
        proba = self.booster.inplace_predict(features, validate_features=False)
        return (proba >= config.DECISION_THRESHOLD).astype(np.int64)
