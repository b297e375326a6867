"""A stand-in for the terraform CLI: init, apply, destroy and output as `python -m deploy` calls
them. apply checks what main.tf's validations would (an image must be named) and creates the
function in (mocked) Lambda; destroy deletes it; output gives STANDIN_ENDPOINT as the endpoint."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from tests.standins.record import fail_if_asked, load, log_call, save  # noqa: E402


def values(argv: list[str]) -> dict:
    files = [arg.split("=", 1)[1] for arg in argv if arg.startswith("-var-file=")]
    if not files:
        return {}
    text = Path(files[0]).read_text()
    return dict(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', text, re.MULTILINE))


def lambda_client(found: dict):
    import boto3

    return boto3.client("lambda", region_name=found.get("region", "us-east-1"))


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
    import boto3

    iam = boto3.client("iam", region_name=found.get("region", "us-east-1"))
    role_name = f"{found['deployment_name']}-lambda"
    try:
        role = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    functions = lambda_client(found)
    image_uri = f"{found['image_repository']}:{found['image_version']}"
    try:
        functions.update_function_code(FunctionName=found["deployment_name"], ImageUri=image_uri)
    except functions.exceptions.ResourceNotFoundException:
        functions.create_function(FunctionName=found["deployment_name"], Role=role, PackageType="Image",
                                  Code={"ImageUri": image_uri})
    save("terraform-applied.json", {"image": image_uri, "values": found})
    print("Apply complete! Resources: 1 added, 0 changed, 0 destroyed.")
    return 0


def destroy(argv: list[str]) -> int:
    found = values(argv)
    functions = lambda_client(found)
    try:
        functions.delete_function(FunctionName=found["deployment_name"])
    except functions.exceptions.ResourceNotFoundException:
        pass
    save("terraform-applied.json", {})
    print("Destroy complete! Resources: 1 destroyed.")
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
            print(json.dumps({"endpoint": {"value": os.environ["STANDIN_ENDPOINT"]}} if applied else {}))
        case _:
            print(f"terraform stand-in: unexpected call {argv}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
