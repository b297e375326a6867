"""Running a command's steps: each named, each failure a message with what to do next."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from src.config import PROJECT_ROOT


class StepFailed(RuntimeError):
    """A step could not be done; ``hint`` says what the user can do about it."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class Failure(RuntimeError):
    """A command stopped at ``step``."""

    def __init__(self, step: str, error: StepFailed):
        super().__init__(f"{step}: {error}")
        self.step, self.error = step, error


@contextmanager
def step(name: str):
    """Announce a step, time it, and tag any StepFailed inside it with its name."""
    print(f"==> {name}", flush=True)
    started = time.monotonic()
    try:
        yield
    except StepFailed as error:
        raise Failure(name, error) from None
    print(f"    done in {time.monotonic() - started:.1f} s", flush=True)


def run(
    argv: list[str],
    *,
    cwd: Path | None = None,
    env: dict | None = None,
    stdin: str | None = None,
    capture: bool = True,
    timeout: float = 3600,
) -> subprocess.CompletedProcess:
    """Run a program; a missing program or a non-zero exit becomes a StepFailed."""
    if shutil.which(argv[0]) is None:
        raise StepFailed(f"`{argv[0]}` is not installed or not on PATH")
    try:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            input=stdin,
            text=True,
            timeout=timeout,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
        )
    except subprocess.TimeoutExpired:
        raise StepFailed(f"`{' '.join(argv[:3])}` did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        output = ((result.stdout or "") + (result.stderr or "")).strip()
        raise StepFailed(
            f"`{' '.join(argv[:3])}` exited with {result.returncode}" + (f":\n{tail(output)}" if output else "")
        )
    return result


def tail(text: str, lines: int = 25) -> str:
    """The last lines of a tool's output, Python traceback frames left out (the tools' own error
    lines and the final exception line are what say what went wrong)."""
    kept, in_traceback = [], False
    for line in text.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
            continue
        if in_traceback and (line.startswith(" ") or not line.strip()):
            continue
        in_traceback = False
        kept.append(line)
    return "\n".join(kept[-lines:])


# The deploy-only environment (`make setup`): bentoctl with the BentoML it runs on.
DEPLOY_ENV = PROJECT_ROOT / ".venv-deploy"


def bentoctl_executable() -> str:
    """bentoctl from the deploy-only environment, else the one on PATH."""
    candidate = DEPLOY_ENV / "bin" / "bentoctl"
    if candidate.exists():
        return str(candidate)
    if shutil.which("bentoctl"):
        return "bentoctl"
    raise StepFailed(
        f"bentoctl is not installed (looked in {DEPLOY_ENV.name}/bin and on PATH)",
        "run `make setup`, which installs it into .venv-deploy",
    )
