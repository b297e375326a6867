"""SnapStart's lifecycle on the local Runtime API, driven by the real awslambdaric: the init, the
before-snapshot hooks (last registered first), ``restore/next``, the after-restore hooks (in
order), then the events; a failing hook is reported as AWS documents it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deploy.lambda_runtime import FunctionConfiguration, Invocation, RuntimeApi
from tests.lambda_path.test_runtime_api import call

pytestmark = pytest.mark.unit

HOOKED = textwrap.dedent(
    """
    import json, os
    from snapshot_restore_py import register_after_restore, register_before_snapshot

    FAIL = os.environ.get("FAIL_HOOK", "")
    order = ["import"]

    def step(name):
        order.append(name)
        if FAIL == name:
            raise RuntimeError(name + " failed")

    register_before_snapshot(step, "before:registered-first")
    register_before_snapshot(step, "before:registered-second")
    register_after_restore(step, "after:registered-first")
    register_after_restore(step, "after:registered-second")

    def handler(event, context):
        return {"order": order}
    """
)


class RecordingApi(RuntimeApi):
    """The Runtime API, keeping the calls the runtime made, in order."""

    def __init__(self, **kwargs):
        super().__init__(function_timeout_s=10, **kwargs)
        self.calls: list[str] = []
        self.snapshot_seen: float | None = None
        self.errors_seen: list[tuple[str | None, str]] = []  # (error type, body) of each error posted

    def dispatch(self, method, path, body, headers):
        self.calls.append(f"{method} {path.rsplit('runtime/', 1)[-1]}")
        return super().dispatch(method, path, body, headers)


def run_hooked(tmp_path: Path, fail: str = "") -> tuple[RecordingApi, Invocation, subprocess.CompletedProcess | None]:
    """The module above under ``python -m awslambdaric`` with SnapStart's init type, one event."""
    (tmp_path / "hooked.py").write_text(HOOKED)
    api = RecordingApi(snap_start=True)
    invocation = Invocation({"n": 1}, request_id="req-1")
    api.offer(invocation)
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "PYTHONPATH": str(tmp_path),
        "FAIL_HOOK": fail,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "awslambdaric", "hooked.handler"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        if fail:
            process.wait(60)
        else:
            assert invocation.done.wait(60), process.stdout.read1().decode(errors="replace")
    finally:
        process.kill()
        output = process.communicate()[0].decode(errors="replace")
        # close() starts a new generation, which clears what this one saw
        api.snapshot_seen, api.errors_seen = (
            api.snapshot_at,
            list(zip(api.init_error_types, api.init_errors, strict=True)),
        )
        api.close()
    return api, invocation, subprocess.CompletedProcess(process.args, process.returncode, output)


def test_hooks_run_in_awslambdaric_order_around_the_snapshot_point(tmp_path):
    api, invocation, _ = run_hooked(tmp_path)
    assert invocation.result == {
        "order": [
            "import",
            "before:registered-second",
            "before:registered-first",
            "after:registered-first",
            "after:registered-second",
        ]
    }
    assert api.calls[:2] == ["GET restore/next", "GET invocation/next"], api.calls
    assert api.snapshot_seen is not None and api.snapshot_seen < invocation.answered_at


@pytest.mark.parametrize(
    "hook, exit_code, error_type, calls",
    [
        ("before:registered-first", 64, "Runtime.BeforeSnapshotError", ["POST init/error"]),
        ("after:registered-second", 65, "Runtime.AfterRestoreError", ["GET restore/next", "POST restore/error"]),
    ],
)
def test_a_failing_hook_is_reported_as_aws_documents_and_ends_the_runtime(tmp_path, hook, exit_code, error_type, calls):
    api, invocation, finished = run_hooked(tmp_path, fail=hook)
    assert finished.returncode == exit_code, finished.stdout[-3000:]
    assert api.calls == calls
    [(posted_type, body)] = api.errors_seen
    assert posted_type == error_type
    assert f"{hook} failed" in json.loads(body)["errorMessage"]
    assert not invocation.done.is_set(), "no event is handed to a runtime whose hook failed"


def test_restore_calls_are_refused_outside_snapstart_and_out_of_order():
    on_demand = RuntimeApi(function_timeout_s=5)
    snap = RuntimeApi(function_timeout_s=5, snap_start=True)
    try:
        status, _, answer = call(on_demand, "GET", "restore/next")
        assert status == 403 and answer["errorType"] == "InvalidStateTransition"
        status, _, answer = call(snap, "POST", "restore/error", b"{}")
        assert status == 403 and "before restore/next" in answer["errorMessage"]
        assert call(snap, "GET", "restore/next")[0] == 200 and snap.snapshot_at is not None
        snap.new_generation()
        assert snap.snapshot_at is None, "each start of the function takes its own snapshot"
    finally:
        on_demand.close()
        snap.close()


def test_the_functions_environment_names_its_init_type():
    base = {"name": "f", "timeout_s": 10, "memory_mb": 1024, "region": "us-east-1"}
    on_demand = FunctionConfiguration(**base).lambda_env("127.0.0.1:1")
    snap = FunctionConfiguration(**base, snapstart=True).lambda_env("127.0.0.1:1")
    assert on_demand["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert snap["AWS_LAMBDA_INITIALIZATION_TYPE"] == "snap-start"
    assert snap["AWS_LAMBDA_FUNCTION_VERSION"] != "$LATEST", "SnapStart applies to published versions"
