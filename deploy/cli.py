"""`python -m deploy deploy|destroy`: the cloud path, one command each way.

deploy:  prerequisites → operator → Bento → settings (bentoctl generate) → image (build without
         attestations for the function's architecture, push, verify, protect) → terraform init
         and apply → the example rows through the new endpoint → the URL.
destroy: terraform destroy, and only once it succeeded, the image repository.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from deploy import endpoint, image, infrastructure, prerequisites
from deploy.settings import OPERATOR_DIR, Deployment, ecr, load, operator_config, terraform
from deploy.steps import Failure, StepFailed, bentoctl_executable, run, step, tail
from src import config


def ensure_operator() -> None:
    """This repository's operator, installed in bentoctl by path (bentoctl then reads it in place)."""
    from bentoctl.operator import get_local_operator_registry

    installed = get_local_operator_registry().list().get(operator_config.OPERATOR_NAME)
    if installed is None:
        run([bentoctl_executable(), "operator", "install", str(OPERATOR_DIR)])
        installed = get_local_operator_registry().list().get(operator_config.OPERATOR_NAME)
        if installed is None:
            raise StepFailed("bentoctl did not install the operator", f"run `bentoctl operator install {OPERATOR_DIR}`")
    if Path(installed["path"]).resolve() != OPERATOR_DIR.resolve():
        raise StepFailed(
            f"bentoctl's {operator_config.OPERATOR_NAME} operator is {installed['path']}, not this repository's",
            f"run `bentoctl operator remove {operator_config.OPERATOR_NAME}`, then deploy again")


def resolve_bento(tag: str) -> str:
    """The exact tag (name:version) of a Bento in the store."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return str(bentoml.get(tag).tag)
    except NotFound:
        raise StepFailed(f"Bento {tag} is not in the BentoML store",
                         "build it: `python -m src.train && bentoml build .` (or `make build`)") from None


def generate_settings(deployment: Deployment) -> None:
    """`bentoctl generate` writes main.tf and bentoctl.tfvars; it exits 0 on errors, so the files are checked."""
    before = deployment.values_file.stat().st_mtime_ns if deployment.values_file.exists() else None
    result = run([bentoctl_executable(), "generate", "-f", str(deployment.config_file)], cwd=deployment.workdir)
    after = deployment.values_file.stat().st_mtime_ns if deployment.values_file.exists() else None
    if after is None or after == before:
        raise StepFailed(f"bentoctl generate did not write {deployment.values_file.name}:\n"
                         f"{tail(result.stdout + result.stderr)}",
                         "fix deployment_config.yaml as the message says")


def deploy(deployment: Deployment, bento: str) -> str:
    with step("prerequisites: Docker, Terraform, AWS"):
        print(f"    Docker engine {prerequisites.check_docker()}, Terraform {prerequisites.check_terraform()}")
        print(f"    AWS identity {prerequisites.check_aws(deployment.region)}, region {deployment.region}")
    with step("bentoctl operator"):
        ensure_operator()
    with step("Bento"):
        bento_tag = resolve_bento(bento)
        tag = image.image_tag(bento_tag, deployment)
        print(f"    {bento_tag} → image tag {tag} ({deployment.platform})")
    with step("settings: bentoctl generate"):
        generate_settings(deployment)
    with step("image: build and push"):
        if image.pushed(deployment, tag):
            print(f"    {tag} is already in ECR (tags are immutable): not rebuilt")
            repository = image.repository_url(deployment)
        else:
            local = image.build(deployment, bento_tag)
            repository = image.push(deployment, local, tag)
    with step("image: verify what ECR holds"):
        digest = image.verify(deployment, tag)
        print(f"    {repository}:{tag} = {digest}, single-platform")
        print(f"    kept from expiry as {image.protect(deployment, tag)}")
    with step("bentoctl.tfvars: the new image"):
        terraform.write_deployed(deployment.values_file, image_repository=repository, image_version=tag)
    with step("terraform init"):
        infrastructure.init(deployment)
    with step("terraform apply"):
        infrastructure.apply(deployment)
    with step("first call: example rows to /classify"):
        url = infrastructure.outputs(deployment).get("endpoint")
        if not url:
            raise StepFailed("terraform output has no endpoint")
        labels = endpoint.check(url)
        print(f"    {url}/classify answered {labels}")
    print(f"\nDeployed {bento_tag}. POST a JSON 2-D array of {config.N_FEATURES} features to:\n  {url}/classify")
    return url


def destroy(deployment: Deployment) -> None:
    with step("prerequisites: Terraform, AWS"):
        prerequisites.check_terraform()
        prerequisites.check_aws(deployment.region)
    with step("terraform init"):
        infrastructure.init(deployment)
    with step("terraform destroy"):
        infrastructure.destroy(deployment)
    with step("image repository"):
        try:
            ecr.delete_repository(deployment.name, deployment.spec)
        except ecr.RepositoryInUse as error:
            raise StepFailed(str(error)) from None
    print(f"\nDestroyed {deployment.name}: function, API, logs, role and image repository.")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path.cwd(),
                        help="folder with deployment_config.yaml, main.tf and bentoctl.tfvars (default: here)")
    commands = parser.add_subparsers(dest="command", required=True)
    deploy_command = commands.add_parser("deploy", help="build, push, apply and call the endpoint")
    deploy_command.add_argument("--bento", default=f"{config.SERVICE_NAME}:latest", help="Bento to deploy")
    commands.add_parser("destroy", help="terraform destroy, then delete the image repository")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        deployment = load(args.dir.resolve())
    except (OSError, ValueError, KeyError) as error:
        print(f"cannot read {args.dir / 'deployment_config.yaml'}: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    try:
        if args.command == "deploy":
            deploy(deployment, args.bento)
        else:
            destroy(deployment)
    except Failure as failure:
        print(f"\n{args.command} failed at step '{failure.step}': {failure.error}", file=sys.stderr)
        if failure.error.hint:
            print(f"next: {failure.error.hint}", file=sys.stderr)
        return 1
    return 0
