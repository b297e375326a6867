"""Scoring a CSV file of any size with the model in the store, on this machine.

    python -m src.batch_score INPUT.csv OUTPUT.csv [--rejects REJECTS.csv] [--model TAG]

The file is read in chunks of lines, so memory stays the same whatever its size. The feature
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
import csv
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from src import config
from src.validation import FLOAT32_MAX, Refusal, check_value

OUTPUT_COLUMNS = ("label", "probability")
REJECT_COLUMNS = ("line", "reason", "row")
CHUNK_ROWS = 100_000


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

    def count(self, chunk) -> None:
        self.rows += chunk.lines
        self.scored += len(chunk.kept)
        self.rejected += len(chunk.bad)
        for _, kind, _, _ in chunk.bad:
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


def line_chunks(file, chunk_rows: int, block_bytes: int = 1 << 23) -> Iterator[list[bytes]]:
    """The file's remaining lines (without their line ends, CRLF's too), ``chunk_rows`` at a
    time, read in blocks of ``block_bytes`` and split by bytes methods: no Python work per line."""
    pending: list[bytes] = []
    rest = b""
    while block := file.read(block_bytes):
        block = rest + block
        cut = block.rfind(b"\n")
        if cut < 0:
            rest = block
            continue
        rest = block[cut + 1 :]
        pending += _split_lines(block[:cut])
        while len(pending) >= chunk_rows:
            yield pending[:chunk_rows]
            del pending[:chunk_rows]
    if rest:
        pending += _split_lines(rest)
    while pending:
        yield pending[:chunk_rows]
        del pending[:chunk_rows]


def _split_lines(text: bytes) -> list[bytes]:
    lines = text.split(b"\n")
    if b"\r" in text:
        return [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return lines


def fast_features(lines: list[bytes], layout: Layout) -> np.ndarray | None:
    """The chunk's feature matrix when every row is valid (pandas' C parser), else None. A chunk
    with a quote, or whose comma count is not the header's on every line, goes row by row: pandas
    would silently cut a first line's extra fields."""
    joined, commas = b"\n".join(lines), len(layout.names) - 1
    if b'"' in joined or b"\r" in joined or joined.count(b",") != commas * len(lines) or lines[0].count(b",") != commas:
        return None
    try:
        frame = pd.read_csv(
            io.BytesIO(joined),
            header=None,
            names=range(len(layout.names)),
            index_col=False,
            usecols=layout.columns,
            dtype=np.float64,
            na_filter=False,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError):
        return None
    if len(frame) != len(lines):
        return None
    features = frame[layout.columns].to_numpy(np.float64)
    if not np.isfinite(features).all() or np.abs(features).max(initial=0) > FLOAT32_MAX:
        return None
    return features


def slow_features(lines: list[bytes], layout: Layout, first_line: int) -> tuple[np.ndarray, list[int], list[tuple]]:
    """Row by row: (the valid rows' features, their indexes in ``lines``, the rejects as
    (line number, kind, reason, row))."""
    good, rows, rejects = [], [], []
    width, names = len(layout.names), list(config.FEATURE_NAMES)
    for index, line in enumerate(lines):
        text = line.decode("utf-8", errors="replace")
        fields = next(csv.reader([text]), [])
        refusal = check_row(text, fields, width, layout.columns, names)
        if refusal:
            rejects.append((first_line + index, *refusal, text))
        else:
            good.append([float(fields[column]) for column in layout.columns])
            rows.append(index)
    features = np.asarray(good, dtype=np.float64).reshape(len(good), config.N_FEATURES)
    return features, rows, rejects


def chunk_features(lines: list[bytes], layout: Layout, first_line: int) -> tuple[np.ndarray, list[bytes], list[tuple]]:
    """(float32 features of the valid rows, those rows' lines, the rejects) of one chunk."""
    features = fast_features(lines, layout)
    if features is not None:
        return features.astype(np.float32), lines, []
    features, rows, bad = slow_features(lines, layout, first_line)
    return features.astype(np.float32), [lines[row] for row in rows], bad


@dataclass
class Chunk:
    """A chunk on its way: its prediction (a future), the lines it scores, its rejects."""

    predicted: Future
    kept: list[bytes]
    bad: list[tuple]
    lines: int
    read_to: int  # the input's offset after it


def answer_texts(probabilities: np.ndarray) -> tuple[list[bytes], list[bytes]]:
    """(",label,", probability) as CSV text per row; a probability as its float32's shortest text."""
    labels = np.where(probabilities >= config.DECISION_THRESHOLD, b",1,", b",0,").tolist()
    texts = orjson.dumps(np.ascontiguousarray(probabilities, dtype=np.float32), option=orjson.OPT_SERIALIZE_NUMPY)
    return labels, texts[1:-1].split(b",") if len(probabilities) else []


def output_lines(lines: list[bytes], labels: list[bytes], texts: list[bytes]) -> bytes:
    """Each line, its label and its probability, as the output's lines, joined in one go."""
    parts: list = [b"\n"] * (4 * len(lines))
    parts[0::4], parts[1::4], parts[2::4] = lines, labels, texts
    return b"".join(parts)


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
    (OUTPUT.rejects.csv by default). ``on_progress(bytes_read, rows_read)`` after each chunk.
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

            def finish(chunk: Chunk) -> None:
                labels, texts = answer_texts(np.asarray(chunk.predicted.result()))
                out.write(output_lines(chunk.kept, labels, texts))
                writer.writerows((line, reason, row) for line, _, reason, row in chunk.bad)
                summary.count(chunk)
                if on_progress:
                    on_progress(chunk.read_to, summary.rows)

            # The model predicts one chunk on its thread (XGBoost lets go of the GIL) while this
            # one reads and checks the next and writes the one before.
            with ThreadPoolExecutor(1, thread_name_prefix="predict") as predictor:
                previous = None
                for lines in line_chunks(source, chunk_rows):
                    features, kept, bad = chunk_features(lines, layout, next_line)
                    predicted = predictor.submit(booster.inplace_predict, features, validate_features=False)
                    if previous is not None:
                        finish(previous)
                    previous = Chunk(predicted, kept, bad, len(lines), source.tell())
                    next_line += len(lines)
                if previous is not None:
                    finish(previous)
        for final, partial in temporary.items():
            os.replace(partial, final)
    finally:
        for partial in temporary.values():
            partial.unlink(missing_ok=True)
    summary.seconds = time.monotonic() - started
    return summary


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
    booster.set_param({"nthread": 0})  # every core: nothing else runs beside a batch job
    return booster


def _progress_bar(total_bytes: int):
    """A rich progress bar on stderr (rows, rows/s, ETA from the bytes read), or None off a terminal."""
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
    )
    task = bar.add_task("scoring", total=total_bytes, rows=0, rate=0.0)
    started = time.monotonic()

    def update(bytes_read: int, rows: int) -> None:
        bar.update(task, completed=bytes_read, rows=rows, rate=rows / max(time.monotonic() - started, 1e-9))

    return bar, update


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.batch_score", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="CSV with a header naming the feature columns")
    parser.add_argument("output", type=Path, help="CSV to write: each input line, then label and probability")
    parser.add_argument(
        "--rejects", type=Path, help="CSV of the rows that were not scored (default: OUTPUT.rejects.csv)"
    )
    parser.add_argument("--model", default=config.MODEL_TAG, help="model tag in the store (default: %(default)s)")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows per chunk (default: %(default)s)")
    args = parser.parse_args(argv)
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
    raise SystemExit(main())
