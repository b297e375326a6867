"""A stand-in for the docker CLI: the calls bentoctl/BentoML and `python -m deploy` make, with
images kept in a JSON file and `docker push` putting the manifest into (mocked) ECR.

Like Docker Engine 29+ with buildx, a build with attestations on (the default) yields an image
that pushes as an index with an attestation manifest; BUILDX_NO_DEFAULT_ATTESTATIONS=1 or
--provenance=false yields a single manifest. STANDIN_BUILD_NO_IMAGE=1 makes a build that exits 0
without an image, as a build whose error bentoctl swallows.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
from tests.standins.record import fail_if_asked, load, log_call, save

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def option_values(argv: list[str], *names: str) -> list[str]:
    values = []
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name and index + 1 < len(argv):
                values.append(argv[index + 1])
            elif arg.startswith(name + "="):
                values.append(arg.split("=", 1)[1])
    return values


def context_digest(context: Path) -> str:
    """What the image is made of: every file of the build context (another Bento, another image)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def base_image(dockerfile: str) -> str:
    """The image the Dockerfile's FROM names, its ARG defaults filled in (no --build-arg reaches here)."""
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.MULTILINE))
    source = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE).group(1)
    return re.sub(r"\$\{(\w+)\}", lambda m: defaults.get(m.group(1), ""), source)


def buildx_build(argv: list[str]) -> int:
    context = Path(argv[-1])
    dockerfile = context / (option_values(argv, "--file", "-f") or ["Dockerfile"])[0]
    if not dockerfile.is_file():
        print(f"ERROR: failed to read dockerfile: open {dockerfile}: no such file", file=sys.stderr)
        return 1
    platform = (option_values(argv, "--platform") or ["linux/amd64"])[0]
    architecture = os.environ.get("STANDIN_IMAGE_ARCH") or platform.split("/")[1]
    attested = (
        os.environ.get("BUILDX_NO_DEFAULT_ATTESTATIONS") != "1" and "false" not in option_values(argv, "--provenance")
    ) or os.environ.get("STANDIN_FORCE_ATTESTATIONS") == "1"
    config = json.dumps({"architecture": architecture, "os": "linux", "context": context_digest(context)})
    image = {
        "Base": base_image(dockerfile.read_text()),
        "Id": "sha256:" + hashlib.sha256(config.encode()).hexdigest(),
        "Os": "linux",
        "Architecture": architecture,
        "config": config,
        "attested": attested,
    }
    if os.environ.get("STANDIN_BUILD_NO_IMAGE") == "1":
        print("#1 exporting to image: done (stand-in: no image made)")
        return 0
    images = load("images.json", {})
    for tag in option_values(argv, "--tag", "-t"):
        images[tag] = image
    save("images.json", images)
    print(f"#1 naming to {', '.join(option_values(argv, '--tag', '-t'))} done")
    return 0


def manifest_for(image: dict) -> tuple[str, str]:
    config_digest = "sha256:" + hashlib.sha256(image["config"].encode()).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(image["config"]),
            },
            # One layer named after the config: moto's ECR derives an image's digest from its layers.
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + hashlib.sha256(("layer" + image["config"]).encode()).hexdigest(),
                    "size": len(image["config"]),
                }
            ],
        }
    )
    if not image["attested"]:
        return manifest, OCI_MANIFEST
    digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": digest,
                    "size": len(manifest),
                    "platform": {"architecture": image["Architecture"], "os": "linux"},
                },
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": "sha256:" + "0" * 64,
                    "size": 1,
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                },
            ],
        }
    )
    return index, OCI_INDEX


def push(reference: str) -> int:
    import boto3

    images = load("images.json", {})
    if reference not in images:
        print(f"An image does not exist locally with the tag: {reference}", file=sys.stderr)
        return 1
    registry, rest = reference.split("/", 1)
    if registry not in load("logins.json", []):
        print("no basic auth credentials", file=sys.stderr)
        return 1
    repository, tag = rest.rsplit(":", 1)
    region = registry.split(".")[3]
    body, media_type = manifest_for(images[reference])
    boto3.client("ecr", region_name=region).put_image(
        repositoryName=repository, imageManifest=body, imageManifestMediaType=media_type, imageTag=tag
    )
    print(f"{tag}: digest: sha256:{hashlib.sha256(body.encode()).hexdigest()} size: {len(body)}")
    return 0


def main(argv: list[str]) -> int:
    stdin = sys.stdin.read() if "--password-stdin" in argv else None
    log_call("docker", argv, stdin)
    fail_if_asked("docker", argv)
    images = load("images.json", {})
    match argv:
        case ["version", *_]:
            print(os.environ.get("STANDIN_DOCKER_VERSION", "29.0.1"))
        case ["buildx", "--help"]:
            print("Usage: docker buildx [OPTIONS] COMMAND\n      --builder string   Override the configured builder")
        case ["buildx", "version"]:
            print("github.com/docker/buildx v0.29.1 standin")
        case ["buildx", "build", *rest]:
            return buildx_build(rest)
        case ["image", "inspect", *rest]:
            name = rest[-1]
            if name not in images:
                print(f"Error: No such image: {name}", file=sys.stderr)
                return 1
            if option_values(rest, "--format", "-f") == ["{{.Id}}"]:
                print(images[name]["Id"])
            else:
                print(json.dumps({key: images[name][key] for key in ("Id", "Os", "Architecture")}))
        case ["image", "rm", *rest]:
            name = rest[-1]
            if name not in images:
                print(f"Error response from daemon: No such image: {name}", file=sys.stderr)
                return 1
            del images[name]
            save("images.json", images)
            print(f"Untagged: {name}")
        case ["login", *rest]:
            if not stdin:
                print("Error: Cannot perform an interactive login from a non TTY device", file=sys.stderr)
                return 1
            save("logins.json", load("logins.json", []) + [rest[-1]])
            print("Login Succeeded")
        case ["tag", source, target]:
            if source not in images:
                print(f"Error response from daemon: No such image: {source}", file=sys.stderr)
                return 1
            images[target] = images[source]
            save("images.json", images)
        case ["push", reference]:
            return push(reference)
        case _:
            print(f"docker stand-in: unexpected call {argv}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
