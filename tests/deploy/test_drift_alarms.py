"""main.tf's drift alarms: their math expressions, as Terraform core writes them from the deployed
reference, evaluated on bin counts the service's own counter makes, against a PSI written out
longhand; fresh traffic stays quiet, a shifted feature and a model trained on other data fire."""

from __future__ import annotations

import numpy as np
import pytest

from src import config, drift_metrics, reference
from src.drift import PSI_ACT as ACT
from src.drift import PSI_WARN as WARN
from src.generate_data import make_dataset
from src.train import feature_importance, fit, predict_proba
from tests import longhand, metric_math
from tests.terraform_eval import MAIN_TF, evaluate

pytestmark = pytest.mark.unit
DEPLOYMENT = "xgb-classifier"


def features_and_target(n_rows: int, seed: int):
    frame = make_dataset(n_rows=n_rows, seed=seed)
    return frame[list(config.FEATURE_NAMES)].to_numpy(), frame[config.TARGET_NAME].to_numpy()


def model(train_x, train_y, validation_x, booster_seed=0):
    booster = fit(
        train_x, train_y, rounds=20, params={"objective": "binary:logistic", "seed": booster_seed, "nthread": 1}
    )
    ref = reference.build(train_x, predict_proba(booster, validation_x), feature_importance(booster))
    return booster, ref


@pytest.fixture(scope="module")
def world():
    """Model A fitted on part of one distribution, model A2 on another part of it, model B on a
    different distribution; fresh traffic from A's distribution."""
    x, y = features_and_target(30_000, seed=3)
    a = model(x[:8_000], y[:8_000], x[8_000:10_000])
    a2 = model(x[10_000:18_000], y[10_000:18_000], x[18_000:20_000], booster_seed=1)
    other_x, other_y = features_and_target(10_000, seed=8)
    b = model(other_x[:8_000], other_y[:8_000], other_x[8_000:])
    return {"a": a, "a2": a2, "b": b, "traffic": x[20_000:]}


def deployed(ref: reference.Reference) -> dict:
    """drift_reference as `make deploy` writes it (deploy.cli.resolve_bento)."""
    stored = ref.to_metadata()
    return {key: stored[key] for key in ("series", "shares", "smoothing")}


@pytest.fixture(scope="module")
def expressions(world):
    """What Terraform core makes of main.tf's drift locals for model A's reference, all series."""
    return evaluate(
        "{ psi = local.drift_psi, canary = local.canary_drift_psi, answers = local.canary_answers_psi, "
        "rows = local.drift_rows, series = local.drift_series }",
        MAIN_TF,
        deployment_name=DEPLOYMENT,
        drift_reference=deployed(world["a"][1]),
        drift_metrics=len(world["a"][1].series),
    )


def window(booster, ref, rows) -> dict[str, dict[str, float]]:
    """One window's Sum per bin metric, per series, as the service's counter counts the rows (one
    request of 20 rows after another, as CloudWatch adds up the log lines' values)."""
    counter = drift_metrics.DriftCounter(ref, ref.series)
    total = np.zeros(counter.offsets[-1], dtype=np.int64)
    for start in range(0, len(rows), 20):
        batch = rows[start : start + 20]
        total += counter.counts(batch, predict_proba(booster, batch).astype(np.float64))
    sums = dict(zip(counter.names, total.tolist(), strict=True))
    return {
        name: {f"b{i}": float(sums[drift_metrics.metric_name(name, i)]) for i in range(len(ref.edges[name]) + 1)}
        for name in ref.series
    }


def alarm_psi(expressions, name, values, canary=False):
    kind = "canary" if canary else "psi"
    return metric_math.evaluate(expressions[kind][name], values, {"n": expressions["rows"][name]})


def test_every_series_is_watched_in_order_and_the_expressions_stay_short(world, expressions):
    assert expressions["series"] == list(world["a"][1].series)
    texts = [*expressions["psi"].values(), *expressions["canary"].values(), expressions["answers"]]
    assert all(len(text) < 1024 for text in texts), max(map(len, texts))
    assert "e-" not in "".join(texts)  # decimals only, never exponent notation
    assert 'metric_name = "${each.value.series}_bin${metric_query.value}"' in MAIN_TF.read_text()
    assert drift_metrics.metric_name("feature_3", 7) == "feature_3_bin7"


def test_the_alarm_expression_is_the_longhand_psi_of_the_same_counts(world, expressions):
    booster, ref = world["a"]
    for name, values in window(booster, ref, world["traffic"][:3_000]).items():
        counts = [values[f"b{i}"] for i in range(len(values))]
        want = longhand.psi(counts, ref.shares[name], reference.SMOOTHING)
        assert alarm_psi(expressions, name, values) == pytest.approx(want, rel=1e-6, abs=1e-9), name


def test_fresh_traffic_is_quiet_and_a_shifted_feature_fires(world, expressions):
    booster, ref = world["a"]
    fresh = window(booster, ref, world["traffic"])
    for name, values in fresh.items():
        assert alarm_psi(expressions, name, values) < WARN, name
    top = ref.series[1]
    shifted_rows = world["traffic"].copy()
    shifted_rows[:, ref.column(top)] += shifted_rows[:, ref.column(top)].std()
    shifted = window(booster, ref, shifted_rows)
    assert alarm_psi(expressions, top, shifted[top]) >= ACT
    quiet = [name for name in ref.series[2:] if alarm_psi(expressions, name, shifted[name]) >= WARN]
    assert quiet == [], "only the shifted feature (and the answers) should move"


