"""The batch state machine's definition, as Terraform core writes it from main.tf, checked by npm's
asl-validator (pinned in tests/asl; `make asl-tools` installs it): valid for every combination of
the settings that changes it, and a definition the validator must refuse is refused, so a pass
means something."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy.test_batch_machine import definition, the_map

VALIDATOR = Path(__file__).resolve().parent.parent / "asl" / "node_modules" / ".bin" / "asl-validator"


def validate(document: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    if not VALIDATOR.is_file():
        pytest.skip("asl-validator is not installed: run `make asl-tools` (npm ci in tests/asl)")
    path = tmp_path / "definition.json"
    path.write_text(json.dumps(document))
    return subprocess.run([str(VALIDATOR), "--json-path", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "settings",
    [{}, {"batch_rows": 1, "batch_concurrency": 1}, {"batch_rows": 2000, "batch_concurrency": 10000, "timeout": 29}],
    ids=["defaults", "smallest", "largest"],
)
def test_the_definition_is_valid_amazon_states_language(settings, tmp_path):
    result = validate(definition(**settings), tmp_path)
    assert result.returncode == 0 and "is valid" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize(
    "break_it, said",
    [
        (lambda state: state["ItemBatcher"].update(MaxInputBytesPerBatch=256 * 1024 + 1), "must be <= 262144"),
        (lambda state: state["ItemProcessor"]["ProcessorConfig"].pop("ExecutionType"), "ProcessorConfig"),
        (lambda state: state.update(ToleratedFailurePercentage=101), "must be <= 100"),
        (lambda state: state["ItemReader"].pop("Resource"), "ItemReader"),
    ],
    ids=["batch over 256 KiB", "distributed without execution type", "tolerance over 100 %", "reader without resource"],
)
def test_the_validator_refuses_a_broken_definition(break_it, said, tmp_path):
    document = definition()
    break_it(the_map(document))
    result = validate(document, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "is invalid" in output and said in output, output
