"""`python -m src.batch_score`: a CSV scored by the model in the store, line by line as given,
bad rows to the rejects file with their line and reason, nothing left under the output's name
unless the job finished. Run as a user runs it, in the session's store."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from src import config
from tests.commands import base_env, project_root, run_python

FEATURES = list(config.FEATURE_NAMES)


def write_csv(path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def read_csv(path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def good_rows(count: int, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2, size=(count, config.N_FEATURES)).round(5)


def score(*args: str, model_tag: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_python("-m", "src.batch_score", *map(str, args), "--model", model_tag, timeout=timeout)


def test_each_line_is_scored_as_the_booster_scores_it_with_its_columns_kept(tmp_path, trained, booster):
    rows = good_rows(1000)
    # The features out of order, an id before them and a quoted text column with a comma after.
    header = ["id", *reversed(FEATURES), "note"]
    table = [[f"r{i}", *reversed(row.tolist()), f"a, {i}"] for i, row in enumerate(rows)]
    write_csv(tmp_path / "in.csv", header, table)
    result = score(tmp_path / "in.csv", tmp_path / "out.csv", "--chunk-rows", "64", model_tag=trained.tag)
    assert result.returncode == 0, result.stderr
    assert "scored 1,000 of 1,000 rows" in result.stdout and "rejected" not in result.stdout

    out = read_csv(tmp_path / "out.csv")
    assert list(out[0]) == [*header, "label", "probability"]
    expected = booster.inplace_predict(rows.astype(np.float32))
    assert [row["id"] for row in out] == [f"r{i}" for i in range(1000)]
    assert [row["note"] for row in out] == [f"a, {i}" for i in range(1000)]
    np.testing.assert_array_equal(np.asarray([float(row["probability"]) for row in out], np.float32), expected)
    assert [int(row["label"]) for row in out] == (expected >= config.DECISION_THRESHOLD).astype(int).tolist()
    assert read_csv(tmp_path / "out.rejects.csv") == []


BAD = {
    "missing": ("", "feature_2 is missing"),
    "text": ("abc", "feature_2 is not a number ('abc')"),
    "underscore": ("1_000", "feature_2 is not a number"),
    "nan": ("nan", "feature_2 is NaN or infinite"),
    "inf": ("-inf", "feature_2 is NaN or infinite"),
    "float32": ("1e39", "beyond ±3.4e+38 (float32)"),
}


def test_bad_rows_go_to_the_rejects_file_with_line_and_reason_and_the_rest_is_scored(tmp_path, trained, booster):
    rows = good_rows(50).tolist()
    lines = [[str(value) for value in row] for row in rows]
    bad_at = {}
    for offset, (name, (value, _)) in enumerate(BAD.items()):
        index = 5 + offset * 7
        lines[index][2] = value
        bad_at[index] = name
    lines[45] = lines[45] + ["extra"]  # a field too many
    write_csv(tmp_path / "in.csv", FEATURES, lines)
    result = score(tmp_path / "in.csv", tmp_path / "out.csv", model_tag=trained.tag)
    assert result.returncode == 0, result.stderr
    assert f"scored {50 - len(BAD) - 1} of 50 rows" in result.stdout and f"{len(BAD) + 1} rejected" in result.stdout

    rejects = read_csv(tmp_path / "out.rejects.csv")
    assert [int(row["line"]) for row in rejects] == sorted([i + 2 for i in bad_at] + [45 + 2])
    by_line = {int(row["line"]): row for row in rejects}
    for index, name in bad_at.items():
        assert BAD[name][1] in by_line[index + 2]["reason"], (name, by_line[index + 2])
    assert "has 8 fields; the header has 7" in by_line[47]["reason"]
    assert by_line[47]["row"].endswith(",extra")

    kept = [i for i in range(50) if i not in bad_at and i != 45]
    out = read_csv(tmp_path / "out.csv")
    expected = booster.inplace_predict(np.asarray([rows[i] for i in kept], np.float32))
    np.testing.assert_array_equal(np.asarray([float(row["probability"]) for row in out], np.float32), expected)


@pytest.mark.parametrize(
    "header, message",
    [(["feature_0", "feature_1"], "the header lacks feature_2"), ([*FEATURES, "label"], "already has label")],
)
def test_a_file_it_cannot_score_fails_with_what_to_do_and_writes_nothing(tmp_path, trained, header, message):
    write_csv(tmp_path / "in.csv", header, [[1] * len(header)])
    result = score(tmp_path / "in.csv", tmp_path / "out.csv", model_tag=trained.tag)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv"]


def test_an_unknown_model_says_how_to_get_one(tmp_path, trained):
    write_csv(tmp_path / "in.csv", FEATURES, good_rows(2).tolist())
    result = score(tmp_path / "in.csv", tmp_path / "out.csv", model_tag="xgb_model:nosuchversion")
    assert result.returncode == 1 and "python -m src.train" in result.stderr, result.stderr
    assert not (tmp_path / "out.csv").exists()


def long_run_command(tmp_path, model_tag: str) -> list[str]:
    """The command as a user types it, on in.csv in blocks of 1,000 rows (the long runs' size)."""
    inputs = [str(tmp_path / "in.csv"), str(tmp_path / "out.csv")]
    return [sys.executable, "-m", "src.batch_score", *inputs, "--model", model_tag, "--chunk-rows", "1000"]


def start_long_run(tmp_path, model_tag: str, moment: str) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """`python -m src.batch_score` on 600,000 rows in blocks of 1,000, and its workers, once the
    temporary output exists (``moment`` "as its workers start") or holds blocks."""
    write_csv(tmp_path / "in.csv", FEATURES, np.tile(good_rows(1000), (600, 1)).tolist())
    process = subprocess.Popen(
        long_run_command(tmp_path, model_tag),
        cwd=project_root(),
        env=base_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        partial = list(tmp_path.glob(".out.csv.*.partial"))
        if partial and (moment == "as its workers start" or partial[0].stat().st_size > 0):
            break
        time.sleep(0.005)
    workers = psutil.Process(process.pid).children()
    assert process.poll() is None, "the run ended too soon: make the file bigger"
    return process, workers


@pytest.mark.parametrize("moment", ["as its workers start", "with blocks written"])
def test_an_interrupted_run_leaves_nothing_under_the_outputs_name(tmp_path, trained, moment):
    process, workers = start_long_run(tmp_path, trained.tag, moment)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv"]
    assert not [worker for worker in workers if worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE]


def test_a_worker_killed_mid_run_fails_the_job_with_what_to_do_and_writes_nothing(tmp_path, trained):
    process, workers = start_long_run(tmp_path, trained.tag, "with blocks written")
    assert workers, "no worker process to kill"
    workers[0].kill()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1, stderr
    assert "worker process stopped" in stderr and "run it again" in stderr and "Traceback" not in stderr, stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.csv"]


def test_workers_end_with_a_job_that_is_killed(tmp_path, trained):
    """Killed outright (the OOM killer, kill -9), the job cannot clean up, but its workers must not
    outlive it waiting for blocks."""
    process, workers = start_long_run(tmp_path, trained.tag, "with blocks written")
    assert workers, "no worker process to watch"
    process.kill()
    process.communicate(timeout=60)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers still running after the job was killed: {alive}"


def test_on_a_terminal_a_progress_bar_shows_rows_and_rate_and_gives_way_to_the_summary(tmp_path, trained):
    """Run on a pseudo-terminal, as from a shell: the bar is drawn while the job runs (rows read,
    rows/s), and the summary line is what stays."""
    import pty

    write_csv(tmp_path / "in.csv", FEATURES, np.tile(good_rows(1000), (300, 1)).tolist())
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        long_run_command(tmp_path, trained.tag),
        cwd=project_root(),
        env={**base_env(), "COLUMNS": "120"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal's other end closed: the job has ended
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0, shown.decode(errors="replace")
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))  # the terminal's controls
    assert re.search(r"scoring .*\d+% +[\d,]+ rows, [\d,]+ rows/s", text), text
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    assert lines[-1].startswith("scored 300,000 of 300,000 rows in "), lines[-3:]


def test_help_names_the_inputs(trained):
    result = run_python("-m", "src.batch_score", "--help")
    assert result.returncode == 0 and "OUTPUT.rejects.csv" in result.stdout


def test_a_chunk_with_every_kind_of_row_gives_the_same_answers_whatever_the_chunk_size(tmp_path, trained):
    rows = good_rows(300).tolist()
    lines = [[str(v) for v in row] for row in rows]
    lines[7][0], lines[100][6] = "x", ""
    write_csv(tmp_path / "in.csv", FEATURES, lines)
    outputs = []
    for chunk in ("1", "13", "1000"):
        out = tmp_path / f"out-{chunk}.csv"
        assert score(tmp_path / "in.csv", out, "--chunk-rows", chunk, model_tag=trained.tag).returncode == 0
        outputs.append((out.read_bytes(), (tmp_path / f"out-{chunk}.rejects.csv").read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]
    assert len(read_csv(tmp_path / "out-1.csv")) == 298


def test_where_workers_cannot_be_forked_they_are_started_afresh_and_answer_the_same(tmp_path, trained, monkeypatch):
    """Where the workers are not forked (macOS), they are spawned with the booster pickled and
    answer through the pool's pipe instead of the shared slots."""
    from src import batch_score

    lines = [[str(v) for v in row] for row in good_rows(500).tolist()]
    lines[42][3] = "nan"
    write_csv(tmp_path / "in.csv", FEATURES, lines)
    booster = batch_score.load_booster(trained.tag)
    forked = batch_score.score_file(tmp_path / "in.csv", tmp_path / "forked.csv", booster, chunk_rows=64)
    monkeypatch.setattr(batch_score, "_forks", lambda: False)
    started = batch_score.score_file(tmp_path / "in.csv", tmp_path / "started.csv", booster, chunk_rows=64)
    assert (started.scored, started.rejected) == (forked.scored, forked.rejected) == (499, 1)
    assert (tmp_path / "started.csv").read_bytes() == (tmp_path / "forked.csv").read_bytes()
    assert (tmp_path / "started.rejects.csv").read_bytes() == (tmp_path / "forked.rejects.csv").read_bytes()


def test_the_compiled_reader_and_writer_give_the_bytes_pandas_and_python_give(tmp_path, trained, booster, monkeypatch):
    """The same file scored with src/csv_block.c and without it (pandas' parser, Python's
    formatting): numbers as pandas writes them (17 digits) and in other plain forms, columns
    passed through, a quoted field in one block, bad rows."""
    from src import batch_score, csv_block

    rows = np.random.default_rng(8).normal(scale=3, size=(3000, config.N_FEATURES))
    table = [[f"id{i}", *map(repr, row), f"{i}% done"] for i, row in enumerate(rows.tolist())]
    table[5][1:4] = ["+2", ".5", "1e-3"]
    table[70][8] = "a, quoted note"
    table[300][2], table[301][7], table[302][3] = "", "nan", "4e38"
    write_csv(tmp_path / "in.csv", ["id", *FEATURES, "note"], table)
    loaded = batch_score.load_booster(trained.tag)
    compiled = batch_score.score_file(tmp_path / "in.csv", tmp_path / "compiled.csv", loaded, chunk_rows=64)
    monkeypatch.setattr(csv_block, "available", lambda: False)
    plain = batch_score.score_file(tmp_path / "in.csv", tmp_path / "plain.csv", loaded, chunk_rows=64)
    assert (compiled.scored, compiled.rejected) == (plain.scored, plain.rejected) == (2997, 3)
    assert (tmp_path / "compiled.csv").read_bytes() == (tmp_path / "plain.csv").read_bytes()
    assert (tmp_path / "compiled.rejects.csv").read_bytes() == (tmp_path / "plain.rejects.csv").read_bytes()
    bad = {"id300", "id301", "id302"}
    kept = np.asarray([[float(v) for v in line[1:8]] for line in table if line[0] not in bad])
    out = read_csv(tmp_path / "compiled.csv")
    expected = booster.inplace_predict(kept.astype(np.float32))
    np.testing.assert_array_equal(np.asarray([float(row["probability"]) for row in out], np.float32), expected)
    assert [row["note"] for row in out][:2] == ["0% done", "1% done"]


def test_crlf_line_ends_and_a_last_line_without_one_are_read_as_lines(tmp_path, trained, booster):
    rows = good_rows(3)
    text = "\r\n".join(
        [",".join([*FEATURES, "id"]), *(",".join([*map(str, row), f"r{i}"]) for i, row in enumerate(rows))]
    )
    (tmp_path / "in.csv").write_bytes(text.encode())
    assert score(tmp_path / "in.csv", tmp_path / "out.csv", model_tag=trained.tag).returncode == 0
    lines = (tmp_path / "out.csv").read_bytes().split(b"\n")
    assert lines[-1] == b"" and not any(b"\r" in line for line in lines)
    out = read_csv(tmp_path / "out.csv")
    assert [row["id"] for row in out] == ["r0", "r1", "r2"]
    expected = booster.inplace_predict(rows.astype(np.float32))
    np.testing.assert_array_equal(np.asarray([float(row["probability"]) for row in out], np.float32), expected)


def test_percent_signs_in_a_passed_through_column_come_out_as_they_went_in(tmp_path, trained, booster):
    rows = good_rows(200)
    notes = [f"{i}% %s %b %%" for i in range(200)]
    write_csv(
        tmp_path / "in.csv", [*FEATURES, "note"], [[*row.tolist(), note] for row, note in zip(rows, notes, strict=True)]
    )
    assert score(tmp_path / "in.csv", tmp_path / "out.csv", model_tag=trained.tag).returncode == 0
    out = read_csv(tmp_path / "out.csv")
    assert [row["note"] for row in out] == notes
    expected = booster.inplace_predict(rows.astype(np.float32))
    np.testing.assert_array_equal(np.asarray([float(row["probability"]) for row in out], np.float32), expected)
