"""The batch job's compiled hot path (src/csv_block.c, built by ``make setup``), through ctypes.

``read_features`` reads a block's feature columns into float32 when every one is a plain number,
and ``write_scored`` puts each line's label and probability after it, straight into a buffer.
They take the place of pandas' parser and of Python's bytes formatting, which cost the job as
much as the prediction (bench/results.md). Without the library, ``available()`` is False and the
job reads and writes with pandas and Python, giving the same bytes.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

LIBRARY = Path(__file__).with_name("libcsv_block.so")
BUILD_HINT = f"`make setup` builds {LIBRARY.name} from csv_block.c (it needs a C compiler)"


@functools.cache
def _library() -> ctypes.CDLL | None:
    try:
        library = ctypes.CDLL(str(LIBRARY))
    except OSError:
        return None
    size, pointer = ctypes.c_size_t, ctypes.c_void_p
    library.read_features.restype = ctypes.c_long
    library.read_features.argtypes = [
        ctypes.c_char_p, size, ctypes.c_int, pointer, ctypes.c_int, ctypes.c_double, pointer, ctypes.c_long,
    ]  # fmt: skip
    library.count_lines.restype = ctypes.c_long
    library.count_lines.argtypes = [ctypes.c_char_p, size]
    library.write_scored.restype = size
    library.write_scored.argtypes = [ctypes.c_char_p, size, ctypes.c_char_p, ctypes.c_char_p, size, pointer]
    return library


def available() -> bool:
    """Whether the library is built and loads."""
    return _library() is not None


def read_features(block: bytes, width: int, columns: list[int], limit: float) -> np.ndarray | None:
    """The float32 features of ``block``'s lines (each ending in a line feed, ``width`` fields,
    feature i in field ``columns[i]``), or None when a line has another number of fields or a
    feature is not a plain number within ±``limit``."""
    rows = _library().count_lines(block, len(block))  # bytes.count takes several times longer
    features = np.empty((rows, len(columns)), dtype=np.float32)
    feature_of = np.full(width, -1, dtype=np.intc)
    feature_of[columns] = np.arange(len(columns), dtype=np.intc)
    read = _library().read_features(
        block, len(block), width, feature_of.ctypes.data, len(columns), limit, features.ctypes.data, rows
    )
    return features if read == rows else None


def scored_size(lines: bytes, texts: bytes, rows: int) -> int:
    """The bytes ``write_scored`` writes: each line, three for ``,label,``, and its text."""
    return len(lines) + 3 * rows + len(texts) - (rows - 1)


def write_scored(lines: bytes, labels: bytes, texts: bytes, buffer, offset: int = 0) -> int:
    """Write each of ``lines``' lines followed by ``,label,text`` into ``buffer`` (writable, with
    room for ``scored_size`` bytes from ``offset``): the row's label character from ``labels``,
    its text from the comma-separated ``texts``. Returns the bytes written."""
    target = (ctypes.c_char * scored_size(lines, texts, len(labels))).from_buffer(buffer, offset)
    try:
        return _library().write_scored(lines, len(lines), labels, texts, len(texts), ctypes.addressof(target))
    finally:
        del target  # lets the buffer (a slot's shared memory) be closed later
