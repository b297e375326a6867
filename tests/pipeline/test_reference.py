"""The reference bins training stores, and the population stability index against them."""

import numpy as np
import pytest

from src import config, reference
from src.generate_data import make_dataset
from src.train import feature_importance, fit, predict_proba
from tests import longhand

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def drift_world():
    """A model fitted on half of one generated data set, and the other half as fresh traffic from
    the same distribution (make_classification's distribution depends on its row count and seed)."""
    frame = make_dataset(n_rows=20_000, seed=3)
    features = frame[list(config.FEATURE_NAMES)].to_numpy()
    target = frame[config.TARGET_NAME].to_numpy()
    train_x, train_y = features[:8_000], target[:8_000]
    validation_x, fresh_x = features[8_000:10_000], features[10_000:]
    booster = fit(train_x, train_y, rounds=20)
    ref = reference.build(train_x, predict_proba(booster, validation_x), feature_importance(booster))
    return booster, ref, train_x, fresh_x


def test_bins_hold_the_value_at_their_lower_edge():
    counts = reference.bin_counts(np.array([-5.0, 0.2, 0.2, 0.3999, 0.4, 0.99, 1.0]), reference.PROBABILITY_EDGES)
    assert counts.tolist() == [1, 3, 1, 0, 2]


def test_feature_bins_are_the_training_deciles(drift_world):
    _, ref, train_x, _ = drift_world
    for j, name in enumerate(config.FEATURE_NAMES):
        assert ref.edges[name] == pytest.approx(np.quantile(train_x[:, j], reference.FEATURE_QUANTILES))
        assert len(ref.shares[name]) == 10
        assert ref.shares[name] == pytest.approx([0.1] * 10, abs=0.002)
        assert ref.rows[name] == len(train_x)


def test_probability_bins_are_fixed_and_their_shares_are_the_validation_rows(drift_world):
    booster, ref, _, _ = drift_world
    assert ref.edges[reference.PROBABILITY] == reference.PROBABILITY_EDGES
    assert ref.rows[reference.PROBABILITY] == 2_000
    assert sum(ref.shares[reference.PROBABILITY]) == pytest.approx(1.0, abs=1e-5)
    # A good classifier: most answers are near 0 or 1, few in the middle bin.
    low, *_, high = ref.shares[reference.PROBABILITY]
    assert low > 0.3 and high > 0.3 and ref.shares[reference.PROBABILITY][2] < 0.1


def test_series_are_the_probability_then_features_by_importance(drift_world):
    booster, ref, _, _ = drift_world
    importance = feature_importance(booster)
    assert ref.series[0] == reference.PROBABILITY
    gains = [importance[name] for name in ref.series[1:]]
    assert sorted(ref.series[1:]) == sorted(config.FEATURE_NAMES)
    assert gains == sorted(gains, reverse=True)


def test_metadata_round_trip(drift_world):
    _, ref, _, _ = drift_world
    stored = ref.to_metadata()
    assert reference.Reference.from_metadata({reference.METADATA_KEY: stored}) == ref
    assert stored["smoothing"] == reference.SMOOTHING


def test_psi_matches_the_longhand_formula():
    counts, expected = [30, 0, 12, 58], [0.25, 0.25, 0.25, 0.25]
    want = longhand.psi(counts, expected, reference.SMOOTHING)
    assert reference.psi(counts, expected) == pytest.approx(want, rel=1e-12)
    assert reference.psi([25, 25, 25, 25], expected) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="3 bins of counts against 4"):
        reference.psi([1, 2, 3], expected)


def test_fresh_traffic_stays_below_the_warning_and_a_shifted_feature_crosses_the_action_level(drift_world):
    booster, ref, _, fresh_x = drift_world
    fresh_probability = predict_proba(booster, fresh_x)
    for j, name in enumerate(config.FEATURE_NAMES):
        assert ref.psi(name, fresh_x[:, j]) < 0.1, name
    assert ref.psi(reference.PROBABILITY, fresh_probability) < 0.1

    top = ref.series[1]
    shifted = fresh_x.copy()
    shifted[:, ref.column(top)] += shifted[:, ref.column(top)].std()
    assert ref.psi(top, shifted[:, ref.column(top)]) > 0.25
    assert ref.psi(reference.PROBABILITY, predict_proba(booster, shifted)) > 0.1
