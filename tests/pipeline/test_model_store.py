"""The tutorial's model-store operations, including export → import into a fresh store."""

import json

import pytest

from src import model_store
from tests.commands import run_python
from tests.sample_requests import expected_probabilities, random_rows


def test_list_shows_the_trained_version(trained, capsys):
    assert model_store.main(["list"]) == 0
    assert trained.tag in capsys.readouterr().out


def test_show_prints_metadata(trained, capsys):
    assert model_store.main(["show", trained.tag]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tag"] == trained.tag and "feature_importance" in shown["custom_objects"]


def test_loads_back_as_booster_and_through_models_get(trained):
    import bentoml
    import xgboost as xgb

    assert isinstance(model_store.load_booster(trained.tag), xgb.Booster)
    assert str(bentoml.models.get(trained.tag).tag) == trained.tag


def test_export_then_import_into_a_fresh_store_predicts_the_same(trained, booster, tmp_path):
    archive = model_store.export(trained.tag, tmp_path / "models")
    assert archive.name.endswith(".bentomodel") and archive.stat().st_size > 10_000
    fresh_home = tmp_path / "fresh-home"
    rows = random_rows(20, seed=1, decimals=4).tolist()

    result = run_python("-m", "src.model_store", "import", str(archive), env={"BENTOML_HOME": str(fresh_home)})
    assert result.returncode == 0, result.stderr
    assert trained.tag in result.stdout

    script = (
        "import json, sys, numpy as np, bentoml\n"
        f"b = bentoml.xgboost.load_model('{trained.tag.split(':')[0]}:latest')\n"
        "rows = np.asarray(json.loads(sys.argv[1]), dtype=np.float32)\n"
        "print(json.dumps(b.inplace_predict(rows).tolist()))\n"
    )
    result = run_python("-c", script, json.dumps(rows), env={"BENTOML_HOME": str(fresh_home)})
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    expected = expected_probabilities(booster, rows).tolist()
    assert imported == pytest.approx(expected, abs=0)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupted_archive_is_refused_and_store_unchanged(trained, tmp_path, damage):
    good = model_store.export(trained.tag, tmp_path)
    bad = tmp_path / "bad.bentomodel"
    data = good.read_bytes()
    bad.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not an archive" * 100, "empty": b""}[damage])
    home = tmp_path / "home"
    result = run_python("-m", "src.model_store", "import", str(bad), env={"BENTOML_HOME": str(home)})
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    models_dir = home / "models"
    assert not models_dir.exists() or not any(models_dir.iterdir())
