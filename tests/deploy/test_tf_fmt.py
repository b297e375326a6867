"""main.tf and the operator's template are `terraform fmt` clean, as `make lint` checks.

The template holds a mark (the spec's variables go there) that is not HCL, so it is checked with
the mark turned into a comment; the rendered main.tf covers the variables themselves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aws_lambda_operator.terraform_config import SPEC_VARIABLES_MARK, TEMPLATE
from src.config import PROJECT_ROOT

pytestmark = pytest.mark.unit

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(TERRAFORM is None, reason="terraform is not on PATH")


def fmt_check(path: Path) -> subprocess.CompletedProcess:
    """`terraform fmt -check -diff` of one file or directory (-recursive)."""
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        [TERRAFORM, "fmt", "-check", "-diff", "-recursive", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def template_as_hcl(directory: Path, text: str | None = None) -> Path:
    """The template, its mark replaced by a comment, written into ``directory``."""
    text = TEMPLATE.read_text() if text is None else text
    assert SPEC_VARIABLES_MARK in text
    path = directory / "main.tf"
    path.write_text(text.replace(SPEC_VARIABLES_MARK, "# spec variables"))
    return path


@needs_terraform
def test_main_tf_is_fmt_clean():
    result = fmt_check(PROJECT_ROOT / "main.tf")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_terraform
def test_the_template_is_fmt_clean(tmp_path: Path):
    template_as_hcl(tmp_path)
    result = fmt_check(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_terraform
def test_a_misaligned_argument_is_reported(tmp_path: Path):
    text = TEMPLATE.read_text()
    aligned = '  package_type  = "Image"\n'
    assert aligned in text, "the template changed: update this mutation"
    template_as_hcl(tmp_path, text.replace(aligned, '  package_type = "Image"\n'))
    result = fmt_check(tmp_path)
    assert result.returncode != 0 and "package_type" in result.stdout
