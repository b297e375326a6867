"""Call a Lambda handler as awslambdaric calls it, without the Runtime API: import its module
once, then call it per event, in one process. deploy/lambda_runtime.run_in_process runs it, in
whichever Python environment is being checked, from the read-only code directory:

    python lambda_driver.py CODE_DIR MODULE[:snapstart] EVENTS_JSON [REPEAT [LAUNCHED_AT]]

REPEAT more calls with the first event are timed one by one (the warm calls). LAUNCHED_AT is
``time.monotonic()`` in the launcher just before it started this process (the clock is the
machine's, shared by both), so the cold start can count the interpreter's own start. Prints one
JSON object last: every answer, the cold start (from the launch and from this script's start
to the first answer), the import, the warm calls, and, for a handler module with a BentoML
``service``, how many distinct loaded models its runner held from import on (1: loaded once
per container).

``MODULE:snapstart`` plays SnapStart's order after the import (the init): awslambdaric's
before-snapshot hooks, the snapshot point, its after-restore hooks, then the events; the report
adds ``init_s`` (launch to the snapshot point: what a snapshot would hold) and
``restore_first_answer_s`` (the after-restore hooks' start to the first answer). No process is
really checkpointed: the restore is the same process carrying on.
"""

import importlib
import json
import sys
import time

started = time.monotonic()


def main() -> None:
    code_dir, module_arg, events_path = sys.argv[1:4]
    module_name, _, mode = module_arg.partition(":")
    if mode not in ("", "snapstart"):
        raise SystemExit(f"unknown mode {mode!r}: MODULE or MODULE:snapstart")
    repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    launched_at = float(sys.argv[5]) if len(sys.argv) > 5 else started
    sys.path[0] = code_dir  # the code directory in place of this script's, as /var/task on Lambda
    with open(events_path) as file:
        events = json.load(file)

    module = importlib.import_module(module_name)
    imported = time.monotonic()
    service = getattr(module, "service", None)
    if service is not None:
        from src.bentoml_adapter import loaded_runnable  # the Bento's code, beside the handler

    def loaded_model():
        """The runner's loaded model (None: not loaded yet); another object means it was loaded
        again. Each one seen is kept, so no object's identity can be reused."""
        return None if service is None else loaded_runnable(service.runners[0])

    models_seen = [loaded_model()]  # at import: a load during the first event is a second load
    snapshot = {}
    if mode == "snapstart":
        from awslambdaric import lambda_runtime_hooks_runner  # as awslambdaric 4.2.2 runs them

        lambda_runtime_hooks_runner.run_before_snapshot()
        snapshot["init_s"] = time.monotonic() - launched_at
        restoring = time.monotonic()
        lambda_runtime_hooks_runner.run_after_restore()
        snapshot["after_restore_hooks_s"] = time.monotonic() - restoring
    responses = [module.handler(event, None) for event in events[:1]]
    answered = time.monotonic()
    if snapshot:
        snapshot["restore_first_answer_s"] = answered - restoring
    models_seen.append(loaded_model())
    responses += [module.handler(event, None) for event in events[1:]]

    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        module.handler(events[0], None)
        warm.append(time.perf_counter() - t0)
    models_seen.append(loaded_model())

    report = {
        "responses": responses,
        "cold_s": answered - launched_at,
        "cold_start_s": answered - started,
        "interpreter_s": started - launched_at,
        "import_s": imported - started,
        "warm_s": warm,
        "model_loads": None if service is None else len({id(model) for model in models_seen}),
        **snapshot,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
