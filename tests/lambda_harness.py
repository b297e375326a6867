"""Getting the Lambda build context out of the real `bentoctl build`, and running code the way
Lambda does: from a read-only code directory, with only /tmp writable, in the environment and
as the user the image's Dockerfile declares. The image's Python environment is built here by
replaying that Dockerfile's steps (its ENV, COPY, WORKDIR and RUN lines, read from the file).

Sessions and CI run as root, and root ignores file modes, so "read-only" is made real: as root
the handler runs as the image's unprivileged USER (setpriv) from a directory it does not own;
otherwise inside a user and mount namespace with the directory bind-mounted read-only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from deploy.bento_handoff import staged_home
from deploy.lambda_runtime import dockerfile_instructions, env_pairs
from deploy.steps import bentoctl_executable

PROJECT_ROOT = Path(__file__).resolve().parent.parent

OPERATOR_DIR = PROJECT_ROOT / "deploy" / "aws-lambda-operator"
DRIVER = PROJECT_ROOT / "tests" / "lambda_driver.py"


def bentoctl(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    """bentoctl from the deploy-only environment, as `python -m deploy` runs it."""
    return subprocess.run(
        [bentoctl_executable(), *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def bentoml_build(env: dict | None = None) -> str:
    """`bentoml build .` as a user runs it, with the serving BentoML; returns the new Bento's tag."""
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", ".", "--output", "tag"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    match = re.search(r"^__tag__:(\S+)$", result.stdout, re.MULTILINE)
    assert result.returncode == 0 and match, f"bentoml build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return match.group(1)


def install_operator(bentoctl_home: Path, cwd: Path) -> subprocess.CompletedProcess:
    return bentoctl("operator", "install", str(OPERATOR_DIR), env={"BENTOCTL_HOME": str(bentoctl_home)}, cwd=cwd)


