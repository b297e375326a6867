"""The Lambda image: built by bentoctl with this repository's operator, pushed to ECR, checked.

Lambda runs only a single-platform image whose architecture is the function's. Docker Engine 29+
(containerd image store) and buildx attach provenance attestations by default, which turns the
pushed image into an index Lambda rejects; the build runs with them off, and what ECR holds is
checked before Terraform points the function at it. Where Docker has no buildx (Debian's docker.io,
Podman's Docker API), bentoctl cannot build: the operator writes the same build context and
Docker's classic builder, which makes no attestations, builds it. An image's tag is the Bento's
version and the architecture (`<version>-arm64`), so a change of architecture builds and pushes
a new image.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import boto3

from deploy import bento_handoff, prerequisites
from deploy.deployment import Deployment, deployable, ecr
from deploy.steps import StepFailed, bentoctl_executable, run, tail

SINGLE_MANIFEST = {"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json"}
INDEX = {"application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json"}
# The names Docker and OCI give Lambda's instruction sets.
OCI_ARCHITECTURE = {"x86_64": "amd64", "arm64": "arm64"}
BUILD_ENV = {"BUILDX_NO_DEFAULT_ATTESTATIONS": "1"}
# The network of the classic builder's steps (`docker build --network`), when the engine's default
# one cannot reach the package index (an engine without a bridge, a VPN): e.g. `host`.
BUILD_NETWORK_VARIABLE = "DEPLOY_BUILD_NETWORK"
REBUILD_HINT = "rebuild the Bento (`make build`) with the project's bentofile.yaml"


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
    """`bentoctl build` (no push) for the deployment's platform, attestations off, or the classic
    builder where buildx is missing; returns the local image. bentoctl exits 0 on its own errors,
    and its messages wrap off a terminal, so success is read from Docker: the expected name,
    removed before the build (only the name; the build cache stays), must name an image afterwards."""
    name = local_image(bento_tag)
    if local_image_id(name):
        run(["docker", "image", "rm", "--force", "--no-prune", name])
    with tempfile.TemporaryDirectory(prefix="bentoctl-home-") as home:
        if has_buildx():
            builder, result = "bentoctl build", _bentoctl_build(deployment, bento_tag, Path(home))
        else:
            builder, result = "docker build", _classic_build(deployment, bento_tag, Path(home), name)
    if local_image_id(name) is None:
        raise StepFailed(
            f"{builder} did not build {name}:\n{tail(result.stdout + result.stderr)}",
            "fix the error above; `BENTOCTL_DEBUG=true` keeps the build context for a look",
        )
    check_local_architecture(name, deployment)
    return name


def has_buildx() -> bool:
    return prerequisites.buildx_version() is not None


def _staged_bento(bento_tag: str, home: Path) -> Path:
    """The Bento and its models copied into a BentoML home bentoctl's BentoML reads; returns the
    Bento's folder there."""
    try:
        bento_handoff.staged_home(bento_tag, home)
    except bento_handoff.HandoffError as exc:
        raise StepFailed(str(exc), REBUILD_HINT) from None
    (bento_yaml,) = (home / "bentos").glob("*/*/bento.yaml")
    return bento_yaml.parent


def _classic_build(deployment: Deployment, bento_tag: str, home: Path, name: str):
    """The operator's build context for the Bento, built by `docker build` (no BuildKit). As
    bentoctl does, the Bento is given its models before the operator reads it."""
    bento = _staged_bento(bento_tag, home)
    for model in (home / "models").glob("*/*/model.yaml"):
        shutil.copytree(model.parent, bento / "models" / model.parent.parent.name / model.parent.name)
    try:
        context = Path(
            deployable.create_deployable(
                bento, home / "build-context", {}, base_image=deployment.spec.get("base_image", "")
            )
        )
    except deployable.DeployableError as exc:
        raise StepFailed(str(exc), REBUILD_HINT) from None
    network = os.environ.get(BUILD_NETWORK_VARIABLE)
    return run(
        [
            "docker",
            "build",
            "--platform",
            deployment.platform,
            *(["--network", network] if network else []),
            "--file",
            str(context / "env" / "docker" / "Dockerfile"),
            "--tag",
            name,
            str(context),
        ],
        env={"DOCKER_BUILDKIT": "0"},
    )


