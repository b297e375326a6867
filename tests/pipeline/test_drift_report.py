"""The offline drift report (`python -m src.drift`) on the session's model: the training data
itself does not drift, a shifted feature does, and every input it cannot use gets one line."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pandas as pd
import pytest

from src import config, reference
from src.drift import PSI_ACT, PSI_WARN, main
from tests import longhand
from tests.commands import run_python

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ref(trained) -> reference.Reference:
    import bentoml

    return reference.Reference.from_metadata(bentoml.models.get(trained.tag).info.metadata)


@pytest.fixture(scope="module")
def frame(data_path) -> pd.DataFrame:
    return pd.read_csv(data_path)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_rows(out: str) -> dict[str, tuple[float, str]]:
    """The table's lines as series -> (PSI, verdict)."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in ("ok", "warn", "act"):
            rows[parts[0]] = (float(parts[1]), parts[2])
    return rows


def longhand_counts(values, edges) -> list[int]:
    """How many values fall in each bin, bin i holding edges[i-1] <= value < edges[i]."""
    bounds = [-math.inf, *edges, math.inf]
    return [int(((values >= low) & (values < high)).sum()) for low, high in zip(bounds, bounds[1:], strict=False)]


def test_training_data_does_not_drift(trained, data_path, ref, tmp_path, capsys):
    code, out, err = run(capsys, "--reference", trained.tag, "--data", data_path, "--report-dir", tmp_path)
    assert code == 0, err
    table = table_rows(out)
    assert list(table) == list(ref.series)
    for name, (psi, word) in table.items():
        assert psi < PSI_WARN and word == "ok", name
    assert "rows scored: 10,000\n" in out
    assert "dropped" not in out
    assert "none moved" in out.splitlines()[-2]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["drift.json", "drift.png"]  # no partial files left


def test_json_holds_every_number_and_its_psi_is_the_formula(trained, data_path, ref, booster, frame, tmp_path, capsys):
    code, _, err = run(capsys, "--reference", trained.tag, "--data", data_path, "--report-dir", tmp_path)
    assert code == 0, err
    summary = json.loads((tmp_path / "drift.json").read_text())
    assert summary["model_tag"] == trained.tag
    assert summary["data"] == str(data_path)
    assert summary["rows"] == len(frame) == 10_000
    assert summary["smoothing"] == reference.SMOOTHING
    assert list(summary["series"]) == list(ref.series)

    features = frame[list(config.FEATURE_NAMES)].to_numpy(np.float32)
    values = {name: features[:, ref.column(name)].astype(np.float64) for name in config.FEATURE_NAMES}
    values[reference.PROBABILITY] = booster.inplace_predict(features, validate_features=False).astype(np.float64)
    for name, entry in summary["series"].items():
        assert entry["edges"] == list(ref.edges[name]), name
        assert entry["reference_shares"] == list(ref.shares[name]), name
        assert entry["counts"] == longhand_counts(values[name], ref.edges[name]), name
        smoothed = [
            (c + reference.SMOOTHING) / (10_000 + reference.SMOOTHING * len(entry["counts"])) for c in entry["counts"]
        ]
        assert entry["shares"] == pytest.approx(smoothed, rel=1e-12), name
        expected = longhand.psi(entry["counts"], entry["reference_shares"], reference.SMOOTHING)
        assert entry["psi"] == pytest.approx(expected, rel=1e-9, abs=1e-15), name
        assert entry["verdict"] == "ok"
    assert summary["moved"] == []


def test_plot_is_a_png_with_a_panel_per_series(trained, data_path, tmp_path, capsys):
    code, _, err = run(capsys, "--reference", trained.tag, "--data", data_path, "--report-dir", tmp_path)
    assert code == 0, err
    png = (tmp_path / "drift.png").read_bytes()
    assert png[:8] == PNG_MAGIC and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 400  # eight panels in two rows of four
    assert len(png) > 20_000


def test_shifted_feature_is_named_and_still_exits_0(trained, ref, frame, tmp_path, capsys):
    top = ref.series[1]
    shifted = frame.copy()
    shifted[top] += shifted[top].std()
    path = tmp_path / "shifted.csv"
    shifted.to_csv(path, index=False)

    code, out, err = run(capsys, "--reference", trained.tag, "--data", path, "--report-dir", tmp_path / "report")
    assert code == 0, err
    table = table_rows(out)
    assert table[top][0] > PSI_ACT and table[top][1] == "act"
    summary_line = out.splitlines()[-2]
    assert summary_line.startswith("drift:") and top in summary_line
    for name in config.FEATURE_NAMES:
        if name != top:
            assert name not in summary_line
    summary = json.loads((tmp_path / "report" / "drift.json").read_text())
    assert summary["series"][top]["psi"] > PSI_ACT
    assert top in summary["moved"]