def build_context_via_bentoctl(bento_tag: str, bentoctl_home: Path, work: Path) -> Path:
    """`bentoctl build --dry-run` as `python -m deploy` runs it: the Bento handed over through
    deploy.bento_handoff, the docker stand-in on PATH; debug mode keeps the build context bentoctl
    made with this operator, which is returned."""
    from tests.deploy_harness import STANDINS

    bentoml_home = staged_home(bento_tag, work / "bentoctl-bentoml-home")
    state = work / "standin-state"
    state.mkdir(exist_ok=True)
    result = bentoctl(
        "build",
        "-b",
        bento_tag,
        "-f",
        str(PROJECT_ROOT / "deployment_config.yaml"),
        "--dry-run",
        env={
            "BENTOCTL_HOME": str(bentoctl_home),
            "BENTOCTL_DEBUG": "true",
            "BENTOML_HOME": str(bentoml_home),
            "STANDIN_STATE": str(state),
            "STANDIN_PYTHON": sys.executable,
            "PATH": f"{STANDINS}{os.pathsep}{os.environ['PATH']}",
        },
        cwd=work,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Created docker image" in output, f"bentoctl build failed:\n{output[-4000:]}"
    match = re.search(r"Intermediate bento saved to (\S+)", output)
    assert match, f"bentoctl build kept no build context:\n{output[-4000:]}"
    saved = Path(match.group(1))
    context = work / "context"
    shutil.move(str(saved / "aws-lambda-deployable"), context)
    shutil.rmtree(saved, ignore_errors=True)
    return context


# ---------------------------------------------------------------------------- the Dockerfile, replayed


def code_dir(dockerfile: Path) -> str:
    """Where the image keeps the code: the destination of the build context's ``app/``."""
    for keyword, arguments in dockerfile_instructions(dockerfile):
        if keyword == "COPY" and shlex.split(arguments)[:-1] == ["app/"]:
            return shlex.split(arguments)[-1].rstrip("/")
    raise AssertionError(f"{dockerfile} copies no app/ into the image")


def image_command(dockerfile: Path) -> list[str]:
    """The image's ENTRYPOINT followed by its CMD (both in exec form)."""
    found = {
        keyword: json.loads(arguments)
        for keyword, arguments in dockerfile_instructions(dockerfile)
        if keyword in ("ENTRYPOINT", "CMD")
    }
    return found.get("ENTRYPOINT", []) + found.get("CMD", [])


def image_user(dockerfile: Path) -> str:
    """The image's last USER (``uid:gid``)."""
    return [arguments for keyword, arguments in dockerfile_instructions(dockerfile) if keyword == "USER"][-1]


def _to_local(text: str, mapping: dict[str, Path]) -> str:
    """``text`` with each image path in ``mapping`` replaced by its local stand-in."""
    for image_path in sorted(mapping, key=len, reverse=True):
        text = re.sub(rf"(?<![\w./-]){re.escape(image_path)}(?=[/\s\"']|$)", str(mapping[image_path]), text)
    return text


def image_env(dockerfile: Path, mapping: dict[str, Path]) -> dict:
    """The Dockerfile's ENV variables, image paths in them mapped to local ones."""
    env = {}
    for keyword, arguments in dockerfile_instructions(dockerfile):
        if keyword == "ENV":
            env.update({name: _to_local(value, mapping) for name, value in env_pairs(arguments).items()})
    return env


def _build_env() -> dict:
    """The host's environment without what would steer Python or the service."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("XGB_", "BENTOML_", "PYTHON")) and name != "VIRTUAL_ENV"
    }


def replay_dockerfile(dockerfile: Path, context: Path, python: Path, stage: Path, task: Path | None) -> None:
    """Run the Dockerfile's steps here, with ``python`` (a fresh virtual environment) as the base
    image's Python and ``pip`` installing into it.

    With ``task`` None, the steps before the code is copied in: they build the Python
    environment, with the files they COPY staged in ``stage``. Otherwise the steps from that copy
    on, with ``task`` (a copy of the build context's ``app/``) as the code directory.
    """
    stage.mkdir(parents=True, exist_ok=True)
    shim = stage / "bin"
    shim.mkdir(exist_ok=True)
    (shim / "pip").write_text(  # the image's pip, reaching this machine's indexes as its user does
        f"#!/bin/sh\nHOME={shlex.quote(os.environ.get('HOME', '/root'))} exec {shlex.quote(sys.executable)} "
        f'-m pip --python {shlex.quote(str(python))} "$@"\n'
    )
    (shim / "pip").chmod(0o755)
    where_code_goes = code_dir(dockerfile)
    mapping: dict[str, Path] = {} if task is None else {where_code_goes: task}
    env, workdir, code_copied = {}, stage, False
    for keyword, arguments in dockerfile_instructions(dockerfile):
        if keyword == "ENV":
            env.update(env_pairs(arguments))
        elif keyword == "WORKDIR":
            workdir = Path(_to_local(arguments, mapping))
        elif keyword == "COPY":
            *sources, destination = shlex.split(arguments)
            if sources == ["app/"]:
                code_copied = True
                continue  # ``task`` is that copy (read_only_copy)
            for source in sources:
                image_path = destination + Path(source).name if destination.endswith("/") else destination
                mapping[image_path] = stage / Path(image_path).name
                if task is None:
                    shutil.copyfile(context / source, mapping[image_path])
        elif keyword == "RUN" and code_copied == (task is not None):
            run_env = {
                **_build_env(),
                **{name: _to_local(value, mapping) for name, value in env.items()},
                "PATH": f"{shim}:{python.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            }
            result = subprocess.run(
                ["/bin/sh", "-c", _to_local(arguments, mapping)],
                cwd=workdir,
                env=run_env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert result.returncode == 0, f"RUN {arguments}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"


def build_image_env(context: Path, root: Path) -> Path:
    """The image's Python environment at ``root``: a fresh virtual environment (the base image's
    Python) through the Dockerfile's steps up to the code's copy. Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    replay_dockerfile(
        context / "env" / "docker" / "Dockerfile", context, python, root.parent / f"{root.name}-stage", task=None
    )
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
    return python


def precompile(python: Path, task: Path) -> None:
    """The Dockerfile's steps after the code's copy (the handler's import that writes the
    bytecode a cold start loads), as root, on ``task`` made by :func:`read_only_copy`."""
    replay_dockerfile(task.parent / "Dockerfile", task.parent, python, task.parent / "stage", task=task)


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
    shutil.copyfile(context / "env" / "docker" / "Dockerfile", root / "Dockerfile")
    (root / "Dockerfile").chmod(0o644)
    for path in [task, *task.rglob("*")]:
        mode = path.stat().st_mode
        os.chmod(
            path,
            (
                mode
                | stat.S_IRUSR
                | stat.S_IRGRP
                | stat.S_IROTH
                | (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH if path.is_dir() else 0)
            ),
        )
    return task


def lambda_env(task: Path) -> dict:
    """The image's environment, read from its Dockerfile's ENV lines with the code directory
    mapped to this copy of it (``task``, made by :func:`read_only_copy`), and the host's PATH."""
    dockerfile = task.parent / "Dockerfile"
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **image_env(dockerfile, {code_dir(dockerfile): task})}


def read_only_prefix(task: Path) -> list[str]:
    """A command prefix under which ``task`` cannot be written, as on Lambda: as root, run as the
    image's USER (from the Dockerfile :func:`read_only_copy` put beside ``task``)."""
    if os.geteuid() == 0:
        user, group = image_user(task.parent / "Dockerfile").split(":")
        return ["setpriv", f"--reuid={user}", f"--regid={group}", "--clear-groups", "--"]
    script = f'mount --bind "{task}" "{task}" && mount -o remount,bind,ro "{task}" && exec "$@"'
    return ["unshare", "-r", "-m", "sh", "-c", script, "sh"]


def run_read_only(argv: list[str], task: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        read_only_prefix(task) + argv, env=env, capture_output=True, text=True, timeout=timeout, cwd="/tmp"
    )


def invoke(task, events, python=sys.executable, repeat=0):
    """Send events to the handler in a fresh read-only process; return the driver's report."""
    events_file = task.parent / f"events-{len(events)}-{abs(hash(json.dumps(events))) % 10**8}.json"
    events_file.write_text(json.dumps(events))
    events_file.chmod(0o644)
    result = run_read_only([python, str(DRIVER), str(task), str(events_file), str(repeat)], task, lambda_env(task))
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
