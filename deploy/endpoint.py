"""The first call to a new deployment: the example rows to <endpoint>/classify, retried while the
API and a cold function come up."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from deploy.steps import StepFailed
from src import config

RETRY_STATUSES = {429, 500, 502, 503, 504}


def classify_once(endpoint: str, rows: list, timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{endpoint.rstrip('/')}/classify",
        data=json.dumps(rows).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def check(endpoint: str, wait_s: float = 90, timeout: float = 35) -> list:
    """POST the example rows until a 200 with one label per row, or fail after ``wait_s``."""
    rows = config.EXAMPLE_ROWS
    deadline = time.monotonic() + wait_s
    last = "no answer"
    while True:
        try:
            status, body = classify_once(endpoint, rows, timeout)
        except OSError as error:
            status, body = 0, str(error)
        if status == 200:
            labels = json.loads(body)
            if isinstance(labels, list) and len(labels) == len(rows) and set(labels) <= {0, 1}:
                return labels
            raise StepFailed(f"{endpoint}/classify answered 200 with {body[:200]!r}, not {len(rows)} labels")
        last = f"{status or 'no connection'}: {body[:300]}"
        if (status and status not in RETRY_STATUSES) or time.monotonic() > deadline:
            break
        time.sleep(3)
    raise StepFailed(
        f"{endpoint}/classify did not answer the example rows ({last})",
        "read the function's logs: `aws logs tail /aws/lambda/<name> --since 10m`",
    )
