"""Benchmarks, side by side in one run: the floor, the ceiling, our service, the Lambda handler.

    python -m bench.run                 # `make bench`; about 5 minutes on 2 cores
    python -m bench.run --duration 5 --soak 20     # a quicker look

- floor: in-process ``inplace_predict`` on the booster;
- ceiling: ``bench/plain_app.py`` (same model, same input checks, no framework) on uvicorn,
  one worker;
- ours: ``bentoml serve src.service:svc`` as users run it.
Each server gets wrk at concurrency 1 and 32 with bodies of 1 and 1,000 rows; then ours runs a
sustained soak while its resident memory is sampled. The Lambda handler is timed from a fresh
process to its first answer (cold) and per event (warm), in an environment built only from the
image's requirements, whose size is reported too. Results: bench/results.md and .json.

Everything runs in bench/work/ with its own BentoML home: the user's ~/bentoml is not touched.
Every figure is reported with its ratio to the ceiling measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK = BENCH_DIR / "work"
HOME = WORK / "bentoml-home"
os.environ["BENTOML_HOME"] = str(HOME)  # before bentoml is imported anywhere
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from src import config  # noqa: E402
from tests.processes import free_port, process_tree_rss_mb, stop_process_group  # noqa: E402

ROW = [0.1, -1.2, 0.3, 2.4, -0.5, 0.6, 1.7]
CELLS = [("1 row", 1, 1), ("1 row", 32, 1), ("1000 rows", 1, 1000), ("1000 rows", 32, 1000)]


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


def body_files() -> dict[int, Path]:
    rng = np.random.default_rng(0)
    files = {}
    for rows in (1, 1000):
        path = WORK / f"body-{rows}.json"
        data = [ROW] if rows == 1 else rng.normal(scale=2, size=(rows, 7)).round(6).tolist()
        path.write_text(json.dumps(data))
        files[rows] = path
    return files


# ---------------------------------------------------------------------------- servers

class Server:
    def __init__(self, name: str, argv: list[str], env: dict, port: int):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(WORK / f"{name}.log", "wb")
        started = time.perf_counter()
        self.process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.launch_to_first_200_s = self._wait_first_answer(started)

    def _wait_first_answer(self, started: float, timeout: float = 120) -> float:
        request = json.dumps([ROW]).encode()
        while time.perf_counter() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                req = urllib.request.Request(f"{self.url}/classify", data=request,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.name} gave no answer in {timeout}s; see {self.log.name}")

    def rss_mb(self) -> float:
        return process_tree_rss_mb(self.process.pid)

    def stop(self):
        stop_process_group(self.process)
        self.log.close()


def start_plain(model_file: Path) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.plain_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--no-access-log", "--log-level", "warning"]
    return Server("plain", argv, {"MODEL_FILE": str(model_file)}, port)


def start_ours(tag: str) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "bentoml", "serve", "src.service:svc", "--host", "127.0.0.1", "--port", str(port)]
    return Server("bentoml", argv, {"XGB_MODEL_TAG": tag}, port)


# ---------------------------------------------------------------------------- load

def wrk(url: str, body: Path, concurrency: int, duration: float) -> dict:
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{int(duration)}s", "--timeout", "10s",
            "-s", str(BENCH_DIR / "post.lua"), f"{url}/classify"]
    result = subprocess.run(argv, env={**os.environ, "BODY_FILE": str(body)}, capture_output=True, text=True,
                            timeout=duration + 60)
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
    }


def measure_server(server: Server, bodies: dict, duration: float) -> dict:
    wrk(server.url, bodies[1], 8, 2)  # warm-up
    cells = {}
    for label, concurrency, rows in CELLS:
        cells[f"{label}, c={concurrency}"] = wrk(server.url, bodies[rows], concurrency, duration)
    return {"launch_to_first_200_s": server.launch_to_first_200_s, "cells": cells, "rss_after_warmup_mb": server.rss_mb()}


def soak(server: Server, body: Path, seconds: float) -> dict:
    before = server.rss_mb()
    samples = []
    result: dict = {}

    import threading

    def load():
        result.update(wrk(server.url, body, 32, seconds))

    thread = threading.Thread(target=load)
    thread.start()
    while thread.is_alive():
        samples.append(server.rss_mb())
        thread.join(timeout=2)
    after = server.rss_mb()
    return {"seconds": seconds, "rss_before_mb": before, "rss_after_mb": after, "rss_peak_mb": max(samples + [after]),
            "growth": after / before - 1, **{k: result[k] for k in ("requests", "errors", "rps", "p99_ms")}}


# ---------------------------------------------------------------------------- floor

def floor(booster, bodies: dict, iterations: int = 3000) -> dict:
    out = {}
    for rows, path in bodies.items():
        features = np.asarray(json.loads(path.read_text()), dtype=np.float32)
        times = []
        for _ in range(iterations if rows == 1 else iterations // 10):
            t0 = time.perf_counter()
            booster.inplace_predict(features, validate_features=False)
            times.append(time.perf_counter() - t0)
        out[f"{rows} rows" if rows > 1 else "1 row"] = {"p50_ms": statistics.median(times) * 1000,
                                                         "p99_ms": float(np.percentile(times, 99)) * 1000}
    return out


# ---------------------------------------------------------------------------- Lambda

def lambda_figures(cold_runs: int, warm_events: int) -> dict:
    from tests.lambda_events import http_api_v2
    from tests.lambda_harness import (DRIVER, bentoml_build, build_context_via_bentoctl, build_image_env,
                                      install_operator, lambda_env, precompile, read_only_copy, run_read_only,
                                      site_packages_mb)

    tag = bentoml_build()
    work = Path(tempfile.mkdtemp(dir=WORK, prefix="lambda-"))
    install_operator(work / "bentoctl-home", cwd=work)
    context = build_context_via_bentoctl(tag, work / "bentoctl-home", work)
    WORK.chmod(0o755)
    work.chmod(0o755)
    python = build_image_env(context, work / "image-env")
    task = read_only_copy(context)
    precompile(python, task)
    events = task.parent / "events.json"
    events.write_text(json.dumps([http_api_v2([ROW])]))
    events.chmod(0o644)

    colds, inits = [], []
    for _ in range(cold_runs):
        t0 = time.perf_counter()
        result = run_read_only([str(python), str(DRIVER), str(task), str(events), "0"], task, lambda_env(task))
        colds.append(time.perf_counter() - t0)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        assert report["responses"][0]["statusCode"] == 200, report
        inits.append(report["cold_start_s"])
    result = run_read_only([str(python), str(DRIVER), str(task), str(events), str(warm_events)], task, lambda_env(task))
    warm = json.loads(result.stdout.strip().splitlines()[-1])["warm_s"]
    size = site_packages_mb(python)
    shutil.rmtree(task.parent, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "cold_process_to_first_answer_s": statistics.median(colds),
        "cold_in_process_to_first_answer_s": statistics.median(inits),
        "warm_p50_ms": statistics.median(warm) * 1000,
        "warm_p99_ms": float(np.percentile(warm, 99)) * 1000,
        "image_env_mb": size,
    }


# ---------------------------------------------------------------------------- report

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import psutil

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def markdown(results: dict) -> str:
    plain, ours = results["plain"], results["bentoml"]
    lines = [
        "# Benchmark results", "",
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"{results['machine']['memory_gb']} GB, Python {results['machine']['python']}, "
        f"kernel {results['machine']['kernel']}; {results['machine']['date']}.",
        f"Command: `{results['command']}`. wrk, one thread, {results['duration_s']} s per cell; "
        "servers and load generator share the machine's cores.", "",
        "## Latency and throughput (POST /classify)", "",
        "| cell | plain ASGI (ceiling) p50 / p99 ms | req/s | BentoML service p50 / p99 ms | req/s | ours / ceiling: p50, p99, req/s |",
        "|---|---|---|---|---|---|",
    ]
    for cell in plain["cells"]:
        p, o = plain["cells"][cell], ours["cells"][cell]
        lines.append(f"| {cell} | {p['p50_ms']:.2f} / {p['p99_ms']:.2f} | {p['rps']:,.0f} | "
                     f"{o['p50_ms']:.2f} / {o['p99_ms']:.2f} | {o['rps']:,.0f} | "
                     f"{o['p50_ms'] / p['p50_ms']:.2f}×, {o['p99_ms'] / p['p99_ms']:.2f}×, {o['rps'] / p['rps']:.2f}× |")
    fl = results["floor"]
    lines += [
        "", f"Floor, in-process `inplace_predict`: 1 row p50 {fl['1 row']['p50_ms']:.3f} ms, "
        f"p99 {fl['1 row']['p99_ms']:.3f} ms; 1000 rows p50 {fl['1000 rows']['p50_ms']:.3f} ms.", "",
        "## Start-up and memory", "",
        "| | plain ASGI | BentoML service | ratio |", "|---|---|---|---|",
        f"| launch → first 200 | {plain['launch_to_first_200_s']:.2f} s | {ours['launch_to_first_200_s']:.2f} s | "
        f"{ours['launch_to_first_200_s'] / plain['launch_to_first_200_s']:.2f}× |",
        f"| RSS after warm-up (all processes) | {plain['rss_after_warmup_mb']:.0f} MB | {ours['rss_after_warmup_mb']:.0f} MB | "
        f"{ours['rss_after_warmup_mb'] / plain['rss_after_warmup_mb']:.2f}× |",
    ]
    s = results["soak"]
    lines += ["", f"Soak of the BentoML service, {s['seconds']:.0f} s at c=32, 1 row: {s['requests']:,} requests, "
              f"{s['errors']} errors, {s['rps']:,.0f} req/s, p99 {s['p99_ms']:.1f} ms; RSS {s['rss_before_mb']:.0f} MB before, "
              f"{s['rss_after_mb']:.0f} MB after (peak {s['rss_peak_mb']:.0f} MB), growth {s['growth'] * 100:+.1f} %."]
    lam = results["lambda"]
    lines += ["", "## Lambda handler (image environment, read-only code directory)", "",
              f"- cold, fresh process → first answer: {lam['cold_process_to_first_answer_s']:.2f} s "
              f"(in-process part {lam['cold_in_process_to_first_answer_s']:.2f} s)",
              f"- warm, per event: p50 {lam['warm_p50_ms']:.3f} ms, p99 {lam['warm_p99_ms']:.3f} ms",
              f"- image Python environment (site-packages): {lam['image_env_mb']:.0f} MB"]
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for target in results["targets"]:
        lines.append(f"| {target['name']} | {target['measured']} | {'yes' if target['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def targets(results: dict) -> list[dict]:
    p, o = results["plain"]["cells"], results["bentoml"]["cells"]
    lam, s = results["lambda"], results["soak"]
    rows = [
        ("1 row c=1 p50 ≤ 2× plain", o["1 row, c=1"]["p50_ms"] / p["1 row, c=1"]["p50_ms"], "≤", 2.0, "×"),
        ("1 row c=1 p99 ≤ 5× plain", o["1 row, c=1"]["p99_ms"] / p["1 row, c=1"]["p99_ms"], "≤", 5.0, "×"),
        ("1 row c=32 req/s ≥ plain", o["1 row, c=32"]["rps"] / p["1 row, c=32"]["rps"], "≥", 1.0, "×"),
        ("1000 rows c=1 req/s ≥ 0.9× plain", o["1000 rows, c=1"]["rps"] / p["1000 rows, c=1"]["rps"], "≥", 0.9, "×"),
        ("RSS after soak ≤ +20 % of warm-up", s["growth"] * 100, "≤", 20.0, " %"),
        ("Lambda warm p50 ≤ 1 ms", lam["warm_p50_ms"], "≤", 1.0, " ms"),
        ("Lambda cold ≤ 1.0 s", lam["cold_process_to_first_answer_s"], "≤", 1.0, " s"),
        ("serving environment ≤ 250 MB", lam["image_env_mb"], "≤", 250.0, " MB"),
    ]
    return [{"name": name, "measured": f"{value:.2f}{unit}", "value": value,
             "met": value <= limit if op == "≤" else value >= limit} for name, value, op, limit, unit in rows]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk cell (default: %(default)s)")
    parser.add_argument("--soak", type=int, default=60, help="seconds of the soak at c=32 (default: %(default)s)")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh Lambda processes timed (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="results path without suffix")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install wrk")
    WORK.mkdir(parents=True, exist_ok=True)

    import bentoml

    tag = ensure_model()
    bodies = body_files()
    results = {"command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
               "duration_s": args.duration, "machine": machine(), "model_tag": tag}
    model = bentoml.models.get(tag)
    booster = bentoml.xgboost.load_model(model)
    booster.set_param({"nthread": 1})
    results["floor"] = floor(booster, bodies)
    print("floor", json.dumps(results["floor"]), flush=True)

    for name, start in (("plain", lambda: start_plain(Path(model.path_of("saved_model.ubj")))),
                        ("bentoml", lambda: start_ours(tag))):
        server = start()
        try:
            results[name] = measure_server(server, bodies, args.duration)
            print(name, json.dumps(results[name]), flush=True)
            if name == "bentoml":
                results["soak"] = soak(server, bodies[1], args.soak)
                print("soak", json.dumps(results["soak"]), flush=True)
        finally:
            server.stop()

    results["lambda"] = lambda_figures(args.cold_runs, warm_events=2000)
    print("lambda", json.dumps(results["lambda"]), flush=True)
    results["targets"] = targets(results)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
