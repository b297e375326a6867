"""Scoring a CSV file of any size with the model in the store, on this machine.

    python -m src.batch_score INPUT.csv OUTPUT.csv [--rejects REJECTS.csv] [--model TAG]

The file is read in blocks of lines, so memory stays the same whatever its size, and the blocks
are scored by a worker process per core, each answer written out in the input's order. The feature
columns are found by name in the header; every line of the output is the input's line as it was,
all its columns included, followed by ``label`` and ``probability``. Each row is checked by the
API's rules (a number in every feature column, finite and within float32); a row that breaks one
goes to the rejects file with its line number and the reason, and the job goes on. OUTPUT and the
rejects file appear only when the job has finished: both are written under temporary names in
their folders and renamed at the end. A field may be quoted, but may not span lines.

Exit status: 0 when the file was scored (bad rows included), 1 when something else went wrong
(what, and what to do, on stderr), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ctypes
import io
import mmap
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from src import config, csv_block
from src.bentoml_adapter import import_xgboost_without_sklearn
from src.validation import FLOAT32_MAX, Refusal, check_value

OUTPUT_COLUMNS = ("label", "probability")
REJECT_COLUMNS = ("line", "reason", "row")
CHUNK_ROWS = 50_000


class BatchError(RuntimeError):
    """A failure that stops the job; its message says what to do."""


@dataclass
class Summary:
    rows: int = 0  # data rows read
    scored: int = 0
    rejected: int = 0
    seconds: float = 0.0
    output: Path | None = None
    rejects: Path | None = None
    reasons: dict = field(default_factory=dict)  # reason kind -> count

    def count(self, scored: Scored) -> None:
        self.rows += scored.lines
        self.scored += scored.scored
        self.rejected += len(scored.bad)
        for _, kind, _, _ in scored.bad:
            self.reasons[kind] = self.reasons.get(kind, 0) + 1

    def line(self) -> str:
        rate = self.scored / self.seconds if self.seconds else 0.0
        text = f"scored {self.scored:,} of {self.rows:,} rows in {self.seconds:.1f} s ({rate:,.0f} rows/s)"
        text += f" into {self.output}"
        if self.rejected:
            text += f"; {self.rejected:,} rejected ({_counts(self.reasons)}), see {self.rejects}"
        return text


def _counts(reasons: dict) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in sorted(reasons.items()))


# ---------------------------------------------------------------------------- one row's checks


def check_row(text: str, fields: list[str], width: int, columns: list[int], names: list[str]) -> Refusal | None:
    """Why a row (its ``text``, parsed into ``fields``) cannot be scored, or None."""
    if text.count('"') % 2:
        return "unclosed quote", "has an unclosed quote (a field may not span lines)"
    if not fields:
        return "empty line", "is an empty line"
    if len(fields) != width:
        return "wrong field count", f"has {len(fields)} fields; the header has {width}"
    for index, name in zip(columns, names, strict=True):
        refusal = check_value(name, fields[index])
        if refusal:
            return refusal
    return None


# ---------------------------------------------------------------------------- the file


@dataclass
class Layout:
    """The input's header: its field names, how many, and where each feature column is."""

    header: bytes
    names: list[str]
    columns: list[int]

    @classmethod
    def parse(cls, header: bytes, errors: str = "strict") -> tuple[Layout, list[str], set[str]]:
        """The header's layout, the feature columns it lacks (the layout holds only the others'
        places), and every name it has."""
        names = next(csv.reader([header.decode("utf-8-sig", errors=errors).rstrip("\r\n")]), [])
        found = {name.strip(): index for index, name in enumerate(names)}
        missing = [name for name in config.FEATURE_NAMES if name not in found]
        columns = [found[name] for name in config.FEATURE_NAMES if name in found]
        return cls(header.rstrip(b"\r\n"), names, columns), missing, set(found)

    @classmethod
    def read(cls, header: bytes, path: Path) -> Layout:
        layout, missing, found = cls.parse(header)
        if missing:
            raise BatchError(
                f"{path}: the header lacks {', '.join(missing)}; it needs the columns "
                f"{', '.join(config.FEATURE_NAMES)} (any order, other columns are passed through)"
            )
        clashes = [name for name in OUTPUT_COLUMNS if name in found]
        if clashes:
            raise BatchError(f"{path}: the header already has {', '.join(clashes)}: rename them, they are the output's")
        return layout


_WINDOW = 1 << 16  # bytes read at a time while looking for a line's end


