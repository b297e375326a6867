"""Drift counts from the answers: how many of a request's rows fell in each reference bin.

The service counts each answer's rows in the model's reference bins (src/reference.py) and the
counts leave the process two ways, neither of them a call on the request's path:
- on Lambda, as CloudWatch metrics through the Embedded Metric Format: the request's one log line
  (src/request_log.py) carries them, with the function version as the dimension; only the
  series the deployment pays for (``drift_metrics``: config.DRIFT_METRICS) and only bins with a
  count, when config.DRIFT_NAMESPACE is set;
- locally, with metrics on (config.SERVER_METRICS), as a Prometheus counter on /metrics, every
  series.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Sequence

import numpy as np

from src import config
from src.reference import PROBABILITY, Reference

logger = logging.getLogger(__name__)

DIMENSION = "FunctionVersion"
PROMETHEUS_NAME = "xgb_drift_rows"  # exposed as xgb_drift_rows_total{series, bin}
# Up to this many rows, bins are found with bisect on Python floats: faster than numpy's calls.
SMALL_REQUEST_ROWS = 8


def metric_name(series: str, bin_index: int) -> str:
    """The CloudWatch metric of one bin, e.g. ``probability_bin0``; main.tf names the same."""
    return f"{series}_bin{bin_index}"


class DriftCounter:
    """Counts rows per bin of ``counted`` series; :meth:`observe` returns the log line's EMF keys."""

    def __init__(
        self,
        reference: Reference,
        counted: Sequence[str],
        emitted: Sequence[str] = (),
        namespace: str = "",
        version: str = "",
        prometheus=None,
    ):
        self.series = tuple(counted)
        self.columns = [None if name == PROBABILITY else reference.column(name) for name in self.series]
        self.edges = [list(reference.edges[name]) for name in self.series]
        self.offsets = np.cumsum([0] + [len(edges) + 1 for edges in self.edges]).tolist()  # each series' first bin
        self.names = [
            metric_name(name, i)
            for name, edges in zip(self.series, self.edges, strict=True)
            for i in range(len(edges) + 1)
        ]
        emitted = set(emitted) if namespace else set()
        self.emitted = [
            name in emitted for name, edges in zip(self.series, self.edges, strict=True) for _ in range(len(edges) + 1)
        ]
        self.definitions = [{"Name": name, "Unit": "Count"} for name in self.names]
        self.namespace, self.version = namespace, version
        self.prometheus_children = None
        if prometheus is not None:
            self.prometheus_children = [
                prometheus.labels(series=name, bin=str(i))
                for name, edges in zip(self.series, self.edges, strict=True)
                for i in range(len(edges) + 1)
            ]

    def hits(self, features: np.ndarray, probability: np.ndarray) -> dict[int, int]:
        """The bins with a count, {bin's place in self.names: rows}."""
        if len(probability) <= SMALL_REQUEST_ROWS:
            found: dict[int, int] = {}
            rows, answers = features.tolist(), probability.tolist()
            for column, edges, offset in zip(self.columns, self.edges, self.offsets, strict=False):
                for row, answer in zip(rows, answers, strict=True):
                    place = offset + bisect.bisect_right(edges, answer if column is None else row[column])
                    found[place] = found.get(place, 0) + 1
            return found
        index = []
        for column, edges, offset in zip(self.columns, self.edges, self.offsets, strict=False):
            values = probability if column is None else features[:, column]
            index.append(np.searchsorted(edges, values, side="right") + offset)
        counts = np.bincount(np.concatenate(index), minlength=self.offsets[-1])
        nonzero = np.flatnonzero(counts)
        return dict(zip(nonzero.tolist(), counts[nonzero].tolist(), strict=True))

    def counts(self, features: np.ndarray, probability: np.ndarray) -> np.ndarray:
        """Rows per bin, every counted series' bins one after the other (as self.names)."""
        counts = np.zeros(self.offsets[-1], dtype=np.int64)
        for place, rows in self.hits(features, probability).items():
            counts[place] = rows
        return counts

    def observe(self, features: np.ndarray, probability: np.ndarray) -> dict | None:
        """Count one answer; the EMF document's keys for its log line, or None if nothing is emitted."""
        hits = self.hits(features, probability)
        if self.prometheus_children is not None:
            for place, rows in hits.items():
                self.prometheus_children[place].inc(rows)
        emitted = [place for place in hits if self.emitted[place]]
        if not emitted:
            return None
        emitted.sort()
        fields = {self.names[place]: hits[place] for place in emitted}
        fields[DIMENSION] = self.version
        fields["_aws"] = {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": self.namespace,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [self.definitions[place] for place in emitted],
                }
            ],
        }
        return fields


def for_model(metadata: dict, version: str) -> DriftCounter | None:
    """The service's counter for a model's metadata, as config.py's settings ask; None when
    nothing is counted (no namespace or no request log, and metrics off) or the model has no
    reference."""
    if not (config.DRIFT_NAMESPACE and config.DRIFT_METRICS and config.REQUEST_LOG) and not config.SERVER_METRICS:
        return None
    try:
        reference = Reference.from_metadata(metadata)
    except KeyError:
        logger.warning("the model has no drift reference (trained before it was stored): no drift metrics")
        return None
    emitted = reference.series[: config.DRIFT_METRICS] if config.REQUEST_LOG else ()
    counted = reference.series if config.SERVER_METRICS else emitted
    prometheus = None
    if config.SERVER_METRICS:
        import bentoml

        prometheus = bentoml.metrics.Counter(
            name=PROMETHEUS_NAME,
            documentation="Answered rows per drift reference bin (src/reference.py), per series",
            labelnames=["series", "bin"],
        )
    return DriftCounter(reference, counted, emitted, config.DRIFT_NAMESPACE, version, prometheus)
