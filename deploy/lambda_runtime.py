"""The function side of `python -m deploy.lambda_local`: the Lambda image's code run as Lambda runs
it. The tests and the benchmarks run the function through this module too.

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
- In process: :func:`run_in_process` calls the handler as awslambdaric does but without the
  Runtime API (deploy/lambda_driver.py), for the timings and the model's loads that only the
  function's own process can see.
"""

from __future__ import annotations

import functools
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
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RUNTIME_PREFIX = "/2018-06-01/runtime"
IMAGE_CODE_DIR = "/var/task"
LOCAL_FUNCTION_ARN = "arn:aws:lambda:local:000000000000:function:local"
DRIVER = Path(__file__).resolve().with_name("lambda_driver.py")


# ---------------------------------------------------------------------------- the code and its environment


def context_from_bento(bento_tag: str, destination: Path) -> Path:
    """The build context `bentoctl build` makes for ``bento_tag``, written under ``destination``:
    as bentoctl does, the Bento with its models from the store, handed to this repository's
    operator (deploy/aws-lambda-operator)."""
    import bentoml

    import deploy.deployment  # noqa: F401  (puts the operator on sys.path)
    from aws_lambda_operator.deployable import create_deployable

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


def code_dir(dockerfile: Path) -> str:
    """Where the image keeps the code: the destination of the build context's ``app/``
    (Lambda's task root when the Dockerfile copies no ``app/``)."""
    for keyword, arguments in dockerfile_instructions(dockerfile):
        if keyword == "COPY" and shlex.split(arguments)[:-1] == ["app/"]:
            return shlex.split(arguments)[-1].rstrip("/")
    return IMAGE_CODE_DIR


def image_command(dockerfile: Path) -> list[str]:
    """The image's ENTRYPOINT followed by its CMD (both in exec form)."""
    found = {
        keyword: json.loads(arguments)
        for keyword, arguments in dockerfile_instructions(dockerfile)
        if keyword in ("ENTRYPOINT", "CMD")
    }
    return found.get("ENTRYPOINT", []) + found.get("CMD", [])


def image_user(dockerfile: Path) -> tuple[str, str]:
    """The image's last USER as (user, group); nobody's when it names none."""
    users = [arguments for keyword, arguments in dockerfile_instructions(dockerfile) if keyword == "USER"]
    user, _, group = (users[-1] if users else "65534:65534").partition(":")
    return user, group or user


def to_local(text: str, mapping: dict[str, Path]) -> str:
    """``text`` with each image path in ``mapping`` replaced by its local stand-in."""
    for image_path in sorted(mapping, key=len, reverse=True):
        text = re.sub(rf"(?<![\w./-]){re.escape(image_path)}(?=[/\s\"']|$)", str(mapping[image_path]), text)
    return text


def image_env(dockerfile: Path, mapping: dict[str, Path]) -> dict[str, str]:
    """The Dockerfile's ENV variables, image paths in them mapped to local ones."""
    env = {}
    for keyword, arguments in dockerfile_instructions(dockerfile):
        if keyword == "ENV":
            env.update({name: to_local(value, mapping) for name, value in env_pairs(arguments).items()})
    return env


def code_env(task: Path) -> dict[str, str]:
    """The image's environment for the code in ``task`` (made by :func:`read_only_copy`): its
    Dockerfile's ENV lines with the code directory mapped to ``task``, and the host's PATH."""
    dockerfile = task.parent / "Dockerfile"
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **image_env(dockerfile, {code_dir(dockerfile): task})}


# ---------------------------------------------------------------------------- the read-only sandbox


def read_only_copy(context: Path) -> Path:
    """The context's ``app/`` (the image's /var/task) and its Dockerfile, copied to a fresh
    directory that others may read but not write; returns the code directory."""
    root = Path(tempfile.mkdtemp(prefix="lambda-task-"))
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
    """A command prefix under which ``task`` cannot be written: as root, the image's USER (from
    the Dockerfile :func:`read_only_copy` put beside ``task``); otherwise a user and mount
    namespace with ``task`` bind-mounted read-only."""
    if os.geteuid() == 0:
        user, group = image_user(task.parent / "Dockerfile")
        return ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", "--"]
    script = f'mount --bind "{task}" "{task}" && mount -o remount,bind,ro "{task}" && exec "$@"'
    return ["unshare", "-r", "-m", "sh", "-c", script, "sh"]


