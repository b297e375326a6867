"""Writing main.tf (a fixed template) and bentoctl.tfvars (the deployment's values).

main.tf holds no deployment-specific text: every value is a typed, validated variable, so a
redeploy or a change of memory touches only bentoctl.tfvars. Values are written with their
HCL types (numbers, lists, maps), not all as strings as the upstream operator did.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

TEMPLATE = Path(__file__).parent / "templates" / "main.tf"
VALUES_FILE = "bentoctl.tfvars"
TEMPLATE_FILE = "main.tf"

# Spec keys passed to Terraform unchanged, in the order they appear in bentoctl.tfvars.
PASSED_THROUGH = (
    "region", "timeout", "memory_size", "architecture", "reserved_concurrency",
    "log_retention_days", "throttling_rate_limit", "throttling_burst_limit",
    "auth", "jwt_issuer", "jwt_audience", "cors_allow_origins",
)


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


IMAGE_LINE = re.compile(r'^(image_repository|image_version)\s*=\s*"([^"]*)"\s*$', re.MULTILINE)


def existing_image(values_file: Path) -> tuple[str, str]:
    """The image an existing bentoctl.tfvars names, ("", "") when there is none.

    bentoctl knows the image only during `bentoctl build`; `bentoctl generate` after a change of
    settings must keep the deployed image, or the next apply (and destroy) would have none."""
    if not values_file.is_file():
        return "", ""
    found = dict(IMAGE_LINE.findall(values_file.read_text()))
    return found.get("image_repository", ""), found.get("image_version", "")


def write_image(values_file: Path, repository: str, version: str) -> None:
    """Point an existing bentoctl.tfvars at another image, leaving every other value as it is."""
    split_image_tag(f"{repository}:{version}")
    text = values_file.read_text()
    if len(IMAGE_LINE.findall(text)) != 2:
        raise SpecError(f"{values_file} has no image_repository and image_version lines; run `bentoctl generate`")
    values = {"image_repository": repository, "image_version": version}
    values_file.write_text(IMAGE_LINE.sub(lambda m: m.group(0).split("=")[0] + "= " + hcl_string(values[m.group(1)]), text))


def tfvars_text(name: str, spec: dict, keep_image: tuple[str, str] = ("", "")) -> str:
    if spec.get("auth") == "jwt" and not (spec.get("jwt_issuer") and spec.get("jwt_audience")):
        raise SpecError("auth: jwt needs jwt_issuer and at least one entry in jwt_audience")
    check_env(spec.get("env") or {})
    repository, version = split_image_tag(spec.get("image_tag")) if spec.get("image_tag") else keep_image
    values = {"deployment_name": name}
    values.update({key: spec[key] for key in PASSED_THROUGH if key in spec})
    values["image_repository"] = repository
    values["image_version"] = version
    values["environment_variables"] = dict(spec.get("env") or {})
    width = max(len(key) for key in values)
    lines = ["# Generated by `bentoctl generate` / `bentoctl build` from deployment_config.yaml.",
             "# image_repository and image_version are filled in by `bentoctl build` (or `make deploy`)",
             "# and kept by `bentoctl generate`.",
             "# Never put secrets here: the file and Terraform's state store them in plain text."]
    lines += [f"{key.ljust(width)} = {hcl_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def generate(name, spec, template_type, destination_dir, values_only=True):
    """bentoctl entry point: write bentoctl.tfvars, and main.tf unless ``values_only``."""
    if template_type != "terraform":
        raise SpecError(f"template {template_type!r} is not supported; use 'terraform'")
    destination = Path(destination_dir)
    text = tfvars_text(name, spec, keep_image=existing_image(destination / VALUES_FILE))
    written = []
    if not values_only:
        shutil.copyfile(TEMPLATE, destination / TEMPLATE_FILE)
        written.append(str(destination / TEMPLATE_FILE))
    (destination / VALUES_FILE).write_text(text)
    written.append(str(destination / VALUES_FILE))
    return written
