"""Reading training data: every unusable file fails with a message naming the problem."""

import pytest

from src import config
from src.dataset import DataError, load_dataset

HEADER = ",".join([*config.FEATURE_NAMES, "target"])
GOOD_ROWS = ["0.1,0.2,0.3,0.4,0.5,0.6,0.7,0", "1,2,3,4,5,6,7,1"]


def write(tmp_path, text):
    path = tmp_path / "d.csv"
    path.write_text(text)
    return path


def test_reads_a_good_file(tmp_path):
    features, target = load_dataset(write(tmp_path, "\n".join([HEADER, *GOOD_ROWS]) + "\n"))
    assert features.shape == (2, 7)
    assert target.tolist() == [0, 1]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "not a readable CSV"),
        (HEADER + "\n", "no rows"),
        (HEADER.replace(",feature_3", "") + "\n0,0,0,0,0,0,0\n", "missing columns ['feature_3']"),
        (HEADER + ",extra\n" + GOOD_ROWS[0] + ",9\n", "unexpected columns ['extra']"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n0.1,abc,0.3,0.4,0.5,0.6,0.7,1\n", "'feature_1', data row 2 holds 'abc'"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n0.1,,0.3,0.4,0.5,0.6,0.7,1\n", "'feature_1', data row 2"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n0.1,inf,0.3,0.4,0.5,0.6,0.7,1\n", "finite number"),
        (HEADER + "\n" + GOOD_ROWS[0] + "\n1,2,3,4,5,6,7,2\n", "only 0 and 1"),
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
