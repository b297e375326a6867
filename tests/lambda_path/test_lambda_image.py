"""The Lambda image itself: built with podman from the operator's unedited Dockerfile and the
build context the real `bentoctl build` writes, then run from its exported file system as
Lambda runs it (read-only but /tmp, uid/gid 65534, the image's own environment and command)
with the real awslambdaric taking events from a fake Runtime API.

The base image cannot be pulled here; a stand-in from Debian's packages replaces it (see
tests/image_build.py). Sizes and the first-answer time go to reports/lambda_image.json.
"""

import json
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

from deploy.lambda_events import http_api_v2
from src.config import PROJECT_ROOT
from tests import image_build
from tests.lambda_events import rest_api_v1
from tests.lambda_harness import QueuedRuntimeApi
from tests.sample_requests import BAD, ROWS, N, expected_labels, expected_probabilities

REPORT = PROJECT_ROOT / "reports" / "lambda_image.json"
MAX_IMAGE_MB = 700
# Lambda ends a function's initialisation after 10 s; a cold start must answer well within it.
MAX_FIRST_ANSWER_S = 10
RUN_TIMEOUT_S = 120
SINGLE_IMAGE_MANIFESTS = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
)
HOST_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}
CONSOLE_TEST_EVENT = {"key1": "value1", "key2": "value2", "key3": "value3"}

GOOD = {
    "labels": http_api_v2(ROWS.tolist()),
    "proba": http_api_v2(ROWS.tolist(), path="/predict_proba"),
    "labels, named stage": http_api_v2(ROWS[:5].tolist(), stage="prod"),
    "labels, base64 body": http_api_v2(ROWS[:5].tolist(), base64_body=True),
    "labels, payload 1.0": rest_api_v1(ROWS[:5].tolist()),
}
EVENTS = {
    **GOOD,
    **{f"bad: {case}": http_api_v2(body, content_type=ct) for case, body, ct, _, _ in BAD},
    "labels after bad input": http_api_v2(ROWS[:1].tolist()),
    "unknown route": http_api_v2([[1] * N], path="/nowhere"),
    "console test event": CONSOLE_TEST_EVENT,
}


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "deployment_config.yaml").read_text())


@pytest.fixture(scope="module")
def measurements():
    """Figures the tests measure; printed and written to reports/lambda_image.json at the end."""
    figures: dict = {}
    yield figures
    if figures:
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nLambda image: {json.dumps(figures, indent=2)}\n(written to {REPORT})")


@pytest.fixture(scope="module")
def image_tools():
    """Fail, never skip, when the tools are missing: the image is this project's deliverable."""
    missing = image_build.missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: {image_build.TOOLS_HINT}")
    if os.geteuid() != 0:
        pytest.fail("building and running the Lambda image's file system needs root (mount, chroot)")


@pytest.fixture(scope="module")
def lambda_image(image_tools, lambda_context, spec, measurements):
    """The operator's Dockerfile built for the configured architecture; removed afterwards."""
    arch = image_build.oci_architecture(spec["spec"]["architecture"])
    try:
        image = image_build.build_image(lambda_context, arch)
    except image_build.ImageBuildError as error:
        host = HOST_ARCHITECTURES.get(platform.machine(), platform.machine())
        hint = "" if arch == host else f" (an {arch} image on an {host} host needs qemu-user-static)"
        pytest.fail(f"the image did not build{hint}:\n{error}")
    measurements.update(
        image=image.tag,
        base=image.base,
        architecture=arch,
        build_s=round(image.build_s, 1),
        base_build_s=None if image.base_build_s is None else round(image.base_build_s, 1),
    )
    yield image
    image_build.remove_image(image.tag)


@pytest.fixture(scope="module")
def image_root(lambda_image, measurements):
    """The image's exported file system, in a scratch folder removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="lambda-image-"))
    try:
        started = time.monotonic()
        root = image_build.export_root(lambda_image.tag, work / "root")
        measurements["export_s"] = round(time.monotonic() - started, 1)
        yield root
    finally:
        shutil.rmtree(work, ignore_errors=True)


def lambda_env(image: image_build.BuiltImage, spec: dict, runtime_api: str) -> dict:
    """The image's declared environment plus what Lambda adds for the function."""
    settings = spec["spec"]
    return {
        **image_build.image_env(image.inspect),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": spec["name"],
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(settings["memory_size"]),
        "AWS_REGION": settings["region"],
        "AWS_DEFAULT_REGION": settings["region"],
    }


