"""The Lambda image: built by bentoctl with this repository's operator, pushed to ECR, checked.

Lambda runs only a single-platform image whose architecture is the function's. Docker Engine 29+
(containerd image store) and buildx attach provenance attestations by default, which turns the
pushed image into an index Lambda rejects; the build runs with them off, and what ECR holds is
checked before Terraform points the function at it. An image's tag is the Bento's version and the
architecture (`<version>-arm64`), so a change of architecture builds and pushes a new image.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import boto3

from deploy import bento_handoff
from deploy.deployment import Deployment, deployable, ecr
from deploy.steps import StepFailed, bentoctl_executable, run, tail

SINGLE_MANIFEST = {"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"}
INDEX = {"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json"}
# The names Docker and OCI give Lambda's instruction sets.
OCI_ARCHITECTURE = {"x86_64": "amd64", "arm64": "arm64"}
BUILD_ENV = {"BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}


def image_tag(bento_tag: str, deployment: Deployment) -> str:
    return f"{bento_tag.split(':', 1)[1]}-{deployment.architecture}"


def local_image(bento_tag: str) -> str:
    """The name bentoctl gives the image it builds: <operator>-<bento name>:<bento version>."""
    name, version = bento_tag.split(":", 1)
    return f"aws-lambda-{name}:{version}"


def local_image_id(name: str) -> str | None:
    """The local image's ID, or None when Docker has no image of that name."""
    try:
        return run(["docker", "image", "inspect", "--format", "{{.Id}}", name]).stdout.strip() or None
    except StepFailed:
        return None


def build(deployment: Deployment, bento_tag: str) -> str:
    """`bentoctl build` (no push) for the deployment's platform, attestations off; returns the
    local image. bentoctl exits 0 on its own errors, and its messages wrap off a terminal, so
    success is read from Docker: the expected name, removed before the build (only the name; the
    build cache stays), must name an image afterwards."""
    name = local_image(bento_tag)
    if local_image_id(name):
        run(["docker", "image", "rm", "--force", "--no-prune", name])
    with tempfile.TemporaryDirectory(prefix="bentoctl-home-") as home:
        result = _bentoctl_build(deployment, bento_tag, Path(home))
    if local_image_id(name) is None:
        raise StepFailed(
            f"bentoctl build did not build {name}:\n{tail(result.stdout + result.stderr)}",
            "fix the error above; `BENTOCTL_DEBUG=true` keeps the build context for a look",
        )
    check_local_architecture(name, deployment)
    return name


def _bentoctl_build(deployment: Deployment, bento_tag: str, home: Path):
    """`bentoctl build --dry-run` of the Bento, handed to bentoctl's BentoML in a home of its own."""
    try:
        bento_handoff.staged_home(bento_tag, home)
    except bento_handoff.HandoffError as exc:
        raise StepFailed(str(exc), "rebuild the Bento (`make build`) with the project's bentofile.yaml") from None
    return run(
        [
            bentoctl_executable(),
            "build",
            "-b",
            bento_tag,
            "-f",
            str(deployment.config_file),
            "--platform",
            deployment.platform,
            "--dry-run",
        ],
        cwd=deployment.workdir,
        env={
            **BUILD_ENV,
            deployable.BASE_IMAGE_VARIABLE: deployment.spec.get("base_image", ""),
            "BENTOML_HOME": str(home),
        },
    )


def check_local_architecture(name: str, deployment: Deployment) -> None:
    found = json.loads(run(["docker", "image", "inspect", "--format", "{{json .}}", name]).stdout)
    platform = f"{found.get('Os')}/{found.get('Architecture')}"
    if platform != f"linux/{OCI_ARCHITECTURE[deployment.architecture]}":
        raise StepFailed(
            f"image {name} is {platform}, the function is {deployment.architecture} ({deployment.platform})",
            "building for another architecture than the machine's needs QEMU: "
            "`docker run --privileged --rm tonistiigi/binfmt --install all`",
        )


