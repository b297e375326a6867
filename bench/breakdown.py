"""Where our service spends its time, for bench/results.md: what stands between ours and its peers.

    python -m bench.breakdown layers      # needs XGB_MODEL_TAG and BENTOML_HOME; prints one JSON line
    python -m bench.breakdown request-log # prints one JSON line

``layers``: a one-row ``POST /classify`` driven in process through the service's ASGI app, layer
by layer (the outermost middleware, each one inside it, down to the endpoint, then the runner's
call and the booster's own prediction), after the app's start-up; each layer's own cost is its
median time less the median of the layer it wraps. No sockets and no HTTP parsing: what remains
is BentoML's and our middleware's work per request.

``request-log``: the request log alone (src/request_log.py) around an app that answers at once,
its line written to /dev/null, then with its line off: µs per request beyond the bare app's; and
the drift counts (src/drift_metrics.py) of a one-row answer in that line, as on Lambda, for the
default two series and for all of them: µs beyond the line without them.

:func:`import_costs`: the modules a handler's import loads, from ``python -X importtime``, by the
top-level package that first pulled them in.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import statistics
import sys
import time
from collections import defaultdict

import numpy as np

from src import config

ROUNDS, WARM_UP = 3000, 300


def _request(body: bytes):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/classify",
        "raw_path": b"/classify",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 3000),
    }

    async def call(app) -> int:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent = []

        async def receive():
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await app(dict(scope), receive, send)
        return sent[0]["status"]

    return call


def layer_costs() -> list[dict]:
    """[{"layer": name, "median_us": time through it, "own_us": its own share}], outermost first."""
    import numpy as np

    import src.service as service
    from src import bentoml_adapter, config, request_log

    request_log.log_to_stream(open(os.devnull, "w"))  # on, as in the benchmark, but not on our stdout
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = service.svc.asgi_app
    bentoml_adapter.start_app(app)
    call = _request(json.dumps(config.EXAMPLE_ROWS).encode())
    features = np.asarray(config.EXAMPLE_ROWS, dtype=np.float32)
    booster = bentoml_adapter.loaded_runnable(service.runner).booster

    probes, layer = [], app.middleware_stack or app.build_middleware_stack()
    while layer is not None:
        probes.append((type(layer).__name__, functools.partial(call, layer)))
        layer = getattr(layer, "app", None)

    async def runner_call():
        await service.positive_probability(features)

    async def prediction():
        booster.inplace_predict(features, validate_features=False)

    probes += [("the runner's call", runner_call), ("inplace_predict", prediction)]

    async def medians_us() -> list[float]:
        """Each probe once per round, in turn, so that the machine's drift touches all alike."""
        for _ in range(WARM_UP):
            for _, probe in probes:
                await probe()
        times: list[list[float]] = [[] for _ in probes]
        for _ in range(ROUNDS):
            for index, (_, probe) in enumerate(probes):
                started = time.perf_counter()
                await probe()
                times[index].append(time.perf_counter() - started)
        return [statistics.median(each) * 1e6 for each in times]

    medians = loop.run_until_complete(medians_us())
    own = [outer - inner for outer, inner in zip(medians, medians[1:], strict=False)] + medians[-1:]
    return [
        {"layer": name, "median_us": us, "own_us": mine}
        for (name, _), us, mine in zip(probes, medians, own, strict=True)
    ]


def request_log_costs() -> dict[str, float]:
    """µs per request the request log adds to an app that answers at once: with its line, without."""
    from src import request_log

    request_log.log_to_stream(open(os.devnull, "w"))
    call = _request(b"[[0]]")

    async def answer(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"[1]"})

    def counting(series: int):
        counter = _drift_counter(series)
        features, probability = np.full((1, config.N_FEATURES), 0.3), np.array([0.7])

        async def app(scope, receive, send):
            request_log.annotate(request_log.EXTRA, counter.observe(features, probability))
            await answer(scope, receive, send)

        return request_log.RequestLog(app, "xgb_model:bench", log=True)

    apps = {
        "bare": answer,
        "with_line": request_log.RequestLog(answer, "xgb_model:bench", log=True),
        "without_line": request_log.RequestLog(answer, "xgb_model:bench", log=False),
        "drift_default": counting(_default_drift_series()),
        "drift_all": counting(1 + config.N_FEATURES),
    }

    async def medians_us() -> dict[str, float]:
        times: dict[str, list[float]] = {name: [] for name in apps}
        for round_number in range(WARM_UP + ROUNDS * 3):
            for name, app in apps.items():
                started = time.perf_counter()
                await call(app)
                if round_number >= WARM_UP:
                    times[name].append(time.perf_counter() - started)
        return {name: statistics.median(each) * 1e6 for name, each in times.items()}

    medians = asyncio.run(medians_us())
    costs = {name: medians[name] - medians["bare"] for name in ("with_line", "without_line")}
    costs.update({name: medians[name] - medians["with_line"] for name in ("drift_default", "drift_all")})
    return costs


def _default_drift_series() -> int:
    """The deployment's default drift_metrics (operator_config.py)."""
    from deploy.deployment import terraform_config

    return terraform_config.spec_defaults()["drift_metrics"]


def _drift_counter(series: int):
    """A counter as the Lambda function has it (namespace set), on a reference of generated rows."""
    from src import reference
    from src.drift_metrics import DriftCounter

    rng = np.random.default_rng(1)
    importance = {name: float(i) for i, name in enumerate(config.FEATURE_NAMES)}
    ref = reference.build(rng.normal(size=(8_000, config.N_FEATURES)), rng.uniform(size=2_000), importance)
    watched = ref.series[:series]
    return DriftCounter(ref, watched, watched, namespace="bench/drift", version="1")


def import_costs(importtime_stderr: str, root: str) -> dict[str, float]:
    """ms of import time under ``root`` (``python -X importtime`` output), by the top-level
    package each module was imported for, and the whole as "(total)"."""
    rows = []
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.split("|")
            rows.append((len(name) - len(name.lstrip()), name.strip(), int(cumulative) / 1000))
    root_indent, total = next((indent, ms) for indent, name, ms in rows if name == root)
    costs: dict[str, float] = defaultdict(float)
    for indent, name, ms in rows:
        if indent == root_indent + 2:  # imported directly by the root module
            costs[name.split(".")[0]] += ms
    return {"(total)": total, **dict(sorted(costs.items(), key=lambda item: -item[1]))}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    modes = {"layers": layer_costs, "request-log": request_log_costs}
    if len(args) != 1 or args[0] not in modes:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(modes[args[0]]()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
