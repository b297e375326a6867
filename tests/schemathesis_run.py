"""Running schemathesis (`st run ... --checks all`) on a live endpoint and reading its report.

schemathesis is the one from the project's environment (requirements.txt). Each run is bounded:
a fixed seed and a fixed number of examples per operation, all phases but the stateful one
(the document declares no links).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ST = Path(sys.executable).parent / "st"
SEED = 20261124
MAX_EXAMPLES = 100


@dataclass
class Outcome:
    exit_code: int
    output: str
    cases: Counter = field(default_factory=Counter)  # per operation, e.g. "POST /classify"
    checks: Counter = field(default_factory=Counter)  # (check, status)
    failures: list = field(default_factory=list)  # (operation, check) of each failed check
    statuses: dict = field(default_factory=lambda: defaultdict(Counter))  # operation -> status -> count

    def summary(self) -> dict:
        return {
            "cases": dict(self.cases),
            "total": sum(self.cases.values()),
            "statuses": {op: dict(counts) for op, counts in self.statuses.items()},
            "checks_run": sum(n for (_, status), n in self.checks.items() if status != "skip"),
            "failures": self.failures,
        }


def run(location: str, report: Path, *extra: str, timeout: float = 240) -> Outcome:
    """``st run <location> --checks all`` with the fixed seed and bound; ``extra``: more options."""
    assert ST.exists(), "schemathesis is installed by `make setup` (requirements.txt)"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    command = [
        str(ST),
        "run",
        location,
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        *extra,
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=report.parent,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(report.parent)},
    )
    outcome = Outcome(result.returncode, result.stdout[-6000:] + result.stderr[-3000:])
    if report.exists():
        _read(report, outcome)
    return outcome


def _read(report: Path, outcome: Outcome) -> None:
    for line in report.read_text().splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished or not finished.get("recorder"):
            continue
        recorder = finished["recorder"]
        label = recorder["label"]
        outcome.cases[label] += len(recorder.get("cases", {}))
        for interaction in (recorder.get("interactions") or {}).values():
            response = interaction.get("response") or {}
            if "status_code" in response:
                outcome.statuses[label][response["status_code"]] += 1
        for checks in (recorder.get("checks") or {}).values():
            for check in checks:
                outcome.checks[(check["name"], check["status"])] += 1
                if check["status"] == "failure":
                    outcome.failures.append((label, check["name"]))