def _ecr(deployment: Deployment):
    return boto3.client("ecr", region_name=deployment.region)


def pushed(deployment: Deployment, tag: str) -> bool:
    """Whether ECR already holds the tag (tags are immutable, so it cannot be pushed again)."""
    client = _ecr(deployment)
    try:
        client.describe_images(repositoryName=deployment.name, imageIds=[{"imageTag": tag}])
    except (client.exceptions.ImageNotFoundException, client.exceptions.RepositoryNotFoundException):
        return False
    return True


def push(deployment: Deployment, local: str, tag: str) -> str:
    """Create the repository if needed, log Docker in, push; returns the repository URL."""
    url, username, password = ecr.create_repository(deployment.name, deployment.spec)
    registry = url.split("/", 1)[0]
    run(["docker", "login", "--username", username, "--password-stdin", registry], stdin=password)
    run(["docker", "tag", local, f"{url}:{tag}"])
    run(["docker", "push", f"{url}:{tag}"])
    return url


def repository_exists(deployment: Deployment) -> bool:
    client = _ecr(deployment)
    try:
        client.describe_repositories(repositoryNames=[deployment.name])
    except client.exceptions.RepositoryNotFoundException:
        return False
    return True


def repository_url(deployment: Deployment) -> str:
    client = _ecr(deployment)
    return client.describe_repositories(repositoryNames=[deployment.name])["repositories"][0]["repositoryUri"]


def _manifest(deployment: Deployment, tag: str) -> dict:
    client = _ecr(deployment)
    answer = client.batch_get_image(
        repositoryName=deployment.name, imageIds=[{"imageTag": tag}], acceptedMediaTypes=sorted(SINGLE_MANIFEST | INDEX)
    )
    if not answer["images"]:
        raise StepFailed(
            f"ECR has no image tagged {tag} in {deployment.name}", "run `make deploy` again; it pushes the image"
        )
    return answer["images"][0]


def verify(deployment: Deployment, tag: str) -> str:
    """Check that ECR holds one single-platform image for the tag; returns its digest."""
    image = _manifest(deployment, tag)
    manifest = json.loads(image["imageManifest"])
    media_type = image.get("imageManifestMediaType") or manifest.get("mediaType", "")
    if media_type in INDEX or "manifests" in manifest:
        platforms = sorted(
            "{os}/{architecture}".format(**entry.get("platform", {"os": "?", "architecture": "?"}))
            for entry in manifest.get("manifests", [])
        )
        raise StepFailed(
            f"the pushed image {tag} is a multi-platform index ({', '.join(platforms)}); "
            "Lambda accepts only a single-platform image manifest",
            "build without attestations (`make deploy` sets BUILDX_NO_DEFAULT_ATTESTATIONS=1; with plain "
            "docker, `--provenance=false`), delete the tag with `aws ecr batch-delete-image "
            f"--repository-name {deployment.name} --image-ids imageTag={tag}`, and deploy again",
        )
    if media_type not in SINGLE_MANIFEST:
        raise StepFailed(f"the pushed image {tag} has media type {media_type!r}, which Lambda does not run")
    return image["imageId"]["imageDigest"]


def protect(deployment: Deployment, tag: str) -> str:
    """Add the deployed-<tag> tag that the repository's lifecycle policy never expires."""
    image = _manifest(deployment, tag)
    protected = ecr.DEPLOYED_PREFIX + tag
    client = _ecr(deployment)
    try:
        client.put_image(
            repositoryName=deployment.name,
            imageManifest=image["imageManifest"],
            imageManifestMediaType=image.get("imageManifestMediaType")
            or json.loads(image["imageManifest"])["mediaType"],
            imageTag=protected,
        )
    except (client.exceptions.ImageAlreadyExistsException, client.exceptions.ImageTagAlreadyExistsException):
        pass
    return protected