def _bentoctl_build(deployment: Deployment, bento_tag: str, home: Path):
    """`bentoctl build --dry-run` of the Bento, handed to bentoctl's BentoML in a home of its own."""
    _staged_bento(bento_tag, home)
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
    push_to(local, url, tag, username, password)
    return url


def push_to(local: str, repository: str, tag: str, username: str, password: str) -> None:
    """Log Docker in to the repository's registry, tag the local image as ``repository:tag``, push it."""
    registry = repository.split("/", 1)[0]
    run(["docker", "login", "--username", username, "--password-stdin", registry], stdin=password)
    run(["docker", "tag", local, f"{repository}:{tag}"])
    run(["docker", "push", f"{repository}:{tag}"])


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


@dataclass
class Manifest:
    """What a registry holds under a tag: the manifest's text, its media type and its digest."""

    text: str
    media_type: str
    digest: str


class EcrImages:
    """The deployment's repository in ECR, through ECR's API."""

    def __init__(self, deployment: Deployment):
        self.repository = deployment.name
        self.client = _ecr(deployment)

    def manifest(self, tag: str) -> Manifest | None:
        answer = self.client.batch_get_image(
            repositoryName=self.repository,
            imageIds=[{"imageTag": tag}],
            acceptedMediaTypes=sorted(SINGLE_MANIFEST | INDEX),
        )
        if not answer["images"]:
            return None
        image = answer["images"][0]
        text = image["imageManifest"]
        media_type = image.get("imageManifestMediaType") or json.loads(text).get("mediaType", "")
        return Manifest(text, media_type, image["imageId"]["imageDigest"])

    def put_manifest(self, manifest: Manifest, tag: str) -> None:
        """Tag the manifest again; a tag that already names it is left as it is."""
        errors = self.client.exceptions
        try:
            self.client.put_image(
                repositoryName=self.repository,
                imageManifest=manifest.text,
                imageManifestMediaType=manifest.media_type,
                imageTag=tag,
            )
        except (errors.ImageAlreadyExistsException, errors.ImageTagAlreadyExistsException):
            pass


def _manifest(images, repository: str, tag: str) -> Manifest:
    found = images.manifest(tag)
    if found is None:
        raise StepFailed(
            f"the registry has no image tagged {tag} in {repository}", "run `make deploy` again; it pushes the image"
        )
    return found


def check_manifest(manifest: Manifest, repository: str, tag: str) -> None:
    """Refuse what Lambda cannot run: an index (several platforms, or an image with its
    attestations) or any other media type than a single image manifest."""
    body = json.loads(manifest.text)
    if manifest.media_type in INDEX or "manifests" in body:
        platforms = sorted(
            "{os}/{architecture}".format(**entry.get("platform", {"os": "?", "architecture": "?"}))
            for entry in body.get("manifests", [])
        )
        raise StepFailed(
            f"the pushed image {tag} is a multi-platform index ({', '.join(platforms)}); "
            "Lambda accepts only a single-platform image manifest",
            "build without attestations (`make deploy` sets BUILDX_NO_DEFAULT_ATTESTATIONS=1; with plain "
            "docker, `--provenance=false`), delete the tag with `aws ecr batch-delete-image "
            f"--repository-name {repository} --image-ids imageTag={tag}`, and deploy again",
        )
    if manifest.media_type not in SINGLE_MANIFEST:
        raise StepFailed(f"the pushed image {tag} has media type {manifest.media_type!r}, which Lambda does not run")


def verify(deployment: Deployment, tag: str, images=None) -> str:
    """Check that the repository (ECR's, unless ``images`` says another) holds one
    single-platform image for the tag; returns its digest."""
    manifest = _manifest(images or EcrImages(deployment), deployment.name, tag)
    check_manifest(manifest, deployment.name, tag)
    return manifest.digest


def protect(deployment: Deployment, tag: str, images=None) -> str:
    """Add the deployed-<tag> tag that the repository's lifecycle policy never expires."""
    images = images or EcrImages(deployment)
    protected = ecr.DEPLOYED_PREFIX + tag
    images.put_manifest(_manifest(images, deployment.name, tag), protected)
    return protected
