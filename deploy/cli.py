"""`python -m deploy deploy|generate|rollback|destroy`: the cloud path, one command each way.

deploy:   prerequisites → operator → Bento → settings (bentoctl generate) → image (build without
          attestations for the function's architecture, push, verify, protect) → terraform init,
          plan (one that destroys or replaces the function, alias, API or URL needs --yes) and
          apply (a new published version) → the example rows through the endpoint → with
          canary_percent set, the alarms watched for canary_minutes, then promote or roll back →
          versions beyond keep_versions pruned.
rollback: the live alias back to the previous published version (or --to N), at once, then
          recorded for Terraform; nothing is rebuilt or pushed.
generate: main.tf and bentoctl.tfvars from deployment_config.yaml (bentoctl generate), no AWS.
batch-score: a CSV in S3 scored by the batch state machine (setting batch), its progress shown,
          its failed batches named (deploy/batch.py).
destroy:  terraform destroy (when the state holds anything), and only once it succeeded, the
          image repository; then the deployed values are forgotten.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from deploy import batch, endpoint, image, prerequisites, prune, release, terraform
from deploy.deployment import OPERATOR_DIR, Deployment, ecr, load, operator_config, terraform_config
from deploy.steps import Failure, StepFailed, bentoctl_executable, run, step, tail
from src import config
from src.reference import METADATA_KEY


def installed_operators() -> dict:
    """The operators bentoctl has installed: its registry file, as bentoctl documents it
    (``$BENTOCTL_HOME/operators/operator_list.json``, name -> {"path": ...})."""
    home = Path(os.environ.get("BENTOCTL_HOME", Path.home() / "bentoctl"))
    registry = home / "operators" / "operator_list.json"
    return json.loads(registry.read_text(encoding="utf-8")) if registry.is_file() else {}


def ensure_operator() -> None:
    """This repository's operator, installed in bentoctl by path (bentoctl then reads it in place)."""
    installed = installed_operators().get(operator_config.OPERATOR_NAME)
    if installed is None:
        run([bentoctl_executable(), "operator", "install", str(OPERATOR_DIR)])
        installed = installed_operators().get(operator_config.OPERATOR_NAME)
        if installed is None:
            raise StepFailed("bentoctl did not install the operator", f"run `bentoctl operator install {OPERATOR_DIR}`")
    if Path(installed["path"]).resolve() != OPERATOR_DIR.resolve():
        raise StepFailed(
            f"bentoctl's {operator_config.OPERATOR_NAME} operator is {installed['path']}, not this repository's",
            f"run `bentoctl operator remove {operator_config.OPERATOR_NAME}`, then deploy again",
        )


