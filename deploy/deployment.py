"""The deployment: deployment_config.yaml read into a :class:`Deployment` with the operator's
defaults, and the paths of the files Terraform uses. The operator (deploy/aws-lambda-operator) is
the one home of the settings' defaults and limits, and of the alias's name."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from src.config import PROJECT_ROOT

OPERATOR_DIR = PROJECT_ROOT / "deploy" / "aws-lambda-operator"
CONFIG_FILE = "deployment_config.yaml"

if str(OPERATOR_DIR) not in sys.path:
    sys.path.insert(0, str(OPERATOR_DIR))

import operator_config  # noqa: E402

from aws_lambda_operator import deployable, ecr, terraform_config  # noqa: E402, F401  (deployable, ecr: for deploy.cli, deploy.image)

VALUES_FILE = terraform_config.VALUES_FILE
# Lambda's names for the instruction sets, and the image platforms Docker builds for them.
PLATFORMS = {"x86_64": "linux/amd64", "arm64": "linux/arm64"}


@dataclass(frozen=True)
class Deployment:
    """One deployment as deployment_config.yaml describes it, run from ``workdir``;
    ``approve_replacements`` (--yes) lets an apply destroy or replace what clients reach."""

    name: str
    spec: dict
    workdir: Path
    approve_replacements: bool = False

    @property
    def region(self) -> str:
        return self.spec["region"]

    @property
    def architecture(self) -> str:
        return self.spec["architecture"]

    @property
    def platform(self) -> str:
        return PLATFORMS[self.architecture]

    @property
    def config_file(self) -> Path:
        return self.workdir / CONFIG_FILE

    @property
    def values_file(self) -> Path:
        return self.workdir / VALUES_FILE


def load(workdir: Path) -> Deployment:
    """Read deployment_config.yaml in ``workdir``; missing spec keys take the operator's defaults."""
    config = yaml.safe_load((workdir / CONFIG_FILE).read_text()) or {}
    if config.get("operator", {}).get("name") != operator_config.OPERATOR_NAME:
        raise ValueError(f"{CONFIG_FILE}: operator.name must be {operator_config.OPERATOR_NAME!r}")
    spec = {**terraform_config.spec_defaults(), **(config.get("spec") or {})}
    if spec.get("architecture") not in PLATFORMS:
        raise ValueError(f"{CONFIG_FILE}: spec.architecture must be one of {sorted(PLATFORMS)}")
    return Deployment(name=config["name"], spec=spec, workdir=workdir)
