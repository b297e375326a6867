"""Terraform on main.tf and bentoctl.tfvars, with every failure reported, never swallowed."""

from __future__ import annotations

import json

from deploy.settings import VALUES_FILE, Deployment
from deploy.steps import StepFailed, run

NO_INPUT = "-input=false"


def init(deployment: Deployment) -> None:
    run(["terraform", "init", NO_INPUT], cwd=deployment.workdir)


def apply(deployment: Deployment, extra: tuple[str, ...] = ()) -> None:
    run(["terraform", "apply", NO_INPUT, "-auto-approve", f"-var-file={VALUES_FILE}", *extra], cwd=deployment.workdir)


def destroy(deployment: Deployment) -> None:
    run(["terraform", "destroy", NO_INPUT, "-auto-approve", f"-var-file={VALUES_FILE}"], cwd=deployment.workdir)


def outputs(deployment: Deployment) -> dict:
    """`terraform output -json`, as {name: value}."""
    text = run(["terraform", "output", "-json"], cwd=deployment.workdir).stdout
    try:
        return {name: entry["value"] for name, entry in json.loads(text or "{}").items()}
    except (ValueError, KeyError, TypeError):
        raise StepFailed(f"cannot read `terraform output -json`: {text[:300]!r}") from None