def resolve_bento(tag: str) -> dict:
    """The exact Bento tag, its model's tag, the SHA-256 of the model's training data and, when the
    model has one, its drift reference (src/reference.py)."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bento = bentoml.get(tag)
    except NotFound:
        raise StepFailed(
            f"Bento {tag} is not in the BentoML store",
            "build it: `python -m src.train && bentoml build .` (or `make build`)",
        ) from None
    models = [str(model.tag) for model in bento.info.models]
    if len(models) != 1:
        raise StepFailed(f"Bento {bento.tag} holds {len(models)} models; this deployment serves exactly one")
    try:
        metadata = dict(bentoml.models.get(models[0]).info.metadata or {})
    except NotFound:
        metadata = {}
    what = {"bento_tag": str(bento.tag), "model_tag": models[0], "data_sha256": str(metadata.get("data_sha256", ""))}
    drift = metadata.get(METADATA_KEY)
    if drift:  # what main.tf's drift alarms need: the series in order, their shares, the smoothing
        what["drift_reference"] = {key: drift[key] for key in ("series", "shares", "smoothing")}
    return what


def generate_settings(deployment: Deployment) -> None:
    """`bentoctl generate` writes main.tf and bentoctl.tfvars; it exits 0 on errors, so the files are checked."""
    before = deployment.values_file.stat().st_mtime_ns if deployment.values_file.exists() else None
    result = run([bentoctl_executable(), "generate", "-f", str(deployment.config_file)], cwd=deployment.workdir)
    after = deployment.values_file.stat().st_mtime_ns if deployment.values_file.exists() else None
    if after is None or after == before:
        raise StepFailed(
            f"bentoctl generate did not write {deployment.values_file.name}:\n{tail(result.stdout + result.stderr)}",
            "fix deployment_config.yaml as the message says",
        )


def deploy(deployment: Deployment, bento: str, bake_seconds: float | None = None) -> str:
    with step("prerequisites: Docker, Terraform, AWS"):
        print(f"    Docker engine {prerequisites.check_docker()}, Terraform {prerequisites.check_terraform()}")
        print(f"    AWS identity {prerequisites.check_aws(deployment.region)}, region {deployment.region}")
        if (reserved := deployment.spec["reserved_concurrency"]) > 0:
            allows = prerequisites.check_concurrency(deployment.region, deployment.name, reserved)
            print(f"    reserved_concurrency {reserved}: {allows}")
    with step("bentoctl operator"):
        ensure_operator()
    with step("Bento"):
        what = resolve_bento(bento)
        bento_tag = what["bento_tag"]
        tag = image.image_tag(bento_tag, deployment)
        print(f"    {bento_tag} (model {what['model_tag']}) → image tag {tag} ({deployment.platform})")
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
    records = snapshot(deployment.workdir / terraform_config.DEPLOYED_FILE, deployment.workdir / release.RELEASE_FILE)
    with step(f"{terraform_config.DEPLOYED_FILE}: the new image and what it holds"):
        terraform_config.write_deployed(deployment.workdir, image_repository=repository, image_version=tag, **what)
    with step("terraform init"):
        terraform.init(deployment)
    with step("release: what the live alias serves"):
        current = release.live_version(deployment)
        canary = deployment.spec["canary_percent"] > 0 and current is not None
        release.write(deployment, canary_base=current if canary else "")
        print(
            f"    live alias serves {current or 'nothing yet'}"
            + (f"; the new version gets {deployment.spec['canary_percent']} % first" if canary else "")
        )
    with step("terraform apply"):
        try:
            changes = terraform.apply(deployment)
            out = terraform.outputs(deployment)
            url, newest = out.get("endpoint"), str(out.get("newest_version", ""))
            if not url:
                raise StepFailed("terraform output has no endpoint")
        except terraform.PlanRefused:
            restore(records)
            raise
        except StepFailed as error:
            if not canary:
                raise
            raise release.end_canary(deployment, current, f"terraform apply failed ({error})", error.hint) from None
        print(f"    published version {newest}; live alias: {out.get('live_version')}")
    with step("first call: example rows to /classify"):
        try:
            print(f"    {endpoint.check(deployment, url, created=terraform.creates_endpoint(changes))}")
        except StepFailed as error:
            if not (canary and newest != current):
                raise
            raise release.end_canary(deployment, current, f"the first call failed ({error})", error.hint) from None
    if canary and newest != current:
        bake_canary(deployment, current, newest, out.get("canary_alarms") or [], bake_seconds)
    with step(f"prune: versions beyond the newest {deployment.spec['keep_versions']} and their images"):
        prune.report(deployment)
    print(
        f"\nDeployed {bento_tag} as version {newest}. POST a JSON 2-D array of "
        f"{config.N_FEATURES} features to:\n  {url}/classify"
    )
    return url


def snapshot(*paths: Path) -> dict[Path, str | None]:
    """The files' contents (None: absent), to put back if nothing gets applied."""
    return {path: path.read_text() if path.is_file() else None for path in paths}


def restore(records: dict[Path, str | None]) -> None:
    for path, text in records.items():
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text)


def bake_canary(deployment: Deployment, base: str, newest: str, alarms: list[str], seconds: float | None) -> None:
    """Watch the alarms while the canary takes its share; promote it, or roll back and fail."""
    seconds = deployment.spec["canary_minutes"] * 60 if seconds is None else seconds
    with step(
        f"canary: version {newest} takes {deployment.spec['canary_percent']} %, alarms watched for {seconds:.0f} s"
    ):
        fired = release.bake(deployment, alarms, seconds)
        if fired:
            raise release.end_canary(
                deployment,
                base,
                f"alarms {fired} fired during the canary{release.what_moved(deployment, fired)}",
                f"read the logs (`aws logs tail /aws/lambda/{deployment.name} --since 30m`), fix, "
                "then `make deploy` again",
            )
    with step(f"canary: promote version {newest} to all traffic"):
        release.write(deployment)
        try:
            terraform.apply(deployment)
        except StepFailed as error:
            raise release.end_canary(
                deployment, base, f"the apply that promotes it failed ({error})", "`make deploy` again"
            ) from None


def generate(deployment: Deployment) -> None:
    with step("bentoctl operator"):
        ensure_operator()
    with step("settings: bentoctl generate"):
        generate_settings(deployment)
    print(f"\nWrote {deployment.values_file.name} and main.tf from {deployment.config_file.name}.")


def rollback(deployment: Deployment, wanted: str | None) -> str:
    with step("prerequisites: Terraform, AWS"):
        prerequisites.check_terraform()
        prerequisites.check_aws(deployment.region)
    with step("find the version to return to"):
        current, weights = release.live_routing(deployment)
        versions = release.published_versions(deployment)
        target = release.rollback_target(current, versions, wanted, canary=bool(weights))
        shares = "".join(f", {share:.0%} on version {version} (a canary: ended)" for version, share in weights.items())
        print(f"    live alias: version {current}{shares} → {target} ({release.description(deployment, target)})")
    with step(f"live alias to version {target}"):
        print(f"    switched in {release.point_alias(deployment, target):.1f} s; new requests get version {target}")
    with step("record it for Terraform (release.auto.tfvars.json) and apply"):
        release.write(deployment, pinned=target)
        terraform.init(deployment)
        terraform.apply(deployment)
    print(f"\nRolled back {deployment.name} to version {target}. It stays pinned until the next `make deploy`.")
    return target


