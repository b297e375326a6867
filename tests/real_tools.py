"""Real Docker Engine and a real registry for the deploy tests, each started by the test run on
its own socket or port, with its own folders, and stopped (its whole process group) at the end.

- the engine is Debian's docker.io (`dockerd`, as root): its socket, data root and exec root
  under a temporary folder, no bridge and no iptables rules, so the machine's own Docker (and
  its default socket) is never touched; build steps reach the network with `--network host`;
- the registry is Debian's docker-registry (the Distribution registry) on a free local port,
  behind htpasswd authentication, so `docker login` checks a password as ECR's endpoint does;
- :class:`RegistryImages` reads and writes manifests through the registry's HTTP API, the same
  interface `deploy.image.verify` and `protect` use for ECR.
"""

from __future__ import annotations

import crypt
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.processes import free_port
from deploy.image import INDEX, SINGLE_MANIFEST, Manifest

TOOLS_HINT = "run `make image-tools` (as root): it installs Debian's docker.io and docker-registry"


def missing() -> str | None:
    """Why the real engine and registry cannot run here, or None."""
    if os.geteuid() != 0:
        return "Docker Engine runs as root only; these tests need root"
    absent = [tool for tool in ("dockerd", "docker", "docker-registry", "containerd", "runc") if not shutil.which(tool)]
    return f"{', '.join(absent)} not installed: {TOOLS_HINT}" if absent else None


def _stop(process: subprocess.Popen) -> None:
    """Stop a process group started with start_new_session: SIGTERM, then SIGKILL after 20 s."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until(ready, process: subprocess.Popen, log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _unmount_under(root: Path) -> None:
    """Unmount what the engine left mounted under ``root`` (its network namespace's bind mount
    stays after it stops), deepest first."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", target], capture_output=True)


class DockerEngine:
    """`dockerd` on a socket of its own; ``env`` points the docker CLI at it."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="dockerd-", dir="/tmp"))  # short: socket paths are limited
        self.socket = self.root / "docker.sock"
        self.env = {"DOCKER_HOST": f"unix://{self.socket}", "DOCKER_CONFIG": str(self.root / "client")}
        self.log = self.root / "dockerd.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    "dockerd",
                    "--host",
                    self.env["DOCKER_HOST"],
                    "--data-root",
                    str(self.root / "data"),
                    "--exec-root",
                    str(self.root / "exec"),
                    "--pidfile",
                    str(self.root / "dockerd.pid"),
                    "--bridge",
                    "none",
                    "--iptables=false",
                    "--ip-masq=false",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _wait_until(lambda: self.docker("version").returncode == 0, self.process, self.log, "dockerd")

    def docker(self, *args: str, stdin: bytes | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", *args],
            env={**os.environ, **self.env},
            input=stdin,
            capture_output=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        _stop(self.process)
        _unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RegistryServer:
    """docker-registry on 127.0.0.1:<port>, one user with a random password."""

    root: Path
    port: int
    username: str
    password: str
    process: subprocess.Popen

    @classmethod
    def start(cls) -> RegistryServer:
        root = Path(tempfile.mkdtemp(prefix="registry-"))
        port, username, password = free_port(), "AWS", secrets.token_urlsafe(16)
        (root / "htpasswd").write_text(
            f"{username}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n"
        )
        config = {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"127.0.0.1:{port}"},
            "auth": {"htpasswd": {"realm": "test-registry", "path": str(root / "htpasswd")}},
        }
        (root / "config.yml").write_text(json.dumps(config))  # YAML reads JSON
        log = root / "registry.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["docker-registry", "serve", str(root / "config.yml")],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = cls(root, port, username, password, process)
        url = f"{server.url}/v2/"
        _wait_until(lambda: requests.get(url, timeout=2).status_code == 401, process, log, "docker-registry")
        return server

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def images(self, repository: str) -> RegistryImages:
        return RegistryImages(self, repository)

    def stop(self) -> None:
        _stop(self.process)
        shutil.rmtree(self.root, ignore_errors=True)


class RegistryImages:
    """One repository of the registry through the Distribution API: what `deploy.image` asks of
    ECR's API (a tag's manifest; a manifest tagged again), and the raw calls a test needs."""

    ACCEPT = ", ".join(sorted(SINGLE_MANIFEST | INDEX))

    def __init__(self, server: RegistryServer, repository: str):
        self.base = f"{server.url}/v2/{repository}"
        self.session = requests.Session()
        self.session.auth = (server.username, server.password)

    def manifest(self, tag: str) -> Manifest | None:
        answer = self.session.get(f"{self.base}/manifests/{tag}", headers={"Accept": self.ACCEPT}, timeout=30)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return Manifest(answer.text, answer.headers["Content-Type"], answer.headers["Docker-Content-Digest"])

    def put_manifest(self, manifest: Manifest, tag: str) -> None:
        answer = self.session.put(
            f"{self.base}/manifests/{tag}",
            data=manifest.text.encode(),
            headers={"Content-Type": manifest.media_type},
            timeout=30,
        )
        answer.raise_for_status()

    def put_blob(self, data: bytes) -> str:
        """Upload a blob (monolithic upload); returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = self.session.post(f"{self.base}/blobs/uploads/", timeout=30)
        started.raise_for_status()
        location = started.headers["Location"]
        separator = "&" if "?" in location else "?"
        url = location if location.startswith("http") else self.base.split("/v2/")[0] + location
        done = self.session.put(
            f"{url}{separator}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=30,
        )
        done.raise_for_status()
        return digest

    def tags(self) -> list[str]:
        answer = self.session.get(f"{self.base}/tags/list", timeout=30)
        answer.raise_for_status()
        return sorted(answer.json().get("tags") or [])
