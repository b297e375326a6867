"""Benchmarks, side by side in one run: our service and Lambda handler against their peers.

    python -m bench.run                          # `make bench`: about 7 minutes on 2 cores
    python -m bench.run --duration 2 --soak 10 --cold-runs 2     # a quicker look

HTTP, each server with wrk at concurrency 1 and 32 and bodies of 1 and 1,000 rows:
- floor: in-process ``inplace_predict`` on the booster (no HTTP);
- plain: bench/plain_app.py (same model, same input checks, no framework), uvicorn, one worker;
- tutorial: bench/peers/tutorial_service.py, the tutorial's service with the stock runner;
- new-style: bench/peers/new_style_service.py, the ``@bentoml.service`` BentoML recommends;
- ours: ``bentoml serve src.service:svc`` as users run it.
Each repetition starts every server afresh (in a rotating order), checks its answers against
the booster's, warms it up and measures every cell; ratios are taken between figures of the
same repetition. Then ours runs a sustained soak while its resident memory is sampled.

Lambda, in an environment built by replaying the image's Dockerfile, from a read-only code
directory: our handler and a hand-written one without BentoML (bench/peers/lambda_handler.py),
each timed from a fresh process to its first answer (cold) and per event (warm), alternately;
then ours on Step Functions batches (a Distributed Map's ItemBatcher events, the rows as an
ItemReader reads the generator's CSV) of several sizes: the handler's time per batch.

Every figure is the median of the repetitions with their range; results go to
bench/results.md and bench/results.json. Everything runs in bench/work/ with its own BentoML
home: the user's ~/bentoml is not touched.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK = BENCH_DIR / "work"
HOME = WORK / "bentoml-home"
os.environ["BENTOML_HOME"] = str(HOME)  # before bentoml is imported anywhere
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")

import numpy as np  # noqa: E402

from bench.breakdown import import_costs  # noqa: E402
from bench.processes import Server, free_port, start_server  # noqa: E402
from src import config  # noqa: E402
from src.batch_score import CHUNK_ROWS  # noqa: E402
from src.bentoml_adapter import XGBOOST_MODEL_FILE  # noqa: E402

ROW = config.EXAMPLE_ROWS[0]
CELLS = [("1 row, c=1", 1, 1), ("1 row, c=32", 32, 1), ("1000 rows, c=1", 1, 1000), ("1000 rows, c=32", 32, 1000)]
SERVERS = {  # name: (label, answers probabilities rather than labels, body wraps the rows in {"features": ...})
    "plain": ("plain ASGI", False, False),
    "ours": ("ours", False, False),
    "tutorial": ("tutorial (stock runner)", True, False),
    "new_style": ("new-style @bentoml.service", False, True),
}
SERVE_TARGETS = {
    "ours": "src.service:svc",
    "tutorial": "bench.peers.tutorial_service:svc",
    "new_style": "bench.peers.new_style_service:Classifier",
}
PEERS = ("plain", "tutorial", "new_style")
OTHER_LOAD_LIMIT = 0.25  # cores other processes may use during a cell before it is measured again
MAX_ATTEMPTS = 3
HAND_MODULE = "bench_hand_handler"  # the hand-written handler's name in the code directory
# The mixed cell: 1-row requests at SMALL_CONCURRENCY while bodies just under the size limit
# arrive at BIG_CONCURRENCY, against ours as served and ours parsing and predicting all inline.
SMALL_CONCURRENCY, BIG_CONCURRENCY = 8, 2
MIXED_SERVERS = {"ours": {}, "ours_inline": {"XGB_OFF_LOOP_PARSE_BYTES": "0", "XGB_OFF_LOOP_PREDICT_ROWS": "0"}}
started_at = time.monotonic()


def log(*parts) -> None:
    print(f"[{time.monotonic() - started_at:6.0f} s]", *parts, flush=True)


def spread(values: list[float]) -> dict:
    """Median and range of the repetitions' values."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


# ---------------------------------------------------------------------------- set-up


