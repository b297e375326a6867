"""Stage 2: training, metadata and the evaluation report."""

import json

import bentoml
import numpy as np
import pytest

from src import config
from src.reference import Reference
from src.train import main, predict_proba


def test_model_is_good_on_held_out_rows(trained):
    assert trained.metrics["auc"] > 0.95
    assert trained.metrics["accuracy"] > 0.9
    assert 0 < trained.metrics["log_loss"] < 0.3


def test_saved_with_labels_metadata_and_feature_importance(trained, data_path):
    from src.dataset import file_sha256

    model = bentoml.models.get(trained.tag)
    assert model.tag.name == config.MODEL_NAME
    assert model.info.labels["framework"] == "xgboost"
    meta = model.info.metadata
    assert meta["feature_names"] == list(config.FEATURE_NAMES)
    assert meta["data_sha256"] == file_sha256(data_path)
    assert meta["metrics"] == pytest.approx(trained.metrics)
    assert meta["params"]["objective"] == "binary:logistic"
    assert meta["n_train_rows"] + meta["n_validation_rows"] == 10_000
    importance = model.custom_objects["feature_importance"]
    assert set(importance) == set(config.FEATURE_NAMES)
    assert sum(importance.values()) > 0
    drift_reference = Reference.from_metadata(meta)
    assert drift_reference.series[1] == max(importance, key=importance.get)
    assert drift_reference.rows["probability"] == meta["n_validation_rows"]


def test_report_has_metrics_json_and_three_pngs(trained):
    names = {p.name for p in trained.report_files}
    assert names == {"metrics.json", "roc_curve.png", "confusion_matrix.png", "feature_importance.png"}
    for path in trained.report_files:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert path.stat().st_size > 5_000
    summary = json.loads(next(p for p in trained.report_files if p.name == "metrics.json").read_text())
    assert summary["model_tag"] == trained.tag
    assert summary["metrics"]["auc"] == pytest.approx(trained.metrics["auc"])


def test_every_run_is_a_new_version_and_latest_follows(data_path, tmp_path, capsys):
    before = {str(m.tag) for m in bentoml.models.list(config.MODEL_NAME)}
    assert main(["--data", str(data_path), "--rounds", "5", "--report-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "validation: AUC" in out
    new_tag = out.strip().splitlines()[-1].removeprefix("saved model: ")
    assert new_tag not in before
    assert str(bentoml.models.get(f"{config.MODEL_NAME}:latest").tag) == new_tag


def test_stored_model_predicts_like_the_trained_one(booster, trained, data_path):
    """Training is seeded: fitting again on the same split gives the booster that was stored, and the
    stored booster reproduces the validation metrics saved with it."""
    from sklearn.model_selection import train_test_split

    from src.dataset import load_dataset
    from src.evaluate import compute_metrics
    from src.train import DEFAULT_PARAMS, DEFAULT_ROUNDS, DEFAULT_VALIDATION_FRACTION, fit

    features, target = load_dataset(data_path)
    x_train, x_val, y_train, y_val = train_test_split(
        features, target, test_size=DEFAULT_VALIDATION_FRACTION, random_state=config.DEFAULT_SEED, stratify=target
    )
    in_memory = fit(x_train, y_train, DEFAULT_ROUNDS, dict(DEFAULT_PARAMS, seed=config.DEFAULT_SEED))
    rows = np.random.default_rng(0).normal(size=(50, config.N_FEATURES)).astype(np.float32)
    np.testing.assert_array_equal(predict_proba(booster, rows), predict_proba(in_memory, rows))
    stored = bentoml.models.get(trained.tag).info.metadata["metrics"]
    for name, value in compute_metrics(y_val, predict_proba(booster, x_val)).items():
        assert value == pytest.approx(stored[name], rel=1e-9), name


def test_bad_data_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["--data", str(bad), "--report-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "missing columns" in err


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--validation-fraction", "1.5"]])
def test_nonsense_training_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert "must be" in capsys.readouterr().err
