"""The offline drift report: how far a CSV file of rows has moved from what a model was trained on.

    python -m src.drift --reference MODEL --data FILE.csv [--report-dir DIR]

Each row is scored with the model's booster; the probability and every feature are binned with
the reference bins training stored in the model's metadata (src/reference.py), and each series
gets its population stability index against the reference shares. These are the bins, the
smoothing and the formula of the deployment's alarm expression, so over the same rows the report
gives the alarm's numbers: a file of the rows that raised an alarm shows which series moved, and
a file of new training data shows whether it still looks like the old one before a retrain.

The report is a table on stdout and, in DIR, ``drift.png`` (reference against current share per
bin, one panel per series) and ``drift.json`` (every number). Exit status: 0 when the report was
made, drift or not; 2 when it could not be (what was expected, and what to do, on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from src import config, reference
from src.batch_score import Layout, check_block, line_blocks

PSI_WARN = 0.1  # at or above: the series has moved; watch it
PSI_ACT = 0.25  # at or above: the series has moved enough to act on (look at the data, retrain)
CHUNK_ROWS = 100_000


class DriftError(RuntimeError):
    """The report cannot be made; the message says what was expected and what to do."""


@dataclasses.dataclass(frozen=True)
class DriftReport:
    """One report: the exact model tag, the data file, the rows scored and dropped, and per
    series (in the reference's order) its PSI, bin counts and the reference it was measured against."""

    model_tag: str
    data_path: Path
    rows: int
    dropped: int
    dropped_reasons: dict[str, int]
    series: tuple[str, ...]
    psi: dict[str, float]
    counts: dict[str, list[int]]
    reference: reference.Reference
    files: list[Path]

    def verdict(self, name: str) -> str:
        """``ok``, ``warn`` or ``act`` for the series ``name``."""
        return verdict(self.psi[name])

    @property
    def moved(self) -> list[str]:
        """The series at or above the act threshold."""
        return [name for name in self.series if self.psi[name] >= PSI_ACT]


def verdict(value: float, warn: float = PSI_WARN, act: float = PSI_ACT) -> str:
    """The word for a PSI: ``act`` at or above ``act``, ``warn`` at or above ``warn``, else ``ok``."""
    if value >= act:
        return "act"
    if value >= warn:
        return "warn"
    return "ok"


# ---------------------------------------------------------------------------- the model


def load_model(model_tag: str):
    """(the stored model, its booster, its reference) for ``model_tag``, resolved as the service does."""
    from bentoml.exceptions import NotFound

    from src.bentoml_adapter import load_booster, stored_model

    home = os.environ.get("BENTOML_HOME", "~/bentoml")
    try:
        model = stored_model(model_tag)
        booster = load_booster(model)
    except NotFound:
        raise DriftError(
            f"model {model_tag!r} is not an XGBoost model in the BentoML model store under {home}: "
            "train one with `python -m src.train`, or pass --reference with a tag from `python -m src.model_store list`"
        ) from None
    except ValueError as exc:  # not a tag at all
        raise DriftError(f"{exc}; pass --reference NAME:VERSION, e.g. {config.MODEL_NAME}:latest") from None
    try:
        ref = reference.Reference.from_metadata(model.info.metadata)
    except (KeyError, TypeError, ValueError):
        raise DriftError(
            f"model {model.tag} has no {reference.METADATA_KEY!r} in its metadata (it was saved before training "
            "stored reference bins): train it again with `python -m src.train` and pass the new tag"
        ) from None
    booster.set_param({"nthread": 0})  # every core: nothing else runs beside the report
    return model, booster, ref


# ---------------------------------------------------------------------------- the data


def read_layout(header: bytes, path: Path) -> Layout:
    """Where the feature columns are in the file's header; other columns are ignored (a file
    batch_score wrote, with its label and probability, will do)."""
    layout, missing, _ = Layout.parse(header, errors="replace")
    if missing:
        raise DriftError(
            f"{path}: the header lacks {', '.join(missing)}; it needs the columns "
            f"{', '.join(config.FEATURE_NAMES)} by name (any order, other columns are ignored)"
        )
    return layout


def bin_file(data_path: Path, booster, ref: reference.Reference) -> tuple[dict[str, np.ndarray], int, dict[str, int]]:
    """(bin counts per series, rows binned, dropped rows per reason) of the file, read in chunks:
    a row is dropped by the API's rules (a finite float32 in every feature column)."""
    from src.train import predict_proba

    data_path = Path(data_path)
    if not data_path.is_file():
        raise DriftError(f"{data_path}: no such file; pass --data with a CSV that has the columns {_columns()}")
    counts = {name: np.zeros(len(ref.edges[name]) + 1, dtype=np.int64) for name in ref.series}
    rows, dropped = 0, {}
    with data_path.open("rb") as source:
        layout = read_layout(source.readline(), data_path)
        for block in line_blocks(source, CHUNK_ROWS, len(layout.header) + 1):
            checked = check_block(block, layout)
            features = checked.features
            for _, kind, _, _ in checked.bad:
                dropped[kind] = dropped.get(kind, 0) + 1
            if not len(features):
                continue
            rows += len(features)
            probability = predict_proba(booster, features)
            for name in ref.series:
                values = probability if name == reference.PROBABILITY else features[:, ref.column(name)]
                counts[name] += reference.bin_counts(values, ref.edges[name])
    if not rows:
        if dropped:
            raise DriftError(
                f"{data_path}: none of its {sum(dropped.values()):,} rows has a finite number in every feature "
                f"column ({_reasons(dropped)}); fix the file or pass another one"
            )
        raise DriftError(f"{data_path} has no rows under its header; pass a CSV with at least one row")
    return counts, rows, dropped


def _columns() -> str:
    return ", ".join(config.FEATURE_NAMES)


def _reasons(dropped: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in sorted(dropped.items()))


# ---------------------------------------------------------------------------- the report


def report(model_tag: str, data_path: Path, report_dir: Path | None = config.REPORTS_DIR) -> DriftReport:
    """Score and bin ``data_path`` with the model ``model_tag``, compute each series' PSI and, unless
    ``report_dir`` is None, write drift.png and drift.json there. Raises :class:`DriftError`."""
    model, booster, ref = load_model(model_tag)
    counts, rows, dropped = bin_file(Path(data_path), booster, ref)
    result = DriftReport(
        model_tag=str(model.tag),
        data_path=Path(data_path),
        rows=rows,
        dropped=sum(dropped.values()),
        dropped_reasons=dropped,
        series=ref.series,
        psi={name: reference.psi(counts[name], ref.shares[name]) for name in ref.series},
        counts={name: [int(c) for c in counts[name]] for name in ref.series},
        reference=ref,
        files=[],
    )
    if report_dir is None:
        return result
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    files = [
        _write_atomically(report_dir / "drift.png", lambda path: write_plot(result, path)),
        _write_atomically(report_dir / "drift.json", lambda path: write_json(result, path)),
    ]
    return dataclasses.replace(result, files=files)


def summary_json(result: DriftReport) -> dict:
    """Everything the report found, as drift.json holds it."""
    ref = result.reference
    return {
        "model_tag": result.model_tag,
        "data": str(result.data_path),
        "rows": result.rows,
        "dropped": result.dropped,
        "dropped_reasons": dict(sorted(result.dropped_reasons.items())),
        "thresholds": {"warn": PSI_WARN, "act": PSI_ACT},
        "smoothing": reference.SMOOTHING,
        "moved": result.moved,
        "series": {
            name: {
                "psi": result.psi[name],
                "verdict": result.verdict(name),
                "counts": result.counts[name],
                "shares": [float(s) for s in reference.smoothed_shares(result.counts[name])],
                "reference_shares": list(ref.shares[name]),
                "reference_rows": ref.rows[name],
                "edges": list(ref.edges[name]),
            }
            for name in result.series
        },
    }


def write_json(result: DriftReport, path: Path) -> None:
    path.write_text(json.dumps(summary_json(result), indent=2) + "\n")


def write_plot(result: DriftReport, path: Path) -> None:
    """One panel per series: the reference's and the file's share of each bin, side by side."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers or in CI
    import matplotlib.pyplot as plt

    columns = 4
    panels = len(result.series)
    grid_rows = -(-panels // columns)
    fig, axes = plt.subplots(grid_rows, columns, figsize=(3.2 * columns, 2.6 * grid_rows), squeeze=False)
    colours = {"ok": "black", "warn": "darkorange", "act": "firebrick"}
    for ax, name in zip(axes.flat, result.series, strict=False):
        expected = np.asarray(result.reference.shares[name])
        current = reference.smoothed_shares(result.counts[name])
        x = np.arange(len(expected))
        ax.bar(x - 0.2, expected, width=0.4, label="reference", color="tab:grey")
        ax.bar(x + 0.2, current, width=0.4, label="current", color="tab:blue")
        ax.set_title(f"{name}  PSI {result.psi[name]:.3f}", fontsize=9, color=colours[result.verdict(name)])
        ax.set_xticks(x, _bin_labels(result.reference.edges[name], name), fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("share of rows", fontsize=8)
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Drift of {result.data_path.name} ({result.rows:,} rows) against {result.model_tag}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _bin_labels(edges, name: str) -> list[str]:
    """The probability's bins by their ranges; a feature's deciles by number."""
    if name != reference.PROBABILITY:
        return [str(i + 1) for i in range(len(edges) + 1)]
    bounds = ["0", *(f"{e:g}" for e in edges), "1"]
    return [f"{low}-{high}" for low, high in zip(bounds, bounds[1:], strict=False)]


def _write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """``write`` to a temporary name next to ``path``, then rename it: readers never see half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def format_table(result: DriftReport) -> str:
    """The table the command prints: series, PSI, verdict; then the rows and the summary line."""
    width = max(len("series"), *(len(name) for name in result.series))
    lines = [f"{'series':<{width}}  {'PSI':>7}  verdict"]
    lines += [f"{name:<{width}}  {result.psi[name]:>7.4f}  {result.verdict(name)}" for name in result.series]
    rows = f"rows scored: {result.rows:,}"
    if result.dropped:
        rows += f" ({result.dropped:,} dropped: {_reasons(result.dropped_reasons)})"
    lines.append(rows)
    lines.append(summary_line(result))
    return "\n".join(lines)


def summary_line(result: DriftReport) -> str:
    """Which series moved (PSI at or above PSI_ACT), or that none did."""
    if result.moved:
        return f"drift: {', '.join(result.moved)} at or above {PSI_ACT} (act)"
    watch = [name for name in result.series if result.verdict(name) == "warn"]
    text = f"no drift: none moved (every PSI below {PSI_ACT})"
    if watch:
        text += f"; watch {', '.join(watch)} (at or above {PSI_WARN})"
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.drift",
        description="Measure how far a CSV of rows has drifted from a model's training data (PSI per series).",
    )
    parser.add_argument(
        "--reference",
        default=config.MODEL_TAG,
        metavar="MODEL",
        help="model tag in the BentoML store whose reference bins to compare against (default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="FILE.csv",
        help=f"CSV with the columns {_columns()} by name (other columns are ignored)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=config.REPORTS_DIR,
        metavar="DIR",
        help="where drift.png and drift.json go (default: reports/)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = report(args.reference, args.data, args.report_dir)
    except DriftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}; check that the data file is readable and the report folder writable", file=sys.stderr)
        return 2
    print(f"drift of {result.data_path} against {result.model_tag}")
    print(format_table(result))
    if result.files:
        print(f"report: {', '.join(str(path) for path in result.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
