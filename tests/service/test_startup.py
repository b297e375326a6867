"""A clean start: `bentoml serve` as `make serve` runs it prints no known warning, then the URL,
the model version and the page; the filters hide exactly the known warnings and nothing else."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time

import pytest

from src import bentoml_adapter, startup
from src.config import PROJECT_ROOT
from tests.commands import base_env, serve

EMIT = r"""
import warnings
from src.startup import KNOWN_BENTOML_DEPRECATIONS, quiet_known_warnings
quiet_known_warnings()
from src.bentoml_adapter import deprecation_warning_class
D = deprecation_warning_class()

def emit(message, category, module):
    warnings.warn_explicit(message, category, module.replace(".", "/") + ".py", 1, module=module)

for prefix, module in KNOWN_BENTOML_DEPRECATIONS:  # each known warning, as BentoML words it in full
    emit(prefix + " and will be removed in a future version.", D, module)
emit("NEW-1 `bentoml.Model.something` is deprecated since BentoML v1.4.", D, "src.service")
emit("`Runner` is deprecated since BentoML v1.4 (NEW-2: reported from another module)", D, "src.other")
emit("pkg_resources is deprecated as an API (NEW-3: a warning from another package)", UserWarning, "fs")
emit("NEW-4 a new deprecation in the service", DeprecationWarning, "src.service")
"""


def test_only_the_known_warnings_are_hidden():
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", EMIT],
        cwd=PROJECT_ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    shown = [line for line in result.stderr.splitlines() if "Warning:" in line]
    assert sorted(re.search(r"NEW-\d", line).group() for line in shown) == ["NEW-1", "NEW-2", "NEW-3", "NEW-4"], (
        result.stderr
    )


@pytest.mark.unit
def test_bentomls_start_line_becomes_the_banner():
    bentomls = 'Starting production %s BentoServer from "%s" listening on %s://%s:%d (Press CTRL+C to quit)'
    record = logging.LogRecord(
        "bentoml.serving",
        logging.INFO,
        __file__,
        1,
        bentomls,
        ("HTTP", "src.service:svc", "http", "0.0.0.0", 3000),
        None,
    )
    rewrite = startup.announcement("xgb_model:abc", lambda: "xgb_classifier:def")
    assert bentoml_adapter.start_line_filter(rewrite).filter(record)
    assert record.getMessage().splitlines() == [
        "Serving model xgb_model:abc (Bento xgb_classifier:def) at http://127.0.0.1:3000 (Press CTRL+C to quit)",
        "  page and Try it out: http://127.0.0.1:3000/",
        "  OpenAPI document:    http://127.0.0.1:3000/docs.json",
        "  predictions:         POST http://127.0.0.1:3000/classify, POST http://127.0.0.1:3000/predict_proba",
    ]


def test_bentoml_serve_starts_clean_and_says_where(trained, tmp_path):
    server = serve(tmp_path, env={"XGB_MODEL_TAG": trained.tag})
    try:
        # Ready (/readyz answered) need not mean the banner has reached the log file: wait for it.
        deadline = time.monotonic() + 30
        while "OpenAPI document:" not in (log := server.log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.stop()
    lines = log.splitlines()
    banner = next(i for i, line in enumerate(lines) if "Serving model" in line)
    assert f"Serving model {trained.tag} at {server.url} (Press CTRL+C to quit)" in lines[banner]
    assert lines[banner + 1 : banner + 3] == [
        f"  page and Try it out: {server.url}/",
        f"  OpenAPI document:    {server.url}/docs.json",
    ]
    before = lines[:banner]
    assert len(before) <= 2 and not [line for line in before if "arning" in line or "deprecated" in line], log
    assert not [line for line in lines if "Warning:" in line or "is deprecated" in line], log
