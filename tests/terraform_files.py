"""main.tf and bentoctl.tfvars as python-hcl2 parses them, for the tests that read Terraform."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import hcl2

from src.config import PROJECT_ROOT

MAIN_TF = PROJECT_ROOT / "main.tf"
PLAIN = hcl2.SerializationOptions(with_comments=False, strip_string_quotes=True, explicit_blocks=False)


def parsed(path: Path = MAIN_TF) -> dict:
    """The file parsed, a copy of its own for each caller: each version of a file (its path, size
    and modification time) is parsed once, as python-hcl2 takes a few tenths of a second."""
    status = Path(path).stat()
    return copy.deepcopy(_parsed(str(path), status.st_size, status.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _parsed(path: str, size: int, modified_ns: int) -> dict:
    with open(path) as handle:
        return hcl2.load(handle, serialization_options=PLAIN)


def committed_tfvars() -> dict:
    """The committed bentoctl.tfvars, parsed."""
    return parsed(PROJECT_ROOT / "bentoctl.tfvars")


def terraform_variables() -> dict:
    """main.tf's variable blocks by name."""
    return {name: body for block in parsed()["variable"] for name, body in block.items()}


def terraform_resources() -> dict:
    """main.tf's resources as {"<type>.<name>": body}."""
    return {
        f"{kind}.{name}": body
        for block in parsed()["resource"]
        for kind, named in block.items()
        for name, body in named.items()
    }


def locals_block() -> dict:
    """main.tf's locals, all blocks merged."""
    return {key: value for block in parsed()["locals"] for key, value in block.items()}
