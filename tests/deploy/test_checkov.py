"""checkov on the deployment: main.tf and the image's Dockerfile pass, and every skipped check
carries its justification next to the resource it concerns."""

import json
import re
import subprocess
import sys

import pytest

from deploy.lambda_runtime import dockerfile_instructions
from src.config import PROJECT_ROOT

CHECKOV = PROJECT_ROOT / ".venv-tools" / "bin" / "checkov"
DOCKERFILE = PROJECT_ROOT / "deploy" / "aws-lambda-operator" / "aws_lambda_operator" / "image" / "Dockerfile"


def checkov(path, framework):
    assert CHECKOV.exists(), "checkov is installed by `make setup` into .venv-tools"
    result = subprocess.run(
        [str(CHECKOV), "-f", str(path), "--framework", framework, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.mark.parametrize(
    "path, framework",
    [(PROJECT_ROOT / "main.tf", "terraform"), (DOCKERFILE, "dockerfile")],
    ids=["main.tf", "Dockerfile"],
)
def test_checkov_finds_nothing(path, framework):
    report = checkov(path, framework)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 30, "checkov must actually have checked the file"


@pytest.mark.parametrize(
    "path, framework",
    [(PROJECT_ROOT / "main.tf", "terraform"), (DOCKERFILE, "dockerfile")],
    ids=["main.tf", "Dockerfile"],
)
def test_every_skip_is_justified(path, framework):
    report = checkov(path, framework)
    skipped = report["results"]["skipped_checks"]
    assert skipped, f"{path.name} documents its skipped checks"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 40, (check["check_id"], check["resource"], reason)


@pytest.mark.unit
def test_the_base_image_is_a_build_argument_defaulting_to_this_python():
    """CKV_DOCKER_7 is skipped because checkov cannot see through the argument: this checks what
    it would have, that the default names a version (of the Python the project runs), not latest,
    from Docker Hub or ECR Public's copy, optionally with a digest."""
    instructions = dockerfile_instructions(DOCKERFILE)
    assert [keyword for keyword, _ in instructions[:2]] == ["ARG", "FROM"]
    name, _, default = instructions[0][1].partition("=")
    assert name == "BASE_IMAGE" and instructions[1][1] == "${BASE_IMAGE}"
    image, _, digest = default.partition("@")
    repository, _, tag = image.partition(":")
    assert repository in ("python", "docker.io/library/python", "public.ecr.aws/docker/library/python"), repository
    assert tag.startswith(f"{sys.version_info.major}.{sys.version_info.minor}-slim"), tag
    assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest
