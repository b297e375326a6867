"""Remove what serving never loads from the image's site-packages.

Run by the Dockerfile after `pip install --no-compile`; the tests and the benchmark build the
image's environment with the same steps, so the size they report is the image's. Removed:
- packages' own test suites;
- type stubs and Cython sources (``.pyi``, ``.pxd``, ``.pyx``, ``.pxi``): never imported;
- all of SciPy but what xgboost imports at load: xgboost needs ``scipy.sparse`` (to recognise
  sparse input; the service only ever passes dense arrays), so the package's top level,
  ``scipy._lib`` and ``scipy.sparse`` stay, without its solvers (``linalg``, ``csgraph``).
  ``scipy.special`` goes too, and with it the OpenBLAS in ``scipy.libs``: only xgboost's
  scikit-learn wrappers import it, which xgboost loads only when it can (the Lambda handler
  loads a ``Booster``; ``bentoml.xgboost`` expects the wrappers to be missing);
- httpx's command-line client (``httpx/_main.py``): httpx goes on without it, and it would
  load rich, click and pygments at every cold start.
Bytecode is produced afterwards by importing the handler once, so only modules a cold start
actually imports are compiled (pip would compile everything: about 90 MB here).
"""

import shutil
import sys
import sysconfig
from pathlib import Path

SCIPY_KEPT = {"_lib", "sparse"}
SCIPY_SPARSE_REMOVED = ("linalg", "csgraph")
SOURCE_SUFFIXES = (".pyi", ".pxd", ".pyx", ".pxi")


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def remove(path: Path) -> int:
    freed = size(path)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    return freed


def removable(site_packages: Path) -> list[Path]:
    paths = [d for d in site_packages.glob("*/**/") if d.name in ("tests", "test") and d.is_dir()]
    paths += [f for f in site_packages.rglob("*") if f.suffix in SOURCE_SUFFIXES and f.is_file()]
    scipy = site_packages / "scipy"
    if scipy.is_dir():
        paths += [d for d in scipy.iterdir() if d.is_dir() and d.name not in SCIPY_KEPT and d.name != "__pycache__"]
        paths += [scipy / "sparse" / name for name in SCIPY_SPARSE_REMOVED if (scipy / "sparse" / name).is_dir()]
        paths += [site_packages / "scipy.libs"] if (site_packages / "scipy.libs").is_dir() else []
    paths += [p for p in [site_packages / "httpx" / "_main.py"] if p.is_file()]
    # a path inside one removed already is not removed twice
    paths = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in paths:
        if not any(parent in path.parents for parent in kept):
            kept.append(path)
    return kept


def main(site_packages: Path) -> None:
    freed = sum(remove(path) for path in removable(site_packages))
    print(f"removed {freed / 2**20:.0f} MB that serving never loads from {site_packages}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else sysconfig.get_paths()["purelib"]))
