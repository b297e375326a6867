"""Getting the Lambda build context out of the real `bentoctl build`, and deploy's Runtime API
with the tests' events queued up front, for the tests that start the function's process
themselves. Running the function (read-only, in the image's environment) is deploy's:
deploy/lambda_runtime.py and deploy/lambda_image_env.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from deploy.bento_handoff import staged_home
from deploy.lambda_events import TRACE_ID
from deploy.lambda_runtime import Invocation, RuntimeApi
from deploy.steps import bentoctl_executable

PROJECT_ROOT = Path(__file__).resolve().parent.parent

OPERATOR_DIR = PROJECT_ROOT / "deploy" / "aws-lambda-operator"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:xgb-classifier"


def bentoctl(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """bentoctl from the deploy-only environment, as `python -m deploy` runs it."""
    return subprocess.run(
        [bentoctl_executable(), *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def bentoml_build(env: dict | None = None) -> str:
    """`bentoml build .` as a user runs it, with the serving BentoML; returns the new Bento's tag."""
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", ".", "--output", "tag"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    match = re.search(r"^__tag__:(\S+)$", result.stdout, re.MULTILINE)
    assert result.returncode == 0 and match, f"bentoml build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return match.group(1)


def install_operator(bentoctl_home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return bentoctl("operator", "install", str(OPERATOR_DIR), env={"BENTOCTL_HOME": str(bentoctl_home)}, cwd=cwd)


def build_context_via_bentoctl(bento_tag: str, bentoctl_home: Path, work: Path) -> Path:
    """`bentoctl build --dry-run` as `python -m deploy` runs it: the Bento handed over through
    deploy.bento_handoff, the docker stand-in on PATH; debug mode keeps the build context bentoctl
    made with this operator, which is returned."""
    from tests.deploy_harness import STANDINS

    bentoml_home = staged_home(bento_tag, work / "bentoctl-bentoml-home")
    state = work / "standin-state"
    state.mkdir(exist_ok=True)
    result = bentoctl(
        "build",
        "-b",
        bento_tag,
        "-f",
        str(PROJECT_ROOT / "deployment_config.yaml"),
        "--dry-run",
        env={
            "BENTOCTL_HOME": str(bentoctl_home),
            "BENTOCTL_DEBUG": "true",
            "BENTOML_HOME": str(bentoml_home),
            "STANDIN_STATE": str(state),
            "STANDIN_PYTHON": sys.executable,
            "PATH": f"{STANDINS}{os.pathsep}{os.environ['PATH']}",
        },
        cwd=work,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Created docker image" in output, f"bentoctl build failed:\n{output[-4000:]}"
    match = re.search(r"Intermediate bento saved to (\S+)", output)
    assert match, f"bentoctl build kept no build context:\n{output[-4000:]}"
    saved = Path(match.group(1))
    context = work / "context"
    shutil.move(str(saved / "aws-lambda-deployable"), context)
    shutil.rmtree(saved, ignore_errors=True)
    return context


# ---------------------------------------------------------------------------- events queued for a runtime


class QueuedRuntimeApi(RuntimeApi):
    """deploy's Runtime API with ``events`` queued as request-0, request-1, ..., for a function
    process a test starts itself. ``done`` is set once every event has its result or the
    function reports an error; ``results`` and ``errors`` (the posted error documents) say which."""

    def __init__(self, events: list[dict], snap_start: bool = False):
        super().__init__(function_timeout_s=30, function_arn=FUNCTION_ARN, snap_start=snap_start)
        self.results: dict[str, object] = {}
        self.errors: list[dict] = []
        self.answered_at: dict[str, float] = {}  # time.monotonic() of each result or error
        self.done = threading.Event()
        self.expected = len(events)
        for number, event in enumerate(events):
            self.offer(Invocation(event, request_id=f"request-{number}", trace_id=TRACE_ID))

    def answered(self, invocation: Invocation) -> None:
        self.answered_at.setdefault(invocation.request_id, invocation.answered_at)
        if invocation.error is not None:
            self._failed(invocation.request_id, invocation.error)
        else:
            self.results[invocation.request_id] = invocation.result
            if len(self.results) == self.expected:
                self.done.set()

    def init_failed(self, error: str) -> None:
        self._failed("init", error)

    def _failed(self, request: str, error: str) -> None:
        try:
            document = json.loads(error)
        except ValueError:
            document = {"errorMessage": error}
        self.errors.append({"request": request, **(document if isinstance(document, dict) else {"error": document})})
        self.done.set()


def run_entry_command(
    task_dir: Path, events: list[dict], log: Path, lines: int, env: dict
) -> tuple[bool, QueuedRuntimeApi, str]:
    """The image's entry command (`python -m awslambdaric lambda_app.handler`) from the read-only
    code directory as an unprivileged user, serving ``events`` from a queued Runtime API with
    ``env`` added to the function's; once every event is answered and ``lines`` request lines
    (JSON naming a route) are in ``log``, the process group is stopped. Returns whether every
    event was answered, the (closed) Runtime API with its errors and results, and the output."""
    import signal
    import time

    from deploy.lambda_runtime import code_env, read_only_prefix

    api = QueuedRuntimeApi(events)
    full_env = {**code_env(task_dir), "AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": "lambda_app.handler", **env}
    command = [sys.executable, "-m", "awslambdaric", "lambda_app.handler"]
    with open(log, "wb") as stdout:
        process = subprocess.Popen(
            read_only_prefix(task_dir) + command,
            cwd=task_dir,
            env=full_env,
            stdout=stdout,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    try:
        finished = api.done.wait(timeout=120)
        # The last line follows the last answer: wait for it, not for a fixed time.
        deadline = time.monotonic() + 30
        while len(request_lines(log.read_bytes().decode(errors="replace"))) < lines and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        api.close()
    return finished, api, log.read_bytes().decode(errors="replace")


def request_lines(text: str) -> list[dict]:
    """The request log's lines in some output: JSON objects that name a route."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if "route" in entry:
                lines.append(entry)
    return lines
