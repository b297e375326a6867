"""Starting and stopping servers the tests and the benchmarks run: free ports, process groups,
memory. No side effects at import (unlike conftest.py, which redirects BENTOML_HOME), so the
benchmarks can use it too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess

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
