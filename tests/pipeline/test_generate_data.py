"""Stage 1: the synthetic data set."""

import pandas as pd
import pytest

from src import config
from src.generate_data import main, make_dataset, write_dataset

pytestmark = pytest.mark.unit


def test_default_shape_columns_and_classes():
    frame = make_dataset()
    assert frame.shape == (config.N_ROWS, config.N_FEATURES + 1)
    assert list(frame.columns) == [*config.FEATURE_NAMES, "target"]
    assert set(frame["target"].unique()) == {0, 1}


def test_same_seed_writes_identical_files_and_other_seeds_differ(tmp_path):
    a = write_dataset(tmp_path / "a.csv", n_rows=500, seed=7)
    b = write_dataset(tmp_path / "b.csv", n_rows=500, seed=7)
    c = write_dataset(tmp_path / "c.csv", n_rows=500, seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_cli_options_for_rows_seed_and_output(tmp_path, capsys):
    out = tmp_path / "nested" / "d.csv"
    assert main(["--rows", "123", "--seed", "3", "--output", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 123
    assert "123 rows" in capsys.readouterr().out
    assert not list(out.parent.glob(".*tmp")), "no temporary file left behind"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rows", "ten"], "expected a whole number"),
        (["--rows", "0"], "at least 2 rows"),
        (["--rows", "-5"], "at least 2 rows"),
        (["--seed", "-1"], "seed between 0"),
        (["--seed", "1.5"], "expected a whole number"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_nonsense_arguments_get_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_directory_as_output_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--output", str(tmp_path)])
    assert "is a directory" in capsys.readouterr().err