def _line_end(fd: int, start: int, stop: int, end: int) -> int:
    """Where a block from ``start`` to about ``stop`` ends: after the last line feed before
    ``stop``, looking back as far as ``start``; failing that (a line longer than the block),
    after the first one from ``stop`` on; ``end`` when the file's last line has none. Only the
    bytes around the cut are read."""
    if stop >= end:
        return end
    low = stop
    while low > start:
        low, high = max(start, low - _WINDOW), low
        cut = os.pread(fd, high - low, low).rfind(b"\n")
        if cut >= 0:
            return low + cut + 1
    while stop < end:
        found = os.pread(fd, _WINDOW, stop).find(b"\n")
        if found >= 0:
            return stop + found + 1
        stop += _WINDOW
    return end


def line_spans(fd: int, start: int, chunk_rows: int, line_bytes: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of the blocks of whole lines of about ``chunk_rows`` lines each that the
    file holds from ``start`` on; the last may lack its line feed. The block size comes from
    ``line_bytes`` (a guess at a line's length), then from the first block's own lines."""
    end, measured = os.fstat(fd).st_size, False
    size = max(1, line_bytes) * chunk_rows
    while start < end:
        cut = _line_end(fd, start, start + size, end)
        if not measured:
            lines = os.pread(fd, cut - start, start).count(b"\n")
            size, measured = -(-(cut - start) // max(1, lines)) * chunk_rows, True
        yield start, cut - start
        start = cut


def read_span(fd: int, offset: int, length: int) -> bytes:
    """The block of ``length`` bytes at ``offset``, ending in a line feed (the last line's added
    if it lacks one)."""
    block = os.pread(fd, length, offset)
    if len(block) != length:
        raise BatchError("the input got shorter while it was being read: leave it alone during the job")
    return block if block.endswith(b"\n") else block + b"\n"


def line_blocks(file, chunk_rows: int, line_bytes: int) -> Iterator[bytes]:
    """The file's remaining text in blocks of whole lines (see :func:`line_spans`), each ending
    in a line feed."""
    fd = file.fileno()
    for offset, length in line_spans(fd, file.tell(), chunk_rows, line_bytes):
        yield read_span(fd, offset, length)


def _split_lines(text: bytes) -> list[bytes]:
    """The lines of ``text`` (whole lines, each ending in a line feed), without their line ends."""
    lines = text[:-1].split(b"\n")
    if b"\r" in text:
        return [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return lines


def fast_features(block: bytes, layout: Layout) -> np.ndarray | None:
    """The block's feature matrix when every row is valid, else None: read by src/csv_block.c
    when every feature is a plain number, else by pandas' C parser. A block with a quote, a
    carriage return or a line whose field count is not the header's goes row by row. pandas
    refuses a short or blank line, and a long one after the first; with other columns beside the
    features it parses only the features' and would cut a long line silently, so every line's
    commas are counted then."""
    width = len(layout.names)
    first = block.find(b"\n")
    if b'"' in block or b"\r" in block or block.count(b",", 0, first) != width - 1:
        return None
    if csv_block.available():
        features = csv_block.read_features(block, width, layout.columns, FLOAT32_MAX)
        if features is not None:
            return features
    only_features = width == config.N_FEATURES
    if not only_features and block.count(b",") != (width - 1) * block.count(b"\n"):
        return None
    try:
        frame = pd.read_csv(
            io.BytesIO(block),
            header=None,
            names=range(width),
            index_col=False,
            usecols=None if only_features else layout.columns,
            dtype=np.float64,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    features = frame[layout.columns].to_numpy(np.float64)
    # NaN fails both comparisons, and an infinity the bound: one pass each, no temporaries.
    if len(features) and not (-FLOAT32_MAX <= features.min() and features.max() <= FLOAT32_MAX):
        return None
    return features


def slow_features(lines: list[bytes], layout: Layout) -> tuple[np.ndarray, list[int], list[tuple]]:
    """Row by row: (the valid rows' features, their indexes in ``lines``, the rejects as
    (index in ``lines``, kind, reason, row))."""
    good, rows, rejects = [], [], []
    width, names = len(layout.names), list(config.FEATURE_NAMES)
    for index, line in enumerate(lines):
        text = line.decode("utf-8", errors="replace")
        fields = next(csv.reader([text]), [])
        refusal = check_row(text, fields, width, layout.columns, names)
        if refusal:
            rejects.append((index, *refusal, text))
        else:
            good.append([float(fields[column]) for column in layout.columns])
            rows.append(index)
    features = np.asarray(good, dtype=np.float64).reshape(len(good), config.N_FEATURES)
    return features, rows, rejects


@dataclass
class Checked:
    """One block, checked: the valid rows' float32 features and their lines (each ending in a
    line feed), the rejects as (index in the block, kind, reason, row), how many lines it had."""

    features: np.ndarray
    kept: bytes
    bad: list[tuple]
    lines: int


def check_block(block: bytes, layout: Layout) -> Checked:
    """The block's rows checked by the API's rules: the whole block at once when it is clean,
    else line by line."""
    features = fast_features(block, layout)
    if features is not None:
        return Checked(_row_major_float32(features), block, [], len(features))
    split = _split_lines(block)
    features, rows, bad = slow_features(split, layout)
    kept = b"".join(split[row] + b"\n" for row in rows)
    return Checked(_row_major_float32(features), kept, bad, len(split))


def _row_major_float32(features: np.ndarray) -> np.ndarray:
    """The features as XGBoost reads them fastest: float32, each row's values side by side."""
    return np.ascontiguousarray(features, dtype=np.float32)


def answer_texts(probabilities: np.ndarray) -> tuple[bytes, bytes]:
    """Each row's label, one character, and its probability as its float32's shortest text, the
    texts separated by commas."""
    labels = ((probabilities >= config.DECISION_THRESHOLD) + ord("0")).astype(np.uint8).tobytes()
    texts = orjson.dumps(np.ascontiguousarray(probabilities, dtype=np.float32), option=orjson.OPT_SERIALIZE_NUMPY)
    return labels, texts[1:-1]


def scored_lines(kept: bytes, probabilities: np.ndarray) -> bytes:
    """Each of ``kept``'s lines followed by its label and probability: by the compiled library
    when it is built, else by one bytes formatting of the whole block rather than a join per line."""
    if not len(probabilities):
        return b""
    labels, texts = answer_texts(probabilities)
    if csv_block.available():
        text = bytearray(csv_block.scored_size(kept, texts, len(labels)))
        csv_block.write_scored(kept, labels, texts, text)
        return bytes(text)
    template = (kept.replace(b"%", b"%%") if b"%" in kept else kept).replace(b"\n", b",%c,%b\n")
    values: list = [None] * (2 * len(labels))
    values[0::2] = labels
    values[1::2] = texts.split(b",")
    return template % tuple(values)


# ---------------------------------------------------------------------------- the job


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


def score_file(
    input_path: Path,
    output_path: Path,
    booster,
    rejects_path: Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Callable[[int, int], None] | None = None,
) -> Summary:
    """Score ``input_path`` into ``output_path`` with ``booster``; bad rows into ``rejects_path``
    (OUTPUT.rejects.csv by default). ``on_progress(bytes_read, rows_read)`` after each block.
    Raises :class:`BatchError`; on any failure neither file is left under its name."""
    rejects_path = rejects_path or output_path.with_name(output_path.stem + ".rejects.csv")
    if not input_path.is_file():
        raise BatchError(f"{input_path}: no such file")
    if input_path.resolve() in (output_path.resolve(), rejects_path.resolve()):
        raise BatchError(f"{input_path}: the output would overwrite the input; name another output")
    for path in (output_path, rejects_path):
        if not path.parent.is_dir():
            raise BatchError(f"{path.parent}: no such folder for {path.name}")
    summary = Summary(output=output_path, rejects=rejects_path)
    started = time.monotonic()
    temporary = {output_path: _temporary(output_path), rejects_path: _temporary(rejects_path)}
    try:
        with (
            input_path.open("rb") as source,
            temporary[output_path].open("wb") as out,
            temporary[rejects_path].open("w", newline="") as rejected,
        ):
            layout = Layout.read(source.readline(), input_path)
            out.write(layout.header + b"," + ",".join(OUTPUT_COLUMNS).encode() + b"\n")
            writer = csv.writer(rejected)
            writer.writerow(REJECT_COLUMNS)
            next_line = 2  # the header is line 1
            # Each block is checked, predicted and formatted in a worker process of its own, one
            # per core, which reads it from the input itself; this process finds the blocks'
            # bounds, and writes the answers in the input's order.
            workers = _cores()
            slots = _Slots(2 * workers + 2, shared=_forks())
            jobs: deque[tuple[Future, int]] = deque()

            def finish(job: Future, read_to: int) -> None:
                nonlocal next_line
                try:
                    scored = job.result()
                except BrokenProcessPool:
                    raise BatchError(
                        "a worker process stopped without an answer (killed, or out of memory?): run it "
                        "again, with a smaller --chunk-rows if memory is short"
                    ) from None
                slots.write(out, scored)
                writer.writerows((next_line + index, reason, row) for index, _, reason, row in scored.bad)
                next_line += scored.lines
                summary.count(scored)
                if on_progress:
                    on_progress(read_to, summary.rows)

            with slots, _worker_pool(workers, input_path, layout, booster, slots) as pool:
                try:
                    spans = line_spans(source.fileno(), source.tell(), chunk_rows, len(layout.header) + 1)
                    for index, (offset, length) in enumerate(spans):
                        jobs.append((pool.submit(score_span, offset, length, index % slots.count), offset + length))
                        if len(jobs) > 2 * workers:
                            finish(*jobs.popleft())
                    while jobs:
                        finish(*jobs.popleft())
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        for final, partial in temporary.items():
            os.replace(partial, final)
    finally:
        for partial in temporary.values():
            partial.unlink(missing_ok=True)
    summary.seconds = time.monotonic() - started
    return summary


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class Scored:
    """One block's answer: the output's lines (or the slot that holds them, and their size), the
    rejects as (index in the block, kind, reason, row), how many lines it had and how many of
    them were scored."""

    text: bytes
    bad: list[tuple]
    lines: int
    scored: int
    slot: int | None = None
    size: int = 0


def score_block(block: bytes, layout: Layout, booster, slots: _Slots | None = None, slot: int = 0) -> Scored:
    """One block of the input, checked, predicted and formatted: its lines put in ``slot`` of
    ``slots`` when they fit there, else carried as bytes."""
    checked = check_block(block, layout)
    scored = Scored(b"", checked.bad, checked.lines, len(checked.features))
    if len(checked.features):
        probabilities = np.asarray(booster.inplace_predict(checked.features, validate_features=False))
        if slots is None or not slots.put(scored, slot, checked.kept, probabilities):
            scored.text = scored_lines(checked.kept, probabilities)
    return scored


class _Slots:
    """Buffers for the blocks' answers, shared by the job's process and its forked workers, so
    that an answer crosses over without being pickled and piped. A block's answer is in slot
    ``index % count``, written there by the worker: the job writes each answer out before it
    hands out the block that reuses its slot. An answer too big for its slot, or with no slots
    (workers not forked), is sent as bytes."""

    SIZE = 16 << 20

    def __init__(self, count: int, shared: bool) -> None:
        self.count = count
        self.memory = mmap.mmap(-1, count * self.SIZE) if shared else None

    def put(self, scored: Scored, slot: int, kept: bytes, probabilities: np.ndarray) -> bool:
        """Write the block's scored lines in ``slot`` and say so in ``scored``; False when they
        do not fit, or there is no memory."""
        if self.memory is None:
            return False
        start = slot * self.SIZE
        if csv_block.available():  # formatted straight into the slot
            labels, texts = answer_texts(probabilities)
            if csv_block.scored_size(kept, texts, len(labels)) > self.SIZE:
                return False
            scored.size = csv_block.write_scored(kept, labels, texts, self.memory, start)
        else:
            text = scored_lines(kept, probabilities)
            if len(text) > self.SIZE:
                return False
            self.memory[start : start + len(text)] = text
            scored.size = len(text)
        scored.slot = slot
        return True

    def write(self, out, scored: Scored) -> None:
        if scored.slot is None:
            out.write(scored.text)
            return
        start = scored.slot * self.SIZE
        with memoryview(self.memory) as memory, memory[start : start + scored.size] as view:
            out.write(view)

    def __enter__(self) -> _Slots:
        return self

    def __exit__(self, *exc) -> None:
        if self.memory is not None:
            self.memory.close()


_worker: dict = {}  # in a worker process: the input's descriptor, its layout, the booster, the slots


def _start_worker(parent: int, input_path: str, layout: Layout, booster, slots: _Slots) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # an interrupt is the parent's to handle
    _end_with(parent)
    _worker.update(fd=os.open(input_path, os.O_RDONLY), layout=layout, booster=booster, slots=slots)


_PR_SET_PDEATHSIG = 1  # prctl's option (linux/prctl.h)


def _end_with(parent: int) -> None:
    """Have the kernel end this worker when the job's process ends, however that ends (killed,
    out of memory): a forked worker left behind would wait for blocks forever. Linux only
    (prctl's PR_SET_PDEATHSIG), where the workers are forked."""
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the job had ended already, before the kernel was told
        os._exit(1)


def score_span(offset: int, length: int, slot: int) -> Scored:
    """In a worker process: the block of ``length`` bytes at ``offset`` in the input, scored, its
    answer put in ``slot`` when it fits."""
    block = read_span(_worker["fd"], offset, length)
    return score_block(block, _worker["layout"], _worker["booster"], _worker["slots"], slot)


def _forks() -> bool:
    """Whether the workers are forked: on Linux, yes; on macOS Python spawns by default, as some
    of its system libraries do not survive a fork."""
    return sys.platform.startswith("linux")


def _worker_pool(workers: int, input_path: Path, layout: Layout, booster, slots: _Slots) -> ProcessPoolExecutor:
    """``workers`` processes that score spans of the input: forked (sharing the booster and the
    slots), or else spawned, with the booster pickled and the slots without memory."""
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork" if _forks() else "spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(), str(input_path), layout, booster, slots),
    )
    try:
        with _interrupts_held():
            pool.submit(os.getpid).result()  # starts the workers
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    return pool


