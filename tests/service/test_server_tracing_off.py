"""With tracing off (the default), BentoML's OpenTelemetry middleware is left out of the HTTP app
(src/server_tuning.py); with XGB_TRACING=1 it stays. The BentoML internals this relies on are
checked in tests/service/test_bentoml_adapter.py."""

from __future__ import annotations

import json

from tests.commands import run_python

PROBE = (
    "import json\n"
    "import src.service as service\n"
    "names = [m.cls.__name__ for m in service.svc.asgi_app.user_middleware]\n"
    "print(json.dumps(names))\n"
)


def middleware_names(tracing: bool, model_tag: str) -> list[str]:
    env = {"XGB_MODEL_TAG": model_tag, **({"XGB_TRACING": "1"} if tracing else {})}
    result = run_python("-c", PROBE, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_tracing_off_leaves_it_out_and_keeps_the_services_own(trained):
    names = middleware_names(False, trained.tag)
    assert "OpenTelemetryMiddleware" not in names
    assert {"RequestLog", "RequestTimeout"} <= set(names), names


def test_tracing_on_keeps_it(trained):
    assert "OpenTelemetryMiddleware" in middleware_names(True, trained.tag)
