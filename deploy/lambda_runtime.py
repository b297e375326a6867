"""The function side of `python -m deploy.lambda_local`: the Lambda image's code run as Lambda runs it.

- The code: the build context `bentoctl build` makes with this repository's operator (its
  ``app/`` is the image's /var/task), copied to a directory the function cannot write to: as root
  the function runs as the image's USER (setpriv), otherwise in a user and mount namespace with
  the directory bind-mounted read-only. Only /tmp is writable, as on Lambda.
- The environment: the Dockerfile's ENV lines (with /var/task mapped to that copy), the variables
  Lambda sets (function name, memory, region, the JSON log format main.tf chooses, the Runtime
  API's address) and the request timeout main.tf derives from the function's timeout.
- The process: the image's entry command, ``python -m awslambdaric lambda_app.handler``, fed
  through :class:`RuntimeApi`, a local Lambda Runtime API (the calls awslambdaric makes, as AWS
  documents them). One event at a time, as in one Lambda container; a function that fails its
  start, crashes or times out is started again for the next event (a new cold start).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RUNTIME_PREFIX = "/2018-06-01/runtime"
IMAGE_CODE_DIR = "/var/task"


# ---------------------------------------------------------------------------- the code and its environment


def context_from_bento(bento_tag: str, destination: Path) -> Path:
    """The build context `bentoctl build` makes for ``bento_tag``, written under ``destination``:
    as bentoctl does, the Bento with its models from the store, handed to this repository's
    operator (deploy/aws-lambda-operator)."""
    import bentoml

    import deploy.settings  # noqa: F401  (puts the operator on sys.path)
    from aws_lambda_operator.deployable import create_deployable
    from src.startup import PKG_RESOURCES_NOTICE

    with warnings.catch_warnings():  # BentoML's store imports `fs`, which imports pkg_resources
        warnings.filterwarnings("ignore", message=re.escape(PKG_RESOURCES_NOTICE[0]), category=UserWarning)
        bento = bentoml.get(bento_tag)
        bento_dir = destination / "bento"
        shutil.copytree(bento.path, bento_dir)
        for model in bento.info.models:
            store_copy = bentoml.models.get(model.tag).path
            shutil.copytree(store_copy, bento_dir / "models" / model.tag.name / model.tag.version)
    return Path(create_deployable(str(bento_dir), str(destination), {"tag": bento.tag}))


def dockerfile_instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    found, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.strip().startswith("#") or (not pending and not line.strip()):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    return found


def env_pairs(arguments: str) -> dict[str, str]:
    """An ENV instruction's variables: ``K=V K2=V2`` (quotes allowed) or the legacy ``K V``."""
    words = shlex.split(arguments)
    if "=" not in words[0]:
        return dict([arguments.split(None, 1)])
    return dict(word.split("=", 1) for word in words)


def dockerfile_env(dockerfile: Path, code_dir: Path) -> dict[str, str]:
    """The image's ENV variables, with the image's code directory replaced by ``code_dir``."""
    env = {}
    for keyword, arguments in dockerfile_instructions(dockerfile):
        if keyword != "ENV":
            continue
        for name, value in env_pairs(arguments).items():
            if value == IMAGE_CODE_DIR or value.startswith(IMAGE_CODE_DIR + "/"):
                value = str(code_dir) + value[len(IMAGE_CODE_DIR) :]
            env[name] = value
    return env


def image_user(dockerfile: Path) -> tuple[str, str]:
    users = [arguments for keyword, arguments in dockerfile_instructions(dockerfile) if keyword == "USER"]
    user, _, group = (users[-1] if users else "65534:65534").partition(":")
    return user, group or user


