"""A stand-in for the terraform CLI: init, plan, show, apply, state pull, destroy and output as
`python -m deploy` calls them, against (mocked) AWS. What main.tf declares comes from the real
Terraform core: plan asks it (tests/terraform_core.py, with the test provider) for every
variable's value and the managed resources the configuration gives, so its validations and
preconditions refuse what they would refuse, with core's errors. plan -out writes those and the
resource changes, computed from what was last applied (a change of endpoint deletes the API or
the function URL, a change of deployment_name replaces everything); apply <planfile> applies
them, printing Terraform-like progress lines: it publishes a function version when the image
changed, points the live alias as main.tf's locals say (pinned, canary routing, or the newest)
from bentoctl.tfvars and the auto-loaded release.auto.tfvars.json, creates the alarms a canary is
watched with and, with batch on, the batch state machine from the definition Terraform core writes.
STANDIN_CANARY_FAILS=1 sets the canary's alarm off, as a failing new version would, and
STANDIN_CANARY_DRIFT=<series> that series' canary drift alarm, as a new model that moved would. init knows a
generated S3 backend.tf: the bucket must exist, and a change of backend needs -migrate-state."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from tests.standins.record import fail_if_asked, load, log_call, save


def planned(argv: list[str]) -> dict | None:
    """What the real Terraform core makes of main.tf with these arguments and the folder's
    *.auto.tfvars.json: every variable's value ("values"), the managed resources it declares
    ("resources", {address: type}) and the alarms its canary_alarms output names; None, with
    core's errors printed, when core refuses (a variable's validation, a precondition). Planned
    once per distinct input (tests/terraform_core.py)."""
    from tests.terraform_core import TERRAFORM, PlanRefused, cached_plan

    if TERRAFORM is None:
        print("Error: the stand-in plans with the real Terraform core: put terraform on PATH", file=sys.stderr)
        return None
    files = {"main.tf": Path("main.tf").read_text()}
    files |= {auto.name: auto.read_text() for auto in sorted(Path().glob("*.auto.tfvars.json"))}
    variables = []
    for index, arg in enumerate(argv):
        if arg.startswith("-var-file="):
            name = f"given-{index}.tfvars"
            files[name] = Path(arg.split("=", 1)[1]).read_text()
            variables.append(f"-var-file={name}")
        elif arg.startswith("-var="):
            variables.append(arg)
    cache = Path(os.environ.get("STANDIN_PLAN_CACHE") or Path(tempfile.gettempdir()) / f"standin-plans-{os.getuid()}")
    try:
        plan = cached_plan(files, variables, cache)
    except PlanRefused as refused:
        errors = refused.output.find("Error: ")
        print(refused.output[errors:] if errors >= 0 else refused.output, file=sys.stderr)
        return None
    outputs = plan["planned_values"].get("outputs", {})
    return {
        "values": {name: entry["value"] for name, entry in plan["variables"].items()},
        "resources": {
            change["address"]: change["type"] for change in plan["resource_changes"] if change["mode"] == "managed"
        },
        "canary_alarms": outputs.get("canary_alarms", {}).get("value", []),
    }


RELEASE_KEYS = ("pinned_version", "canary_base_version")


def resource_changes(found: dict, after: dict[str, str]) -> list[dict]:
    """What a plan would do to reach the resources ``after``, from what was applied last
    (terraform-applied.json)."""
    applied = load("terraform-applied.json", {})
    before = applied.get("resources", {})
    old = applied.get("values", {})
    renamed = bool(before) and old.get("deployment_name") != found.get("deployment_name")
    settings = {k: v for k, v in found.items() if k not in RELEASE_KEYS} != {
        k: v for k, v in old.items() if k not in RELEASE_KEYS
    }
    release = any(found.get(k, "") != old.get(k, "") for k in RELEASE_KEYS)
    changes = []
    for address, kind in after.items():
        if address not in before:
            actions = ["create"]
        elif renamed:
            actions = ["delete", "create"]
        elif kind == "aws_lambda_function" and settings or kind == "aws_lambda_alias" and (settings or release):
            actions = ["update"]
        else:
            actions = ["no-op"]
        changes.append({"address": address, "type": kind, "actions": actions})
    changes += [{"address": a, "type": k, "actions": ["delete"]} for a, k in before.items() if a not in after]
    return changes


def plan(argv: list[str]) -> int:
    if not initialised():
        return 1
    core = planned(argv)
    if core is None:
        return 1
    out = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("-out="))
    changes = resource_changes(core["values"], core["resources"])
    Path(out).write_text(json.dumps({"stand-in plan": True, **core, "resource_changes": changes}))
    for change in changes:
        if change["actions"] != ["no-op"]:
            print(f"  # {change['address']} will be {'/'.join(change['actions'])}")
    print(f"Saved the plan to: {out}")
    return 0


def show_plan(path: str) -> int:
    saved = json.loads(Path(path).read_text())
    changes = [
        {
            "address": change["address"],
            "mode": "managed",
            "type": change["type"],
            "name": change["address"].split(".")[1].split("[")[0],
            "change": {"actions": change["actions"]},
        }
        for change in saved["resource_changes"]
    ]
    print(json.dumps({"format_version": "1.2", "resource_changes": changes}))
    return 0


def initialised() -> bool:
    if not Path(".terraform").is_dir():
        print("Error: Inconsistent dependency lock file; run terraform init", file=sys.stderr)
        return False
    if not Path("main.tf").is_file():
        print("Error: No configuration files", file=sys.stderr)
        return False
    return True


def s3_backend() -> dict | None:
    """The S3 backend a backend.tf configures (bucket, key, region), or None (local state)."""
    path = Path("backend.tf")
    if not path.is_file() or 'backend "s3"' not in path.read_text():
        return None
    return dict(re.findall(r'^\s*(bucket|key|region)\s*=\s*"([^"]*)"', path.read_text(), re.MULTILINE))


def init(argv: list[str]) -> int:
    """Like terraform init: a changed backend needs -migrate-state (which moves the local state)."""
    recorded_file = Path(".terraform") / "terraform.tfstate"
    recorded = json.loads(recorded_file.read_text()).get("backend") if recorded_file.is_file() else None
    backend = s3_backend()
    wanted = {"type": "s3", "config": backend} if backend else None
    local = Path("terraform.tfstate")
    local_state = local.is_file() and local.stat().st_size > 0
    moving = recorded != wanted and (recorded is not None or local_state)
    if moving and not {"-migrate-state", "-reconfigure"} & set(argv):
        print(
            "Error: Backend configuration changed; run terraform init with -migrate-state or -reconfigure",
            file=sys.stderr,
        )
        return 1
    if backend:
        s3 = client("s3", {"region": backend.get("region")})
        try:
            s3.head_bucket(Bucket=backend["bucket"])
        except Exception:
            print(f"Error: S3 bucket {backend['bucket']!r} does not exist.", file=sys.stderr)
            return 1
    if moving and wanted and local_state:
        Path("terraform.tfstate.backup").write_text(local.read_text())
        local.write_text("")
    Path(".terraform").mkdir(exist_ok=True)
    if wanted:
        recorded_file.write_text(json.dumps({"version": 3, "backend": wanted}))
    else:
        recorded_file.unlink(missing_ok=True)
    print("Terraform has been successfully initialized!")
    return 0


def state_json(applied: dict) -> dict:
    found = applied.get("values", {})
    managed = [
        {"mode": "managed", "type": kind, "name": address.split(".")[1].split("[")[0], "instances": [{}]}
        for address, kind in applied.get("resources", {}).items()
    ]
    data = [
        {
            "mode": "data",
            "type": "aws_ecr_repository",
            "name": "service",
            "instances": [{"attributes": {"repository_url": found.get("image_repository", "")}}],
        },
        {
            "mode": "data",
            "type": "aws_ecr_image",
            "name": "service",
            "instances": [{"attributes": {"image_tag": found.get("image_version", "")}}],
        },
    ]
    return {"version": 4, "resources": managed + data if managed else []}


def record_state(applied: dict) -> None:
    """What was applied, in the stand-in's state and, with local state, in terraform.tfstate."""
    save("terraform-applied.json", applied)
    if s3_backend() is None:
        Path("terraform.tfstate").write_text(json.dumps(state_json(applied)) if applied else "")


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
    """The alias's name, function_version and routing_config as main.tf (the deployment folder's, the
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
            FunctionName=found["deployment_name"], Name=choice.name, FunctionVersion=live, RoutingConfig=routing
        )
    except functions.exceptions.ResourceNotFoundException:
        functions.create_alias(
            FunctionName=found["deployment_name"], Name=choice.name, FunctionVersion=live, RoutingConfig=routing
        )
    # Every point in order, so a test can see the alias during a canary, not only after it.
    points = load("alias-points.json", [])
    point = {"newest": str(newest), "live": live, "weights": routing["AdditionalVersionWeights"]}
    save("alias-points.json", [*points, point])
    return live, routing


def batch_machine(found: dict) -> str:
    """With batch on, the state machine main.tf defines, created (or updated) in moto with the
    definition Terraform core writes from main.tf for the deployed alias; its ARN, or ""."""
    from deploy.deployment import operator_config
    from tests.terraform_eval import evaluate

    if not found.get("batch"):
        return ""
    functions, machines = client("lambda", found), client("stepfunctions", found)
    alias = functions.get_alias(FunctionName=found["deployment_name"], Name=operator_config.ALIAS_NAME)["AliasArn"]
    account = alias.split(":")[4]
    given = (
        *("deployment_name", "region", "timeout"),
        *("batch", "batch_input", "batch_output", "batch_rows", "batch_concurrency"),
    )
    known = {
        "aws_lambda_alias.live.arn": alias,
        "data.aws_caller_identity.current.account_id": account,
        "data.aws_partition.current.partition": "aws",
    }
    main_tf = Path("main.tf").resolve()
    variables = {k: found[k] for k in given if k in found}
    name = evaluate("local.batch_name", main_tf, known=known, **variables)
    definition = evaluate("local.batch_definition", main_tf, known=known, **variables)
    role = f"arn:aws:iam::{account}:role/{name}"
    existing = [m["stateMachineArn"] for m in machines.list_state_machines()["stateMachines"] if m["name"] == name]
    if existing:
        machines.update_state_machine(stateMachineArn=existing[0], definition=definition, roleArn=role)
        return existing[0]
    return machines.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"]


def alarms(found: dict, names: list[str], canary_active: bool) -> list[str]:
    """The alarms main.tf's canary_alarms output names, created in moto (all quiet unless asked)."""
    watch = client("cloudwatch", found)
    name = found["deployment_name"]
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
    moved = os.environ.get("STANDIN_CANARY_DRIFT")  # a series whose canary drift alarm fires
    if canary_active and moved and f"{name}-canary-drift-{moved}" in names:
        watch.set_alarm_state(
            AlarmName=f"{name}-canary-drift-{moved}", StateValue="ALARM", StateReason="stand-in: drift"
        )
    return names


