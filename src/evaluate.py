"""Validation metrics and the evaluation report (JSON plus PNG plots) a person can look at."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers or in CI
import matplotlib.pyplot as plt
import numpy as np
from sklearn import metrics as skm

from src import config


def compute_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """AUC, accuracy and log loss of positive-class probabilities at the service's threshold."""
    labels = (proba >= config.DECISION_THRESHOLD).astype(int)
    return {
        "auc": float(skm.roc_auc_score(y_true, proba)),
        "accuracy": float(skm.accuracy_score(y_true, labels)),
        "log_loss": float(skm.log_loss(y_true, proba, labels=[0, 1])),
    }


def write_report(
    report_dir: Path,
    y_true: np.ndarray,
    proba: np.ndarray,
    importance: dict[str, float],
    summary: dict,
) -> list[Path]:
    """Write metrics.json and ROC, confusion-matrix and feature-importance plots; return the paths."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []

    metrics_path = report_dir / "metrics.json"
    metrics_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    written.append(metrics_path)

    fpr, tpr, _ = skm.roc_curve(y_true, proba)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"XGBoost (AUC {summary['metrics']['auc']:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve (validation)")
    ax.legend(loc="lower right")
    written.append(_save(fig, report_dir / "roc_curve.png"))

    labels = (proba >= config.DECISION_THRESHOLD).astype(int)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    skm.ConfusionMatrixDisplay.from_predictions(y_true, labels, ax=ax, colorbar=False)
    ax.set_title(f"Confusion matrix (threshold {config.DECISION_THRESHOLD})")
    written.append(_save(fig, report_dir / "confusion_matrix.png"))

    names = list(config.FEATURE_NAMES)
    gains = [importance.get(name, 0.0) for name in names]
    order = np.argsort(gains)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.barh([names[i] for i in order], [gains[i] for i in order])
    ax.set(xlabel="Gain", title="Feature importance")
    written.append(_save(fig, report_dir / "feature_importance.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