def read_only_copy(context: Path) -> Path:
    """The context's ``app/`` (the image's /var/task) and its Dockerfile, copied to a fresh
    directory that others may read but not write; returns the code directory."""
    root = Path(tempfile.mkdtemp(prefix="lambda-local-"))
    root.chmod(0o755)
    task = root / "var-task"
    shutil.copytree(context / "app", task, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(context / "env" / "docker" / "Dockerfile", root / "Dockerfile")
    for path in [root / "Dockerfile", task, *task.rglob("*")]:
        readable = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
        if path.is_dir():
            readable |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
        path.chmod(path.stat().st_mode | readable)
    return task


def read_only_prefix(task: Path) -> list[str]:
    """A command prefix under which ``task`` cannot be written: as root, the image's USER;
    otherwise a user and mount namespace with ``task`` bind-mounted read-only."""
    if os.geteuid() == 0:
        user, group = image_user(task.parent / "Dockerfile")
        return ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", "--"]
    script = f'mount --bind "{task}" "{task}" && mount -o remount,bind,ro "{task}" && exec "$@"'
    return ["unshare", "-r", "-m", "sh", "-c", script, "sh"]


@dataclass(frozen=True)
class FunctionSettings:
    """What deployment_config.yaml says about the function (the operator's defaults otherwise)."""

    name: str = "xgb-classifier"
    timeout_s: float = 10
    memory_mb: int = 1024
    region: str = "us-east-1"
    extra_env: dict = field(default_factory=dict)

    @classmethod
    def from_project(cls, workdir: Path) -> FunctionSettings:
        import yaml

        from deploy.settings import CONFIG_FILE, load

        deployment = load(workdir)
        extra = (yaml.safe_load((workdir / CONFIG_FILE).read_text()) or {}).get("env") or {}
        return cls(
            name=deployment.name,
            timeout_s=float(deployment.spec["timeout"]),
            memory_mb=int(deployment.spec["memory_size"]),
            region=deployment.spec["region"],
            extra_env={str(k): str(v) for k, v in extra.items()},
        )

    def lambda_env(self, runtime_api: str) -> dict[str, str]:
        """The variables Lambda sets in the function's environment, and main.tf's."""
        return {
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",  # main.tf's logging_config
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "_HANDLER": "lambda_app.handler",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            # main.tf's function_env: the service answers its own 504 a second before Lambda's timeout.
            "XGB_REQUEST_TIMEOUT_S": str(max(self.timeout_s - 1, self.timeout_s / 2)),
            **self.extra_env,
        }


# ---------------------------------------------------------------------------- one invocation


class FunctionError(RuntimeError):
    """The invocation failed as Lambda reports it to API Gateway: no result from the handler."""


@dataclass
class Invocation:
    event: dict
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    picked: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: str | None = None

    def finish(self, result=None, error: str | None = None) -> None:
        if not self.done.is_set():
            self.result, self.error = result, error
            self.done.set()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client gone mid-answer: nothing to do
        pass


class RuntimeApi:
    """The Lambda Runtime API on loopback: hands events to the runtime client and takes its answers.

    Each start of the function is a new generation: a request for the next event still open from
    a stopped process is answered empty and can never take an event meant for its successor."""

    def __init__(self, function_timeout_s: float):
        self.timeout_s = function_timeout_s
        self.generation = 0
        self.in_flight: dict[str, Invocation] = {}
        self.init_errors: list[str] = []
        self.polling = threading.Event()  # this generation asked for an event: its start is done
        self._slot: Invocation | None = None
        self._changed = threading.Condition()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="runtime-api", daemon=True).start()

    def close(self) -> None:
        self.new_generation()
        self.server.shutdown()
        self.server.server_close()

    def new_generation(self) -> None:
        with self._changed:
            self.generation += 1
            self._slot = None
            self.init_errors = []
            self.polling.clear()
            self._changed.notify_all()

    def offer(self, invocation: Invocation) -> None:
        with self._changed:
            self._slot = invocation
            self._changed.notify_all()

    def withdraw(self, invocation: Invocation) -> None:
        with self._changed:
            if self._slot is invocation:
                self._slot = None

    def _next(self, generation: int) -> Invocation | None:
        with self._changed:
            if generation == self.generation:
                self.polling.set()
            while generation == self.generation and (self._slot is None or self._slot.picked.is_set()):
                self._changed.wait(0.5)
            if generation != self.generation:
                return None
            invocation = self._slot
            invocation.picked.set()
            self.in_flight[invocation.request_id] = invocation
            return invocation

    def _answer(self, request_id: str, result=None, error: str | None = None) -> bool:
        invocation = self.in_flight.pop(request_id, None)
        if invocation is None:
            return False
        invocation.finish(result, error)
        return True

    def abandon_in_flight(self, reason: str) -> None:
        for request_id in list(self.in_flight):
            self._answer(request_id, error=reason)

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage": "unknown path"}')
                invocation = api._next(api.generation)
                if invocation is None:
                    return self._reply(410, b'{"errorMessage": "this runtime was stopped"}')
                deadline_ms = int((time.time() + api.timeout_s) * 1000)
                self._reply(
                    200,
                    json.dumps(invocation.event).encode(),
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:local:000000000000:function:local",
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
                    },
                )

            def do_POST(self):
                body = self._body()
                parts = self.path[len(RUNTIME_PREFIX) :].strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append(body.decode(errors="replace"))
                    return self._reply(202, b'{"status": "OK"}')
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    if parts[2] == "response":
                        try:
                            result = json.loads(body) if body else None
                        except ValueError:
                            result = body.decode(errors="replace")
                        known = api._answer(parts[1], result=result)
                    else:
                        known = api._answer(parts[1], error=body.decode(errors="replace"))
                    if known:
                        return self._reply(202, b'{"status": "OK"}')
                    return self._reply(400, b'{"errorMessage": "no such invocation"}')
                self._reply(404, b'{"errorMessage": "unknown path"}')

        return Handler


