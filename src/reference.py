"""What the model was trained on, as bins: the reference that drift is measured against.

Training stores a :class:`Reference` in the model's metadata (``drift_reference``), so the Bento
and the Lambda image carry it. Each *series* (the predicted probability and every feature) has
bin edges and each bin's share of the reference rows:

- a feature: its deciles over the training rows (10 bins, about 10 % each);
- the probability: fixed edges (:data:`PROBABILITY_EDGES`), the same for every model, so that two
  model versions' answers can be compared bin by bin; shares from the validation rows, which the
  model did not learn from.

Shares are smoothed (:data:`SMOOTHING` added to every bin's count), so a bin never has share 0
and the population stability index (:func:`psi`) stays finite. The service, the offline report
(src/drift.py) and the alarms' expression in main.tf all use these bins and this smoothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from src import config

METADATA_KEY = "drift_reference"
PROBABILITY = "probability"
PROBABILITY_EDGES: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
FEATURE_QUANTILES: tuple[float, ...] = tuple(q / 10 for q in range(1, 10))
SMOOTHING = 0.5  # added to each bin's count before shares are taken: PSI stays finite


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """How many of ``values`` fall in each bin; bin i holds edges[i-1] <= value < edges[i]."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), np.asarray(values, dtype=np.float64), side="right")
    return np.bincount(index, minlength=len(edges) + 1)


def smoothed_shares(counts: Sequence[float]) -> np.ndarray:
    """Each bin's share after adding :data:`SMOOTHING` to every count."""
    counts = np.asarray(counts, dtype=np.float64)
    return (counts + SMOOTHING) / (counts.sum() + SMOOTHING * len(counts))


def psi(counts: Sequence[float], expected_shares: Sequence[float]) -> float:
    """Population stability index of binned ``counts`` against ``expected_shares``:
    the sum over bins of (a - e) * ln(a / e), with a the counts' smoothed shares."""
    actual, expected = smoothed_shares(counts), np.asarray(expected_shares, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ValueError(f"{len(actual)} bins of counts against {len(expected)} reference shares")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def psi_between(counts: Sequence[float], other_counts: Sequence[float]) -> float:
    """PSI of one set of bin counts against another (two model versions on the same traffic)."""
    return psi(counts, smoothed_shares(other_counts))


@dataclass(frozen=True)
class Reference:
    """Bins and shares per series. ``series`` is the order the deployment watches them in: the
    probability first, then the features from the most important (by gain) down."""

    series: tuple[str, ...]
    edges: Mapping[str, tuple[float, ...]]
    shares: Mapping[str, tuple[float, ...]]
    rows: Mapping[str, int]

    def column(self, name: str) -> int:
        """The feature's column in a request's rows."""
        return config.FEATURE_NAMES.index(name)

    def psi(self, name: str, values: np.ndarray) -> float:
        return psi(bin_counts(values, self.edges[name]), self.shares[name])

    def to_metadata(self) -> dict:
        """Plain lists and numbers, as the model store's metadata holds them."""
        return {
            "series": list(self.series),
            "edges": {name: list(self.edges[name]) for name in self.series},
            "shares": {name: list(self.shares[name]) for name in self.series},
            "rows": dict(self.rows),
            "smoothing": SMOOTHING,
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping) -> Reference:
        """The reference a model's metadata holds; KeyError if it has none (a model trained
        before references were stored: train it again)."""
        stored = metadata[METADATA_KEY]
        series = tuple(stored["series"])
        return cls(
            series=series,
            edges={name: tuple(float(e) for e in stored["edges"][name]) for name in series},
            shares={name: tuple(float(s) for s in stored["shares"][name]) for name in series},
            rows={name: int(stored["rows"][name]) for name in series},
        )


def build(train_features: np.ndarray, validation_probability: np.ndarray, importance: Mapping[str, float]) -> Reference:
    """The reference of a model: deciles of each feature over its training rows, and the
    probability's fixed bins over its validation rows' answers."""
    train_features = np.asarray(train_features, dtype=np.float64)
    columns = {PROBABILITY: np.asarray(validation_probability, dtype=np.float64)}
    columns.update({name: train_features[:, j] for j, name in enumerate(config.FEATURE_NAMES)})
    edges, shares = {}, {}
    for name, values in columns.items():
        if name == PROBABILITY:
            edges[name] = PROBABILITY_EDGES
        else:  # a feature with ties may have fewer distinct deciles, so fewer bins
            edges[name] = tuple(float(e) for e in np.unique(np.quantile(values, FEATURE_QUANTILES)))
        shares[name] = tuple(round(float(s), 6) for s in smoothed_shares(bin_counts(values, edges[name])))
    rows = {name: len(values) for name, values in columns.items()}
    by_importance = sorted(config.FEATURE_NAMES, key=lambda name: (-importance.get(name, 0.0), name))
    return Reference(series=(PROBABILITY, *by_importance), edges=edges, shares=shares, rows=rows)
