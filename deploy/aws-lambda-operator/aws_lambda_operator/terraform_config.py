"""Writing main.tf (a template) and bentoctl.tfvars (the deployment's values).

main.tf holds no deployment-specific text: every value is a typed, validated variable, so a
redeploy or a change of memory touches only bentoctl.tfvars. The variables for the spec's keys
are rendered from the operator's schema (operator_config.py: type, description, default, limits),
their one home, and so are the locals main.tf shares with `python -m deploy` (the alias's name,
the request timeout rule). Values are written with their HCL types (numbers, lists, maps).
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

TEMPLATE = Path(__file__).parent / "templates" / "main.tf"
OPERATOR_CONFIG = Path(__file__).parent.parent / "operator_config.py"
VALUES_FILE = "bentoctl.tfvars"
TEMPLATE_FILE = "main.tf"
SPEC_VARIABLES_MARK = "{{SPEC_VARIABLES}}"


def operator_config():
    """operator_config.py as written, read afresh: bentoctl deletes the help messages from the
    loaded module's schema once it has validated a spec with it."""
    spec = importlib.util.spec_from_file_location("operator_config_as_written", OPERATOR_CONFIG)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def operator_schema() -> dict:
    return operator_config().OPERATOR_SCHEMA


def spec_defaults() -> dict:
    """Every spec key's default, as the schema gives it."""
    return {key: rule["default"] for key, rule in operator_schema().items() if "default" in rule}


# Set by `bentoctl build` (the pushed image), not by the user; written as DEPLOYED values.
BUILD_KEYS = ("image_tag",)
# Spec keys that only `python -m deploy` reads (pruning, the state backend): not Terraform variables.
DEPLOY_ONLY = ("keep_versions", "state_bucket", "public_url_uncapped", "base_image")
# Spec keys passed to Terraform unchanged, in the schema's order (bentoctl.tfvars keeps it).
PASSED_THROUGH = tuple(key for key in operator_schema() if key not in BUILD_KEYS + DEPLOY_ONLY)
# What is deployed, written by `bentoctl build` or `make deploy` into DEPLOYED_FILE (git-ignored,
# loaded by Terraform by itself), so that the tracked bentoctl.tfvars holds settings only.
DEPLOYED = ("image_repository", "image_version", "bento_tag", "model_tag", "data_sha256", "drift_reference")
DEPLOYED_FILE = "deployed.auto.tfvars.json"
# Lambda function names allow upper case; ECR repository names, which this deployment shares, do not.
DEPLOYMENT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,55}")


# Names that say "secret". Their values would sit in plain text in bentoctl.tfvars, the Terraform
# state and the function's configuration; such values belong in Secrets Manager or SSM.
SECRET_NAME = re.compile(r"(?i)(secret|passw|token|api_?key|private_?key|credential|aws_access|aws_session)")


class SpecError(ValueError):
    """A combination of spec values that cannot be deployed."""


def check_env(env: dict) -> None:
    secret_like = sorted(name for name in env if SECRET_NAME.search(name))
    if secret_like:
        raise SpecError(
            f"env {secret_like} look like secrets; values in env are stored in plain text in "
            "bentoctl.tfvars and the Terraform state. Keep secrets in AWS Secrets Manager or SSM "
            "Parameter Store and pass only their names."
        )


def hcl_string(text: str) -> str:
    """A quoted HCL string whose content Terraform reads back unchanged: ``${`` and ``%{``
    would start a template sequence, so they are escaped as ``$${`` and ``%%{``."""
    return json.dumps(str(text)).replace("${", "$${").replace("%{", "%%{")