def destroy(deployment: Deployment) -> None:
    with step("prerequisites: Terraform, AWS"):
        prerequisites.check_terraform()
        prerequisites.check_aws(deployment.region)
    with step("terraform init"):
        terraform.init(deployment)
    with step("terraform destroy"):
        resources, deployed_image = terraform.deployed_in_state(deployment)
        if resources:
            terraform.destroy(deployment, deployed_image)
        else:
            print("    Terraform's state holds no resources: nothing to destroy")
    with step("image repository"):
        if image.repository_exists(deployment):
            try:
                ecr.delete_repository(deployment.name, deployment.spec)
            except ecr.RepositoryInUse as error:
                raise StepFailed(str(error)) from None
            print(f"    deleted the ECR repository {deployment.name} with its images")
        else:
            print(f"    there is no ECR repository {deployment.name}: nothing to delete")
    terraform_config.clear_deployed(deployment.workdir)
    (deployment.workdir / release.RELEASE_FILE).unlink(missing_ok=True)
    (deployment.workdir / terraform.PLAN_FILE).unlink(missing_ok=True)
    print(
        f"\nDestroyed {deployment.name}: function, API, logs, role and image repository"
        + ("." if resources else " (there was nothing to destroy).")
    )


def batch_score(deployment: Deployment, source: str, results: str, state_machine: str | None, poll_s: float) -> int:
    """One batch job on the deployed state machine (Terraform's output, unless given)."""
    with step("batch settings"):
        locations = batch.locations(source, results, deployment.spec)
    with step("batch state machine"):
        if not state_machine:
            state_machine = terraform.outputs(deployment).get("batch_state_machine") or ""
        if not state_machine:
            raise StepFailed(
                "Terraform's outputs name no batch state machine",
                "set spec.batch: true with batch_input and batch_output in deployment_config.yaml, then `make deploy`",
            )
        print(f"    {state_machine}")
    with step("batch job"):
        return batch.score(*locations, deployment.region, state_machine, poll_s)


YES_HELP = "apply a plan that destroys or replaces the function, its alias, the API or the function URL"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deploy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd(),
        help="folder with deployment_config.yaml, main.tf and bentoctl.tfvars (default: here)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    deploy_command = commands.add_parser("deploy", help="build, push, apply and call the endpoint")
    deploy_command.add_argument("--bento", default=f"{config.SERVICE_NAME}:latest", help="Bento to deploy")
    deploy_command.add_argument(
        "--bake-seconds",
        type=float,
        default=None,
        help="how long a canary is watched (default: canary_minutes from the spec)",
    )
    deploy_command.add_argument("--yes", action="store_true", help=YES_HELP)
    commands.add_parser("generate", help="main.tf and bentoctl.tfvars from deployment_config.yaml, nothing deployed")
    rollback_command = commands.add_parser("rollback", help="the live alias back to the previous version")
    rollback_command.add_argument("--to", default=None, metavar="VERSION", help="a published version number")
    rollback_command.add_argument("--yes", action="store_true", help=YES_HELP)
    commands.add_parser("destroy", help="terraform destroy, then delete the image repository")
    batch_command = commands.add_parser("batch-score", help="a CSV in S3 scored on Lambda by the batch state machine")
    batch_command.add_argument("input", metavar="INPUT", help="the CSV, s3://bucket/key, under batch_input")
    batch_command.add_argument("output", metavar="OUTPUT", help="the results' prefix, under batch_output")
    batch_command.add_argument("--state-machine", default=None, help="its ARN (default: Terraform's output)")
    batch_command.add_argument("--poll-seconds", type=float, default=5.0, help="how often progress is read")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        deployment = load(args.dir.resolve())
    except (OSError, ValueError, KeyError) as error:
        print(f"cannot read {args.dir / 'deployment_config.yaml'}: {error}", file=sys.stderr)
        return 2
    deployment = dataclasses.replace(deployment, approve_replacements=getattr(args, "yes", False))
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    try:
        if args.command == "deploy":
            deploy(deployment, args.bento, args.bake_seconds)
        elif args.command == "generate":
            generate(deployment)
        elif args.command == "rollback":
            rollback(deployment, args.to)
        elif args.command == "batch-score":
            return batch_score(deployment, args.input, args.output, args.state_machine, args.poll_seconds)
        else:
            destroy(deployment)
    except Failure as failure:
        print(f"\n{args.command} failed at step '{failure.step}': {failure.error}", file=sys.stderr)
        if failure.error.hint:
            print(f"next: {failure.error.hint}", file=sys.stderr)
        return 1
    return 0