@contextlib.contextmanager
def _interrupts_held():
    """Hold back SIGINT while workers start, and raise it when they have: one that arrives during
    a fork would be lost (Python ignores an exception raised in its fork hooks), and one that
    reaches a worker before it ignores interrupts would break the pool."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: held.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            raise KeyboardInterrupt


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def _keep_freed_blocks() -> None:
    """Have glibc keep the job's freed blocks for the next ones instead of handing each back to
    the kernel: every block of text is a few MB, and faulting its pages in afresh each time costs
    more than the rest of its checks. A process's threads share one heap, so that memory does not
    creep up with the file's length as it would with a heap per thread. The workers, forked after
    this, keep the settings. Elsewhere than glibc, nothing changes."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, 1)
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # the most glibc allows on 64-bit systems
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def load_booster(model_tag: str):
    """The booster of ``model_tag`` in the model store, as the service resolves it."""
    from bentoml.exceptions import NotFound

    from src.bentoml_adapter import load_booster as booster_of
    from src.bentoml_adapter import stored_model

    try:
        booster = booster_of(stored_model(model_tag))
    except NotFound:
        raise BatchError(
            f"model {model_tag!r} is not in the BentoML model store under "
            f"{os.environ.get('BENTOML_HOME', '~/bentoml')}: train one with `python -m src.train` "
            "(or `make train`), or pass --model with a tag from `bentoml models list`"
        ) from None
    booster.set_param({"nthread": 1})  # one thread per block: score_file runs a block per core
    return booster


