"""`make deploy`'s image steps with the real tools: Docker Engine builds the Lambda image from the
Bento (`deploy.image.build`, the deploy's own code), Docker pushes it to a real registry behind a
password, and the deploy's checks read back what the registry holds. Only the registry's API
differs from ECR's: the Distribution API instead of ECR's (tests/real_tools.py)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess

import pytest

from deploy import image, prerequisites
from deploy.deployment import load
from deploy.lambda_events import http_api_v2
from deploy.steps import StepFailed
from tests import image_build
from tests.deploy_harness import copy_deployment, set_spec
from tests.real_tools import DockerEngine, RegistryServer, missing
from tests.sample_requests import counting_row, expected_labels

REPOSITORY = "xgb-classifier"
# The stand-in base as the engine sees it: the Debian stand-in the podman tests build, plus this
# machine's certificate authorities for pip (it reaches PyPI through this machine's network).
BASE_DOCKERFILE = """\
FROM {standin}
COPY machine-ca.crt /etc/ssl/certs/machine-ca.crt
ENV PIP_CERT=/etc/ssl/certs/machine-ca.crt
"""


def _check(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout + result.stderr).decode(errors="replace")[-3000:]
    return result.stdout.decode()


@pytest.fixture(scope="module")
def engine():
    reason = missing() or (image_build.missing_tools() and image_build.TOOLS_HINT)
    if reason:
        pytest.skip(reason)
    docker = DockerEngine()
    yield docker
    docker.stop()


@pytest.fixture(scope="module")
def registry(engine):
    server = RegistryServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, engine):
    """The repository's deployment folder for this machine's architecture, its base image the
    stand-in loaded into the engine under the Dockerfile's default name."""
    work = copy_deployment(tmp_path_factory.mktemp("real-image") / "deployment")
    set_spec(work, architecture="x86_64", base_image="")
    standin, _ = image_build.ensure_standin("amd64")
    saved = subprocess.run(["podman", "save", standin], capture_output=True, check=True).stdout
    _check(engine.docker("load", stdin=saved))
    base = work.parent / "base"
    base.mkdir()
    shutil.copyfile(ssl.get_default_verify_paths().openssl_cafile, base / "machine-ca.crt")
    (base / "Dockerfile").write_text(BASE_DOCKERFILE.format(standin=standin))
    _check(engine.docker("build", "--tag", "python:3.11-slim-bookworm", str(base)))
    return load(work)


@pytest.fixture(scope="module")
def built(engine, deployment, built_bento):
    """The deploy's build step, run against the engine: (local image, its `docker image inspect`)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**engine.env, image.BUILD_NETWORK_VARIABLE: "host"}.items():
            patch.setenv(key, value)
        buildx = image.has_buildx()
        name = image.build(deployment, built_bento)
    (inspect,) = json.loads(_check(engine.docker("image", "inspect", name)))
    return name, inspect, buildx


@pytest.fixture
def docker_env(engine, monkeypatch):
    for key, value in engine.env.items():
        monkeypatch.setenv(key, value)


def test_the_image_is_built_for_the_function_without_buildx(built, built_bento, docker_env):
    name, inspect, buildx = built
    if not buildx:
        assert "no buildx" in prerequisites.check_docker()
    assert (inspect["Os"], inspect["Architecture"]) == ("linux", "amd64")
    assert inspect["Config"]["Entrypoint"] == ["python", "-m", "awslambdaric"]
    assert inspect["Config"]["User"] == "65534:65534"
    env = dict(item.split("=", 1) for item in inspect["Config"]["Env"])
    assert env["BENTOML_HOME"] == "/var/task/bentoml" and env["XGB_MODEL_TAG"]
    assert name == image.local_image(built_bento)


def test_the_image_scores_read_only_as_lambda_runs_it(engine, built, booster):
    """Lambda's file system is read-only but for /tmp, and the function runs unprivileged: the
    image's handler answers an HTTP API event there, in a real container, as the model does."""
    name, _, _ = built
    rows = [counting_row(), [0.0] * len(counting_row())]
    event = json.dumps(http_api_v2(rows))
    code = "import json, sys, lambda_app; print(json.dumps(lambda_app.handler(json.loads(sys.argv[1]), None)))"
    answer = _check(
        engine.docker(
            "run",
            "--rm",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--network",
            "none",
            "--entrypoint",
            "python",
            name,
            "-c",
            code,
            event,
        )  # fmt: skip
    )
    response = json.loads(answer.strip().splitlines()[-1])
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == expected_labels(booster, rows)


def test_push_verify_and_protect_against_a_real_registry(engine, built, registry, deployment, docker_env):
    name, _, _ = built
    tag = "v1-x86_64"
    repository = f"{registry.host}/{REPOSITORY}"
    image.push_to(name, repository, tag, registry.username, registry.password)
    images = registry.images(REPOSITORY)
    digest = image.verify(deployment, tag, images)
    (pushed,) = json.loads(_check(engine.docker("image", "inspect", name)))
    assert f"{repository}@{digest}" in pushed["RepoDigests"]
    protected = image.protect(deployment, tag, images)
    assert protected == "deployed-" + tag and set(images.tags()) >= {tag, protected}
    assert images.manifest(protected).digest == digest
    image.protect(deployment, tag, images)  # again: already tagged, no error


def test_a_wrong_password_stops_the_push(built, registry, docker_env):
    name, _, _ = built
    with pytest.raises(StepFailed, match="docker login"):
        image.push_to(name, f"{registry.host}/{REPOSITORY}", "v2-x86_64", registry.username, "wrong")


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
PROVENANCE = "https://slsa.dev/provenance/v0.2"


def blob_ref(images, media_type: str, data: bytes, **extra) -> dict:
    """Upload ``data`` as a blob; its descriptor."""
    return {"mediaType": media_type, "digest": images.put_blob(data), "size": len(data), **extra}


def attestation_manifest(images) -> str:
    """A provenance attestation as buildx writes one: an in-toto statement as the only layer."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "predicateType": PROVENANCE}).encode()
    layer = blob_ref(
        images, "application/vnd.in-toto+json", statement, annotations={"in-toto.io/predicate-type": PROVENANCE}
    )
    config = {
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": blob_ref(images, "application/vnd.oci.image.config.v1+json", json.dumps(config).encode()),
            "layers": [layer],
        }
    )


def test_an_index_with_attestations_is_refused_from_what_the_registry_holds(built, registry, deployment, docker_env):
    """An image pushed with buildx's default attestations is an OCI index: the image's manifest
    and an attestation manifest (platform unknown/unknown). This one is written to the real
    registry piece by piece (buildx is not on these machines); the deploy's check refuses it."""
    name, _, _ = built
    images = registry.images(REPOSITORY)
    tag = "v3-x86_64"
    image.push_to(name, f"{registry.host}/{REPOSITORY}", tag, registry.username, registry.password)
    pushed = images.manifest(tag)
    attestation = attestation_manifest(images)
    images.put_manifest(image.Manifest(attestation, OCI_MANIFEST, ""), "attestation")
    entries = [
        {
            "mediaType": pushed.media_type,
            "digest": pushed.digest,
            "size": len(pushed.text),
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            "mediaType": OCI_MANIFEST,
            "digest": images.manifest("attestation").digest,
            "size": len(attestation),
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": pushed.digest,
            },
        },
    ]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    images.put_manifest(image.Manifest(index, OCI_INDEX, ""), "attested")
    assert images.manifest("attested").media_type == OCI_INDEX
    with pytest.raises(StepFailed, match=r"multi-platform index \(linux/amd64, unknown/unknown\)"):
        image.verify(deployment, "attested", images)
