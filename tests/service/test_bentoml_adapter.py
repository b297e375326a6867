"""What src/bentoml_adapter.py relies on, checked against the pinned BentoML, circus and Mangum:
an upgrade that changes any of it fails here, by name, before the behaviour built on it breaks
elsewhere."""

from __future__ import annotations

import ast
import asyncio
import importlib
import importlib.metadata
import inspect
import logging
import re
import sys
import threading
import types

import bentoml
import pytest

from src import bentoml_adapter
from src.config import PROJECT_ROOT
from tests import source_facts
from tests.commands import run_python
from tests.log_capture import captured, log_endpoint_error

pytestmark = pytest.mark.unit


LAMBDA_REQUIREMENTS = "deploy/aws-lambda-operator/aws_lambda_operator/image/requirements-lambda.txt"


def pinned(package: str, requirements: str = "requirements-serve.txt") -> str:
    """The version ``requirements`` pins for ``package``."""
    text = (PROJECT_ROOT / requirements).read_text()
    return re.search(rf"^{re.escape(package)}==(\S+)$", text, re.M).group(1)


def cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what a started app left waiting on ``loop`` (its lifespan, for a shutdown that
    start_app never sends), so that the loop closes clean."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def test_the_installed_bentoml_is_the_pinned_one():
    assert bentoml.__version__ == pinned("bentoml"), "re-check every test in this module for the new version"