def run_read_only(argv: list[str], task: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """``argv`` run to its end from /tmp under :func:`read_only_prefix`; its output captured."""
    return subprocess.run(
        read_only_prefix(task) + argv, env=env, capture_output=True, text=True, timeout=timeout, cwd="/tmp"
    )


# ---------------------------------------------------------------------------- the function's configuration


@dataclass(frozen=True)
class FunctionConfiguration:
    """What the local emulation needs of the deployed function (Lambda's function configuration:
    name, timeout, memory, region) and the extra environment; :meth:`from_project` reads it from
    deployment_config.yaml, with the operator's defaults for the keys it leaves out."""

    name: str
    timeout_s: float
    memory_mb: int
    region: str
    extra_env: dict = field(default_factory=dict)
    snapstart: bool = False  # SnapStart's init: the runtime snapshots after it (restore/next)

    @classmethod
    def from_project(cls, workdir: Path) -> FunctionConfiguration:
        import yaml

        from deploy.deployment import CONFIG_FILE, load

        deployment = load(workdir)
        extra = (yaml.safe_load((workdir / CONFIG_FILE).read_text()) or {}).get("env") or {}
        return cls(
            name=deployment.name,
            timeout_s=float(deployment.spec["timeout"]),
            memory_mb=int(deployment.spec["memory_size"]),
            region=deployment.spec["region"],
            extra_env={str(k): str(v) for k, v in extra.items()},
            snapstart=bool(deployment.spec["snapstart"]),
        )

    def lambda_env(self, runtime_api: str) -> dict[str, str]:
        """The variables Lambda sets in the function's environment, and main.tf's."""
        from deploy.deployment import operator_config

        return {
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "1" if self.snapstart else "$LATEST",  # SnapStart: versions only
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",  # main.tf's logging_config
            "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start" if self.snapstart else "on-demand",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "_HANDLER": "lambda_app.handler",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            # main.tf's function_env sets the service's own request timeout by the same rule.
            "XGB_REQUEST_TIMEOUT_S": str(operator_config.request_timeout_s(self.timeout_s)),
            **self.extra_env,
        }


# ---------------------------------------------------------------------------- the Runtime API


class FunctionError(RuntimeError):
    """The invocation failed as Lambda reports it to API Gateway: no result from the handler."""


def new_trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


@dataclass
class Invocation:
    """One event for the function, and what became of it."""

    event: dict
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    trace_id: str = field(default_factory=new_trace_id)
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: str | None = None  # the error the runtime posted (its body), or why there is no result
    error_type: str | None = None  # the runtime's Lambda-Runtime-Function-Error-Type
    answered_at: float | None = None  # time.monotonic() of the result or the error
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def finish(self, result=None, error: str | None = None, error_type: str | None = None) -> bool:
        """Record the outcome unless there is one already; True if this one was recorded."""
        with self._lock:
            if self.done.is_set():
                return False
            self.result, self.error, self.error_type = result, error, error_type
            self.answered_at = time.monotonic()
            self.done.set()
            return True


Reply = tuple[int, bytes, dict]


def error_reply(status: int, error_type: str, message: str) -> Reply:
    """The Runtime API's ErrorResponse: ``{"errorMessage", "errorType"}``."""
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return status, body, {"Content-Type": "application/json"}


ACCEPTED: Reply = (202, b'{"status": "OK"}', {"Content-Type": "application/json"})


def posted_error(body: bytes, error_type: str | None) -> str:
    """The error a runtime posted; from its Lambda-Runtime-Function-Error-Type when the body is
    empty, as Lambda does."""
    text = body.decode(errors="replace")
    return text or json.dumps({"errorMessage": error_type or "Unknown", "errorType": error_type or "Unknown"})


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client gone mid-answer: nothing to do
        pass


class RuntimeApi:
    """The Lambda Runtime API (version 2018-06-01) on loopback: hands events to the runtime client
    and takes its answers, at the paths, with the headers and the status codes AWS documents.

    :data:`ROUTES` maps each call to the method that answers it, so another stage of the
    lifecycle is another row and another method. With ``snap_start`` it also speaks SnapStart's
    calls: ``restore/next`` is the snapshot point (nothing is checkpointed here: the "restore" is
    the same process carrying on at once) and ``restore/error`` a failed after-restore hook.
    Each start of the function is a new generation:
    a request for the next event still open from a stopped process is answered 500 (AWS's "the
    runtime should exit") and can never take an event meant for its successor. Subclasses hear
    of each outcome through :meth:`answered` and :meth:`init_failed`."""

    ROUTES = (
        ("GET", r"invocation/next", "next_invocation"),
        ("POST", r"invocation/(?P<request_id>[^/]+)/response", "invocation_response"),
        ("POST", r"invocation/(?P<request_id>[^/]+)/error", "invocation_error"),
        ("POST", r"init/error", "init_error"),
        ("GET", r"restore/next", "restore_next"),
        ("POST", r"restore/error", "restore_error"),
    )

    def __init__(self, function_timeout_s: float, function_arn: str = LOCAL_FUNCTION_ARN, snap_start: bool = False):
        self.timeout_s = function_timeout_s
        self.function_arn = function_arn
        self.snap_start = snap_start
        self.generation = 0
        self.in_flight: dict[str, Invocation] = {}
        self.init_errors: list[str] = []  # this generation's init/error and restore/error bodies
        self.init_error_types: list[str | None] = []  # and their Lambda-Runtime-Function-Error-Type
        self.snapshot_at: float | None = None  # time.monotonic() of this generation's restore/next
        self.polling = threading.Event()  # this generation asked for an event: its start is done
        self._queue: list[Invocation] = []  # offered, not yet picked
        self._changed = threading.Condition()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        # A short poll, so that close() takes a few milliseconds rather than the default half second.
        serve = functools.partial(self.server.serve_forever, poll_interval=0.02)
        threading.Thread(target=serve, name="runtime-api", daemon=True).start()

    def close(self) -> None:
        self.new_generation()
        self.server.shutdown()
        self.server.server_close()

    def new_generation(self) -> None:
        with self._changed:
            self.generation += 1
            self._queue.clear()
            self.init_errors, self.init_error_types = [], []
            self.snapshot_at = None
            self.polling.clear()
            self._changed.notify_all()

    def offer(self, invocation: Invocation) -> None:
        """Queue ``invocation`` for the runtime's next request for an event."""
        with self._changed:
            self._queue.append(invocation)
            self._changed.notify_all()

    def withdraw(self, invocation: Invocation) -> None:
        with self._changed:
            if invocation in self._queue:
                self._queue.remove(invocation)

    def abandon_in_flight(self, reason: str) -> None:
        for request_id in list(self.in_flight):
            self._finish(request_id, error=reason)

    # -------------------------------------------------------------- what subclasses may hear of

    def answered(self, invocation: Invocation) -> None:
        """Called once ``invocation`` has its result or its error."""

    def init_failed(self, error: str) -> None:
        """Called when the runtime reports that the function failed to start."""

    # -------------------------------------------------------------- the calls, one method each

    def next_invocation(self, body: bytes, headers) -> Reply:
        invocation = self._next(self.generation)
        if invocation is None:
            return error_reply(500, "Runtime.ExitError", "this runtime was stopped; exit")
        deadline_ms = int((time.time() + self.timeout_s) * 1000)
        return (
            200,
            json.dumps(invocation.event).encode(),
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
            },
        )

    def invocation_response(self, body: bytes, headers, request_id: str) -> Reply:
        try:
            result = json.loads(body) if body else None
        except ValueError:
            result = body.decode(errors="replace")
        return self._finish(request_id, result=result)

    def invocation_error(self, body: bytes, headers, request_id: str) -> Reply:
        error_type = headers.get("Lambda-Runtime-Function-Error-Type")
        return self._finish(request_id, error=posted_error(body, error_type), error_type=error_type)

    def init_error(self, body: bytes, headers) -> Reply:
        error_type = headers.get("Lambda-Runtime-Function-Error-Type")
        error = posted_error(body, error_type)
        self.init_errors.append(error)
        self.init_error_types.append(error_type)
        self.init_failed(error)
        return ACCEPTED

    def restore_next(self, body: bytes, headers) -> Reply:
        if not self.snap_start:
            return error_reply(
                403,
                "InvalidStateTransition",
                "restore/next is for SnapStart (AWS_LAMBDA_INITIALIZATION_TYPE=snap-start)",
            )
        self.snapshot_at = time.monotonic()
        return 200, b"", {}

    def restore_error(self, body: bytes, headers) -> Reply:
        if self.snapshot_at is None:
            return error_reply(403, "InvalidStateTransition", "restore/error before restore/next")
        return self.init_error(body, headers)

    # -------------------------------------------------------------- plumbing

    def _next(self, generation: int) -> Invocation | None:
        with self._changed:
            if generation == self.generation:
                self.polling.set()
            while generation == self.generation and not self._queue:
                self._changed.wait(0.5)
            if generation != self.generation:
                return None
            invocation = self._queue.pop(0)
            self.in_flight[invocation.request_id] = invocation
            return invocation

    def _finish(self, request_id: str, result=None, error: str | None = None, error_type: str | None = None) -> Reply:
        invocation = self.in_flight.pop(request_id, None)
        if invocation is None or not invocation.finish(result, error, error_type):
            return error_reply(400, "InvalidRequestID", f"no invocation {request_id} awaits an answer")
        self.answered(invocation)
        return ACCEPTED

    def dispatch(self, method: str, path: str, body: bytes, headers) -> Reply:
        if path.startswith(RUNTIME_PREFIX + "/"):
            call = path[len(RUNTIME_PREFIX) + 1 :]
            for route_method, pattern, name in self.ROUTES:
                match = re.fullmatch(pattern, call)
                if match and route_method == method:
                    return getattr(self, name)(body, headers, **match.groupdict())
        return error_reply(404, "UnknownPath", f"no such call: {method} {path}")

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *args):
                pass

            def _serve(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer, headers = api.dispatch(self.command, self.path, body, self.headers)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = _serve

        return Handler


# ---------------------------------------------------------------------------- the function


class LocalFunction:
    """The Lambda function: the image's entry command on the read-only code, one event at a time."""

    def __init__(self, task: Path, python: Path, configuration: FunctionConfiguration, log=None):
        self.task, self.python, self.configuration = task, python, configuration
        self.log = log if log is not None else sys.stdout
        self.api = RuntimeApi(configuration.timeout_s, snap_start=configuration.snapstart)
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()  # one event at a time, as in one container
        self._start_lock = threading.Lock()

    def command(self) -> list[str]:
        return [*read_only_prefix(self.task), str(self.python), "-m", "awslambdaric", "lambda_app.handler"]

    def environment(self) -> dict[str, str]:
        env = {**code_env(self.task), **self.configuration.lambda_env(self.api.address)}
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
            deadline = time.monotonic() + self.configuration.timeout_s
            while not invocation.done.wait(0.05):
                if self.process.poll() is not None:
                    self.api.abandon_in_flight("the function exited")
                    invocation.finish(error=f"the function exited with {self.process.returncode}")
                elif time.monotonic() > deadline:
                    self.stop()
                    invocation.finish(error=f"Task timed out after {self.configuration.timeout_s:g} seconds")
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


# ---------------------------------------------------------------------------- in process


def run_in_process(
    task: Path, events: list[dict], python: str | Path = sys.executable, module: str = "lambda_app", repeat: int = 0
) -> dict:
    """``events`` through ``module``'s handler in one fresh process from the read-only ``task``,
    in the image's environment, then ``repeat`` more of the first: deploy/lambda_driver.py's
    report (the answers, the cold start, the import, the warm calls, the model's loads)."""
    events_file = task.parent / f"events-{len(events)}-{abs(hash(json.dumps(events))) % 10**8}.json"
    events_file.write_text(json.dumps(events))
    events_file.chmod(0o644)
    argv = [str(python), str(DRIVER), str(task), module, str(events_file), str(repeat)]
    env = code_env(task)
    launched = time.monotonic()  # the driver counts its cold start from here
    result = run_read_only([*argv, repr(launched)], task, env)
    if result.returncode != 0:
        raise FunctionError(f"the driver exited with {result.returncode}:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