# ---------------------------------------------------------------------------- the function


class LocalFunction:
    """The Lambda function: the image's entry command on the read-only code, one event at a time."""

    def __init__(self, task: Path, python: Path, settings: FunctionSettings, log=None):
        self.task, self.python, self.settings = task, python, settings
        self.log = log if log is not None else sys.stdout
        self.api = RuntimeApi(settings.timeout_s)
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()  # one event at a time, as in one container
        self._start_lock = threading.Lock()

    def command(self) -> list[str]:
        return [*read_only_prefix(self.task), str(self.python), "-m", "awslambdaric", "lambda_app.handler"]

    def environment(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **dockerfile_env(self.task.parent / "Dockerfile", self.task),
            **self.settings.lambda_env(self.api.address),
        }
        env.setdefault("LAMBDA_TASK_ROOT", str(self.task))
        return env

    def start(self) -> None:
        """Start the function (a cold start) unless it runs."""
        with self._start_lock:
            if self.process is not None and self.process.poll() is None:
                return
            self.api.new_generation()
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.task,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
            )

    def wait_ready(self, timeout_s: float = 120) -> None:
        """Wait until the function has started (it asks for its first event); raise if it failed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.api.polling.wait(0.1):
                return
            if self.process is not None and self.process.poll() is not None:
                reason = self._init_error() or "see its log above"
                if os.geteuid() == 0:
                    user = image_user(self.task.parent / "Dockerfile")[0]
                    reason += f" (it runs as user {user}, who must be able to read {self.python})"
                raise FunctionError(f"the function exited with {self.process.returncode} during its start: {reason}")
        raise FunctionError(f"the function did not start within {timeout_s:g} s")

    def _init_error(self) -> str:
        return "; ".join(self.api.init_errors)

    def invoke(self, event: dict, start_timeout_s: float = 120):
        """The handler's result for ``event``; :class:`FunctionError` when there is none."""
        with self._lock:
            self.start()
            self.wait_ready(start_timeout_s)
            invocation = Invocation(event)
            self.api.offer(invocation)
            deadline = time.monotonic() + self.settings.timeout_s
            while not invocation.done.wait(0.05):
                if self.process.poll() is not None:
                    self.api.abandon_in_flight("the function exited")
                    invocation.finish(error=f"the function exited with {self.process.returncode}")
                elif time.monotonic() > deadline:
                    self.stop()
                    invocation.finish(error=f"Task timed out after {self.settings.timeout_s:g} seconds")
            self.api.withdraw(invocation)
            if invocation.error is not None:
                raise FunctionError(invocation.error)
            return invocation.result

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        self.stop()
        self.api.close()