def apply(argv: list[str]) -> int:
    if not initialised():
        return 1
    saved = [arg for arg in argv if not arg.startswith("-")]
    if saved:
        if any(arg.startswith("-var") for arg in argv):
            print("Error: Can't set variables when applying a saved plan", file=sys.stderr)
            return 1
        core = json.loads(Path(saved[0]).read_text())
        changes = core["resource_changes"]
    else:
        core = planned(argv)
        if core is None:
            return 1
        changes = resource_changes(core["values"], core["resources"])
    found = core["values"]
    counts = {"added": 0, "changed": 0, "destroyed": 0}
    for change in changes:
        actions = change["actions"]
        if actions == ["no-op"]:
            continue
        verb = {"create": "Creating", "update": "Modifying", "delete": "Destroying"}[actions[0]]
        print(f"{change['address']}: {verb}...", flush=True)
        counts["added"] += "create" in actions
        counts["changed"] += actions == ["update"]
        counts["destroyed"] += "delete" in actions
    newest = publish(found)
    live, routing = point_alias(found, newest)
    names = alarms(found, core["canary_alarms"], bool(routing["AdditionalVersionWeights"]))
    machine = batch_machine(found)
    record_state(
        {
            "newest_version": newest,
            "live_version": live,
            "canary_alarms": names,
            "batch_state_machine": machine,
            "routing": routing,
            "values": found,
            "resources": core["resources"],
        }
    )
    print(
        f"Apply complete! Resources: {counts['added']} added, {counts['changed']} changed, "
        f"{counts['destroyed']} destroyed."
    )
    return 0