def hcl_value(value) -> str:
    """Render a Python value as an HCL literal (JSON syntax is valid HCL for these types)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(item) for item in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        body = "\n".join(f"  {hcl_string(k)} = {hcl_string(v)}" for k, v in sorted(value.items()))
        return "{\n" + body + "\n}"
    raise SpecError(f"cannot write {value!r} to {VALUES_FILE}")


def split_image_tag(image_tag: str | None) -> tuple[str, str]:
    """'acct.dkr.ecr.region.amazonaws.com/name:version' → (repository URL, version)."""
    if not image_tag:
        return "", ""
    repository, _, version = image_tag.rpartition(":")
    if not repository or "/" in version:
        raise SpecError(f"image_tag {image_tag!r} is not of the form <repository>:<version>")
    return repository, version


# bentoctl.tfvars lines that older versions of this operator wrote the deployed values into.
DEPLOYED_LINE = re.compile(r"^(" + "|".join(DEPLOYED) + r')\s*=\s*"([^"]*)"\s*$', re.MULTILINE)


def deployed_values(directory: Path) -> dict:
    """What is deployed from ``directory`` (image, Bento, model, data); {} if nothing.

    bentoctl knows the image only during `bentoctl build`; `bentoctl generate` after a change of
    settings must keep it, or the next apply (and destroy) would have none. A bentoctl.tfvars of
    an older version of this operator that still holds these values is read once, as a migration."""
    directory = Path(directory)
    deployed = directory / DEPLOYED_FILE
    if deployed.is_file():
        return {key: value for key, value in json.loads(deployed.read_text()).items() if key in DEPLOYED and value}
    legacy = directory / VALUES_FILE
    if legacy.is_file():
        return {key: value for key, value in DEPLOYED_LINE.findall(legacy.read_text()) if value}
    return {}


def write_deployed(directory: Path, **values: str) -> Path:
    """Set some of the DEPLOYED values in ``directory``'s DEPLOYED_FILE, keeping the others."""
    unknown = set(values) - set(DEPLOYED)
    if unknown:
        raise SpecError(f"not a deployed value: {sorted(unknown)}")
    if "image_repository" in values or "image_version" in values:
        split_image_tag(f"{values.get('image_repository', 'x')}:{values.get('image_version', 'x')}")
    merged = {**deployed_values(directory), **values}
    path = Path(directory) / DEPLOYED_FILE
    # drift_reference is an object: left out when unknown, so that main.tf's default (none) applies.
    written = {key: merged.get(key, "") for key in DEPLOYED if key in merged or key != "drift_reference"}
    path.write_text(json.dumps(written, indent=2) + "\n")
    return path


def clear_deployed(directory: Path) -> None:
    """Forget what is deployed (after `terraform destroy`)."""
    (Path(directory) / DEPLOYED_FILE).unlink(missing_ok=True)


def check_spec(name: str, spec: dict) -> None:
    """Combinations of values that AWS or this deployment refuses, with what to do instead."""
    if not DEPLOYMENT_NAME.fullmatch(name or ""):
        raise SpecError(
            f"name {name!r}: 1-56 lower-case letters, digits, hyphens or underscores, starting with a "
            "letter or digit (it names the ECR repository, which refuses upper case)"
        )
    if spec.get("auth") == "jwt" and not (spec.get("jwt_issuer") and spec.get("jwt_audience")):
        raise SpecError("auth: jwt needs jwt_issuer and at least one entry in jwt_audience")
    if spec.get("auth") == "jwt" and spec.get("endpoint") == "function_url":
        raise SpecError("auth: jwt needs endpoint: http_api; a function URL takes auth none or iam")
    if spec.get("reserved_concurrency") == 0:
        raise SpecError(
            "reserved_concurrency: 0 would throttle every request; use -1 (unreserved) or a cap of at least 1"
        )
    spec = {**spec_defaults(), **spec}
    if spec["drift_psi_warn"] >= spec["drift_psi_act"]:
        raise SpecError("drift_psi_warn must be below drift_psi_act: the warning comes first")
    if spec["batch"] and not (spec["batch_input"] and spec["batch_output"]):
        raise SpecError(
            "batch: true needs batch_input and batch_output, the S3 prefixes it reads CSV files from and "
            "writes results to, e.g. s3://my-bucket/scoring/in/ and s3://my-bucket/scoring/out/"
        )
    public_url = spec["endpoint"] == "function_url" and spec["auth"] == "none"
    if public_url and spec["reserved_concurrency"] < 1 and not spec["public_url_uncapped"]:
        raise SpecError(
            "endpoint: function_url with auth: none is public and nothing but the account's concurrency "
            "bounds its cost: set reserved_concurrency (e.g. 10), or public_url_uncapped: true to accept that"
        )
    check_env(spec.get("env") or {})


