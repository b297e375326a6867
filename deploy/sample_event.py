"""deploy/sample-event.json: the event API Gateway sends for ``POST /classify`` with the example
rows, for trying the image by hand (docs/deploy.md, "How the image works"). Written from src/config.py
and deploy/lambda_events.py's event builder, so it follows the feature count:

    python -m deploy.sample_event          # rewrites deploy/sample-event.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deploy.lambda_events import http_event
from src import config

SAMPLE_EVENT = config.PROJECT_ROOT / "deploy" / "sample-event.json"
FIXED_TIME = 1_583_817_383.220  # fixed, so the file changes only when the rows do


def sample_rows() -> list[list[float]]:
    """The example row and a row of whole numbers 1..N."""
    return [*config.EXAMPLE_ROWS, list(range(1, config.N_FEATURES + 1))]


def sample_event_text() -> str:
    body = json.dumps(sample_rows()).encode()
    headers = [
        ("host", "r3pmxmplak.execute-api.us-east-1.amazonaws.com"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "*/*"),
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
    ]
    event = http_event("POST", "/classify", headers, body, "205.255.255.176", "JKJaXmPLvHcESHA=", FIXED_TIME)
    return json.dumps(event, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.sample_event", description=__doc__)
    parser.add_argument("--output", type=Path, default=SAMPLE_EVENT, help="where to write it (default: %(default)s)")
    args = parser.parse_args(argv)
    args.output.write_text(sample_event_text())
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