def test_too_few_rows_in_the_window_never_fire(world, expressions):
    booster, ref = world["a"]
    top = ref.series[1]
    rows = world["traffic"][:400].copy()
    rows[:, ref.column(top)] += 10 * rows[:, ref.column(top)].std()
    values = window(booster, ref, rows)[top]
    assert alarm_psi(expressions, top, values) == 0.0  # 400 rows: under the hour's minimum
    assert alarm_psi(expressions, top, values, canary=True) >= ACT  # the canary's minimum is lower
    assert alarm_psi(expressions, top, {}) == 0.0  # no data at all: every bin filled with 0, n = 0


def canary_answers(expressions, newest, base, rows) -> float:
    (booster_new, ref_new), (booster_base, ref_base) = newest, base
    new = window(booster_new, ref_new, rows)[reference.PROBABILITY]
    old = window(booster_base, ref_base, rows)[reference.PROBABILITY]
    values = {**new, **{key.replace("b", "c"): value for key, value in old.items()}}
    rows_of = {"n": expressions["rows"][reference.PROBABILITY]}
    rows_of["m"] = rows_of["n"].replace("FILL(b", "FILL(c")
    return metric_math.evaluate(expressions["answers"], values, rows_of)


def test_a_canary_of_a_model_trained_on_other_data_fires_and_a_retrained_one_does_not(world, expressions):
    traffic = world["traffic"][:2_000]
    assert canary_answers(expressions, world["b"], world["a"], traffic) >= ACT
    assert canary_answers(expressions, world["a2"], world["a"], traffic) < WARN
    # The new model's own inputs check: its training data was unlike this traffic.
    booster_b, ref_b = world["b"]
    b_expressions = evaluate(
        "local.canary_drift_psi",
        MAIN_TF,
        deployment_name=DEPLOYMENT,
        drift_reference=deployed(ref_b),
        drift_metrics=len(ref_b.series),
    )
    b_rows = evaluate("local.drift_rows", MAIN_TF, drift_reference=deployed(ref_b), drift_metrics=len(ref_b.series))
    moved = [
        name
        for name, values in window(booster_b, ref_b, traffic).items()
        if name != reference.PROBABILITY
        and metric_math.evaluate(b_expressions[name], values, {"n": b_rows[name]}) >= ACT
    ]
    assert moved, "the other data's features should be unlike this traffic"


def test_alarms_canary_alarms_and_the_environment_follow_the_setting(world):
    ref = deployed(world["a"][1])
    given = {"deployment_name": DEPLOYMENT, "drift_reference": ref}
    two = evaluate(
        "{ alarms = local.drift_alarms, env = local.function_env, canary = local.canary_drift }",
        MAIN_TF,
        drift_metrics=2,
        canary_percent=10,
        canary_base_version="4",
        **given,
    )
    watched = ref["series"][:2]
    assert sorted(two["alarms"]) == sorted(f"{name}-{level}" for name in watched for level in ("warn", "act"))
    assert two["env"]["XGB_DRIFT_NAMESPACE"] == f"{DEPLOYMENT}/drift" and two["env"]["XGB_DRIFT_METRICS"] == "2"
    assert sorted(two["canary"]) == sorted(watched)
    none = evaluate(
        "{ alarms = local.drift_alarms, env = local.function_env, canary = local.canary_drift }",
        MAIN_TF,
        drift_metrics=0,
        canary_percent=10,
        canary_base_version="4",
        **given,
    )
    assert none["alarms"] == {} and "XGB_DRIFT_NAMESPACE" not in none["env"] and none["canary"] == []
    no_model = evaluate("local.drift_alarms", MAIN_TF, deployment_name=DEPLOYMENT, drift_metrics=2)
    assert no_model == {}  # a model without a reference: nothing to watch


def test_a_reference_with_a_zero_share_is_refused(world):
    from tests.terraform_eval import variable_accepts

    ref = deployed(world["a"][1])
    assert variable_accepts("drift_reference", ref)
    broken = {**ref, "shares": {**ref["shares"], "probability": [0.0, 0.5, 0.5, 0.0, 0.0]}}
    assert not variable_accepts("drift_reference", broken)


def test_the_settings_defaults_are_the_reports_thresholds():
    """The alarms (operator_config.py's defaults) and the offline report judge by the same numbers."""
    from aws_lambda_operator.terraform_config import spec_defaults

    assert (spec_defaults()["drift_psi_warn"], spec_defaults()["drift_psi_act"]) == (WARN, ACT)


def test_the_dashboard_graphs_each_watched_series_psi_with_the_alarms_expression(world):
    ref = deployed(world["a"][1])
    given = {"deployment_name": DEPLOYMENT, "region": "us-east-1", "drift_reference": ref, "drift_metrics": 2}
    out = evaluate("{ widgets = local.drift_widgets, psi = local.drift_psi }", MAIN_TF, **given)
    assert [w["properties"]["title"] for w in out["widgets"]] == [
        f"Drift: PSI of {s}, per hour" for s in ref["series"][:2]
    ]
    for widget, name in zip(out["widgets"], ref["series"][:2], strict=True):
        metrics = widget["properties"]["metrics"]
        assert metrics[-1] == [{"id": "psi", "expression": out["psi"][name], "label": "PSI"}]
        assert [m[1] for m in metrics[:-2]] == [
            drift_metrics.metric_name(name, i) for i in range(len(ref["shares"][name]))
        ]
        assert [line["value"] for line in widget["properties"]["annotations"]["horizontal"]] == [WARN, ACT]
    assert evaluate("local.drift_widgets", MAIN_TF, **{**given, "drift_metrics": 0}) == []