def ensure_model() -> str:
    """Reuse the bench store's model, or generate data and train one."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return str(bentoml.models.get(f"{config.MODEL_NAME}:latest").tag)
    except NotFound:
        pass
    from src.generate_data import write_dataset
    from src.train import train

    return train(write_dataset(WORK / "data.csv"), report_dir=None).tag


def build_bento() -> str:
    """`bentoml build .` in the bench store, as `make build` runs it; returns the Bento's tag
    (BentoML's ``--output tag`` line)."""
    result = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", ".", "--output", "tag"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    tags = [line.split(":", 1)[1] for line in result.stdout.splitlines() if line.startswith("__tag__:")]
    assert result.returncode == 0 and tags, f"bentoml build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return tags[-1]


def row_sets() -> dict[int, np.ndarray]:
    rng = np.random.default_rng(0)
    return {1: np.asarray([ROW]), 1000: rng.normal(scale=2, size=(1000, config.N_FEATURES)).round(6)}


def body_files(rows: dict[int, np.ndarray]) -> dict[tuple[int, bool], Path]:
    """One file per row count and body shape: the bare array, or ``{"features": array}``."""
    files = {}
    for count, array in rows.items():
        for wrapped in (False, True):
            path = WORK / f"body-{count}{'-wrapped' if wrapped else ''}.json"
            data = array.tolist()
            path.write_text(json.dumps({"features": data} if wrapped else data))
            files[count, wrapped] = path
    return files


# ---------------------------------------------------------------------------- servers


def post(url: str, body: bytes, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{url}/classify", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def start(name: str, tag: str, model_file: Path, first_body: bytes, extra_env: dict | None = None) -> Server:
    """One of SERVERS on a free port, ready once it answers ``first_body`` with a 200."""
    port = free_port()
    if name == "plain":
        argv = [sys.executable, "-m", "uvicorn", "bench.plain_app:app", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
        env = {"MODEL_FILE": str(model_file)}
    else:
        argv = [sys.executable, "-m", "bentoml", "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += [SERVE_TARGETS[name]]
        env = {"XGB_MODEL_TAG": tag}
    return start_server(
        argv,
        port,
        cwd=ROOT,
        env={**os.environ, **env, **(extra_env or {})},
        log=WORK / f"{name}.log",
        ready=lambda url: post(url, first_body, timeout=2)[0] == 200,
        timeout=120,
        poll_s=0.02,
        name=name,
    )


def check_answers(server: Server, body: Path, rows: np.ndarray, booster) -> None:
    """The server predicts what the booster predicts: labels, or the tutorial's probabilities."""
    status, raw = post(server.url, body.read_bytes())
    answer = np.asarray(json.loads(raw))
    proba = booster.inplace_predict(rows.astype(np.float32))
    assert status == 200, (server.name, status, raw[:300])
    if SERVERS[server.name][1]:
        np.testing.assert_allclose(answer, proba, rtol=1e-5, err_msg=server.name)
    else:
        assert answer.tolist() == (proba >= config.DECISION_THRESHOLD).astype(int).tolist(), server.name


# ---------------------------------------------------------------------------- load


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (steal included: the host's other guests)."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its descendants."""
    import psutil

    total = 0.0
    parent = psutil.Process(pid)
    for process in [parent, *parent.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def wrk(url: str, body: Path, concurrency: int, duration: float, server_pid: int | None = None) -> dict:
    """wrk against 127.0.0.1 only; one thread; the figures from bench/post.lua's JSON line, and
    the CPU (in cores) that neither the server nor wrk used meanwhile: the machine's other load."""
    import resource

    assert url.startswith("http://127.0.0.1:"), url
    argv = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(BENCH_DIR / "post.lua"),
        f"{url}/classify",
    ]
    before = (
        time.monotonic(),
        machine_busy_s(),
        tree_cpu_s(server_pid) if server_pid else 0.0,
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    result = subprocess.run(
        argv, env={**os.environ, "BODY_FILE": str(body)}, capture_output=True, text=True, timeout=duration + 60
    )
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, busy = time.monotonic() - before[0], machine_busy_s() - before[1]
    server_cpu = tree_cpu_s(server_pid) - before[2] if server_pid else 0.0
    wrk_cpu = children.ru_utime + children.ru_stime - before[3].ru_utime - before[3].ru_stime
    match = re.search(r"^JSON (.*)$", result.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk failed: {result.stdout}\n{result.stderr}")
    raw = json.loads(match.group(1))
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "requests": raw["requests"],
        "errors": raw["errors"] + raw["non2xx"],
        "server_cores": server_cpu / wall,
        "other_cores": max(0.0, (busy - server_cpu - wrk_cpu) / wall),
    }


def wait_for_quiet(longest_s: float = 15) -> float:
    """Between cells (the server idle, no wrk): wait, at most ``longest_s``, until the machine's
    other processes use at most OTHER_LOAD_LIMIT cores over half a second. Returns the wait."""
    waited = 0.0
    while waited < longest_s:
        busy, started = machine_busy_s(), time.monotonic()
        time.sleep(0.5)
        waited += 0.5
        if (machine_busy_s() - busy) / (time.monotonic() - started) <= OTHER_LOAD_LIMIT:
            break
    return waited


def measure(server: Server, bodies: dict, duration: float) -> dict:
    """Every cell, each started once the machine is quiet; a cell during which other processes
    still took more than OTHER_LOAD_LIMIT cores is measured again (up to MAX_ATTEMPTS times) and
    the attempt with the least other load is kept: the same rule for every server."""
    wrapped = SERVERS[server.name][2]
    wrk(server.url, bodies[1, wrapped], 8, 2)  # warm-up
    cells = {}
    for label, concurrency, rows in CELLS:
        attempts: list[dict] = []
        while len(attempts) < MAX_ATTEMPTS and (not attempts or attempts[-1]["other_cores"] > OTHER_LOAD_LIMIT):
            waited = wait_for_quiet()
            attempts.append(
                {
                    **wrk(server.url, bodies[rows, wrapped], concurrency, duration, server.process.pid),
                    "waited_s": waited,
                }
            )
        cells[label] = {**min(attempts, key=lambda a: a["other_cores"]), "attempts": len(attempts)}
    return {
        "launch_to_first_200_s": server.ready_after_s,
        "rss_after_warmup_mb": server.rss_mb(),
        "cells": cells,
    }


def big_body_file() -> Path:
    """A body of as many rows as fit under the size limit (src.config.MAX_BODY_BYTES)."""
    from src.validation import event_body_size

    rows = np.random.default_rng(11).normal(scale=2, size=(config.MAX_ROWS, config.N_FEATURES)).round(6).tolist()
    count = len(rows)
    while event_body_size(raw := json.dumps(rows[:count]).encode()) > config.MAX_BODY_BYTES:
        count = int(count * config.MAX_BODY_BYTES / event_body_size(raw) * 0.999)
    path = WORK / "body-big.json"
    path.write_bytes(raw)
    return path


def mixed_cell(server: Server, small: Path, big: Path, duration: float) -> dict:
    """The small requests' p99 alone, then while big bodies arrive beside them (same duration)."""
    wait_for_quiet()
    alone = wrk(server.url, small, SMALL_CONCURRENCY, duration, server.process.pid)
    wait_for_quiet()
    heavy: dict = {}
    thread = threading.Thread(target=lambda: heavy.update(wrk(server.url, big, BIG_CONCURRENCY, duration + 2)))
    thread.start()
    time.sleep(1)  # the big bodies are arriving
    beside = wrk(server.url, small, SMALL_CONCURRENCY, duration, server.process.pid)
    thread.join()
    return {
        "alone_p99_ms": alone["p99_ms"],
        "mixed_p99_ms": beside["p99_ms"],
        "mixed_p50_ms": beside["p50_ms"],
        "p99_ratio": beside["p99_ms"] / alone["p99_ms"],
        "big_rps": heavy["rps"],
        "errors": alone["errors"] + beside["errors"] + heavy["errors"],
        "other_cores": beside["other_cores"],
    }


def mixed_runs(tag: str, model_file: Path, bodies: dict, args) -> dict:
    """The mixed cell for each of MIXED_SERVERS, ``args.repeat`` times, alternately."""
    big = big_body_file()
    runs: dict = {name: [] for name in MIXED_SERVERS}
    for rep in range(args.repeat):
        for name, extra_env in MIXED_SERVERS.items():
            server = start("ours", tag, model_file, bodies[1, False].read_bytes(), extra_env)
            try:
                wrk(server.url, bodies[1, False], SMALL_CONCURRENCY, 2)  # warm-up
                status, _ = post(server.url, big.read_bytes(), timeout=30)
                assert status == 200, (name, status)
                runs[name].append(mixed_cell(server, bodies[1, False], big, args.duration))
                log(f"mixed run {rep + 1}/{args.repeat} {name}:", {k: round(v, 2) for k, v in runs[name][-1].items()})
            finally:
                server.stop()
    return {
        "big_body_bytes": big.stat().st_size,
        **{name: {key: spread([r[key] for r in reps]) for key in reps[0]} for name, reps in runs.items()},
    }


def soak(server: Server, body: Path, seconds: float) -> dict:
    before = server.rss_mb()
    samples, result = [], {}
    thread = threading.Thread(target=lambda: result.update(wrk(server.url, body, 32, seconds, server.process.pid)))
    thread.start()
    while thread.is_alive():
        samples.append(server.rss_mb())
        thread.join(timeout=2)
    after = server.rss_mb()
    return {
        "seconds": seconds,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "rss_peak_mb": max(samples + [after]),
        "growth": after / before - 1,
        **{k: result[k] for k in ("requests", "errors", "rps", "p99_ms", "server_cores", "other_cores")},
    }


def http_runs(tag: str, model_file: Path, booster, rows: dict, bodies: dict, args) -> tuple[dict, dict]:
    """Every server through every cell, ``args.repeat`` times; the soak after ours' first run."""
    runs: dict[str, list] = {name: [] for name in SERVERS}
    soak_result: dict = {}
    order = list(SERVERS)
    for rep in range(args.repeat):
        for name in order[rep % len(order) :] + order[: rep % len(order)]:
            wrapped = SERVERS[name][2]
            server = start(name, tag, model_file, bodies[1, wrapped].read_bytes())
            try:
                check_answers(server, bodies[1000, wrapped], rows[1000], booster)
                runs[name].append(measure(server, bodies, args.duration))
                summary = {cell: round(v["rps"]) for cell, v in runs[name][-1]["cells"].items()}
                log(f"run {rep + 1}/{args.repeat} {name}: req/s {summary}")
                if name == "ours" and rep == 0 and args.soak:
                    soak_result = soak(server, bodies[1, False], args.soak)
                    log("soak", json.dumps(soak_result))
            finally:
                server.stop()
    return runs, soak_result


# ---------------------------------------------------------------------------- floor


def floor(booster, rows: dict, repeat: int, iterations: int = 3000) -> dict:
    out: dict = {}
    for count, array in rows.items():
        features = array.astype(np.float32)
        p50s, p99s = [], []
        for _ in range(repeat):
            times = []
            for _ in range(iterations if count == 1 else iterations // 10):
                t0 = time.perf_counter()
                booster.inplace_predict(features, validate_features=False)
                times.append(time.perf_counter() - t0)
            p50s.append(statistics.median(times) * 1000)
            p99s.append(float(np.percentile(times, 99)) * 1000)
        out["1 row" if count == 1 else f"{count} rows"] = {"p50_ms": spread(p50s), "p99_ms": spread(p99s)}
    return out


def layer_breakdown(tag: str, repeat: int) -> list[dict]:
    """bench/breakdown.py's per-layer costs of ours, ``repeat`` fresh processes: median and range."""
    runs = []
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, "-m", "bench.breakdown", "layers"],
            cwd=ROOT,
            env={**os.environ, "XGB_MODEL_TAG": tag},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return [
        {
            "layer": layers[0]["layer"],
            **{key: spread([layer[key] for layer in layers]) for key in ("median_us", "own_us")},
        }
        for layers in zip(*runs, strict=True)
    ]


def request_log_alone(repeat: int) -> dict:
    """bench/breakdown.py's request-log costs, ``repeat`` fresh processes: median and range."""
    runs = []
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, "-m", "bench.breakdown", "request-log"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {key: spread([run[key] for run in runs]) for key in runs[0]}


# ---------------------------------------------------------------------------- batch scoring

BATCH_ROWS = (1_000_000, 10_000_000)  # the file sizes scored; the larger is the smaller's rows repeated


def batch_files() -> tuple[np.ndarray, dict[int, Path]]:
    """One million generated rows, and a CSV of each of BATCH_ROWS made of them."""
    rows = np.random.default_rng(13).normal(scale=2, size=(BATCH_ROWS[0], config.N_FEATURES)).round(6)
    block = "\n".join(",".join(map(repr, row)) for row in rows.tolist()).encode() + b"\n"
    files = {}
    for count in BATCH_ROWS:
        path = WORK / f"batch-{count}.csv"
        with path.open("wb") as file:
            file.write(",".join(config.FEATURE_NAMES).encode() + b"\n")
            for _ in range(count // BATCH_ROWS[0]):
                file.write(block)
        files[count] = path
    return rows, files


def batch_score_run(tag: str, path: Path) -> dict:
    """`python -m src.batch_score` on ``path``: rows/s, and the peak, sampled every 20 ms, of its
    processes' RSS summed (the job's and its workers', so that the pages they share count in
    each: PSS would count them once, but reading it costs the cores the job runs on)."""
    import psutil

    output = WORK / "batch-out.csv"
    argv = [sys.executable, "-m", "src.batch_score", str(path), str(output), "--model", tag]
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watched, peak, processes = psutil.Process(process.pid), 0, []
    for sample in itertools.count():
        if process.poll() is not None:
            break
        try:
            if not processes or sample % 25 == 0:  # listed every 0.5 s: a listing reads every process's stat
                processes = [watched, *watched.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in processes))
        except psutil.NoSuchProcess:
            processes = []  # a worker, or the job, ended since the listing: list them again
        time.sleep(0.02)
    wall = time.monotonic() - started
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr.decode()[-3000:]
    summary = stdout.decode().strip().splitlines()[-1]
    scored = int(re.search(r"scored ([\d,]+) of", summary).group(1).replace(",", ""))
    output.unlink()
    return {"rows_per_s": scored / wall, "peak_rss_mb": peak / 2**20, "seconds": wall}


def batch_runs(tag: str, booster, repeat: int) -> dict:
    """Each of BATCH_ROWS scored ``repeat`` times, beside the floor: ``inplace_predict`` on the
    same rows, in the same chunks and with the same threads (all cores) as the job."""
    rows, files = batch_files()
    features = rows.astype(np.float32)
    booster.set_param({"nthread": 0})
    chunk = CHUNK_ROWS
    floors, runs = [], {count: [] for count in BATCH_ROWS}
    for rep in range(repeat):
        started = time.perf_counter()
        for start in range(0, len(features), chunk):
            booster.inplace_predict(features[start : start + chunk], validate_features=False)
        floors.append(len(features) / (time.perf_counter() - started))
        for count, path in files.items():
            runs[count].append(batch_score_run(tag, path))
        log(f"batch run {rep + 1}/{repeat}:", {c: round(r[-1]["rows_per_s"]) for c, r in runs.items()})
    booster.set_param({"nthread": 1})
    for path in files.values():
        path.unlink()
    largest = BATCH_ROWS[-1]
    return {
        "floor_rows_per_s": spread(floors),
        **{str(count): {key: spread([r[key] for r in reps]) for key in reps[0]} for count, reps in runs.items()},
        "ratio_to_floor": spread([r["rows_per_s"] / floor for r, floor in zip(runs[largest], floors, strict=True)]),
        "rss_growth": spread(
            [big["peak_rss_mb"] / small["peak_rss_mb"] - 1 for small, big in zip(*runs.values(), strict=True)]
        ),
    }


# ---------------------------------------------------------------------------- Lambda


# Batch sizes timed on the handler: a small one, the batch_rows default, the most batch_rows allows.
BATCH_EVENT_ROWS = (100, 800, 2000)
BATCH_EVENT_REPEATS = 40


def batch_events() -> dict[int, dict]:
    """One Distributed Map batch per size: the generator's rows read back as CSV text, each with
    its index, as main.tf's ItemSelector wraps them."""
    import csv

    from src.generate_data import write_dataset

    path = write_dataset(WORK / "batch-event-rows.csv", n_rows=max(BATCH_EVENT_ROWS))
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    return {n: {"Items": [{"index": i, "row": row} for i, row in enumerate(rows[:n])]} for n in BATCH_EVENT_ROWS}


def batch_event_runs(task: Path, python: Path, repeat: int) -> dict:
    """Our handler's time per batch, ms, per batch size: ``repeat`` fresh processes of
    BATCH_EVENT_REPEATS warm calls each, the median call of each process."""
    from deploy.lambda_runtime import run_in_process

    figures: dict[int, list[float]] = {n: [] for n in BATCH_EVENT_ROWS}
    for n, event in batch_events().items():
        for _ in range(repeat):
            report = run_in_process(task, [event], python, repeat=BATCH_EVENT_REPEATS)
            answer = report["responses"][0]
            assert answer["scored"] == n and answer["rejected"] == 0, {k: answer[k] for k in ("scored", "rejected")}
            figures[n].append(statistics.median(report["warm_s"]) * 1000)
    log("batch events, ms per batch", {n: round(statistics.median(v), 2) for n, v in figures.items()})
    return {str(n): spread(values) for n, values in figures.items()}


# What deploy/lambda_driver.py's SnapStart mode reports: the init a snapshot would hold, and the
# first answer after the restore point (no process is checkpointed here: CRIU cannot on this kernel).
SNAPSTART_KEYS = ("init_s", "restore_first_answer_s")


def lambda_runs(repeat: int, cold_runs: int, warm_events: int) -> dict:
    """Our handler and the hand-written one, same image environment, same read-only directory."""
    from deploy.lambda_events import http_api_v2
    from deploy.lambda_image_env import build_image_env, precompile, site_packages_mb
    from deploy.lambda_runtime import code_env, context_from_bento, read_only_copy, run_in_process, run_read_only

    tag = build_bento()
    work = Path(tempfile.mkdtemp(dir=WORK, prefix="lambda-"))
    task = None
    try:
        context = context_from_bento(tag, work)  # the build context `make lambda-local` runs
        WORK.chmod(0o755)
        work.chmod(0o755)
        python = build_image_env(context, work / "image-env")
        task = read_only_copy(context)
        precompile(python, task)  # the Dockerfile's last step: bytecode of what a cold start loads
        size = site_packages_mb(python)
        env = code_env(task)
        shutil.copyfile(BENCH_DIR / "peers" / "lambda_handler.py", task / f"{HAND_MODULE}.py")
        compiled = subprocess.run(
            [str(python), "-c", f"import {HAND_MODULE}"],
            cwd=task,
            capture_output=True,
            env={k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"},
            text=True,
        )
        assert compiled.returncode == 0, compiled.stderr[-3000:]
        for path in [task, *task.rglob("*")]:
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
        events = [http_api_v2([ROW])]

        def run(module: str, repeat_events: int) -> dict:
            report = run_in_process(task, events, python, module=module, repeat=repeat_events)
            assert report["responses"][0]["statusCode"] == 200, report["responses"][0]
            return report

        handlers = {"ours": "lambda_app", "hand": HAND_MODULE}
        # Also warms the page cache.
        answers = {name: json.loads(run(module, 0)["responses"][0]["body"]) for name, module in handlers.items()}
        assert answers["ours"] == answers["hand"], answers
        import_ms = {}
        for name, module in handlers.items():
            code = f"import sys; sys.path.insert(0, {str(task)!r}); import {module}"
            timed = run_read_only([str(python), "-X", "importtime", "-c", code], task, env)
            assert timed.returncode == 0, timed.stderr[-3000:]
            import_ms[name] = import_costs(timed.stderr, module)
        cold_keys = ("cold_s", "import_s", *SNAPSTART_KEYS)
        figures: dict = {name: {key: [] for key in (*cold_keys, "warm_p50_ms", "warm_p99_ms")} for name in handlers}
        for rep in range(repeat):
            colds: dict = {name: {key: [] for key in cold_keys} for name in handlers}
            for _ in range(cold_runs):
                for name, module in handlers.items():
                    report = {**run(module, 0), **run(f"{module}:snapstart", 0)}
                    for key in cold_keys:
                        colds[name][key].append(report[key])
            for name, module in handlers.items():
                warm = run(module, warm_events)["warm_s"]
                for key in cold_keys:
                    figures[name][key].append(statistics.median(colds[name][key]))
                figures[name]["warm_p50_ms"].append(statistics.median(warm) * 1000)
                figures[name]["warm_p99_ms"].append(float(np.percentile(warm, 99)) * 1000)
            log(
                f"lambda run {rep + 1}/{repeat}:",
                {name: {k: round(v[-1], 4) for k, v in f.items()} for name, f in figures.items()},
            )
        batch_ms = batch_event_runs(task, python, repeat)
        return {
            "batch_event_ms": batch_ms,
            "imports_ms": import_ms,
            "image_env_mb": size,
            "cold_runs_per_repetition": cold_runs,
            "warm_events": warm_events,
            **{name: {key: spread(values) for key, values in f.items()} for name, f in figures.items()},
        }
    finally:
        if task is not None:
            shutil.rmtree(task.parent, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------- summary


def paired(runs: dict, a: str, b: str, cell: str, key: str) -> dict:
    """``a``'s figure over ``b``'s, repetition by repetition."""
    return spread([ra["cells"][cell][key] / rb["cells"][cell][key] for ra, rb in zip(runs[a], runs[b], strict=True)])


def summarise(runs: dict) -> dict:
    out: dict = {}
    for name, reps in runs.items():
        cells = {
            cell: {
                key: spread([r["cells"][cell][key] for r in reps])
                for key in ("p50_ms", "p99_ms", "rps", "server_cores", "other_cores", "attempts")
            }
            for cell, _, _ in CELLS
        }
        errors = sum(r["cells"][cell]["errors"] for r in reps for cell in r["cells"])
        out[name] = {
            "cells": cells,
            "errors": errors,
            "launch_to_first_200_s": spread([r["launch_to_first_200_s"] for r in reps]),
            "rss_after_warmup_mb": spread([r["rss_after_warmup_mb"] for r in reps]),
        }
    out["ratios"] = {
        peer: {
            cell: {key: paired(runs, "ours", peer, cell, key) for key in ("p50_ms", "p99_ms", "rps")}
            for cell, _, _ in CELLS
        }
        for peer in PEERS
    }
    return out


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import psutil

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def targets(results: dict) -> list[dict]:
    s, lam, soak_result = results["summary"], results["lambda"], results.get("soak") or {}
    ratio = s["ratios"]["plain"]
    c1 = {cell: ratio[cell]["p50_ms"] for cell in ("1 row, c=1", "1000 rows, c=1")}
    worst_c1 = max(c1, key=lambda cell: c1[cell]["median"])
    cold = [o / h for o, h in zip(lam["ours"]["cold_s"]["values"], lam["hand"]["cold_s"]["values"], strict=True)]
    warm = [
        o / h for o, h in zip(lam["ours"]["warm_p50_ms"]["values"], lam["hand"]["warm_p50_ms"]["values"], strict=True)
    ]
    rows = [
        # name, figures (median, min, max), the figure judged, op, limit, unit
        ("1 row c=32 req/s ≥ 1.3× plain, in every run", ratio["1 row, c=32"]["rps"], "min", "≥", 1.3, "×"),
        (f"c=1 p50 ≤ 1.1× plain, every cell (worst: {worst_c1})", c1[worst_c1], "median", "≤", 1.1, "×"),
        ("1 row c=1 p99 ≤ 5× plain", ratio["1 row, c=1"]["p99_ms"], "median", "≤", 5.0, "×"),
        ("1000 rows c=1 req/s ≥ 0.9× plain", ratio["1000 rows, c=1"]["rps"], "median", "≥", 0.9, "×"),
        (
            "mixed cell: 1-row p99 beside 6 MB bodies ≤ 3× alone",
            results["mixed"]["ours"]["p99_ratio"],
            "median",
            "≤",
            3.0,
            "×",
        ),
        (
            "batch scoring, 10M rows: rows/s ≥ 0.5× the floor",
            results["batch"]["ratio_to_floor"],
            "median",
            "≥",
            0.5,
            "×",
        ),
        (
            "batch scoring: peak RSS (all its processes) at 10M rows within +10 % of 1M",
            spread([g * 100 for g in results["batch"]["rss_growth"]["values"]]),
            "median",
            "≤",
            10.0,
            " %",
        ),
        (
            "drift counts in the log line, 1 row, default series ≤ 10 µs",
            results["request_log"]["drift_default"],
            "median",
            "≤",
            10.0,
            " µs",
        ),
        ("Lambda cold start ≤ 1.5× hand-written", spread(cold), "median", "≤", 1.5, "×"),
        ("Lambda warm p50 ≤ 1.5× hand-written", spread(warm), "median", "≤", 1.5, "×"),
        ("image environment ≤ 180 MB", spread([lam["image_env_mb"]]), "median", "≤", 180.0, " MB"),
    ]
    if soak_result:
        rows.append(
            ("RSS after soak ≤ +20 % of warm-up", spread([soak_result["growth"] * 100]), "median", "≤", 20.0, " %")
        )
    out = []
    for name, figure, judged, op, limit, unit in rows:
        value = figure[judged]
        met = value <= limit if op == "≤" else value >= limit
        out.append(
            {
                "name": name,
                "median": figure["median"],
                "min": figure["min"],
                "max": figure["max"],
                "judged": judged,
                "limit": limit,
                "unit": unit,
                "met": met,
                "miss": 0.0 if met else (value / limit - 1 if op == "≤" else 1 - value / limit),
            }
        )
    return out


# ---------------------------------------------------------------------------- report


def fmt(figure: dict, digits: int = 2, unit: str = "") -> str:
    return f"{figure['median']:,.{digits}f}{unit} ({figure['min']:,.{digits}f}–{figure['max']:,.{digits}f})"


def markdown(results: dict) -> str:
    m, s, settings = results["machine"], results["summary"], results["settings"]
    names = list(SERVERS)
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, kernel {m['kernel']}; "
        f"{m['date']}; load average {m['load_average_at_start'][0]} at the start, "
        f"{results['load_average_at_end'][0]} at the end (the machine is shared: other sessions' tests run beside "
        "these figures).",
        f"Command: `{results['command']}` ({results['elapsed_min']:.1f} min). Each figure is the median of "
        f"{settings['repeat']} repetitions, with their range in brackets; each repetition starts every server afresh. "
        f"wrk: one thread, {settings['duration_s']} s per cell, servers and wrk on the same cores. "
        "Ratios are ours over the peer, repetition by repetition (below 1 is faster for p50/p99; above 1 is "
        "faster for req/s).",
        "",
        "Servers: **plain** bench/plain_app.py (no framework, uvicorn, 1 worker; the practical ceiling); "
        "**tutorial** bench/peers/tutorial_service.py (the tutorial's service, stock XGBoost runner, BentoML defaults; "
        "answers probabilities); **new-style** bench/peers/new_style_service.py (`@bentoml.service`, typed input, "
        f"1 worker); **ours** `bentoml serve src.service:svc` ({m['cores']} workers, one per core, each on its own "
        "SO_REUSEPORT socket). "
        "Every server's answers are checked against the booster's before it is measured.",
        "",
    ]
    for key, title, digits in (
        ("p50_ms", "p50 latency, ms", 2),
        ("p99_ms", "p99 latency, ms", 2),
        ("rps", "Requests per second", 0),
    ):
        lines += [
            f"## {title} (POST /classify)",
            "",
            "| cell | " + " | ".join(SERVERS[n][0] for n in names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for cell, _, _ in CELLS:
            lines.append(f"| {cell} | " + " | ".join(fmt(s[n]["cells"][cell][key], digits) for n in names) + " |")
        lines.append("")
    lines += [
        "## CPU during the cells: the server's cores, and other processes' (the machine is shared)",
        "",
        f"Each cell starts once other processes use at most {OTHER_LOAD_LIMIT} cores (waiting up to 15 s); a cell "
        f"during which they used more is measured again, up to {MAX_ATTEMPTS} times, and the attempt with the "
        "least other load kept. Medians over the repetitions, with the largest other load seen.",
        "",
        "| cell | " + " | ".join(SERVERS[n][0] for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for cell, _, _ in CELLS:
        lines.append(
            f"| {cell} | "
            + " | ".join(
                f"{s[n]['cells'][cell]['server_cores']['median']:.2f} "
                f"(other {s[n]['cells'][cell]['other_cores']['median']:.2f}, "
                f"max {s[n]['cells'][cell]['other_cores']['max']:.2f})"
                for n in names
            )
            + " |"
        )
    lines += [
        "",
        "## Ours as a ratio to each peer",
        "",
        "| cell | " + " | ".join(f"÷ {SERVERS[p][0]}: p50 / p99 / req/s" for p in PEERS) + " |",
        "|---|" + "---|" * len(PEERS),
    ]
    for cell, _, _ in CELLS:
        lines.append(
            f"| {cell} | "
            + " | ".join(
                " / ".join(fmt(s["ratios"][p][cell][k], 2, "×") for k in ("p50_ms", "p99_ms", "rps")) for p in PEERS
            )
            + " |"
        )
    fl = results["floor"]
    lines += [
        "",
        f"Floor, in-process `inplace_predict` (no HTTP): 1 row p50 {fmt(fl['1 row']['p50_ms'], 3)} ms, "
        f"p99 {fmt(fl['1 row']['p99_ms'], 3)} ms; 1000 rows p50 {fmt(fl['1000 rows']['p50_ms'], 3)} ms. "
        "Ours at 1 row, c=1: "
        f"{s['ours']['cells']['1 row, c=1']['p50_ms']['median'] / fl['1 row']['p50_ms']['median']:.1f}× "
        "the floor's p50.",
        "",
        "## Start-up and memory",
        "",
        "| | "
        + " | ".join(SERVERS[n][0] for n in names)
        + " | ours ÷ "
        + " / ".join(SERVERS[p][0] for p in PEERS)
        + " |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for key, label in (
        ("launch_to_first_200_s", "launch → first 200, s"),
        ("rss_after_warmup_mb", "RSS after warm-up (all processes), MB"),
    ):
        ratios = " / ".join(f"{s['ours'][key]['median'] / s[p][key]['median']:.2f}×" for p in PEERS)
        lines.append(
            f"| {label} | "
            + " | ".join(fmt(s[n][key], 2 if key.endswith("_s") else 0) for n in names)
            + f" | {ratios} |"
        )
    soak_result = results.get("soak")
    if soak_result:
        lines += [
            "",
            f"Soak of ours, {soak_result['seconds']:.0f} s at c=32, 1 row: {soak_result['requests']:,} requests, "
            f"{soak_result['errors']} errors, {soak_result['rps']:,.0f} req/s, p99 {soak_result['p99_ms']:.1f} ms; "
            f"RSS {soak_result['rss_before_mb']:.0f} MB before, {soak_result['rss_after_mb']:.0f} MB after "
            f"(peak {soak_result['rss_peak_mb']:.0f} MB), growth {soak_result['growth'] * 100:+.1f} %; the server "
            f"used {soak_result['server_cores']:.2f} cores, other processes {soak_result['other_cores']:.2f}.",
        ]
    errors = {n: s[n]["errors"] for n in names}
    lines += ["", f"Errors and non-2xx answers over all cells: {errors}."]
    mixed = results["mixed"]
    lines += [
        "",
        "## Small requests beside big ones (ours)",
        "",
        f"1-row requests at c={SMALL_CONCURRENCY}, for {settings['duration_s']:g} s alone, then for as long while "
        f"bodies of {mixed['big_body_bytes'] / 1e6:.1f} MB (just under the size limit) arrive at "
        f"c={BIG_CONCURRENCY}: ours as served (bodies of {config.OFF_LOOP_PARSE_BYTES / 2**20:g} MiB and more "
        "parsed in a helper process per worker, requests of "
        f"{config.OFF_LOOP_PREDICT_ROWS:,} rows and more predicted on the runner's thread), and ours with "
        "both on the event loop (`XGB_OFF_LOOP_PARSE_BYTES=0 XGB_OFF_LOOP_PREDICT_ROWS=0`).",
        "",
        "| | small p99 alone, ms | small p99 beside big, ms | ratio | small p50 beside, ms | big bodies/s | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (("ours", "ours"), ("ours_inline", "ours, all on the loop")):
        m = mixed[name]
        lines.append(
            f"| {label} | {fmt(m['alone_p99_ms'])} | {fmt(m['mixed_p99_ms'])} | {fmt(m['p99_ratio'], 2, '×')} | "
            f"{fmt(m['mixed_p50_ms'])} | {fmt(m['big_rps'], 1)} | {m['errors']['median']:.0f} |"
        )
    batch = results["batch"]
    lines += [
        "",
        "## Batch scoring (`python -m src.batch_score`)",
        "",
        f"Generated CSVs of {' and '.join(f'{c:,}' for c in BATCH_ROWS)} rows (7 features, 6 decimals), scored by "
        "the command as a user runs it, wall time from launch to exit and the RSS of its processes (the job and its "
        "workers, summed: pages they share count in each) sampled every 20 ms; the floor is "
        "`inplace_predict` on the same rows in the same chunks with the same threads, in process.",
        "",
        "| | rows/s | peak RSS of its processes, MB | seconds |",
        "|---|---|---|---|",
        f"| floor | {fmt(batch['floor_rows_per_s'], 0)} | | |",
    ]
    for count in BATCH_ROWS:
        run = batch[str(count)]
        figures = (fmt(run["rows_per_s"], 0), fmt(run["peak_rss_mb"], 0), fmt(run["seconds"], 1))
        lines.append(f"| {count:,} rows | " + " | ".join(figures) + " |")
    lines += [
        "",
        f"At {BATCH_ROWS[-1]:,} rows: {fmt(batch['ratio_to_floor'], 2, '×')} the floor's rows/s; peak RSS "
        f"{batch['rss_growth']['median'] * 100:+.1f} % against {BATCH_ROWS[0]:,} rows.",
    ]
    lam = results["lambda"]
    cold_ratio = spread(
        [o / h for o, h in zip(lam["ours"]["cold_s"]["values"], lam["hand"]["cold_s"]["values"], strict=True)]
    )
    lines += [
        "",
        "## Lambda handler (image environment, read-only code directory)",
        "",
        f"Ours (`lambda_app.handler`: Mangum and the BentoML service) and a hand-written handler "
        f"(bench/peers/lambda_handler.py: no BentoML, the model loaded at import, src/validation.py, one log "
        f"line per request), in the same environment built from the image's Dockerfile. Cold: launch of a fresh "
        f"process to its first answer, median of {lam['cold_runs_per_repetition']} processes per repetition, "
        f"ours and hand-written alternately; warm: {lam['warm_events']} events in one process.",
        "",
        "| | ours | hand-written | ours ÷ hand-written |",
        "|---|---|---|---|",
        f"| cold start, s | {fmt(lam['ours']['cold_s'])} | {fmt(lam['hand']['cold_s'])} | {fmt(cold_ratio, 2, '×')} |",
    ]
    for key, label, digits in (
        ("import_s", "of which the handler's import, s", 2),
        ("init_s", "SnapStart: init, launch to the snapshot point, s", 2),
        ("restore_first_answer_s", "SnapStart: after-restore hooks to the first answer, s", 4),
        ("warm_p50_ms", "warm p50 per event, ms", 3),
        ("warm_p99_ms", "warm p99 per event, ms", 3),
    ):
        ratio = spread([o / h for o, h in zip(lam["ours"][key]["values"], lam["hand"][key]["values"], strict=True)])
        lines.append(
            f"| {label} | {fmt(lam['ours'][key], digits)} | {fmt(lam['hand'][key], digits)} | {fmt(ratio, 2, '×')} |"
        )
    lines += [
        "",
        "SnapStart rows: as many fresh processes again, under deploy/lambda_driver.py's SnapStart order "
        "(awslambdaric's before-snapshot hooks, ours a warm-up prediction; the snapshot point; the after-restore "
        "hooks; the event). `criu check` fails on this kernel, so no process is checkpointed: the restore is "
        "the same process carrying on, and on AWS Lambda's own restore of the snapshot comes before these figures.",
        "",
        "Ours on Step Functions batches (src/batch_event.py: a Distributed Map's ItemBatcher event, the "
        "generator's rows as an ItemReader reads a CSV, each wrapped with its index), per batch, warm, median "
        f"of {BATCH_EVENT_REPEATS} calls in each of the repetitions' processes:",
        "",
        "| rows per batch | ms per batch | µs per row |",
        "|---|---|---|",
        *[
            f"| {int(n):,} | {fmt(figure, 2)} | {figure['median'] * 1000 / int(n):.1f} |"
            for n, figure in lam["batch_event_ms"].items()
        ],
        "",
        f"Image Python environment (site-packages, with the bytecode the image compiles): "
        f"{lam['image_env_mb']:.0f} MB.",
        "",
        "## Where ours spends its time",
        "",
        "Per request (bench/breakdown.py): a one-row `POST /classify` driven in process through our "
        "service's ASGI app, layer by layer from the outermost, after its start-up: each layer's own "
        f"share in µs (its time less the layer it wraps), median of {len(results['layers'][0]['own_us']['values'])} "
        "processes. No sockets and no HTTP parsing: uvicorn's share is not in it.",
        "",
        "| layer | own µs | through it, µs |",
        "|---|---|---|",
    ]
    for layer in results["layers"]:
        lines.append(f"| {layer['layer']} | {fmt(layer['own_us'], 1)} | {fmt(layer['median_us'], 1)} |")
    log_alone = results["request_log"]
    lines += [
        "",
        f"The request log alone (bench/breakdown.py request-log: around an app that answers at once), beyond "
        f"that app's own time: {fmt(log_alone['with_line'], 1)} µs per request with its line written, "
        f"{fmt(log_alone['without_line'], 1)} µs with the line off (the X-Model-Version header only). "
        f"The drift counts of a one-row answer in that line, as on Lambda (src/drift_metrics.py: the bins "
        f"found, the Embedded Metric Format keys, the longer line): {fmt(log_alone['drift_default'], 1)} µs "
        f"more for the default two series, {fmt(log_alone['drift_all'], 1)} µs for all eight.",
    ]
    lines += [
        "",
        "Cold start (`python -X importtime`, one import each, read-only as above): ms of the handler's "
        "import by the top-level package each module was loaded for.",
        "",
        "| package | ours, ms | hand-written, ms |",
        "|---|---|---|",
    ]
    imports = lam["imports_ms"]
    shown = [name for name, ms in imports["ours"].items() if ms >= 5 or imports["hand"].get(name, 0) >= 5]
    for name in shown:
        lines.append(f"| {name} | {imports['ours'].get(name, 0):.0f} | {imports['hand'].get(name, 0):.0f} |")
    lines += [
        "",
        "## Targets",
        "",
        "| target | median (range) | judged on | met |",
        "|---|---|---|---|",
    ]
    for t in results["targets"]:
        digits = 0 if t["unit"] == " MB" else 2
        figure = fmt(t, digits, t["unit"]) if t["min"] != t["max"] else f"{t['median']:.{digits}f}{t['unit']}"
        verdict = "yes" if t["met"] else f"no, by {t['miss'] * 100:.{1 if t['miss'] < 0.1 else 0}f} %"
        lines.append(f"| {t['name']} | {figure} | {t['judged']} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk cell (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every cell (default: %(default)s)")
    parser.add_argument(
        "--soak", type=int, default=60, help="seconds of ours' soak at c=32, 0: none (default: %(default)s)"
    )
    parser.add_argument(
        "--cold-runs",
        type=int,
        default=5,
        help="fresh Lambda processes per handler and repetition (default: %(default)s)",
    )
    parser.add_argument(
        "--warm-events", type=int, default=2000, help="events per warm Lambda run (default: %(default)s)"
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="results path without suffix")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk")
    WORK.mkdir(parents=True, exist_ok=True)

    import bentoml

    tag = ensure_model()
    rows = row_sets()
    bodies = body_files(rows)
    results: dict = {
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "settings": {
            "duration_s": args.duration,
            "repeat": args.repeat,
            "soak_s": args.soak,
            "cold_runs": args.cold_runs,
            "warm_events": args.warm_events,
        },
        "machine": machine(),
        "model_tag": tag,
    }
    model = bentoml.models.get(tag)
    booster = bentoml.xgboost.load_model(model)
    booster.set_param({"nthread": 1})
    results["floor"] = floor(booster, rows, args.repeat)
    log("floor", json.dumps({k: round(v["p50_ms"]["median"], 3) for k, v in results["floor"].items()}))

    model_file = Path(model.path_of(XGBOOST_MODEL_FILE))
    runs, results["soak"] = http_runs(tag, model_file, booster, rows, bodies, args)
    results["runs"] = runs
    results["summary"] = summarise(runs)
    results["mixed"] = mixed_runs(tag, model_file, bodies, args)
    results["layers"] = layer_breakdown(tag, args.repeat)
    results["request_log"] = request_log_alone(args.repeat)
    log("layers, own µs", {layer["layer"]: round(layer["own_us"]["median"], 1) for layer in results["layers"]})
    results["batch"] = batch_runs(tag, booster, args.repeat)
    results["lambda"] = lambda_runs(args.repeat, args.cold_runs, args.warm_events)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["elapsed_min"] = (time.monotonic() - started_at) / 60
    results["targets"] = targets(results)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
