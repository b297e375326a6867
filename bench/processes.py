"""Server processes for the benchmarks and the tests: free ports, start and wait, stop, memory.

No side effects at import and nothing project-specific: the tests start their servers with it
too (tests/commands.py), so both measure servers started the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen, grace_s: float = 20) -> None:
    """Stop a server started with ``start_new_session=True`` and every process it spawned
    (`bentoml serve` runs an arbiter and workers): SIGTERM, then SIGKILL after ``grace_s``."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def process_tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    parent = psutil.Process(pid)
    total = 0
    for process in [parent, *parent.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


class Server:
    """A server process in its own process group, its URL and its log."""

    def __init__(self, name: str, url: str, process: subprocess.Popen, log: Path, ready_after_s: float):
        self.name, self.url, self.process, self.log = name, url, process, log
        self.ready_after_s = ready_after_s  # launch to the first ready answer

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_mb(self) -> float:
        return process_tree_rss_mb(self.process.pid)

    def stop(self) -> None:
        stop_process_group(self.process)


def start_server(
    argv: list[str],
    port: int,
    *,
    cwd: Path,
    env: dict,
    log: Path,
    ready: Callable[[str], bool],
    timeout: float = 90,
    poll_s: float = 0.05,
    name: str = "",
) -> Server:
    """Start ``argv`` (a server that listens on ``port``) in its own process group, its output
    appended to ``log``, and wait until ``ready(url)`` is true; an OSError from ``ready`` means
    not yet. Raises with the log's tail if the process exits or is not ready in ``timeout``."""
    started = time.perf_counter()
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{name or argv} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready(url):
                return Server(name or argv[-1], url, process, log, time.perf_counter() - started)
        except OSError:
            pass
        time.sleep(poll_s)
    stop_process_group(process)
    raise RuntimeError(f"{name or argv} not ready in {timeout} s:\n{log.read_text()[-3000:]}")


def answers_get(path: str, timeout: float = 1) -> Callable[[str], bool]:
    """A readiness probe: ``GET <url><path>`` answers 200."""
    import urllib.request

    def ready(url: str) -> bool:
        with urllib.request.urlopen(f"{url}{path}", timeout=timeout) as response:
            return response.status == 200

    return ready
