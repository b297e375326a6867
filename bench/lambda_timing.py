"""Time a Lambda handler as awslambdaric runs it: import it once, then call it per event.

    python lambda_timing.py CODE_DIR MODULE EVENTS_JSON REPEAT LAUNCHED_AT

LAUNCHED_AT is ``time.monotonic()`` in the launcher just before it started this process (the
clock is the machine's, shared by both), so the cold start counts the interpreter's own start.
Prints one JSON line last: the first answer's status, the cold start (launch to first answer),
the import time and the warm time of each repeated event. Used by bench/run.py for our handler
and the hand-written peer alike.
"""

import importlib
import json
import sys
import time

started = time.monotonic()
code_dir, module_name, events_path = sys.argv[1], sys.argv[2], sys.argv[3]
repeat, launched_at = int(sys.argv[4]), float(sys.argv[5])
sys.path.insert(0, code_dir)
with open(events_path) as file:
    events = json.load(file)

module = importlib.import_module(module_name)
imported = time.monotonic()
first = module.handler(events[0], None)
answered = time.monotonic()

warm = []
for _ in range(repeat):
    t0 = time.perf_counter()
    module.handler(events[0], None)
    warm.append(time.perf_counter() - t0)

print(
    json.dumps(
        {
            "status": first["statusCode"],
            "body": first["body"],
            "cold_s": answered - launched_at,
            "interpreter_s": started - launched_at,
            "import_s": imported - started,
            "warm_s": warm,
        }
    )
)