def destroy(argv: list[str]) -> int:
    core = planned(argv)
    if core is None:
        return 1
    found = core["values"]
    functions = client("lambda", found)
    try:
        functions.delete_function(FunctionName=found["deployment_name"])
    except functions.exceptions.ResourceNotFoundException:
        pass
    gone = len(load("terraform-applied.json", {}).get("resources", {}))
    record_state({})
    print(f"Destroy complete! Resources: {gone} destroyed.")
    return 0


def main(argv: list[str]) -> int:
    log_call("terraform", argv)
    fail_if_asked("terraform", argv)
    match argv:
        case ["version", "-json"]:
            print(json.dumps({"terraform_version": os.environ.get("STANDIN_TERRAFORM_VERSION", "1.9.8")}))
        case ["init", *rest]:
            return init(rest)
        case ["plan", *rest]:
            return plan(rest)
        case ["show", "-json", path]:
            return show_plan(path)
        case ["state", "pull"]:
            applied = load("terraform-applied.json", {})
            if applied.get("resources"):
                print(json.dumps(state_json(applied)))
        case ["apply", *rest]:
            return apply(rest)
        case ["destroy", *rest]:
            return destroy(rest)
        case ["output", "-json"]:
            applied = load("terraform-applied.json", {})
            keys = ("newest_version", "live_version", "canary_alarms", "batch_state_machine")
            out = {key: applied[key] for key in keys if key in applied}
            if applied:
                out["endpoint"] = os.environ["STANDIN_ENDPOINT"]
            print(json.dumps({key: {"value": value} for key, value in out.items()}))
        case _:
            print(f"terraform stand-in: unexpected call {argv}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
