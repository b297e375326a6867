"""How src.batch_score cuts a file into blocks of whole lines for its workers, and how a block's
answer comes back through a shared slot: in process, on real files."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from src import batch_score, csv_block
from src.batch_score import BatchError, Scored, line_spans, read_span

pytestmark = pytest.mark.unit


def spans_of(path, chunk_rows: int, line_bytes: int, start: int = 0) -> list[tuple[int, int]]:
    fd = os.open(path, os.O_RDONLY)
    try:
        return list(line_spans(fd, start, chunk_rows, line_bytes))
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "text",
    [
        b"a,b\n" * 1000,
        b"a,b\n" * 999 + b"last,without,line,feed",
        b"a,b\r\n" * 500,
        b"short\n" + b"x" * 300_000 + b"\n" + b"y,z\n" * 10,  # one line longer than a block and the window
        b"only one line and no line feed",
    ],
    ids=["lines", "last line without its feed", "crlf", "a line longer than the window", "one line"],
)
@pytest.mark.parametrize("chunk_rows", [1, 7, 100_000])
def test_the_spans_cover_the_file_in_order_and_each_ends_with_a_line(tmp_path, text, chunk_rows):
    path = tmp_path / "rows.csv"
    path.write_bytes(text)
    spans = spans_of(path, chunk_rows, line_bytes=4)
    assert spans[0][0] == 0 and sum(length for _, length in spans) == len(text)
    assert all(offset + length == following for (offset, length), (following, _) in zip(spans, spans[1:], strict=False))
    for offset, length in spans[:-1]:
        assert text[offset + length - 1 : offset + length] == b"\n"
    fd = os.open(path, os.O_RDONLY)
    try:
        blocks = [read_span(fd, offset, length) for offset, length in spans]
    finally:
        os.close(fd)
    assert all(block.endswith(b"\n") for block in blocks)
    assert b"".join(blocks) == (text if text.endswith(b"\n") else text + b"\n")


def test_after_the_first_block_the_size_follows_the_lines_length(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"0123456789,abcdefghi\n" * 10_000)  # 21 bytes a line
    spans = spans_of(path, chunk_rows=1000, line_bytes=2)  # a guess ten times too small
    assert spans[0][1] == 2 * 1000 - 2 * 1000 % 21  # the guess, cut back to a line's end
    assert {length for _, length in spans[1:-1]} == {21 * 1000}


def test_spans_start_where_they_are_told_and_a_file_read_past_its_end_is_none(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"header\n1\n2\n")
    assert spans_of(path, 10, 2, start=7) == [(7, 4)]
    assert spans_of(path, 10, 2, start=11) == []


def test_a_file_that_got_shorter_during_the_job_stops_it_with_what_happened(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(b"1\n2\n3\n")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.truncate(path, 2)
        with pytest.raises(BatchError, match="got shorter"):
            read_span(fd, 0, 6)
    finally:
        os.close(fd)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled writer", "python formatting"])
def test_an_answer_comes_back_through_its_slot_or_as_bytes_when_it_does_not_fit(monkeypatch, compiled):
    if not compiled:
        monkeypatch.setattr(csv_block, "available", lambda: False)
    half = np.array([0.5, 0.25], dtype=np.float32)
    out = io.BytesIO()
    with batch_score._Slots(3, shared=True) as slots:
        scored = Scored(b"", [], 2, 2)
        assert slots.put(scored, 2, b"a,1\nb,2\n", half)
        assert (scored.slot, scored.size) == (2, 21)
        slots.write(out, scored)
        too_big = Scored(b"", [], 1, 1)
        assert not slots.put(too_big, 0, b"y" * slots.SIZE + b"\n", half[:1])
        assert too_big.slot is None
        slots.write(out, Scored(b"too big\n", [], 1, 1))
    assert out.getvalue() == b"a,1,1,0.5\nb,2,0,0.25\ntoo big\n"
    with batch_score._Slots(3, shared=False) as unshared:
        assert not unshared.put(Scored(b"", [], 1, 1), 0, b"x\n", half[:1])