def tfvars_text(name: str, spec: dict) -> str:
    """bentoctl.tfvars: the deployment's settings, nothing that changes with a deploy."""
    check_spec(name, spec)
    values = {"deployment_name": name}
    values.update({key: spec[key] for key in PASSED_THROUGH if key in spec})
    values["environment_variables"] = dict(spec.get("env") or {})
    width = max(len(key) for key in values)
    lines = [
        "# Generated by `bentoctl generate` from deployment_config.yaml: settings only. What is deployed",
        f"# ({', '.join(DEPLOYED)}) is in {DEPLOYED_FILE},",
        "# written by `make deploy` or `bentoctl build`; Terraform loads it by itself.",
        "# Never put secrets here: the file and Terraform's state store them in plain text.",
    ]
    lines += [f"{key.ljust(width)} = {hcl_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


HCL_TYPES = {"string": "string", "integer": "number", "number": "number", "boolean": "bool", "list": "list(string)"}


def _limits(name: str, rule: dict) -> tuple[list[str], str] | None:
    """The Terraform conditions for a schema entry's limits, and the error message that names them."""
    var = f"var.{name}"
    if "allowed" in rule:
        allowed = ", ".join(map(str, rule["allowed"]))
        return [f"contains({hcl_value(rule['allowed'])}, {var})"], f"{name} must be one of {allowed}."
    if "regex" in rule:  # cerberus matches the whole value
        pattern = hcl_string(f"^(?:{rule['regex']})$")
        return [f"can(regex({pattern}, {var}))"], f"{name} is not valid. {rule['help_message']}"
    conditions, low, high = [], rule.get("min"), rule.get("max")
    forbidden = rule.get("forbidden", [])
    if forbidden:
        conditions.append(f"!contains({hcl_value(forbidden)}, {var})")
    if low is not None:
        conditions.append(f"{var} >= {hcl_value(low)}")
    if high is not None:
        conditions.append(f"{var} <= {hcl_value(high)}")
    whole = rule["type"] == "integer"
    if whole:
        conditions.append(f"floor({var}) == {var}")
    if not conditions:
        return None
    kind = "a whole number" if whole else "a number"
    if low is not None and high is not None:
        kind += f" from {hcl_value(low)} to {hcl_value(high)}"
    elif low is not None:
        kind += f" of at least {hcl_value(low)}"
    elif high is not None:
        kind += f" of at most {hcl_value(high)}"
    if forbidden:
        kind += f", not {', '.join(map(str, forbidden))}"
    return conditions, f"{name} must be {kind}."


def variable_block(name: str, rule: dict) -> str:
    """One spec key as a Terraform variable: its type, description, default and limits."""
    lines = [
        f'variable "{name}" {{',
        f"  type        = {HCL_TYPES[rule['type']]}",
        f"  description = {hcl_string(rule['help_message'])}",
        f"  default     = {hcl_value(rule['default'])}",
    ]
    limits = _limits(name, rule)
    if limits:
        conditions, message = limits
        lines += [
            "  validation {",
            f"    condition     = {' && '.join(conditions)}",
            f"    error_message = {hcl_string(message)}",
            "  }",
        ]
    return "\n".join([*lines, "}"])


def operator_locals() -> dict[str, str]:
    """main.tf's locals whose home is operator_config.py, as HCL expressions."""
    config = operator_config()
    return {
        "alias_name": hcl_string(config.ALIAS_NAME),
        "request_timeout_s": config.REQUEST_TIMEOUT_HCL,
        "drift_window_s": str(config.DRIFT_WINDOW_S),
        "drift_min_rows": str(config.DRIFT_MIN_ROWS),
        "canary_drift_window_s": str(config.CANARY_DRIFT_WINDOW_S),
        "canary_drift_min_rows": str(config.CANARY_DRIFT_MIN_ROWS),
        "batch_max_input_bytes": str(config.BATCH_MAX_INPUT_BYTES),
    }


def locals_block(values: dict[str, str]) -> str:
    width = max(map(len, values))
    return "\n".join(["locals {", *(f"  {name.ljust(width)} = {value}" for name, value in values.items()), "}"])


def main_tf_text(schema: dict | None = None) -> str:
    """main.tf: the template with the spec's variables rendered from the schema, and
    operator_config.py's locals after them."""
    schema = operator_schema() if schema is None else schema
    blocks = [variable_block(name, schema[name]) for name in PASSED_THROUGH]
    blocks.append(locals_block(operator_locals()))
    return TEMPLATE.read_text().replace(SPEC_VARIABLES_MARK, "\n\n".join(blocks))


BACKEND_FILE = "backend.tf"
# The first line of a backend.tf this operator wrote; a backend.tf without it is the user's own.
BACKEND_MARK = "# Generated by `bentoctl generate` from deployment_config.yaml (spec.state_bucket)."
# The S3 backend's use_lockfile (locking without DynamoDB) came with Terraform 1.10.
BACKEND_TERRAFORM = "1.10.0"


def state_key(name: str) -> str:
    return f"{name}/terraform.tfstate"


def backend_tf_text(name: str, spec: dict) -> str:
    """backend.tf: Terraform's state in S3 (spec.state_bucket), encrypted, locked with a lock file."""
    settings = {
        "bucket": spec["state_bucket"],
        "key": state_key(name),
        "region": spec["region"],
        "use_lockfile": True,
        "encrypt": True,
    }
    width = max(map(len, settings))
    lines = [
        BACKEND_MARK,
        "# Commit it with deployment_config.yaml: everyone who deploys this folder shares this state.",
        "terraform {",
        f"  required_version = {hcl_string('>= ' + BACKEND_TERRAFORM)}",
        '  backend "s3" {',
        *(f"    {key.ljust(width)} = {hcl_value(value)}" for key, value in settings.items()),
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def write_backend(destination: Path, name: str, spec: dict) -> Path | None:
    """Write backend.tf when spec.state_bucket is set; remove one this operator wrote when it is
    not (local state). A backend.tf of the user's own is never overwritten or removed."""
    path = Path(destination) / BACKEND_FILE
    ours = path.is_file() and path.read_text().startswith(BACKEND_MARK)
    if path.exists() and not ours:
        if spec.get("state_bucket"):
            raise SpecError(
                f"{path} was not written by this operator: remove it to use state_bucket, "
                "or leave state_bucket empty and keep your own backend"
            )
        return None
    if not spec.get("state_bucket"):
        path.unlink(missing_ok=True)
        return None
    path.write_text(backend_tf_text(name, spec))
    return path


def generate(name, spec, template_type, destination_dir, values_only=True):
    """bentoctl entry point: write bentoctl.tfvars and backend.tf (or remove it), and main.tf
    unless ``values_only``; after `bentoctl build` (``image_tag`` in the spec) also the deployed image."""
    if template_type != "terraform":
        raise SpecError(f"template {template_type!r} is not supported; use 'terraform'")
    destination = Path(destination_dir)
    text = tfvars_text(name, spec)
    deployed = deployed_values(destination)
    if spec.get("image_tag"):
        deployed["image_repository"], deployed["image_version"] = split_image_tag(spec["image_tag"])
    written = []
    if not values_only:
        (destination / TEMPLATE_FILE).write_text(main_tf_text())
        written.append(str(destination / TEMPLATE_FILE))
    backend = write_backend(destination, name, spec)
    if backend:
        written.append(str(backend))
    if deployed:
        written.append(str(write_deployed(destination, **deployed)))
    (destination / VALUES_FILE).write_text(text)
    written.append(str(destination / VALUES_FILE))
    return written
