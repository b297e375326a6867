"""A stand-in for the terraform CLI: init, apply, destroy and output as `python -m deploy` calls
them, against (mocked) AWS. apply checks what main.tf's validations would (an image must be
named), publishes a function version when the image changed, points the live alias as main.tf's
locals say (pinned, canary routing, or the newest) from bentoctl.tfvars and the auto-loaded
release.auto.tfvars.json, and creates the alarms a canary is watched with. STANDIN_CANARY_FAILS=1
sets the canary's alarm off, as a failing new version would."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from tests.standins.record import fail_if_asked, load, log_call, save

ALIAS = "live"


def values(argv: list[str]) -> dict:
    """Variables as Terraform reads them: the *.auto.tfvars.json files in lexical order, then -var-file."""
    found = {}
    for auto in sorted(Path().glob("*.auto.tfvars.json")):
        found.update(json.loads(auto.read_text()))
    for name in [arg.split("=", 1)[1] for arg in argv if arg.startswith("-var-file=")]:
        text = Path(name).read_text()
        found.update(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', text, re.MULTILINE))
        found.update((k, int(v)) for k, v in re.findall(r"^(\w+)\s*=\s*(-?\d+)\s*$", text, re.MULTILINE))
    return found


def client(service: str, found: dict):
    import boto3

    return boto3.client(service, region_name=found.get("region", "us-east-1"))


def publish(found: dict) -> str:
    """Create or update the function; return the newest published version."""
    iam, functions = client("iam", found), client("lambda", found)
    name, image_uri = found["deployment_name"], f"{found['image_repository']}:{found['image_version']}"
    try:
        role = iam.get_role(RoleName=f"{name}-lambda")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=f"{name}-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    description = f"Bento {found.get('bento_tag', '')}"
    try:
        current = functions.get_function(FunctionName=name)["Code"].get("ImageUri")
    except functions.exceptions.ResourceNotFoundException:
        return functions.create_function(
            FunctionName=name,
            Role=role,
            PackageType="Image",
            Publish=True,
            Code={"ImageUri": image_uri},
            Description=description,
        )["Version"]
    if current != image_uri:
        functions.update_function_code(FunctionName=name, ImageUri=image_uri)
        functions.update_function_configuration(FunctionName=name, Description=description)
        return functions.publish_version(FunctionName=name)["Version"]
    versions = [v["Version"] for v in functions.list_versions_by_function(FunctionName=name)["Versions"]]
    return str(max(int(v) for v in versions if v.isdigit()))


def point_alias(found: dict, newest: str) -> tuple[str, dict]:
    """The alias's function_version and routing_config as main.tf (the deployment folder's, the
    working directory) computes them: its expressions evaluated by the real Terraform core
    (tests/terraform_eval.py), the stand-in keeps no copy of the logic."""
    from tests.terraform_eval import EvaluationError, alias_choice

    try:
        choice = alias_choice(
            pinned_version=str(found.get("pinned_version", "")),
            canary_base_version=str(found.get("canary_base_version", "")),
            canary_percent=found.get("canary_percent", 0),
            newest_version=str(newest),
            main_tf=Path("main.tf").resolve(),
        )
    except EvaluationError as error:
        print(f"Error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    live = choice.live_version
    routing = {"AdditionalVersionWeights": dict(choice.weights)}
    functions = client("lambda", found)
    try:
        functions.update_alias(
            FunctionName=found["deployment_name"], Name=ALIAS, FunctionVersion=live, RoutingConfig=routing
        )
    except functions.exceptions.ResourceNotFoundException:
        functions.create_alias(
            FunctionName=found["deployment_name"], Name=ALIAS, FunctionVersion=live, RoutingConfig=routing
        )
    # Every point in order, so a test can see the alias during a canary, not only after it.
    points = load("alias-points.json", [])
    point = {"newest": str(newest), "live": live, "weights": routing["AdditionalVersionWeights"]}
    save("alias-points.json", [*points, point])
    return live, routing


def alarms(found: dict, canary_active: bool) -> list[str]:
    watch = client("cloudwatch", found)
    name = found["deployment_name"]
    names = ([f"{name}-canary-errors"] if found.get("canary_percent", 0) > 0 else []) + [
        f"{name}-function-errors",
        f"{name}-5xx",
    ]
    for alarm in names:
        watch.put_metric_alarm(
            AlarmName=alarm,
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
        )
        watch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="stand-in")
    if canary_active and os.environ.get("STANDIN_CANARY_FAILS") == "1":
        watch.set_alarm_state(
            AlarmName=f"{name}-canary-errors", StateValue="ALARM", StateReason="stand-in: canary errors"
        )
    return names


def apply(argv: list[str]) -> int:
    if not Path(".terraform").is_dir():
        print("Error: Inconsistent dependency lock file; run terraform init", file=sys.stderr)
        return 1
    if not Path("main.tf").is_file():
        print("Error: No configuration files", file=sys.stderr)
        return 1
    found = values(argv)
    for name in ("image_repository", "image_version"):
        if not found.get(name):
            print(f"Error: Invalid value for variable {name}", file=sys.stderr)
            return 1
    newest = publish(found)
    live, routing = point_alias(found, newest)
    names = alarms(found, bool(routing["AdditionalVersionWeights"]))
    save(
        "terraform-applied.json",
        {"newest_version": newest, "live_version": live, "canary_alarms": names, "routing": routing, "values": found},
    )
    print("Apply complete!")
    return 0


def destroy(argv: list[str]) -> int:
    found = values(argv)
    functions = client("lambda", found)
    try:
        functions.delete_function(FunctionName=found["deployment_name"])
    except functions.exceptions.ResourceNotFoundException:
        pass
    save("terraform-applied.json", {})
    print("Destroy complete!")
    return 0


def main(argv: list[str]) -> int:
    log_call("terraform", argv)
    fail_if_asked("terraform", argv)
    match argv:
        case ["version", "-json"]:
            print(json.dumps({"terraform_version": os.environ.get("STANDIN_TERRAFORM_VERSION", "1.9.8")}))
        case ["init", *_]:
            Path(".terraform").mkdir(exist_ok=True)
            print("Terraform has been successfully initialized!")
        case ["apply", *rest]:
            return apply(rest)
        case ["destroy", *rest]:
            return destroy(rest)
        case ["output", "-json"]:
            applied = load("terraform-applied.json", {})
            out = {key: applied[key] for key in ("newest_version", "live_version", "canary_alarms") if key in applied}
            if applied:
                out["endpoint"] = os.environ["STANDIN_ENDPOINT"]
            print(json.dumps({key: {"value": value} for key, value in out.items()}))
        case _:
            print(f"terraform stand-in: unexpected call {argv}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
