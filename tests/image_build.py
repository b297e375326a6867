"""Building the operator's Lambda image with podman and running its file system as Lambda does.

No Docker engine runs on the build machines and no container registry is reachable, so:
- the base image `python:3.11-slim-bookworm` is replaced by a stand-in made from Debian's
  packages with mmdebstrap (Python at /usr/local, as in the official image), kept in podman's
  storage and rebuilt only when missing or when its recipe changes;
- the Dockerfile is built unedited (`podman build --from <stand-in>`), its pip reaching this
  machine's package indexes through a pip configuration derived from `pip config list` and
  the files and folders that configuration names, mounted read-only;
- the image is run from its exported file system: bind-mounted read-only, a fresh tmpfs at /tmp,
  /proc mounted, under chroot as uid/gid 65534, with the environment and command the image
  declares (OCI runtimes cannot start containers on these machines).
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

TOOLS = ("podman", "skopeo", "mmdebstrap", "unshare", "chroot", "tar")
TOOLS_HINT = "run `make image-tools` (as root) to install podman, skopeo, mmdebstrap and the rest"

STANDIN_REPOSITORY = "localhost/python"
RECIPE_LABEL = "org.xgb-classifier.standin-recipe"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3.11", "python3.11-venv", "ca-certificates")
# What Debian's own -slim images leave out, so the stand-in's size is comparable.
SLIM_DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)
STANDIN_CONTAINERFILE = """\
FROM scratch
ADD rootfs.tar /
RUN python3.11 -m venv /usr/local
ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
CMD ["python3"]
"""

# pip settings that say where packages come from and how to reach them; nothing else is passed.
PIP_INDEX_SETTINGS = (
    "index-url",
    "extra-index-url",
    "no-index",
    "find-links",
    "trusted-host",
    "cert",
    "client-cert",
    "constraint",
    "proxy",
    "retries",
    "timeout",
    "default-timeout",
)
# A file:// simple index's pages link to files beside it (../../files/...): mount its parent.
PIP_INDEX_KEYS = ("index-url", "extra-index-url")
BUILD_PIP_CONFIG = "/etc/pip.conf"

LAMBDA_UID = LAMBDA_GID = 65534
# Lambda's spec.architecture names → OCI architecture names (and Debian's, which are the same).
OCI_ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}
# ELF e_machine values of those architectures.
ELF_MACHINES = {"amd64": 62, "arm64": 183}


class ImageBuildError(RuntimeError):
    """A step of building or exporting the image failed; the message holds its output."""


def missing_tools() -> list[str]:
    """The command-line tools these helpers need that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def run(argv: list[str], timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """Run a tool, raise with its output if it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kwargs)
    if result.returncode != 0:
        raise ImageBuildError(
            f"{' '.join(argv[:4])} ... exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def oci_architecture(spec_architecture: str) -> str:
    """deployment_config.yaml's architecture (x86_64, arm64) as an image architecture."""
    return OCI_ARCHITECTURES[spec_architecture]


# --- the stand-in base image -------------------------------------------------------------


def standin_recipe(arch: str) -> str:
    """Everything that decides the stand-in's content, hashed into its label."""
    return json.dumps(
        {
            "suite": DEBIAN_SUITE,
            "arch": arch,
            "packages": DEBIAN_PACKAGES,
            "dpkg": SLIM_DPKG_OPTIONS,
            "containerfile": STANDIN_CONTAINERFILE,
        }
    )


def standin_tag(arch: str) -> str:
    return f"{STANDIN_REPOSITORY}:3.11-slim-{DEBIAN_SUITE}-standin-{arch}"


def image_label(tag: str, label: str) -> str | None:
    """A label of a local image, or None when the image is not in podman's storage."""
    result = subprocess.run(["podman", "image", "inspect", tag], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    return (json.loads(result.stdout)[0].get("Labels") or {}).get(label, "")


def build_standin(tag: str, arch: str, digest: str) -> None:
    """Debian's Python 3.11 in a minimal Debian root, as a podman image labelled with ``digest``."""
    with tempfile.TemporaryDirectory(prefix="standin-") as work:
        rootfs = Path(work) / "rootfs.tar"
        run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--architectures={arch}",
                f"--include={','.join(DEBIAN_PACKAGES)}",
                *[f"--dpkgopt={option}" for option in SLIM_DPKG_OPTIONS],
                DEBIAN_SUITE,
                str(rootfs),
            ]
        )
        (Path(work) / "Containerfile").write_text(STANDIN_CONTAINERFILE)
        run(
            [
                "podman",
                "build",
                "--isolation=chroot",
                "--layers=false",
                f"--platform=linux/{arch}",
                "--label",
                f"{RECIPE_LABEL}={digest}",
                "-t",
                tag,
                work,
            ]
        )