def test_the_installed_mangum_is_the_one_the_lambda_image_pins():
    installed = importlib.metadata.version("mangum")
    assert installed == pinned("mangum", "requirements.txt") == pinned("mangum", LAMBDA_REQUIREMENTS), (
        "re-check start_app's tests for the new Mangum"
    )


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
    it, through start_app); loaded_runnable finds what it loaded."""

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
        bentoml_adapter.start_app(service.asgi_app)
        assert isinstance(bentoml_adapter.loaded_runnable(runner), Probe)
    finally:
        cancel_pending(loop)
        loop.close()
        asyncio.set_event_loop(None)


def test_bentomls_deprecation_category():
    category = bentoml_adapter.deprecation_warning_class()
    assert issubclass(category, DeprecationWarning) and category.__name__ == "BentoMLDeprecationWarning"


def test_a_descriptor_subclass_reports_as_the_stock_one_only_through_the_adapter():
    """BentoML's client rebuilds each descriptor from the document by ``descriptor_id``, which a
    subclass does not inherit (None): without report_as the client cannot read the document."""
    from bentoml.exceptions import InvalidArgument
    from bentoml.io import NumpyNdarray, from_spec

    assert NumpyNdarray.descriptor_id == "bentoml.io.NumpyNdarray"

    class Plain(NumpyNdarray):
        pass

    class Reported(NumpyNdarray):
        pass

    bentoml_adapter.report_as(Reported, NumpyNdarray)
    assert Plain.descriptor_id is None and Plain().to_spec()["id"] is None
    with pytest.raises(InvalidArgument):
        from_spec(Plain().to_spec())
    assert Reported().to_spec()["id"] == NumpyNdarray.descriptor_id
    assert type(from_spec(Reported().to_spec())) is NumpyNdarray


def test_the_http_app_prefixes_its_4xx_messages():
    endpoint = source_facts.tree(bentoml_adapter.http_app_module().HTTPAppFactory._create_api_endpoint)
    formats = [
        node.left.value
        for node in ast.walk(endpoint)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)
    ]
    assert bentoml_adapter.ERROR_PREFIX + "%s" in formats, f"the 4xx messages are no longer prefixed: {formats}"
    assert bentoml_adapter.without_error_prefix(bentoml_adapter.ERROR_PREFIX + "bad row") == "bad row"
    assert bentoml_adapter.without_error_prefix("bad row") == "bad row"


def test_readyz_answers_503_with_the_message_the_document_shows():
    readyz = source_facts.tree(bentoml_adapter.http_app_module().HTTPAppFactory.readyz)
    raised = [source_facts.keywords(c) for c in source_facts.calls(readyz, "HTTPException")]
    assert {"status_code": "503", "detail": repr(bentoml_adapter.NOT_READY_MESSAGE)} in raised, raised


def test_serve_logs_its_start_line_with_the_scheme_host_and_port_last():
    from bentoml import serving

    assert serving.logger.name == bentoml_adapter.SERVE_LOGGER
    production = source_facts.tree(serving.serve_http_production)
    lines = [
        c
        for c in source_facts.calls(production, "logger.info")
        if c.args
        and isinstance(c.args[0], ast.Constant)
        and str(c.args[0].value).startswith(bentoml_adapter.START_LINE)
    ]
    assert len(lines) == 1, "serve_http_production no longer logs one start line"
    (line,) = lines
    assert [source_facts.source_of(a) for a in line.args[-3:]] == ["scheme", "host", "port"]
    template = line.args[0].value
    assert len(line.args) == 6 and template.count("%") == 5, template

    record = logging.LogRecord(
        serving.logger.name, logging.INFO, __file__, 1, template, ("HTTP", "svc", "http", "0.0.0.0", 3000), None
    )
    rewrite = bentoml_adapter.start_line_filter(lambda scheme, host, port: f"{scheme}|{host}|{port}")
    assert rewrite.filter(record) and record.getMessage() == "http|0.0.0.0|3000"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the arbiter's socket is patched on Linux only")
def test_circus_binds_every_socket_through_bind_and_listen():
    from circus.sockets import CircusSocket, CircusSockets

    assert source_facts.calls(source_facts.tree(CircusSockets.bind_and_listen_all), "sock.bind_and_listen")
    sock = CircusSocket(name="probe", host="127.0.0.1", port=0)
    try:
        for attribute in ("name", "host", "port", "is_unix", "interface", "blocking", "backlog"):
            assert hasattr(sock, attribute), f"circus sockets no longer have {attribute!r}"
        assert sock.get_inheritable(), "circus no longer hands its sockets down to the workers"
    finally:
        sock.close()


def test_the_serve_command_and_the_workers_fd_option(monkeypatch):
    serve_command = importlib.import_module(bentoml_adapter.SERVE_COMMAND_MODULE)
    assert source_facts.functions(source_facts.tree(serve_command), "serve"), "no serve command in its module"
    worker = importlib.import_module(bentoml_adapter.API_WORKER_MODULE)
    options = {option.name: option for option in worker.main.params}
    assert "fd" in options and options["fd"].opts == ["--fd"], "the worker no longer takes --fd"
    assert options["fd"].type.name == "integer"

    worker_main = types.SimpleNamespace(__spec__=types.SimpleNamespace(name=bentoml_adapter.API_WORKER_MODULE))
    monkeypatch.setitem(sys.modules, "__main__", worker_main)
    monkeypatch.setattr(sys, "argv", ["http_api_server.py", "src.service:svc", "--fd", "7", "--worker-id", "1"])
    assert bentoml_adapter.inherited_api_fd() == 7
    monkeypatch.setattr(sys, "argv", ["http_api_server.py", "src.service:svc", "--fd"])
    assert bentoml_adapter.inherited_api_fd() is None
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace(__spec__=None))
    monkeypatch.setattr(sys, "argv", ["other.py", "--fd", "7"])
    assert bentoml_adapter.inherited_api_fd() is None


def test_start_app_runs_the_start_up_on_the_loop_mangum_sets_up_and_never_the_shutdown():
    """As the Lambda handler does it: Mangum built first (it sets up the thread's event loop),
    then the start-up run to its end; the shutdown is never sent."""
    from mangum import Mangum
    from mangum.protocols import LifespanCycle

    assert list(inspect.signature(LifespanCycle).parameters) == ["app", "lifespan"]
    seen, outcome = [], {}

    async def app(scope, receive, send):
        assert scope["type"] == "lifespan"
        message = await receive()
        seen.append((message["type"], asyncio.get_running_loop()))
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        seen.append((message["type"], asyncio.get_running_loop()))

    def cold_start():  # a thread of its own: no event loop until Mangum sets one up
        Mangum(app, lifespan="off")
        loop = asyncio.get_event_loop()
        bentoml_adapter.start_app(app)
        outcome["loop"] = loop
        cancel_pending(loop)
        loop.close()

    thread = threading.Thread(target=cold_start)
    thread.start()
    thread.join(timeout=30)
    assert [kind for kind, _ in seen] == ["lifespan.startup"]
    assert seen[0][1] is outcome["loop"]


def test_xgboost_imports_without_sklearn_and_sklearn_stays_importable():
    script = (
        "import sys\n"
        "from src.bentoml_adapter import import_xgboost_without_sklearn\n"
        "import_xgboost_without_sklearn()\n"
        "import xgboost.compat\n"
        "print(xgboost.compat.SKLEARN_INSTALLED, 'sklearn' in sys.modules)\n"
        "import sklearn.base\n"
        "print(sklearn.base.__name__)\n"
    )
    result = run_python("-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False", "sklearn.base"], (
        "the pinned XGBoost no longer imports scikit-learn as an optional module: re-check batch_score's start"
    )
