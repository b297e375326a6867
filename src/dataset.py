"""Reading the training CSV, with errors that name what is wrong.

Training fails early and clearly on a file that is missing, has the wrong columns or holds
cells that are not numbers, instead of deep inside pandas or XGBoost.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from src import config


class DataError(ValueError):
    """The training data cannot be used; the message says why."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(features, target)`` from the CSV at ``path`` after checking its shape and cells."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path} (run `python -m src.generate_data` first)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None

    expected = [*config.FEATURE_NAMES, config.TARGET_NAME]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        raise DataError(f"{path}: {' and '.join(parts)}; expected exactly {expected}")
    if frame.empty:
        raise DataError(f"{path} has a header but no rows")

    numeric = frame[expected].apply(pd.to_numeric, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.to_numpy(dtype=float, na_value=np.nan))
    if bad.to_numpy().any():
        row, col = np.argwhere(bad.to_numpy())[0]
        column = expected[col]
        raise DataError(
            f"{path}: column {column!r}, data row {row + 1} holds {frame[column].iloc[row]!r}; "
            f"every cell must be a finite number ({int(bad.to_numpy().sum())} bad cells in all)"
        )
    target = numeric[config.TARGET_NAME].to_numpy()
    if not np.isin(target, (0, 1)).all():
        raise DataError(f"{path}: column {config.TARGET_NAME!r} must hold only 0 and 1")
    if len(np.unique(target)) < 2:
        raise DataError(f"{path}: column {config.TARGET_NAME!r} holds one class only; need both 0 and 1")
    features = numeric[list(config.FEATURE_NAMES)].to_numpy(dtype=np.float32)
    return features, target.astype(np.int64)
