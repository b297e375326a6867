"""Stage 1: write the synthetic binary-classification data set as CSV.

The tutorial's ``make_classification`` call, made reproducible: the same seed writes a
byte-identical file, so a model's metadata can name the data it was trained on by hash.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import pandas as pd
from sklearn.datasets import make_classification

from src import config


def make_dataset(n_rows: int = config.N_ROWS, seed: int = config.DEFAULT_SEED) -> pd.DataFrame:
    """Return ``n_rows`` rows of the features (config.FEATURE_NAMES) plus a 0/1 ``target`` column."""
    if n_rows < 2:
        raise ValueError(f"n_rows must be at least 2 (one per class), got {n_rows}")
    features, target = make_classification(
        n_samples=n_rows,
        n_features=config.N_FEATURES,
        n_informative=config.N_INFORMATIVE,
        n_redundant=config.N_REDUNDANT,
        random_state=seed,
    )
    frame = pd.DataFrame(features, columns=list(config.FEATURE_NAMES))
    frame[config.TARGET_NAME] = target
    return frame


def write_dataset(path: Path = config.DATA_PATH, n_rows: int = config.N_ROWS, seed: int = config.DEFAULT_SEED) -> Path:
    """Generate the data set and write it to ``path`` atomically.

    The file is written beside its destination and renamed into place, so an interrupted run
    never leaves a half-written CSV for training to read.
    """
    path = Path(path)
    frame = make_dataset(n_rows, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            frame.to_csv(handle, index=False)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _whole_number(low: int, high: int, what: str):
    """An argparse type: a whole number from ``low`` to ``high``, or a message saying so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.generate_data",
        description="Write a seeded synthetic binary-classification data set as CSV.",
    )
    parser.add_argument(
        "--rows",
        type=_whole_number(2, 10**8, "at least 2 rows (and at most 10**8)"),
        default=config.N_ROWS,
        help="number of rows (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=_whole_number(0, 2**32 - 1, "a seed between 0 and 2**32 - 1"),
        default=config.DEFAULT_SEED,
        help="random seed; the same seed writes the same file (default: %(default)s)",
    )
    parser.add_argument(
        "--output", type=Path, default=config.DATA_PATH, help="CSV file to write (default: data/data.csv)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.output.is_dir():
        build_parser().error(f"--output must be a file path, {args.output} is a directory")
    path = write_dataset(args.output, args.rows, args.seed)
    print(f"wrote {args.rows} rows x {config.N_FEATURES} features to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
