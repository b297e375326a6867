"""Reading training data: every unusable file fails with a message naming the problem."""

import pytest

from src import config
from src.dataset import DataError, load_dataset

pytestmark = pytest.mark.unit

N = config.N_FEATURES
HEADER = ",".join([*config.FEATURE_NAMES, "target"])
TENTHS = [f"{i / 10:g}" for i in range(1, N + 1)]  # 0.1, 0.2, ...: one per feature
GOOD_ROWS = [",".join([*TENTHS, "0"]), ",".join([*map(str, range(1, N + 1)), "1"])]
MISSING = config.FEATURE_NAMES[N // 2]


def with_second(cell: str) -> str:
    """A data row of class 1 whose second feature (feature_1) holds ``cell``."""
    return ",".join([TENTHS[0], cell, *TENTHS[2:], "1"])


def write(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return path


def test_reads_a_good_file(tmp_path):
    features, target = load_dataset(write(tmp_path, "\n".join([HEADER, *GOOD_ROWS]) + "\n"))
    assert features.shape == (2, N)
    assert target.tolist() == [0, 1]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "not a readable CSV"),
        (HEADER + "\n", "no rows"),
        (HEADER.replace(f",{MISSING}", "") + "\n" + ",".join(["0"] * N) + "\n", f"missing columns ['{MISSING}']"),
        (HEADER + ",extra\n" + GOOD_ROWS[0] + ",9\n", "unexpected columns ['extra']"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n" + with_second("abc") + "\n", "'feature_1', data row 2 holds 'abc'"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n" + with_second("") + "\n", "'feature_1', data row 2"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n" + with_second("inf") + "\n", "finite number"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n" + GOOD_ROWS[1][:-1] + "2\n", "only 0 and 1"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n" + GOOD_ROWS[0] + "\n", "one class only"),
    ],
)
def test_bad_files_fail_with_a_named_problem(tmp_path, text, message):
    with pytest.raises(DataError, match=None) as error:
        load_dataset(write(tmp_path, text))
    assert message in str(error.value)


def test_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(DataError, match="src.generate_data"):
        load_dataset(tmp_path / "absent.csv")
