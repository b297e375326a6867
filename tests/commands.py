"""The project's commands as the tests run them: `python -m ...` and `bentoml serve`, from the
project root, in a clean environment that uses the test session's BentoML home.

conftest.py drops the variables below and points BENTOML_HOME at the session's home when pytest
starts, before anything imports src.config (which reads XGB_* at import) or bentoml; so this
module imports neither at import time, and reads BENTOML_HOME at call time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.processes import Server, answers_get, free_port, start_server

# Variables that configure the service (src/config.py) or BentoML: no test inherits them.
ISOLATED_PREFIXES = ("XGB_", "BENTOML_")


def clean_environ() -> dict:
    """os.environ without the variables that configure the service or BentoML."""
    return {name: value for name, value in os.environ.items() if not name.startswith(ISOLATED_PREFIXES)}


def project_root() -> Path:
    from src.config import PROJECT_ROOT

    return PROJECT_ROOT


def base_env(**overrides: str) -> dict:
    """The environment for a command the tests start: clean, in the session's store."""
    home = os.environ["BENTOML_HOME"]
    return {**clean_environ(), "BENTOML_HOME": home, "BENTOML_DO_NOT_TRACK": "true", **overrides}


def run_python(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python <args>`` from the project root as a user would; capture its output."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=project_root(),
        env=base_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def serve(log_dir: Path, env: dict | None = None, ready_timeout: float = 90) -> Server:
    """``bentoml serve src.service:svc`` on a free port, ready once ``/readyz`` answers 200."""
    port = free_port()
    argv = [sys.executable, "-m", "bentoml", "serve", "src.service:svc", "--host", "127.0.0.1", "--port", str(port)]
    return start_server(
        argv,
        port,
        cwd=project_root(),
        env=base_env(**(env or {})),
        log=log_dir / f"serve-{port}.log",
        ready=answers_get("/readyz"),
        timeout=ready_timeout,
    )
