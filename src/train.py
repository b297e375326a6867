"""Stage 2: fit an XGBoost classifier and save it to the BentoML model store.

The tutorial's booster (``xgb.train`` with ``binary:logistic``) with what it lacked: a held-out
validation split, metrics, an evaluation report, and metadata that says which data and which
parameters made each version, with the reference bins drift is measured against
(src/reference.py). Every run saves a new version; ``<name>:latest`` follows it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn.model_selection import train_test_split

from src import config, reference
from src.dataset import DataError, file_sha256, load_dataset
from src.evaluate import compute_metrics, write_report

DEFAULT_PARAMS: dict[str, object] = {
    "objective": "binary:logistic",
    "booster": "gbtree",
    "eval_metric": "auc",
    "max_depth": 6,
    "eta": 0.3,
    "nthread": 1,  # predictable on 2 cores and what the service uses per request
}
DEFAULT_ROUNDS = 50
DEFAULT_VALIDATION_FRACTION = 0.2


@dataclass(frozen=True)
class TrainResult:
    tag: str
    metrics: dict[str, float]
    report_files: list[Path]


def fit(
    features: np.ndarray,
    target: np.ndarray,
    rounds: int = DEFAULT_ROUNDS,
    params: dict[str, object] | None = None,
) -> xgb.Booster:
    """Fit the booster on all rows given; callers hold out their own validation rows.

    Columns stay unnamed in the booster: the service hands it plain arrays, which XGBoost
    refuses for a booster that expects names. The names are in the model's metadata.
    """
    dtrain = xgb.DMatrix(features, label=target)
    return xgb.train(dict(params or DEFAULT_PARAMS), dtrain, num_boost_round=rounds)


def predict_proba(booster: xgb.Booster, features: np.ndarray) -> np.ndarray:
    """Positive-class probabilities, the same call the service makes."""
    return booster.inplace_predict(np.asarray(features, dtype=np.float32), validate_features=False)


def feature_importance(booster: xgb.Booster) -> dict[str, float]:
    """Gain per named feature (XGBoost calls unnamed columns f0, f1, ...)."""
    gains = booster.get_score(importance_type="gain")
    return {name: float(gains.get(f"f{i}", 0.0)) for i, name in enumerate(config.FEATURE_NAMES)}


def save_to_store(booster: xgb.Booster, metadata: dict, importance: dict[str, float]) -> str:
    """Save the booster as a new version of the model; return its tag as text."""
    import bentoml  # imported here: it is slow to import and only this step needs it

    model = bentoml.xgboost.save_model(
        config.MODEL_NAME,
        booster,
        signatures={"predict": {"batchable": False}},
        labels={"task": "binary-classification", "framework": "xgboost", "stage": "dev"},
        metadata=metadata,
        custom_objects={"feature_importance": importance},
    )
    return str(model.tag)


def train(
    data_path: Path = config.DATA_PATH,
    rounds: int = DEFAULT_ROUNDS,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
    seed: int = config.DEFAULT_SEED,
    report_dir: Path | None = config.REPORTS_DIR,
) -> TrainResult:
    """Load, split, fit, evaluate, report and save. Raises :class:`DataError` on unusable data."""
    features, target = load_dataset(data_path)
    x_train, x_val, y_train, y_val = train_test_split(
        features, target, test_size=validation_fraction, random_state=seed, stratify=target
    )
    params = dict(DEFAULT_PARAMS, seed=seed)
    booster = fit(x_train, y_train, rounds, params)
    proba = predict_proba(booster, x_val)
    metrics = compute_metrics(y_val, proba)
    importance = feature_importance(booster)

    metadata = {
        "metrics": metrics,
        "feature_names": list(config.FEATURE_NAMES),
        "n_features": config.N_FEATURES,
        "data_sha256": file_sha256(Path(data_path)),
        "n_train_rows": int(len(y_train)),
        "n_validation_rows": int(len(y_val)),
        "params": params,
        "num_boost_round": rounds,
        "decision_threshold": config.DECISION_THRESHOLD,
        reference.METADATA_KEY: reference.build(x_train, proba, importance).to_metadata(),
    }
    tag = save_to_store(booster, metadata, importance)
    report_files = []
    if report_dir is not None:
        summary = {"model_tag": tag, **metadata, "feature_importance": importance}
        summary.pop(reference.METADATA_KEY)  # bins for the deployment, not a figure for people
        report_files = write_report(Path(report_dir), y_val, proba, importance, summary)
    return TrainResult(tag=tag, metrics=metrics, report_files=report_files)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m src.train",
        description="Train the XGBoost classifier and save a new version to the BentoML model store.",
    )
    parser.add_argument("--data", type=Path, default=config.DATA_PATH, help="training CSV (default: data/data.csv)")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="boosting rounds (default: %(default)s)")
    parser.add_argument(
        "--validation-fraction",
        type=float,
        default=DEFAULT_VALIDATION_FRACTION,
        help="share of rows held out for validation (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=config.DEFAULT_SEED,
        help="seed for the split and the booster (default: %(default)s)",
    )
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=config.REPORTS_DIR,
        help="where metrics.json and the plots go (default: reports/)",
    )
    parser.add_argument("--tag-file", type=Path, help="also write the saved model's tag to this file (make's record)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if not 0.0 < args.validation_fraction < 1.0:
        parser.error(f"--validation-fraction must be between 0 and 1, got {args.validation_fraction}")
    try:
        result = train(args.data, args.rounds, args.validation_fraction, args.seed, args.report_dir)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = result.metrics
    print(f"validation: AUC {m['auc']:.4f}  accuracy {m['accuracy']:.4f}  log loss {m['log_loss']:.4f}")
    if result.report_files:
        print(f"report: {result.report_files[0].parent}")
    print(f"saved model: {result.tag}")
    if args.tag_file:
        args.tag_file.write_text(f"{result.tag}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
