"""What src/bentoml_adapter.py relies on, checked against the pinned BentoML: an upgrade that
changes any of it fails here, by name, before the behaviour built on it breaks elsewhere."""

from __future__ import annotations

import ast
import asyncio
import inspect
import logging
import re

import bentoml
import pytest

from src import bentoml_adapter
from src.config import PROJECT_ROOT
from tests import source_facts
from tests.log_capture import captured, log_endpoint_error

pytestmark = pytest.mark.unit


def pinned(package: str) -> str:
    """The version requirements-serve.txt pins for ``package``."""
    text = (PROJECT_ROOT / "requirements-serve.txt").read_text()
    return re.search(rf"^{re.escape(package)}==(\S+)$", text, re.M).group(1)


def test_the_installed_bentoml_is_the_pinned_one():
    assert bentoml.__version__ == pinned("bentoml"), "re-check every test in this module for the new version"


def test_the_api_server_settings_the_adapter_sets_exist():
    container = bentoml_adapter._container()
    api_server = container.api_server_config
    for setting in (
        api_server.traffic.timeout,
        api_server.metrics.enabled,
        api_server.logging.access.enabled,
        api_server.workers,
        container.tracing.excluded_urls,
    ):
        setting.get()  # raises if the path no longer exists


def test_the_http_app_adds_the_tracing_middleware_in_a_property():
    factory = bentoml_adapter.http_app_module().HTTPAppFactory
    assert isinstance(factory.__dict__["middlewares"], property)
    body = source_facts.tree(factory.__dict__["middlewares"].fget)
    tracing = [
        c
        for c in source_facts.calls(body, "Middleware")
        if c.args and ast.unparse(c.args[0]) == "OpenTelemetryMiddleware"
    ]
    assert len(tracing) == 1, "the property no longer adds OpenTelemetryMiddleware once"
    assert source_facts.keywords(tracing[0])["excluded_urls"] == "BentoMLContainer.tracing_excluded_urls.get()"


def test_the_http_app_logs_endpoint_errors_on_its_module_logger():
    http_app = bentoml_adapter.http_app_module()
    endpoint = source_facts.tree(http_app.HTTPAppFactory._create_api_endpoint)
    handled = source_facts.handlers(endpoint, "BentoMLException")
    assert handled, "the endpoint no longer catches BentoMLException"
    assert source_facts.source_of(handled[0].body[0]) == "log_exception(request, sys.exc_info())"
    assert list(inspect.signature(http_app.log_exception).parameters) == ["request", "exc_info"]

    with captured(http_app.logger) as records:
        log_endpoint_error(http_app, RuntimeError("probe"))
    assert [(r.levelno, r.exc_info[0]) for r in records] == [(logging.ERROR, RuntimeError)]


def test_models_get_is_an_alias_lookup_then_the_store():
    import bentoml.models

    parameters = inspect.signature(bentoml.models.get).parameters
    assert list(parameters) == ["tag", "_model_store", "model_aliases"]
    container = bentoml_adapter._container()  # the providers stored_model reads, the same objects
    assert parameters["_model_store"].default is container.model_store
    assert parameters["model_aliases"].default is container.model_aliases
    (function,) = source_facts.functions(source_facts.tree(bentoml.models.get), "get")
    statements = [source_facts.source_of(s) for s in function.body if not isinstance(s, ast.Expr)]
    assert statements == [
        "if isinstance(tag, str) and tag in model_aliases:\n    tag = model_aliases[tag]",
        "return _model_store.get(tag)",
    ]


def test_serving_names_the_api_socket_and_the_worker_module():
    from bentoml import serving

    assert serving.API_SERVER_NAME == bentoml_adapter.API_SOCKET_NAME
    assert serving.SCRIPT_API_SERVER == bentoml_adapter.API_WORKER_MODULE


def test_an_embedded_runner_loaded_by_the_app_start_up_is_found(bentoml_home):
    """The ASGI start-up loads an embedded runner into the process (the Lambda handler relies on
    it); loaded_runnable finds what it loaded."""
    from mangum.protocols import LifespanCycle

    class Probe(bentoml.legacy.Runnable):
        SUPPORTED_RESOURCES = ("cpu",)
        SUPPORTS_CPU_MULTI_THREADING = True

        @bentoml.legacy.Runnable.method(batchable=False)
        def echo(self, value):
            return value

    runner = bentoml.legacy.Runner(Probe, name="probe", embedded=True)
    service = bentoml.legacy.Service("probe", runners=[runner])
    assert bentoml_adapter.loaded_runnable(runner) is None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with LifespanCycle(service.asgi_app, "on"):
            assert isinstance(bentoml_adapter.loaded_runnable(runner), Probe)
    finally:
        loop.close()
        asyncio.set_event_loop(None)


def test_bentomls_deprecation_category():
    category = bentoml_adapter.deprecation_warning_class()
    assert issubclass(category, DeprecationWarning) and category.__name__ == "BentoMLDeprecationWarning"


def test_bentomls_timeout_middleware_takes_the_app_and_a_timeout():
    middleware = bentoml_adapter.bentoml_timeout_middleware()
    assert list(inspect.signature(middleware).parameters)[:2] == ["app", "timeout"]


def test_live_timers_counts_what_is_scheduled_and_not_cancelled():
    loop = asyncio.new_event_loop()
    try:
        first, second = loop.call_later(60, print), loop.call_later(60, print)
        assert bentoml_adapter.live_timers(loop) == 2
        first.cancel()
        assert bentoml_adapter.live_timers(loop) == 1
        second.cancel()
        assert bentoml_adapter.live_timers(loop) == 0
    finally:
        loop.close()
