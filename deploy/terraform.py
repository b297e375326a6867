"""Terraform on main.tf and bentoctl.tfvars, with every failure reported, never swallowed.

Every apply is a reviewed plan: `terraform plan -out` first, its summary printed, and a plan that
destroys or replaces what clients reach (PROTECTED) stops unless the command was given --yes;
then the saved plan is applied with Terraform's own progress shown as it runs. With
spec.state_bucket set, init moves a local state into S3 (and back when it is unset).
"""

from __future__ import annotations

import json
from pathlib import Path

from deploy import prerequisites
from deploy.deployment import VALUES_FILE, Deployment, terraform_config
from deploy.steps import StepFailed, run

NO_INPUT = "-input=false"
PLAN_FILE = "deploy.tfplan"
LOCAL_STATE = "terraform.tfstate"
# What a delete or a replacement must not take away unreviewed: the function with every published
# version (the rollback targets), the alias clients invoke, and the API or function URL whose
# address clients call (a new one has another URL). The rest (roles, log groups' settings,
# alarms, stage, routes) is recreated without changing what clients see.
PROTECTED = {
    "aws_lambda_function": "the function and all its published versions",
    "aws_lambda_alias": "the alias clients invoke",
    "aws_apigatewayv2_api": "the HTTP API: its URL changes",
    "aws_lambda_function_url": "the function URL: its URL changes",
}
APPROVE_HINT = (
    "review the plan (`terraform show {plan}`), then run the command again with --yes: "
    "`make deploy ARGS=--yes` / `python -m deploy deploy --yes`"
)


class PlanRefused(StepFailed):
    """The plan destroys or replaces what clients reach and --yes was not given: nothing applied."""


def wanted_backend(deployment: Deployment) -> dict | None:
    """The S3 backend spec.state_bucket asks for, as Terraform records it; None: local state."""
    bucket = deployment.spec.get("state_bucket") or ""
    return {"bucket": bucket, "key": terraform_config.state_key(deployment.name)} if bucket else None


def recorded_backend(workdir: Path) -> dict | None:
    """The backend the folder was last initialised with (.terraform/terraform.tfstate); None: local."""
    path = workdir / ".terraform" / "terraform.tfstate"
    try:
        backend = json.loads(path.read_text()).get("backend") or {}
    except (OSError, ValueError):
        return None
    if backend.get("type") != "s3":
        return None
    config = backend.get("config") or {}
    return {"bucket": config.get("bucket"), "key": config.get("key")}


def check_backend_terraform(deployment: Deployment) -> None:
    version = prerequisites.terraform_version()
    if prerequisites.version_numbers(version) < prerequisites.version_numbers(terraform_config.BACKEND_TERRAFORM):
        raise StepFailed(
            f"state_bucket needs Terraform {terraform_config.BACKEND_TERRAFORM} or later (the S3 backend's "
            f"use_lockfile); this is Terraform {version}",
            "install Terraform 1.10 or later, or leave state_bucket empty for local state",
        )


def init(deployment: Deployment) -> None:
    """`terraform init`; when the backend changes (local state into S3, or back), the state is moved."""
    argv = ["terraform", "init", NO_INPUT]
    wanted, recorded = wanted_backend(deployment), recorded_backend(deployment.workdir)
    if wanted:
        check_backend_terraform(deployment)
    local = deployment.workdir / LOCAL_STATE
    local_state = local.is_file() and local.stat().st_size > 0
    if (wanted and wanted != recorded and local_state) or (recorded and recorded != wanted):
        argv += ["-migrate-state", "-force-copy"]
        where = f"s3://{wanted['bucket']}/{wanted['key']}" if wanted else LOCAL_STATE
        print(f"    the state moves to {where} (terraform init -migrate-state)", flush=True)
    run(argv, cwd=deployment.workdir)


def plan_changes(deployment: Deployment, extra: tuple[str, ...] = ()) -> list[dict]:
    """`terraform plan -out` into PLAN_FILE; its resource changes (no-ops left out)."""
    run(
        ["terraform", "plan", NO_INPUT, f"-out={PLAN_FILE}", f"-var-file={VALUES_FILE}", *extra],
        cwd=deployment.workdir,
    )
    text = run(["terraform", "show", "-json", PLAN_FILE], cwd=deployment.workdir).stdout
    try:
        changes = json.loads(text).get("resource_changes") or []
        return [
            {"address": c["address"], "type": c["type"], "actions": list(c["change"]["actions"])}
            for c in changes
            if set(c["change"]["actions"]) - {"no-op", "read"}
        ]
    except (ValueError, KeyError, TypeError):
        raise StepFailed(f"cannot read `terraform show -json {PLAN_FILE}`: {text[:300]!r}") from None


