"""Drift counts per reference bin: in the request's log line as an Embedded Metric Format
document (on Lambda, under awslambdaric), and on /metrics locally with metrics on."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry, Counter

from deploy.lambda_events import http_api_v2
from src import config, drift_metrics, reference, request_log
from src.reference import PROBABILITY, Reference
from tests.commands import serve
from tests.lambda_harness import request_lines, run_entry_command

NAMESPACE = "xgb-classifier/drift"


def toy_reference() -> Reference:
    rng = np.random.default_rng(5)
    rows = rng.normal(size=(2_000, config.N_FEATURES)) * np.arange(1, config.N_FEATURES + 1)
    importance = {name: float(i) for i, name in enumerate(config.FEATURE_NAMES)}
    return reference.build(rows, rng.uniform(size=500), importance)


def expected_counts(ref: Reference, series, features, probability) -> dict[str, int]:
    """Every bin's count as src.reference bins one series at a time, by metric name."""
    counts = {}
    for name in series:
        values = probability if name == PROBABILITY else features[:, ref.column(name)]
        for i, count in enumerate(reference.bin_counts(values, ref.edges[name])):
            counts[drift_metrics.metric_name(name, i)] = int(count)
    return counts


@pytest.mark.unit
@pytest.mark.parametrize("rows", [1, 2, drift_metrics.SMALL_REQUEST_ROWS, drift_metrics.SMALL_REQUEST_ROWS + 1, 1_000])
def test_counts_are_the_reference_bins_for_small_and_large_requests(rows):
    ref = toy_reference()
    rng = np.random.default_rng(rows)
    features = rng.normal(size=(rows, config.N_FEATURES)) * 3
    features[0, ref.column(ref.series[1])] = ref.edges[ref.series[1]][4]  # a value on an edge
    probability = rng.uniform(size=rows)
    probability[0] = reference.PROBABILITY_EDGES[1]
    counter = drift_metrics.DriftCounter(ref, ref.series)
    got = dict(zip(counter.names, counter.counts(features, probability).tolist(), strict=True))
    assert got == expected_counts(ref, ref.series, features, probability)
    assert sum(got.values()) == rows * len(ref.series)


@pytest.mark.unit
def test_the_log_line_is_an_emf_document_of_the_emitted_series_nonzero_bins():
    ref = toy_reference()
    counter = drift_metrics.DriftCounter(ref, ref.series, ref.series[:2], namespace=NAMESPACE, version="7")
    features = np.random.default_rng(1).normal(size=(3, config.N_FEATURES))
    probability = np.array([0.05, 0.1, 0.95])
    before = int(time.time() * 1000)
    fields = counter.observe(features, probability)
    directive = fields["_aws"]["CloudWatchMetrics"]
    assert before <= fields["_aws"]["Timestamp"] <= time.time() * 1000 + 1
    assert len(directive) == 1 and directive[0]["Namespace"] == NAMESPACE
    assert directive[0]["Dimensions"] == [[drift_metrics.DIMENSION]] and fields[drift_metrics.DIMENSION] == "7"
    names = [metric["Name"] for metric in directive[0]["Metrics"]]
    assert all(metric["Unit"] == "Count" for metric in directive[0]["Metrics"])
    want = {name: n for name, n in expected_counts(ref, ref.series[:2], features, probability).items() if n}
    assert {name: fields[name] for name in names} == want
    assert "probability_bin0" in names and fields["probability_bin0"] == 2
    assert not any(name.startswith(ref.series[2] + "_") for name in fields)
    assert set(fields) == {*names, drift_metrics.DIMENSION, "_aws"}
    json.dumps(fields, allow_nan=False)  # plain JSON numbers only


@pytest.mark.unit
def test_nothing_is_emitted_without_a_namespace_but_prometheus_still_counts():
    ref = toy_reference()
    registry = CollectorRegistry()
    prometheus = Counter(drift_metrics.PROMETHEUS_NAME, "test", ["series", "bin"], registry=registry)
    counter = drift_metrics.DriftCounter(ref, ref.series, ref.series, namespace="", prometheus=prometheus)
    features = np.zeros((4, config.N_FEATURES))
    probability = np.array([0.1, 0.3, 0.3, 0.9])
    assert counter.observe(features, probability) is None
    assert counter.observe(features, probability) is None
    sample = {"series": PROBABILITY, "bin": "1"}
    assert registry.get_sample_value(f"{drift_metrics.PROMETHEUS_NAME}_total", sample) == 4
    assert registry.get_sample_value(f"{drift_metrics.PROMETHEUS_NAME}_total", {**sample, "bin": "3"}) == 0


