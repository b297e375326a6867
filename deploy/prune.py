"""Old published versions and their images' `deployed-` tags, removed after a deploy.

Kept: the newest ``keep_versions`` (spec), the versions the live alias serves (its version and
its canary weights), the pinned and canary-base versions of release.auto.tfvars.json, and the
version before the live one (the target of a plain `make rollback`). The others are deleted;
an image loses its `deployed-` tag (which the repository's lifecycle policy never expires) only
when no kept version runs it, and then ages out under the count rule like any other image.
"""

from __future__ import annotations

import json

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from deploy import release
from deploy.deployment import Deployment, ecr


def keep(deployment: Deployment, versions: list[int]) -> set[int]:
    """The versions that stay: see the module's docstring."""
    kept = set(versions[-deployment.spec["keep_versions"] :])
    live, weights = release.live_routing(deployment)
    served = [live or "", *weights]
    release_file = deployment.workdir / release.RELEASE_FILE
    if release_file.is_file():
        served += [str(value) for value in json.loads(release_file.read_text()).values()]
    kept |= {int(v) for v in served if str(v).isdigit()}
    if live and live.isdigit():
        kept |= set([v for v in versions if v < int(live)][-1:])
    return kept


def image_digest(functions, name: str, version: int | str) -> str:
    """The image digest a version runs (Lambda resolves a tag to a digest when it publishes)."""
    code = functions.get_function(FunctionName=name, Qualifier=str(version))["Code"]
    uri = code.get("ResolvedImageUri") or code.get("ImageUri", "")
    return uri.rpartition("@")[2] if "@" in uri else ""


def prune(deployment: Deployment) -> tuple[list[int], list[str]]:
    """Delete the versions not kept and untag their images; returns (versions, tags) removed."""
    versions = release.published_versions(deployment)
    kept = keep(deployment, versions)
    dropped = [v for v in versions if v not in kept]
    if not dropped:
        return [], []
    functions = boto3.client("lambda", region_name=deployment.region)
    kept_digests = {image_digest(functions, deployment.name, v) for v in kept}
    kept_digests.add(image_digest(functions, deployment.name, "$LATEST"))
    dropped_digests = {image_digest(functions, deployment.name, v) for v in dropped} - kept_digests - {""}
    for version in dropped:
        functions.delete_function(FunctionName=deployment.name, Qualifier=str(version))
    images = boto3.client("ecr", region_name=deployment.region)
    untagged = []
    for digest in sorted(dropped_digests):
        try:
            found = images.describe_images(repositoryName=deployment.name, imageIds=[{"imageDigest": digest}])
        except images.exceptions.ImageNotFoundException:
            continue
        tags = [t for i in found["imageDetails"] for t in i.get("imageTags", []) if t.startswith(ecr.DEPLOYED_PREFIX)]
        if tags:
            answer = images.batch_delete_image(repositoryName=deployment.name, imageIds=[{"imageTag": t} for t in tags])
            if answer.get("failures"):
                raise RuntimeError(f"ECR kept tags {answer['failures']}")
            untagged += tags
    return dropped, sorted(untagged)


def report(deployment: Deployment) -> None:
    """Prune and say what was removed. A failure is a warning: the deploy itself succeeded, and
    the next deploy prunes again."""
    try:
        versions, tags = prune(deployment)
    except (BotoCoreError, ClientError, RuntimeError) as error:
        print(
            f"    warning: pruning stopped ({error}); the deploy succeeded, the next one prunes again "
            "(the deployer needs lambda:DeleteFunction and ecr:BatchDeleteImage)",
            flush=True,
        )
        return
    if not versions:
        print(f"    nothing to prune (keep_versions: {deployment.spec['keep_versions']})")
        return
    print(f"    deleted versions {', '.join(map(str, versions))}")
    print(
        f"    untagged {', '.join(tags)} (the lifecycle policy may now expire them)"
        if tags
        else "    no image untagged: kept versions still run them"
    )
