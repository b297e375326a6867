"""Request bodies the Lambda tests send: random rows, and bad bodies with the answer each must get."""

import json

import numpy as np

from src import config

N = config.N_FEATURES
ROWS = np.random.default_rng(4).normal(scale=2, size=(40, config.N_FEATURES)).round(5)

# (case, body, content type, expected status, a phrase the answer must contain)
BAD = [
    ("1-D", json.dumps(ROWS[0].tolist()), "application/json", 400, "wrap a single row"),
    ("wrong width", json.dumps([[1, 2, 3]]), "application/json", 400, "3 columns"),
    ("strings", json.dumps([["a"] * N]), "application/json", 400, "a string"),
    ("NaN", "[[NaN" + ",1" * (N - 1) + "]]", "application/json", 400, "NaN"),
    ("not JSON", "{oops", "application/json", 400, "not valid JSON"),
    ("empty", "", "application/json", 400, "empty request body"),
    ("content type", json.dumps([[1] * N]), "text/plain", 415, "application/json"),
    (
        "over 6 MB",
        "[" + ",".join([json.dumps(list(range(N)))] * 500_000) + "]",
        "application/json",
        413,
        str(config.MAX_BODY_BYTES),
    ),
]