@pytest.mark.unit
def test_annotate_adds_keys_to_the_current_requests_line_only():
    import asyncio
    import io

    async def app(scope, receive, send):
        request_log.annotate(request_log.EXTRA, {"probability_bin2": 5, "_aws": {"x": 1}})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    stream, before = io.StringIO(), request_log._stream
    request_log.log_to_stream(stream)
    try:
        middleware = request_log.RequestLog(app, model_version="m:1")
        for _ in range(2):
            asyncio.run(
                middleware({"type": "http", "method": "POST", "path": "/classify", "headers": []}, receive, send)
            )
    finally:
        request_log._stream = before
    request_log.annotate(request_log.EXTRA, {"outside": 1})  # no request: nothing to annotate, no error
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    assert all(line["probability_bin2"] == 5 and line["_aws"] == {"x": 1} for line in lines)


# ---------------------------------------------------------------------------- the real paths


def stored_reference(tag: str) -> Reference:
    import bentoml

    return Reference.from_metadata(bentoml.models.get(tag).info.metadata)


@pytest.mark.parametrize("log_format", ["JSON", "Text"])
def test_lambda_log_lines_carry_the_drift_counts_as_emf(task_dir, trained, booster, log_format, tmp_path):
    """The image's entry command from its read-only code directory, with the environment main.tf
    gives the function: each answer's line carries its rows' bins of the first two series."""
    rng = np.random.default_rng(11)
    batches = [rng.normal(size=(n, config.N_FEATURES)) for n in (1, 5, 40)]
    events = [http_api_v2(json.dumps(batch.tolist()), path="/predict_proba") for batch in batches]
    events.append(http_api_v2(json.dumps([[1, 2]]), path="/classify"))  # refused: no counts
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": "xgb-classifier",
        "AWS_LAMBDA_FUNCTION_VERSION": "12",
        "AWS_LAMBDA_LOG_FORMAT": log_format,
        "XGB_DRIFT_NAMESPACE": NAMESPACE,
        "XGB_DRIFT_METRICS": "2",
    }
    finished, api, output = run_entry_command(task_dir, events, tmp_path / "awslambdaric.log", len(events), env)
    assert finished and not api.errors, (api.errors, output[-3000:])
    lines = request_lines(output)
    assert len(lines) == len(events), output[-3000:]
    ref = stored_reference(trained.tag)
    for batch, line in zip(batches, lines, strict=False):
        probability = booster.inplace_predict(batch.astype(np.float32), validate_features=False)
        want = {name: n for name, n in expected_counts(ref, ref.series[:2], batch, probability).items() if n}
        directive = line["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == NAMESPACE and line[drift_metrics.DIMENSION] == "12"
        assert {m["Name"]: line[m["Name"]] for m in directive["Metrics"]} == want
    assert lines[-1]["status"] == 400 and "_aws" not in lines[-1]


def test_local_metrics_count_every_series(trained, booster, tmp_path_factory):
    """`bentoml serve` with metrics on: /metrics has the same counts, for every series."""
    srv = serve(
        tmp_path_factory.mktemp("drift-metrics"),
        env={"XGB_MODEL_TAG": trained.tag, "XGB_SERVER_METRICS": "1", "XGB_SERVER_WORKERS": "1"},
    )
    try:
        rows = np.random.default_rng(4).normal(size=(30, config.N_FEATURES))
        for chunk in (rows[:1], rows[1:]):
            answer = requests.post(f"{srv.url}/predict_proba", json=chunk.tolist(), timeout=10)
            assert answer.status_code == 200, answer.text
        text = requests.get(f"{srv.url}/metrics", timeout=10).text
    finally:
        srv.stop()
    ref = stored_reference(trained.tag)
    probability = booster.inplace_predict(rows.astype(np.float32), validate_features=False)
    want = expected_counts(ref, ref.series, rows, probability)
    got = {}
    for line in text.splitlines():
        if line.startswith(f"{drift_metrics.PROMETHEUS_NAME}_total{{"):
            labels, value = line.rsplit(" ", 1)
            parts = dict(part.split("=") for part in labels[labels.index("{") + 1 : -1].split(","))
            got[drift_metrics.metric_name(parts["series"].strip('"'), int(parts["bin"].strip('"')))] = int(float(value))
    assert {name: n for name, n in got.items() if n} == {name: n for name, n in want.items() if n}