def run_in_image(root: Path, image: image_build.BuiltImage, argv: list[str], env: dict, **kwargs) -> subprocess.Popen:
    """Start ``argv`` from the image's file system as Lambda would, in its own process group."""
    workdir = image.inspect["Config"].get("WorkingDir") or "/"
    return subprocess.Popen(
        image_build.read_only_argv(root, argv, env, workdir), stdin=subprocess.DEVNULL, start_new_session=True, **kwargs
    )


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@dataclass
class LambdaRun:
    answers: dict
    errors: list
    first_answer_s: float | None
    output: str

    def answer(self, name: str) -> dict:
        assert not self.errors, (self.errors, self.output[-4000:])
        assert name in self.answers, f"no answer to {name!r}; awslambdaric's output:\n{self.output[-4000:]}"
        return self.answers[name]


@pytest.fixture(scope="module")
def lambda_run(image_root, lambda_image, spec, measurements) -> LambdaRun:
    """The image's entry command under awslambdaric, fed every event of EVENTS in one container.

    awslambdaric's native client may crash when the Runtime API goes away; the answers are
    judged, not its exit."""
    names = list(EVENTS)
    api = QueuedRuntimeApi([EVENTS[name] for name in names])
    log = image_root.parent / "awslambdaric.log"
    argv = image_build.image_command(lambda_image.inspect)
    try:
        started = time.monotonic()
        with open(log, "wb") as out:
            process = run_in_image(
                image_root,
                lambda_image,
                argv,
                lambda_env(lambda_image, spec, api.address),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            while not api.done.wait(0.2) and process.poll() is None:
                if time.monotonic() - started > RUN_TIMEOUT_S:
                    break
        finally:
            kill_group(process)
    finally:
        api.close()
    answers = {name: api.results[f"request-{n}"] for n, name in enumerate(names) if f"request-{n}" in api.results}
    first = api.answered_at.get("request-0")
    first_answer_s = None if first is None else first - started
    if first_answer_s is not None:
        measurements["first_answer_s"] = round(first_answer_s, 2)
    return LambdaRun(answers, list(api.errors), first_answer_s, log.read_text(errors="replace"))


def test_image_is_one_platform_built_for_the_configured_architecture(lambda_image, image_root, spec):
    """Lambda refuses image indexes, and an arm64 function needs arm64 binaries throughout."""
    arch = image_build.oci_architecture(spec["spec"]["architecture"])
    assert lambda_image.inspect["Architecture"] == arch and lambda_image.inspect["Os"] == "linux"
    manifest = image_build.manifest(lambda_image.tag)
    assert manifest["mediaType"] in SINGLE_IMAGE_MANIFESTS, manifest["mediaType"]
    assert "manifests" not in manifest and manifest["layers"]
    site = next(image_root.glob("usr/local/lib/python3.*/site-packages"))
    libraries = [
        p for p in site.rglob("*.so*") if (p.suffix == ".so" or ".so." in p.name) and p.is_file() and not p.is_symlink()
    ]
    assert any(p.name == "libxgboost.so" for p in libraries)
    machine = image_build.ELF_MACHINES[arch]
    wrong = [str(p.relative_to(site)) for p in libraries if image_build.elf_machine(p) != machine]
    assert not wrong, f"native libraries not built for {arch}: {wrong[:10]}"


def test_image_declares_the_unprivileged_user(lambda_image):
    user = lambda_image.inspect["Config"]["User"]
    uid, _, gid = user.partition(":")
    assert uid == str(image_build.LAMBDA_UID) and gid in ("", str(image_build.LAMBDA_GID)), user


def test_image_size_is_bounded(lambda_image, image_root, measurements):
    size = lambda_image.inspect["Size"]
    base_size = image_build.inspect_image(lambda_image.base)["Size"]
    site = next(image_root.glob("usr/local/lib/python3.*/site-packages"))
    measurements.update(
        image_size_mb=round(size / 1e6),
        base_size_mb=round(base_size / 1e6),
        added_by_dockerfile_mb=round((size - base_size) / 1e6),
        site_packages_mb=round(image_build.tree_bytes(site) / 1e6),
    )
    print(
        f"\nimage {size / 1e6:.0f} MB (stand-in base {base_size / 1e6:.0f} MB), "
        f"site-packages {measurements['site_packages_mb']} MB"
    )
    assert size < MAX_IMAGE_MB * 1e6, f"image is {size / 1e6:.0f} MB, over {MAX_IMAGE_MB} MB"


def test_build_mounts_left_nothing_of_this_machine_in_the_image(lambda_image, image_root):
    """The package indexes and pip configuration mounted into the build stay out of the image:
    a mount point the base lacked is at most an empty file or folder (buildah 1.28 leaves it)."""
    assert lambda_image.new_mount_targets, "expected the build to mount pip's configuration"
    for target in lambda_image.new_mount_targets:
        path = image_root / target.lstrip("/")
        if path.is_dir():
            assert not any(path.iterdir()), f"{target} holds files in the image"
        elif path.exists():
            assert path.stat().st_size == 0, f"{target} has content in the image"


def test_only_tmp_is_writable_and_the_code_runs_as_nobody(lambda_image, image_root, spec):
    """In the same read-only run the function gets: /var/task refuses writes even though the
    file system, not only its modes, is read-only; /tmp takes them."""
    probe = (
        "import errno, json, os\n"
        "def write(path):\n"
        "    try:\n"
        "        open(path, 'w').write('x'); return 'written'\n"
        "    except OSError as error:\n"
        "        return errno.errorcode[error.errno]\n"
        "print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups(),\n"
        "                  'cwd': os.getcwd(), 'task': write('/var/task/probe'),\n"
        "                  'root': write('/probe'), 'tmp': write('/tmp/probe')}))\n"
    )
    env = lambda_env(lambda_image, spec, "127.0.0.1:9")
    process = run_in_image(
        image_root, lambda_image, ["python", "-c", probe], env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        kill_group(process)
    assert process.returncode == 0, stderr.decode()[-3000:]
    seen = json.loads(stdout)
    assert (seen["uid"], seen["gid"]) == (image_build.LAMBDA_UID, image_build.LAMBDA_GID)
    assert set(seen["groups"]) <= {image_build.LAMBDA_GID}
    assert seen["cwd"] == lambda_image.inspect["Config"]["WorkingDir"] == "/var/task"
    assert seen["task"] == "EROFS" and seen["root"] == "EROFS", seen
    assert seen["tmp"] == "written", seen


def test_first_answer_is_the_models_labels(lambda_run, booster):
    answer = lambda_run.answer("labels")
    assert answer["statusCode"] == 200, answer
    assert answer["headers"]["content-type"] == "application/json"
    expected = expected_labels(booster, ROWS)
    assert json.loads(answer["body"]) == expected


def test_probabilities_equal_the_boosters(lambda_run, booster):
    answer = lambda_run.answer("proba")
    assert answer["statusCode"] == 200, answer
    np.testing.assert_allclose(json.loads(answer["body"]), expected_probabilities(booster, ROWS), rtol=1e-6)


@pytest.mark.parametrize("name", [name for name in GOOD if name.startswith("labels, ")])
def test_every_event_shape_gets_the_labels(lambda_run, booster, name):
    answer = lambda_run.answer(name)
    assert answer["statusCode"] == 200, answer
    expected = expected_labels(booster, ROWS[:5])
    assert json.loads(answer["body"]) == expected


@pytest.mark.parametrize(
    "case, status, message",
    [(case, status, message) for case, _, _, status, message in BAD],
    ids=[case for case, *_ in BAD],
)
def test_bad_requests_get_their_4xx_and_message(lambda_run, case, status, message):
    answer = lambda_run.answer(f"bad: {case}")
    assert answer["statusCode"] == status, answer
    assert message in answer["body"], answer["body"][:300]


def test_still_answers_after_bad_input(lambda_run, booster):
    answer = lambda_run.answer("labels after bad input")
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"]) == expected_labels(booster, ROWS[:1])


def test_unknown_route_is_404_and_the_console_event_is_explained(lambda_run):
    assert lambda_run.answer("unknown route")["statusCode"] == 404
    console = lambda_run.answer("console test event")
    assert console["statusCode"] == 400 and "API Gateway" in console["body"], console


def test_first_answer_comes_within_lambdas_init_limit(lambda_run, measurements):
    assert lambda_run.first_answer_s is not None, lambda_run.output[-4000:]
    print(f"\nfirst answer {lambda_run.first_answer_s:.2f} s after the process started")
    assert lambda_run.first_answer_s < MAX_FIRST_ANSWER_S
