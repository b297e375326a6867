"""Which published version the live alias serves: read from Lambda, set through Terraform.

`make deploy` and `make rollback` write release.auto.tfvars.json, which Terraform loads by itself
(so a plain `terraform apply -var-file=bentoctl.tfvars` keeps a rollback or a canary in place):
    pinned_version       the alias serves this version (after a rollback)
    canary_base_version  during a canary, the version that keeps the rest of the traffic
Both empty: the alias serves the newest published version.
"""

from __future__ import annotations

import json
import time

import boto3
import botocore.exceptions

from deploy import terraform
from deploy.deployment import VALUES_FILE, Deployment, operator_config
from deploy.steps import StepFailed

RELEASE_FILE = "release.auto.tfvars.json"


def write(deployment: Deployment, pinned: str = "", canary_base: str = "") -> None:
    (deployment.workdir / RELEASE_FILE).write_text(
        json.dumps({"pinned_version": pinned, "canary_base_version": canary_base}, indent=2) + "\n"
    )


def _lambda(deployment: Deployment):
    return boto3.client("lambda", region_name=deployment.region)


def live_routing(deployment: Deployment) -> tuple[str | None, dict[str, float]]:
    """The live alias's primary version and its canary weights ({version: share}); (None, {})
    before the first deploy."""
    client = _lambda(deployment)
    try:
        alias = client.get_alias(FunctionName=deployment.name, Name=operator_config.ALIAS_NAME)
    except client.exceptions.ResourceNotFoundException:
        return None, {}
    return alias["FunctionVersion"], dict(alias.get("RoutingConfig", {}).get("AdditionalVersionWeights") or {})


def live_version(deployment: Deployment) -> str | None:
    """The version the live alias serves now (during a canary: all but the canary's share); None
    before the first deploy."""
    return live_routing(deployment)[0]


def published_versions(deployment: Deployment) -> list[int]:
    client = _lambda(deployment)
    versions = []
    for page in client.get_paginator("list_versions_by_function").paginate(FunctionName=deployment.name):
        versions += [int(v["Version"]) for v in page["Versions"] if v["Version"].isdigit()]
    return sorted(versions)


def description(deployment: Deployment, version: str) -> str:
    return (
        _lambda(deployment)
        .get_function_configuration(FunctionName=deployment.name, Qualifier=version)
        .get("Description", "")
    )


def rollback_target(current: str | None, versions: list[int], wanted: str | None = None, canary: bool = False) -> str:
    """The version to return to: ``wanted`` if it is published, else the one before ``current``;
    during a ``canary`` ``current`` itself (the good base, which kept the rest of the traffic)."""
    if current is None:
        raise StepFailed("nothing is deployed: the live alias does not exist", "deploy first: `make deploy`")
    if wanted is not None:
        if not wanted.isdigit() or int(wanted) not in versions:
            raise StepFailed(f"version {wanted} is not published; published: {versions}")
        if wanted == current and not canary:
            raise StepFailed(f"the live alias already serves version {wanted}")
        return wanted
    if canary:
        return current
    earlier = [v for v in versions if v < int(current)]
    if not earlier:
        raise StepFailed(f"version {current} is the first published version; there is none to go back to")
    return str(earlier[-1])


def point_alias(deployment: Deployment, version: str) -> float:
    """Move the live alias to ``version`` at once, canary routing removed; returns seconds taken."""
    started = time.monotonic()
    _lambda(deployment).update_alias(
        FunctionName=deployment.name,
        Name=operator_config.ALIAS_NAME,
        FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    return time.monotonic() - started


def end_canary(deployment: Deployment, base: str, cause: str, hint: str) -> StepFailed:
    """Stop a canary that failed with ``cause``: the alias back on ``base`` with one UpdateAlias
    (effective at once), the release file pinned to it, then Terraform reconciled. Returns the
    failure to raise, which says where the alias is even if a step of this failed."""
    try:
        moved = f"the live alias moved back to version {base} in {point_alias(deployment, base):.1f} s"
        how = "Terraform recorded it"
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        moved = f"UpdateAlias failed ({error}), so the canary keeps its share until Terraform applies"
        how = "Terraform moved the alias"
    write(deployment, pinned=base)
    try:
        terraform.apply(deployment)
    except StepFailed as error:
        return StepFailed(
            f"{cause}; {moved}; {RELEASE_FILE} pins version {base}, but the terraform apply that "
            f"records it failed: {error}",
            f"run `terraform apply -var-file={VALUES_FILE}` (it keeps version {base}); then {hint}",
        )
    return StepFailed(f"{cause}: rolled back to version {base} ({moved}; {how})", hint)


def firing(deployment: Deployment, alarm_names: list[str]) -> list[str]:
    """The alarms among ``alarm_names`` that are in the ALARM state."""
    if not alarm_names:
        return []
    answer = boto3.client("cloudwatch", region_name=deployment.region).describe_alarms(AlarmNames=alarm_names)
    return sorted(alarm["AlarmName"] for alarm in answer["MetricAlarms"] if alarm["StateValue"] == "ALARM")


def bake(deployment: Deployment, alarm_names: list[str], seconds: float) -> list[str]:
    """Watch the alarms for ``seconds``; return those that fired (empty: the canary is healthy)."""
    interval = max(1.0, min(15.0, seconds / 4))
    deadline = time.monotonic() + seconds
    while True:
        fired = firing(deployment, alarm_names)
        if fired or time.monotonic() >= deadline:
            return fired
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


CANARY_DRIFT = "-canary-drift-"  # main.tf's canary drift alarms: <deployment>-canary-drift-<series>


def what_moved(deployment: Deployment, fired: list[str]) -> str:
    """For the canary's drift alarms among ``fired``: which series moved, as a clause to append."""
    prefix = f"{deployment.name}{CANARY_DRIFT}"
    moved = [name.removeprefix(prefix) for name in fired if name.startswith(prefix)]
    if not moved:
        return ""
    said = [
        "its answers (the probability) differ from the base version's"
        if series == "probability"
        else f"the traffic's {series} is unlike the new model's training data"
        for series in moved
    ]
    return f" ({'; '.join(said)})"
