"""bench/processes.py's free_port under its former name, for tests/deploy_harness.py (not this
change's to edit) until its import names bench.processes."""

from bench.processes import free_port  # noqa: F401
