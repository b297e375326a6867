"""Run the Lambda handler as awslambdaric would: import it once, then call it per event.

    python lambda_driver.py CODE_DIR EVENTS_JSON [REPEAT]

Prints one JSON object: the handler's responses, the cold-start time (process start to the
first answer), the import time, the warm time per event, and how many distinct loaded models
the runner held from import on (1: loaded once per container). Used by the tests and the
benchmarks, in whichever Python environment is being checked.
"""

import json
import sys
import time

started = time.perf_counter()
code_dir, events_path = sys.argv[1], sys.argv[2]
repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 0
sys.path.insert(0, code_dir)
events = json.loads(open(events_path).read())

import lambda_app  # noqa: E402

imported = time.perf_counter()
from src.bentoml_adapter import loaded_runnable  # noqa: E402  (the Bento's code, beside lambda_app)


def loaded_model():
    """The runner's loaded model: another object means the model was loaded again. The driver
    keeps each one it sees, so no object's identity can be reused."""
    return loaded_runnable(lambda_app.service.runners[0])  # None: not loaded yet


models_seen = [loaded_model()]  # at import: a load during the first event is a second load
responses = [lambda_app.handler(event, None) for event in events[:1]]
first = time.perf_counter()
models_seen.append(loaded_model())
responses += [lambda_app.handler(event, None) for event in events[1:]]

warm = []
for _ in range(repeat):
    t0 = time.perf_counter()
    lambda_app.handler(events[0], None)
    warm.append(time.perf_counter() - t0)
models_seen.append(loaded_model())

print(
    json.dumps(
        {
            "responses": responses,
            "import_s": imported - started,
            "cold_start_s": first - started,
            "warm_s": warm,
            "model_loads": len({id(model) for model in models_seen}),
        }
    )
)
