"""The Lambda image's Python environment without Docker: the build context's Dockerfile replayed
here (its ENV, COPY, WORKDIR and RUN lines, read from the file), with a fresh virtual
environment as the base image's Python. The tests check the environment this builds (complete,
serving-only, small) and the benchmarks time the handler in it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from deploy.lambda_runtime import code_dir, dockerfile_instructions, env_pairs, to_local


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
            workdir = Path(to_local(arguments, mapping))
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
                **{name: to_local(value, mapping) for name, value in env.items()},
                "PATH": f"{shim}:{python.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            }
            result = subprocess.run(
                ["/bin/sh", "-c", to_local(arguments, mapping)],
                cwd=workdir,
                env=run_env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            if result.returncode != 0:
                raise RuntimeError(f"RUN {arguments}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")


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
    bytecode a cold start loads), as root, on ``task`` made by read_only_copy."""
    replay_dockerfile(task.parent / "Dockerfile", task.parent, python, task.parent / "stage", task=task)


def site_packages(python: Path) -> Path:
    """The site-packages folder of the virtual environment ``python`` belongs to."""
    return next((python.parent.parent / "lib").glob("python3.*/site-packages"))


def site_packages_mb(python: Path) -> float:
    return sum(f.stat().st_size for f in site_packages(python).rglob("*") if f.is_file()) / 2**20