def _progress_bar(total_bytes: int):
    """A rich progress bar on stderr (rows, rows/s, ETA from the bytes read), or None off a terminal.
    It is redrawn by its updates, at most ten times a second, rather than by a thread of its own:
    the workers are forked, and a thread in the middle of writing to the terminal when they are
    would leave them its lock."""
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("scoring"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rows]:,} rows, {task.fields[rate]:,.0f} rows/s"),
        TimeRemainingColumn(),
        transient=True,
        auto_refresh=False,
    )
    task = bar.add_task("scoring", total=total_bytes, rows=0, rate=0.0)
    started = drawn = time.monotonic()

    def update(bytes_read: int, rows: int) -> None:
        nonlocal drawn
        now = time.monotonic()
        bar.update(task, completed=bytes_read, rows=rows, rate=rows / max(now - started, 1e-9))
        if now - drawn >= 0.1:
            bar.refresh()
            drawn = now

    return bar, update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.batch_score", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="CSV with a header naming the feature columns")
    parser.add_argument("output", type=Path, help="CSV to write: each input line, then label and probability")
    parser.add_argument(
        "--rejects", type=Path, help="CSV of the rows that were not scored (default: OUTPUT.rejects.csv)"
    )
    parser.add_argument("--model", default=config.MODEL_TAG, help="model tag in the store (default: %(default)s)")
    parser.add_argument(
        "--chunk-rows", type=int, default=CHUNK_ROWS, help="rows per block, about (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    _keep_freed_blocks()
    import_xgboost_without_sklearn()
    if not csv_block.available():
        print(f"note: reading with pandas, more slowly: {csv_block.BUILD_HINT}", file=sys.stderr)
    try:
        booster = load_booster(args.model)
        size = args.input.stat().st_size if args.input.is_file() else 0
        bar, update = _progress_bar(size)
        if bar is None:
            summary = score_file(args.input, args.output, booster, args.rejects, args.chunk_rows)
        else:
            with bar:
                summary = score_file(args.input, args.output, booster, args.rejects, args.chunk_rows, update)
    except BatchError as exc:
        print(f"batch scoring failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"batch scoring interrupted: {args.output} was not written", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"batch scoring failed: {exc}; nothing was written under {args.output}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0


if __name__ == "__main__":
    from src.batch_score import main as run  # the workers find their functions in the module by its name

    raise SystemExit(run())
