"""The image build context bentoctl hands to `docker buildx build`.

Layout (bentoctl builds ``env/docker/Dockerfile`` inside the returned directory):

    env/docker/Dockerfile          this operator's Dockerfile, replacing BentoML's
    requirements-lambda.txt        the complete, pinned serving environment
    slim_env.py                    removes test suites from it
    app/lambda_app.py              the Lambda handler (imports the service bento.yaml names)
    app/...                        the Bento's code, as the Bento holds it (its src/ folder)
    app/bentoml/models/<name>/     the Bento's models, with the `latest` file BentoML would
                                   otherwise write at start-up into a read-only directory
    app/bentoml/{bentos,envs,tmp}  empty: BentoML creates them at import when they are missing,
                                   which fails on Lambda's read-only code directory
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import yaml

from aws_lambda_operator.terraform_config import operator_schema

IMAGE_FILES = Path(__file__).parent / "image"
# Directories BentoML 1.4 creates under BENTOML_HOME at import unless they exist.
BENTOML_HOME_DIRS = ("bentos", "models", "envs", "tmp")
CONTEXT_NAME = "aws-lambda-deployable"
# bentoctl hands create_deployable no spec, and its --build-arg does not reach BentoML 1.4's buildx
# call; the base image (spec.base_image, set by `python -m deploy`) comes through the environment.
BASE_IMAGE_VARIABLE = "LAMBDA_BASE_IMAGE"
BASE_IMAGE_LINE = re.compile(r"^ARG BASE_IMAGE=.*$", re.MULTILINE)
IMAGE_REFERENCE = re.compile(operator_schema()["base_image"]["regex"])


class DeployableError(RuntimeError):
    """The Bento cannot be turned into a Lambda image; the message says why."""


def bento_info(bento_path: Path) -> dict:
    return yaml.safe_load((bento_path / "bento.yaml").read_text())


def copy_models(bento_path: Path, store: Path, tags: list[str]) -> None:
    """Copy each model version into a complete read-only model store, `latest` file included."""
    for tag in tags:
        name, version = tag.split(":", 1)
        source = bento_path / "models" / name / version
        if not (source / "model.yaml").is_file():
            raise DeployableError(
                f"model {tag} is not inside the Bento at {bento_path}; build the Bento with "
                "`bentoml build` and deploy it with `bentoctl build`, which adds its models"
            )
        shutil.copytree(source, store / name / version)
        (store / name / "latest").write_text(version)


def dockerfile_text(model_tag: str, service: str, base_image: str = "") -> str:
    """The Dockerfile for this Bento; ``base_image`` (a mirror, or a tag with its digest) replaces
    the default of its BASE_IMAGE argument."""
    text = (IMAGE_FILES / "Dockerfile").read_text()
    text = text.replace("{{MODEL_TAG}}", model_tag).replace("{{BENTO_SERVICE}}", service)
    if base_image:
        if not IMAGE_REFERENCE.fullmatch(base_image):
            raise DeployableError(f"{BASE_IMAGE_VARIABLE}={base_image!r} is not an image reference")
        text, count = BASE_IMAGE_LINE.subn(f"ARG BASE_IMAGE={base_image}", text, count=1)
        if count != 1:
            raise DeployableError("the operator's Dockerfile has no `ARG BASE_IMAGE=` line")
    return text


def create_deployable(bento_path, destination_dir, bento_metadata, overwrite_deployable=True, base_image=None):
    """bentoctl entry point: write the build context under ``destination_dir``; return its path.
    The base image is ``base_image``, else the environment's LAMBDA_BASE_IMAGE, else the default."""
    bento_path = Path(bento_path)
    context = Path(destination_dir) / CONTEXT_NAME
    if context.exists():
        if not overwrite_deployable:
            return str(context)
        shutil.rmtree(context)

    info = bento_info(bento_path)
    tags = [model["tag"] for model in info.get("models") or []]
    if len(tags) != 1:
        raise DeployableError(f"expected a Bento with exactly one model, found {tags or 'none'}")

    service = info.get("service")
    if not service or ":" not in str(service):
        raise DeployableError(f"bento.yaml at {bento_path} names no service (module:attribute)")

    app = context / "app"
    shutil.copytree(bento_path / "src", app, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    copy_models(bento_path, app / "bentoml" / "models", tags)
    for name in BENTOML_HOME_DIRS:
        (app / "bentoml" / name).mkdir(exist_ok=True)
    shutil.copyfile(IMAGE_FILES / "lambda_app.py", app / "lambda_app.py")
    for name in ("requirements-lambda.txt", "slim_env.py"):
        shutil.copyfile(IMAGE_FILES / name, context / name)

    docker_dir = context / "env" / "docker"
    docker_dir.mkdir(parents=True)
    base_image = os.environ.get(BASE_IMAGE_VARIABLE, "") if base_image is None else base_image
    (docker_dir / "Dockerfile").write_text(dockerfile_text(tags[0], str(service), base_image))
    return str(context)
