"""The real Terraform core on main.tf: `terraform init`, `validate` and `plan`, with the test provider.

``install_provider(folder)`` puts tests/aws_provider_plugin.py in a filesystem mirror at the
pinned AWS provider version and writes a CLI configuration that installs hashicorp/aws only from
there, so `terraform init` runs offline and still checks main.tf's version constraint.
``Workspace`` is one deployment folder (main.tf, bentoctl.tfvars, deployed values) with that CLI
configuration: ``validate()`` gives core's diagnostics, ``plan(**settings)`` core's plan as
`terraform show -json` writes it, or ``PlanRefused`` with core's messages. ``cached_plan``
plans a configuration given as text once per distinct input (the deploy tests' Terraform
stand-in asks it what main.tf declares).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from src.config import PROJECT_ROOT
from tests import aws_provider_plugin, provider_schema

STANDINS = PROJECT_ROOT / "tests" / "standins" / "bin"


def _real_terraform() -> str | None:
    """The terraform binary on PATH, never the deploy tests' stand-in of the same name."""
    folders = [folder for folder in os.environ.get("PATH", "").split(os.pathsep) if folder]
    return shutil.which("terraform", path=os.pathsep.join(f for f in folders if Path(f).resolve() != STANDINS))


TERRAFORM = _real_terraform()
# The plugin is a script, so it runs on any platform; core looks for the one it runs on.
PLATFORM = "linux_" + {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")
TIMEOUT = 300


class PlanRefused(RuntimeError):
    """Terraform refused the configuration or the values: its error summaries and details."""

    def __init__(self, messages: list[str], output: str):
        super().__init__("; ".join(messages) or output[-2000:])
        self.messages = messages
        self.output = output


def missing_tool() -> str | None:
    """Why Terraform core cannot run here, or None."""
    if TERRAFORM is None:
        return "no terraform binary on PATH"
    try:
        provider_schema.pinned_schema()
    except provider_schema.SchemaUnavailable as error:
        return f"the pinned provider schema is unavailable: {error}"
    return None


def schema_file() -> Path:
    """The cached `providers schema -json` file the plugin serves (built first if need be)."""
    provider_schema.pinned_schema()
    return provider_schema.cached_schema_path(provider_schema.load_pin())


def install_provider(folder: Path) -> Path:
    """A filesystem mirror holding the plugin at the pinned version, and the CLI configuration
    that installs hashicorp/aws from it; returns that configuration's path."""
    version = provider_schema.load_pin()["provider_version"]
    host, namespace, name = aws_provider_plugin.PROVIDER.split("/")
    package = folder / "mirror" / host / namespace / name / version / PLATFORM
    package.mkdir(parents=True, exist_ok=True)
    executable = package / f"terraform-provider-{name}_v{version}"
    executable.write_text(
        "#!/bin/sh\n"
        f"export PYTHONPATH='{PROJECT_ROOT}' {aws_provider_plugin.SCHEMA_ENV}='{schema_file()}'\n"
        f"exec '{sys.executable}' -m tests.aws_provider_plugin \"$@\"\n"
    )
    executable.chmod(0o755)
    config = folder / "terraformrc"
    config.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{folder / "mirror"}"\n    include = ["{namespace}/{name}"]\n  }}\n'
        f'  direct {{\n    exclude = ["{namespace}/{name}"]\n  }}\n'
        "}\n"
    )
    return config


@dataclass
class Workspace:
    """A deployment folder that the real Terraform core plans, with the test provider installed."""

    folder: Path
    cli_config: Path

    def env(self) -> dict:
        return {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(self.cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "TF_PLUGIN_CACHE_DIR": "",
        }

    def terraform(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [TERRAFORM, *args],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def init(self, *args: str) -> None:
        done = self.terraform("init", "-no-color", "-input=false", *args)
        if done.returncode != 0:
            raise PlanRefused(_error_lines(done.stderr), done.stdout + done.stderr)

    def validate(self) -> dict:
        """`terraform validate -json`: {"valid": ..., "diagnostics": [...]}."""
        done = self.terraform("validate", "-json", "-no-color")
        return json.loads(done.stdout)

    def plan(self, *args: str, lock: bool = False, var_files: tuple = ("bentoctl.tfvars",), **variables) -> dict:
        """`terraform plan -var-file=bentoctl.tfvars` with ``variables`` as -var, as the plan's JSON
        (without the state lock unless ``lock``: each folder is planned by one test only)."""
        values = [f"-var={name}={_hcl(value)}" for name, value in variables.items()]
        files = [f"-var-file={name}" for name in var_files]
        done = self.terraform(
            *("plan", "-no-color", "-input=false", f"-lock={str(lock).lower()}", "-out=plan.out"),
            *files,
            *values,
            *args,
        )
        if done.returncode != 0:
            raise PlanRefused(_error_lines(done.stderr), done.stdout + done.stderr)
        shown = self.terraform("show", "-json", "plan.out")
        if shown.returncode != 0:
            raise PlanRefused(_error_lines(shown.stderr), shown.stdout + shown.stderr)
        return json.loads(shown.stdout)


def cached_plan(files: dict[str, str], variables: list[str], cache: Path) -> dict:
    """The plan core makes of a configuration given as ``files`` ({name: text}: main.tf, tfvars)
    with ``variables`` (-var and -var-file arguments naming those files), planned once per distinct
    input in ``cache`` and read back from there after; PlanRefused with core's errors."""
    key = hashlib.sha256(json.dumps([files, variables, _plugin_version()], sort_keys=True).encode()).hexdigest()[:32]
    answer = cache / f"{key}.json"
    if answer.exists():
        saved = json.loads(answer.read_text())
        if "refused" in saved:
            raise PlanRefused(saved["refused"], saved["output"])
        return saved
    cache.mkdir(parents=True, exist_ok=True)
    config = cache / "provider" / "terraformrc"
    if not config.exists():
        install_provider(config.parent)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        for name, text in files.items():
            (Path(scratch) / name).write_text(text)
        workspace = Workspace(Path(scratch), config)
        try:
            workspace.init()
            plan = workspace.plan(*variables, var_files=())
        except PlanRefused as refused:
            record = {"refused": refused.messages, "output": refused.output}
            provider_schema.write_atomically(answer, json.dumps(record))
            raise
    provider_schema.write_atomically(answer, json.dumps(plan))
    return plan


def _plugin_version() -> str:
    """What a cached plan depends on besides its inputs: the provider's code and schema."""
    digest = hashlib.sha256(Path(aws_provider_plugin.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(json.dumps(provider_schema.load_pin(), sort_keys=True).encode())
    return digest.hexdigest()


def _hcl(value) -> str:
    """A -var value: strings as they are, anything else as JSON (which HCL reads)."""
    return value if isinstance(value, str) else json.dumps(value)


# What core's error text quotes rather than says: where (`on main.tf line 583`), the source
# lines (`583: ...`), and the values it shows (`var.x is ""`).
QUOTED = re.compile(r"^(on \S+ line \d+|\d+:|├|var\.\S+ is )")


def _error_lines(stderr: str) -> list[str]:
    """Core's errors, each as its summary and its explanation: 'Summary: what is wrong'."""
    found = []
    for error in re.split(r"^\W*Error: ", stderr, flags=re.M)[1:]:
        summary, _, rest = error.partition("\n")
        lines = (line.strip(" │╷╵") for line in rest.splitlines())
        detail = " ".join(line for line in lines if line and not QUOTED.match(line))
        found.append(f"{summary.strip()}: {detail}" if detail else summary.strip())
    return found