def test_rows_that_are_not_finite_numbers_are_dropped_and_counted(trained, frame, tmp_path, capsys):
    sample = frame.head(200).astype(str)
    sample.loc[3, "feature_0"] = "abc"
    sample.loc[7, "feature_2"] = "nan"
    sample.loc[11, "feature_6"] = "-inf"
    path = tmp_path / "some_bad.csv"
    sample.to_csv(path, index=False)

    code, out, err = run(capsys, "--reference", trained.tag, "--data", path, "--report-dir", tmp_path / "report")
    assert code == 0, err
    assert "rows scored: 197 (3 dropped: 1 not a number, 2 not finite)" in out
    summary = json.loads((tmp_path / "report" / "drift.json").read_text())
    assert summary["rows"] == 197 and summary["dropped"] == 3
    assert all(sum(entry["counts"]) == 197 for entry in summary["series"].values())


@pytest.fixture
def model_without_reference(booster):
    """A model saved as training saved them before reference bins, under a name of its own."""
    import bentoml

    model = bentoml.xgboost.save_model(
        "xgb_drift_test_no_reference",
        booster,
        signatures={"predict": {"batchable": False}},
        metadata={"feature_names": list(config.FEATURE_NAMES), "n_features": config.N_FEATURES},
    )
    yield str(model.tag)
    bentoml.models.delete(model.tag)


def _write(path, text: str):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing columns", ["feature_2", "feature_5", "lacks"]),
        ("no such file", ["no such file", "--data"]),
        ("header only", ["no rows"]),
        ("no finite row", ["none of its 2 rows", "1 not a number", "1 not finite"]),
        ("model not in store", ["xgb_model:doesnotexist", "not", "model store", "python -m src.train"]),
        ("not a tag", ["not a valid BentoML tag", "--reference"]),
        ("no drift reference", ["drift_reference", "train it again with `python -m src.train`"]),
    ],
)
def test_unusable_input_exits_2_with_one_line(case, expected, trained, frame, tmp_path, capsys, request):
    model, data = trained.tag, tmp_path / "data.csv"
    if case == "missing columns":
        frame.drop(columns=["feature_2", "feature_5"]).head(50).to_csv(data, index=False)
    elif case == "no such file":
        data = tmp_path / "nowhere.csv"
    elif case == "header only":
        _write(data, ",".join(frame.columns) + "\n")
    elif case == "no finite row":
        _write(data, ",".join(config.FEATURE_NAMES) + "\n" + "x,1,2,3,4,5,6\n" + "1,2,3,inf,5,6,7\n")
    else:
        frame.head(50).to_csv(data, index=False)
        if case == "model not in store":
            model = f"{config.MODEL_NAME}:doesnotexist"
        elif case == "not a tag":
            model = "Not A Tag!"
        else:
            model = request.getfixturevalue("model_without_reference")

    code, out, err = run(capsys, "--reference", model, "--data", data, "--report-dir", tmp_path / "report")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for part in expected:
        assert part in lines[0], (part, lines[0])
    assert not (tmp_path / "report").exists()


def test_help_as_a_command():
    result = run_python("-m", "src.drift", "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    for option in ("--reference", "--data", "--report-dir"):
        assert option in result.stdout
    assert config.MODEL_TAG in result.stdout  # the default model tag


def test_a_real_run_defaults_to_the_configured_model(trained, data_path, ref, tmp_path):
    result = run_python(
        "-m", "src.drift", "--data", str(data_path), "--report-dir", str(tmp_path), env={"XGB_MODEL_TAG": trained.tag}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(table_rows(result.stdout)) == list(ref.series)
    assert f"against {trained.tag}" in result.stdout
    summary = json.loads((tmp_path / "drift.json").read_text())
    assert summary["model_tag"] == trained.tag and summary["rows"] == 10_000
    assert (tmp_path / "drift.png").read_bytes()[:8] == PNG_MAGIC


def test_the_report_gives_the_numbers_of_the_deployments_alarm_expression(trained, built_bento, frame, ref, tmp_path):
    """The same rows through the report and through main.tf's alarm expressions, as Terraform core
    writes them from the reference `make deploy` sends (deploy.cli.resolve_bento), agree."""
    from deploy.cli import resolve_bento
    from src.drift import report
    from tests import metric_math
    from tests.terraform_eval import evaluate

    shifted = frame.copy()
    shifted[ref.series[1]] += shifted[ref.series[1]].std() / 2
    path = tmp_path / "shifted.csv"
    shifted.to_csv(path, index=False)
    result = report(trained.tag, path, None)
    deployed = resolve_bento(built_bento)["drift_reference"]
    alarms = evaluate(
        "{ psi = local.drift_psi, rows = local.drift_rows }",
        deployment_name="xgb-classifier",
        drift_reference=deployed,
        drift_metrics=len(deployed["series"]),
    )
    for name in ref.series:
        values = {f"b{i}": float(count) for i, count in enumerate(result.counts[name])}
        alarm = metric_math.evaluate(alarms["psi"][name], values, {"n": alarms["rows"][name]})
        assert alarm == pytest.approx(result.psi[name], rel=1e-6, abs=1e-9), name
    assert result.psi[ref.series[1]] > PSI_WARN