def kind(actions: list[str]) -> str:
    if "delete" in actions and "create" in actions:
        return "replace"
    return {"create": "create", "update": "update", "delete": "destroy"}.get(actions[0], actions[0])


def summary(changes: list[dict]) -> list[str]:
    """Terraform's count line, then each change other than a creation, by address."""
    kinds = [kind(change["actions"]) for change in changes]
    add = kinds.count("create") + kinds.count("replace")
    destroyed = kinds.count("destroy") + kinds.count("replace")
    lines = [f"plan: {add} to add, {kinds.count('update')} to change, {destroyed} to destroy"]
    lines += [f"  {k} {c['address']}" for k, c in zip(kinds, changes, strict=True) if k != "create"]
    return lines


def refused(changes: list[dict]) -> list[str]:
    return [
        f"{kind(c['actions'])} {c['address']} ({PROTECTED[c['type']]})"
        for c in changes
        if c["type"] in PROTECTED and "delete" in c["actions"]
    ]


# What clients reach a new endpoint through; AWS takes seconds to make each one answer.
ENDPOINT_TYPES = {"aws_apigatewayv2_stage", "aws_lambda_function_url", "aws_lambda_permission"}


def creates_endpoint(changes: list[dict]) -> bool:
    """Whether the plan creates (or replaces) a stage, a function URL or an invoke permission."""
    return any(c["type"] in ENDPOINT_TYPES and "create" in c["actions"] for c in changes)


def apply(deployment: Deployment, extra: tuple[str, ...] = ()) -> list[dict]:
    """Plan, print the summary, stop before an unapproved destroy or replacement of PROTECTED,
    then apply the saved plan, Terraform's output streamed; returns the plan's changes."""
    changes = plan_changes(deployment, extra)
    for line in summary(changes):
        print(f"    {line}", flush=True)
    dangerous = refused(changes)
    if dangerous and not deployment.approve_replacements:
        raise PlanRefused(
            "the plan destroys or replaces what clients reach, so nothing was applied:\n  " + "\n  ".join(dangerous),
            APPROVE_HINT.format(plan=PLAN_FILE),
        )
    run(["terraform", "apply", NO_INPUT, PLAN_FILE], cwd=deployment.workdir, capture=False)
    (deployment.workdir / PLAN_FILE).unlink(missing_ok=True)
    return changes


def deployed_in_state(deployment: Deployment) -> tuple[list[str], dict]:
    """The managed resources Terraform's state holds (`terraform state pull`), and the image it
    deployed as Terraform variables (read from its data sources); ([], {}) when there is no state."""
    text = run(["terraform", "state", "pull"], cwd=deployment.workdir).stdout.strip()
    try:
        resources = json.loads(text).get("resources", []) if text else []
    except ValueError:
        raise StepFailed(f"cannot read `terraform state pull`: {text[:300]!r}") from None
    managed = [f"{r['type']}.{r['name']}" for r in resources if r.get("mode") == "managed" and r.get("instances")]
    attributes = {
        r["type"]: r["instances"][0].get("attributes", {})
        for r in resources
        if r.get("mode") == "data" and r.get("instances")
    }
    image = {
        "image_repository": attributes.get("aws_ecr_repository", {}).get("repository_url", ""),
        "image_version": attributes.get("aws_ecr_image", {}).get("image_tag", ""),
    }
    return managed, {key: value for key, value in image.items() if value}


def destroy(deployment: Deployment, image: dict | None = None) -> None:
    """`terraform destroy`; ``image`` gives the image variables when no deployed values are left
    (main.tf refuses to evaluate without them, even to destroy)."""
    known = terraform_config.deployed_values(deployment.workdir)
    variables = [f"-var={key}={value}" for key, value in (image or {}).items() if not known.get(key)]
    run(
        ["terraform", "destroy", NO_INPUT, "-auto-approve", f"-var-file={VALUES_FILE}", *variables],
        cwd=deployment.workdir,
        capture=False,
    )


def outputs(deployment: Deployment) -> dict:
    """`terraform output -json`, as {name: value}."""
    text = run(["terraform", "output", "-json"], cwd=deployment.workdir).stdout
    try:
        return {name: entry["value"] for name, entry in json.loads(text or "{}").items()}
    except (ValueError, KeyError, TypeError):
        raise StepFailed(f"cannot read `terraform output -json`: {text[:300]!r}") from None
