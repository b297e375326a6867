"""What a deploy needs on the user's machine, each checked with a message that says how to fix it."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil

import boto3
import botocore.exceptions

from deploy.steps import StepFailed, run

TERRAFORM_MINIMUM = (1, 3)


def check_docker() -> str:
    """Docker's client and a running engine; returns the engine's version and the builder the
    image is built with (bentoctl's buildx, or Docker's classic builder where buildx is missing)."""
    if shutil.which("docker") is None:
        raise StepFailed(
            "Docker is not installed or not on PATH",
            "install Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/",
        )
    try:
        version = run(["docker", "version", "--format", "{{.Server.Version}}"]).stdout.strip()
    except StepFailed as error:
        raise StepFailed(
            f"the Docker engine is not reachable ({error})",
            "start Docker (Docker Desktop, or `sudo systemctl start docker`) and try again",
        ) from None
    buildx = buildx_version()
    builder = f"buildx {buildx}" if buildx else "no buildx: Docker's classic builder"
    return f"{version} ({builder})"


def buildx_version() -> str | None:
    """The version of Docker's buildx plugin, or None where Docker has none (Debian's docker.io,
    Podman's Docker API): asked once per PATH and Docker host."""
    return _buildx_version(os.environ.get("PATH", ""), os.environ.get("DOCKER_HOST", ""))


@functools.cache
def _buildx_version(path: str, docker_host: str) -> str | None:
    try:
        return run(["docker", "buildx", "version"]).stdout.split()[1]
    except (StepFailed, IndexError):
        return None


def check_terraform() -> str:
    """Terraform 1.3 or later; returns its version."""
    if shutil.which("terraform") is None:
        raise StepFailed(
            "Terraform is not installed or not on PATH",
            "install Terraform 1.3 or later: https://developer.hashicorp.com/terraform/install",
        )
    try:
        version = terraform_version()
    except StepFailed as error:
        raise StepFailed(f"Terraform does not run ({error})", "reinstall Terraform 1.3 or later") from None
    if version_numbers(version)[:2] < TERRAFORM_MINIMUM:
        raise StepFailed(f"Terraform {version} is too old", "install Terraform 1.3 or later")
    return version


def terraform_version() -> str:
    """`terraform version -json`'s version, e.g. "1.11.4"."""
    output = run(["terraform", "version", "-json"]).stdout
    try:
        return json.loads(output)["terraform_version"]
    except (ValueError, KeyError):
        raise StepFailed(f"cannot read Terraform's version from {output[:200]!r}") from None


def version_numbers(version: str) -> tuple[int, ...]:
    """ "1.10.0-beta1" → (1, 10, 0)."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def check_aws(region: str) -> str:
    """Credentials that AWS accepts, in a region it knows; returns the caller's ARN."""
    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        raise StepFailed(
            "no AWS credentials found",
            "run `aws configure`, or set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
        )
    if region not in session.get_available_regions("lambda"):
        raise StepFailed(
            f"{region!r} is not an AWS region with Lambda", "set spec.region in deployment_config.yaml, e.g. us-east-1"
        )
    try:
        identity = session.client("sts").get_caller_identity()
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise StepFailed(
            f"AWS refused the credentials: {error}",
            "check `aws sts get-caller-identity`; renew the session or fix AWS_PROFILE",
        ) from None
    return identity["Arn"]


# Lambda keeps this much of an account's concurrency unreserved, whatever its functions reserve.
UNRESERVED_MINIMUM = 100


def check_concurrency(region: str, function: str, wanted: int) -> str:
    """That the account can reserve ``wanted`` executions for ``function`` (AWS refuses at apply
    otherwise: on a new account with a quota of 10, any reservation); returns what it allows."""
    client = boto3.client("lambda", region_name=region)
    try:
        limit = client.get_account_settings()["AccountLimit"]
        try:
            held = client.get_function_concurrency(FunctionName=function).get("ReservedConcurrentExecutions") or 0
        except client.exceptions.ResourceNotFoundException:
            held = 0
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        raise StepFailed(
            f"cannot read the account's Lambda concurrency (GetAccountSettings): {error}",
            "the deploying identity needs lambda:GetAccountSettings (deploy/deployer-policy.json)",
        ) from None
    total, unreserved = limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]
    most = max(0, unreserved + held - UNRESERVED_MINIMUM)
    allows = (
        f"the account's concurrency limit is {total}, {unreserved} of it unreserved"
        + (f" ({held} reserved by {function} now)" if held else "")
        + f", and Lambda keeps {UNRESERVED_MINIMUM} unreserved: {function} may reserve at most {most}"
    )
    if wanted > most:
        raise StepFailed(
            f"reserved_concurrency {wanted} is more than this account allows: {allows}",
            "set reserved_concurrency in deployment_config.yaml to -1 (no reservation) or at most "
            f"{most}, or ask for a higher 'Concurrent executions' quota in Service Quotas",
        )
    return allows
