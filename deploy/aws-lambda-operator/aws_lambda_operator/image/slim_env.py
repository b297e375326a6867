"""Remove what serving never loads from the image's site-packages: packages' own test suites.

Run by the Dockerfile after `pip install --no-compile`; the tests and the benchmark build the
image's environment with the same steps, so the size they report is the image's.
Bytecode is produced afterwards by importing the handler once, so only modules a cold start
actually imports are compiled (pip would compile everything: about 90 MB here).
"""

import shutil
import sys
import sysconfig
from pathlib import Path

site_packages = Path(sys.argv[1] if len(sys.argv) > 1 else sysconfig.get_paths()["purelib"])
removed = 0
for directory in sorted(site_packages.glob("*/**/")):
    if directory.name in ("tests", "test") and directory.is_dir():
        removed += sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        shutil.rmtree(directory)
print(f"removed {removed / 2**20:.0f} MB of test suites from {site_packages}")
