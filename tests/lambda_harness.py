"""Getting the Lambda build context out of the real `bentoctl build`, and running code the way
Lambda does: from a read-only code directory, with only /tmp writable.

Sessions and CI run as root, and root ignores file modes, so "read-only" is made real: as root
the handler runs as the unprivileged user nobody (setpriv) from a directory it does not own;
otherwise inside a user and mount namespace with the directory bind-mounted read-only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

OPERATOR_DIR = PROJECT_ROOT / "deploy" / "aws-lambda-operator"
DRIVER = PROJECT_ROOT / "tests" / "lambda_driver.py"


def bentoctl(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "bentoctl"
    return subprocess.run([str(exe), *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=300)


def bentoml_build(env: dict | None = None) -> str:
    """`bentoml build .` as a user runs it; returns the new Bento's tag."""
    result = subprocess.run([sys.executable, "-m", "bentoml", "build", "."], cwd=PROJECT_ROOT,
                            env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=300)
    match = re.search(r'Successfully built Bento\(tag="([^"]+)"\)', result.stdout)
    assert result.returncode == 0 and match, f"bentoml build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return match.group(1)


def install_operator(bentoctl_home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return bentoctl("operator", "install", str(OPERATOR_DIR), env={"BENTOCTL_HOME": str(bentoctl_home)}, cwd=cwd)


def build_context_via_bentoctl(bento_tag: str, bentoctl_home: Path, work: Path) -> Path:
    """Run `bentoctl build` as a user would, up to the Docker call, and keep its build context.

    DOCKER_HOST points nowhere, so the build stops at bentoctl's Docker check on any machine;
    debug mode keeps the context bentoctl made with this operator.
    """
    result = bentoctl(
        "build", "-b", bento_tag, "-f", str(PROJECT_ROOT / "deployment_config.yaml"),
        env={"BENTOCTL_HOME": str(bentoctl_home), "BENTOCTL_DEBUG": "true",
             "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        cwd=work,
    )
    output = result.stdout + result.stderr
    match = re.search(r"Intermediate bento saved to (\S+)", output)
    assert match, f"bentoctl build did not reach the image build:\n{output[-4000:]}"
    assert result.returncode != 0 and "docker" in output.lower(), "expected to stop at the Docker call"
    saved = Path(match.group(1))
    context = work / "context"
    shutil.move(str(saved / "aws-lambda-deployable"), context)
    shutil.rmtree(saved, ignore_errors=True)
    return context


def build_image_env(context: Path, root: Path) -> Path:
    """The image's Python environment at ``root``, built with the Dockerfile's steps: exactly
    requirements-lambda.txt, no bytecode, test suites removed. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-compile", "-r", str(context / "requirements-lambda.txt")],
        capture_output=True, text=True, timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    subprocess.run([str(python), str(context / "slim_env.py")], check=True, capture_output=True)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    return python


def precompile(python: Path, task: Path) -> None:
    """The Dockerfile's last step: one import of the handler, as root, writes the bytecode of
    exactly what a cold start loads."""
    env = {key: value for key, value in lambda_env(task).items() if key != "PYTHONDONTWRITEBYTECODE"}
    result = subprocess.run([str(python), "-c", "import lambda_app"], cwd=task, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for path in task.rglob("*"):
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))


def site_packages(python: Path) -> Path:
    """The site-packages folder of the virtual environment ``python`` belongs to."""
    return next((python.parent.parent / "lib").glob("python3.*/site-packages"))


def site_packages_mb(python: Path) -> float:
    return sum(f.stat().st_size for f in site_packages(python).rglob("*") if f.is_file()) / 2**20


def read_only_copy(context: Path) -> Path:
    """Copy the image's code directory (what the Dockerfile puts in /var/task) to a place the
    unprivileged user can read but not write."""
    root = Path(tempfile.mkdtemp(prefix="lambda-task-"))
    os.chmod(root, 0o755)
    task = root / "var-task"
    shutil.copytree(context / "app", task)
    for path in [task, *task.rglob("*")]:
        mode = path.stat().st_mode
        os.chmod(path, (mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
                        | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0)))
    return task


def lambda_env(task: Path) -> dict:
    """The image's environment (Dockerfile ENV), pointed at this copy of the code directory."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(task),
        "BENTOML_HOME": str(task / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "HOME": "/nonexistent",
        "TMPDIR": "/tmp",
    }


def read_only_prefix(task: Path) -> list[str]:
    """A command prefix under which ``task`` and HOME cannot be written, as on Lambda."""
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    script = f'mount --bind "{task}" "{task}" && mount -o remount,bind,ro "{task}" && exec "$@"'
    return ["unshare", "-r", "-m", "sh", "-c", script, "sh"]


def run_read_only(argv: list[str], task: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(read_only_prefix(task) + argv, env=env, capture_output=True, text=True,
                          timeout=timeout, cwd="/tmp")


def invoke(task, events, python=sys.executable, repeat=0):
    """Send events to the handler in a fresh read-only process; return the driver's report."""
    events_file = task.parent / f"events-{len(events)}-{abs(hash(json.dumps(events))) % 10**8}.json"
    events_file.write_text(json.dumps(events))
    events_file.chmod(0o644)
    result = run_read_only([python, str(DRIVER), str(task), str(events_file), str(repeat)], task, lambda_env(task))
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