def ensure_standin(arch: str) -> tuple[str, float | None]:
    """The stand-in's tag, built first if missing or stale; with its build time (None: cached).

    A lock file keeps concurrent test runs on one machine from building it twice."""
    tag = standin_tag(arch)
    digest = hashlib.sha256(standin_recipe(arch).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"lambda-standin-{arch}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        label = image_label(tag, RECIPE_LABEL)
        if label == digest:
            return tag, None
        if label is not None:
            remove_image(tag)
        started = time.monotonic()
        build_standin(tag, arch, digest)
        return tag, time.monotonic() - started


# --- this machine's pip configuration, for the build -------------------------------------


def pip_settings(python: str = sys.executable) -> dict[tuple[str, str], str]:
    """The effective pip settings, from `pip config list` (files and PIP_* variables):
    {(section, option): value}, later sources overriding earlier ones as pip applies them."""
    listing = run([python, "-m", "pip", "config", "list"], timeout=60).stdout
    settings: dict[tuple[str, str], str] = {}
    for line in listing.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or "." not in key:
            continue
        section, option = key.rsplit(".", 1)
        settings[("global" if section == ":env:" else section, option)] = ast.literal_eval(raw)
    return settings


def index_settings(settings: dict[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    return {key: value for key, value in settings.items() if key[1] in PIP_INDEX_SETTINGS}


def pip_config_text(settings: dict[tuple[str, str], str]) -> str:
    """The settings as one pip configuration file (list values on one line, as pip splits them
    on white space)."""
    sections: dict[str, list[str]] = {}
    for (section, option), value in sorted(settings.items()):
        sections.setdefault(section, []).append(f"{option} = {' '.join(value.split())}")
    return "".join(f"[{name}]\n" + "\n".join(lines) + "\n" for name, lines in sections.items())


def referenced_paths(settings: dict[tuple[str, str], str]) -> list[Path]:
    """The local files and folders the settings name (paths and file:// URLs) that exist,
    outermost only: what pip inside the build must see at the same paths."""
    found: set[Path] = set()
    for (_, option), value in settings.items():
        for token in value.split():
            path = Path(unquote(urlparse(token).path)) if token.startswith("file:") else Path(token)
            if not path.is_absolute() or not path.exists():
                continue
            found.add(path.parent if option in PIP_INDEX_KEYS and path.is_dir() else path)
    return sorted(p for p in found if not any(other != p and other in p.parents for other in found))


# --- building, inspecting, exporting -------------------------------------------------------


@dataclass
class BuiltImage:
    tag: str
    base: str
    arch: str
    build_s: float
    base_build_s: float | None
    inspect: dict
    new_mount_targets: list[str] = field(default_factory=list)
    log: str = ""


def inspect_image(tag: str) -> dict:
    return json.loads(run(["podman", "image", "inspect", tag]).stdout)[0]


def absent_in_image(tag: str, paths: list[str]) -> list[str]:
    """Which of ``paths`` the image does not hold (read from its mounted file system)."""
    root = Path(run(["podman", "image", "mount", tag]).stdout.strip())
    try:
        return [p for p in paths if not os.path.lexists(root / p.lstrip("/"))]
    finally:
        subprocess.run(["podman", "image", "unmount", tag], capture_output=True)


def build_image(context: Path, arch: str, tag: str | None = None) -> BuiltImage:
    """`podman build` of the context's env/docker/Dockerfile on the stand-in base, unedited.

    --layers=false commits the Dockerfile's steps as one layer: the same files (and, since no
    step rewrites another's large files, the same size within a megabyte) without intermediate
    images that a failed build would leave behind."""
    base, base_build_s = ensure_standin(arch)
    tag = tag or f"localhost/aws-lambda-xgb_classifier:test-{uuid.uuid4().hex[:12]}"
    settings = index_settings(pip_settings())
    sources = referenced_paths(settings)
    targets = [BUILD_PIP_CONFIG, *map(str, sources)]
    with tempfile.TemporaryDirectory(prefix="lambda-build-pip-") as work:
        config = Path(work) / "pip.conf"
        config.write_text(pip_config_text(settings))
        config.chmod(0o644)
        mounts = [f"{config}:{BUILD_PIP_CONFIG}:ro", *[f"{p}:{p}:ro" for p in sources]]
        started = time.monotonic()
        result = run(
            [
                "podman",
                "build",
                "--isolation=chroot",
                "--network=host",
                "--pull=never",
                "--format=docker",
                "--layers=false",
                "--force-rm",
                f"--platform=linux/{arch}",
                "--from",
                base,
                *[arg for mount in mounts for arg in ("-v", mount)],
                "-f",
                str(context / "env" / "docker" / "Dockerfile"),
                "-t",
                tag,
                str(context),
            ],
            timeout=1800,
        )
        build_s = time.monotonic() - started
    try:
        return BuiltImage(
            tag=tag,
            base=base,
            arch=arch,
            build_s=build_s,
            base_build_s=base_build_s,
            inspect=inspect_image(tag),
            new_mount_targets=absent_in_image(base, targets),
            log=result.stdout + result.stderr,
        )
    except Exception:
        remove_image(tag)
        raise


def manifest(tag: str) -> dict:
    """The image's manifest as a push would send it (skopeo reads podman's storage)."""
    return json.loads(run(["skopeo", "inspect", "--raw", f"containers-storage:{tag}"]).stdout)


def remove_image(tag: str) -> None:
    """Remove a local image; layers it shares with others (the base's) stay."""
    subprocess.run(["podman", "rmi", "--force", tag], capture_output=True)


def export_root(tag: str, destination: Path) -> Path:
    """The image's file system, unpacked at ``destination`` (a container is created for the
    export and removed)."""
    name = f"lambda-export-{uuid.uuid4().hex[:12]}"
    run(["podman", "create", "--name", name, tag])
    try:
        destination.mkdir(parents=True, exist_ok=True)
        exporter = subprocess.Popen(["podman", "export", name], stdout=subprocess.PIPE)
        unpack = subprocess.run(
            ["tar", "--numeric-owner", "-xpf", "-", "-C", str(destination)],
            stdin=exporter.stdout,
            capture_output=True,
            text=True,
        )
        exporter.stdout.close()
        if exporter.wait() != 0 or unpack.returncode != 0:
            raise ImageBuildError(f"export of {tag} failed: {unpack.stderr[-2000:]}")
    finally:
        subprocess.run(["podman", "rm", "--force", name], capture_output=True)
    return destination


def elf_machine(path: Path) -> int:
    """The e_machine field of an ELF file (little-endian, as on amd64 and arm64)."""
    with open(path, "rb") as handle:
        header = handle.read(20)
    if header[:4] != b"\x7fELF":
        raise ValueError(f"{path} is not an ELF file")
    return int.from_bytes(header[18:20], "little")


def tree_bytes(path: Path) -> int:
    """Bytes in the regular files under ``path``."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# --- running the image's file system as Lambda does ----------------------------------------

# Runs as root in a private mount namespace: the root read-only, /tmp a fresh tmpfs, /proc
# mounted; then chroot as the unprivileged user, and env -i -C sets exactly the given
# environment and the working directory before the command is executed.
_READ_ONLY_SCRIPT = (
    "set -e; root=$1; user=$2; shift 2; "
    'mount --bind "$root" "$root"; mount -o remount,bind,ro "$root"; '
    'mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/tmp"; '
    'mount -t proc proc "$root/proc"; '
    'exec chroot --userspec="$user" "$root" "$@"'
)


def image_command(inspect: dict) -> list[str]:
    """What the image runs: its Entrypoint followed by its Cmd."""
    config = inspect["Config"]
    return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]


def image_env(inspect: dict) -> dict[str, str]:
    """The image's declared environment (Config.Env)."""
    return dict(item.split("=", 1) for item in inspect["Config"].get("Env") or [])


def read_only_argv(
    root: Path, argv: list[str], env: dict[str, str], workdir: str, uid: int = LAMBDA_UID, gid: int = LAMBDA_GID
) -> list[str]:
    """A command line that runs ``argv`` from the file system at ``root`` as Lambda runs a
    function: read-only except /tmp, as ``uid``:``gid``, with exactly ``env``, in ``workdir``."""
    if os.geteuid() != 0:
        raise ImageBuildError("running the image's file system needs root (mount and chroot)")
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        _READ_ONLY_SCRIPT,
        "sh",
        str(root),
        f"{uid}:{gid}",
        "/usr/bin/env",
        "-i",
        "-C",
        workdir,
        *[f"{key}={value}" for key, value in env.items()],
        *argv,
    ]
