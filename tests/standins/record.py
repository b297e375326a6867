"""What the stand-in CLIs share: the call log, the failure switch and their state, all in the
folder STANDIN_STATE names, so a test can read what was called and set how each call ends."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Environment variables whose values the log keeps (never credentials).
LOGGED_ENV = ("BUILDX_NO_DEFAULT_ATTESTATIONS", "AWS_ENDPOINT_URL")


def state_dir() -> Path:
    return Path(os.environ["STANDIN_STATE"])


def log_call(tool: str, argv: list[str], stdin: str | None = None) -> None:
    entry = {
        "tool": tool,
        "argv": argv,
        "cwd": os.getcwd(),
        "env": {key: os.environ[key] for key in LOGGED_ENV if key in os.environ},
        "stdin_given": bool(stdin),
    }
    with open(state_dir() / "calls.jsonl", "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def fail_if_asked(tool: str, argv: list[str]) -> None:
    """STANDIN_FAIL="docker push,terraform apply": calls starting with these words fail."""
    words = " ".join([tool, *argv])
    for prefix in filter(None, (item.strip() for item in os.environ.get("STANDIN_FAIL", "").split(","))):
        if words.startswith(prefix):
            print(f"{tool}: simulated failure of `{prefix}`", file=sys.stderr)
            sys.exit(1)


def load(name: str, default):
    path = state_dir() / name
    return json.loads(path.read_text()) if path.exists() else default


def save(name: str, value) -> None:
    (state_dir() / name).write_text(json.dumps(value, indent=1))


def calls() -> list[dict]:
    path = state_dir() / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
