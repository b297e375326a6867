"""Call the deployed or local API: ``python -m src.client --url URL``.

Rows come from a CSV with the feature columns (the training file works: its target column is
ignored) or are generated. The same command works against ``bentoml serve`` on
http://127.0.0.1:3000 and against the URL that ``terraform apply`` prints for AWS Lambda.
Only the standard library is used, so the client runs wherever Python does.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import urllib.error
import urllib.request
from pathlib import Path

from src import config

ENDPOINTS = config.PREDICTION_ENDPOINTS
# Seconds to wait for an answer: longer than the service's own request timeout (30 s by default),
# so that its 504 reaches the client rather than a client-side timeout.
TIMEOUT_S = 35.0


class ApiError(RuntimeError):
    """The API answered with an error status; the message carries its explanation."""


def read_rows(path: Path, limit: int | None = None) -> list[list[float]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in config.FEATURE_NAMES if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks columns {missing}")
        rows = []
        for record in reader:
            rows.append([float(record[c]) for c in config.FEATURE_NAMES])
            if limit is not None and len(rows) >= limit:
                break
    return rows


def random_rows(n: int, seed: int = 0) -> list[list[float]]:
    rng = random.Random(seed)
    return [[round(rng.gauss(0, 2), 4) for _ in config.FEATURE_NAMES] for _ in range(n)]


def post(url: str, rows: list[list[float]], endpoint: str = ENDPOINTS[0], timeout: float = TIMEOUT_S) -> list:
    """POST rows to ``<url>/<endpoint>`` and return the decoded JSON answer."""
    request = urllib.request.Request(
        f"{url.rstrip('/')}/{endpoint}",
        data=json.dumps(rows).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ApiError(f"{exc.code} from {request.full_url}: {error_message(exc.read())}") from None


def error_message(body: bytes) -> str:
    """The message of an error answer: the service's ``{"error": ...}``, API Gateway's own
    ``{"message": ...}``, or the body as text."""
    text = body.decode(errors="replace")
    try:
        found = json.loads(text)
    except ValueError:
        return text
    if isinstance(found, dict):
        for key in ("error", "message"):
            if isinstance(found.get(key), str):
                return found[key]
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="base URL of the API (default: %(default)s)")
    parser.add_argument(
        "--csv", type=Path, help=f"CSV with {config.FEATURE_NAMES[0]}..{config.FEATURE_NAMES[-1]} columns"
    )
    parser.add_argument("--rows", type=int, default=5, help="how many rows to send (default: %(default)s)")
    parser.add_argument("--endpoint", choices=ENDPOINTS, default=ENDPOINTS[0])
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    try:
        rows = read_rows(args.csv, args.rows) if args.csv else random_rows(args.rows)
        answers = post(args.url, rows, args.endpoint, args.timeout)
    except (ApiError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for row, answer in zip(rows, answers, strict=True):
        print(f"{json.dumps(row)} -> {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
