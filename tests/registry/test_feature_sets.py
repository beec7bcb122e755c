"""Each model chooses its feature set (with the trend or without) on its last cross-validation fold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from registry.algorithms import ModelSpec, build_model, hyperparameters_for, unwrap
from registry.features import TREND_COLUMNS, RawEncoder
from registry.training import FEATURE_SETS, fit_and_evaluate, time_split
from tests.registry.factories import raw_frame

pytestmark = pytest.mark.django_db


def _encoder(model: object) -> RawEncoder:
    encoder = unwrap(model).named_steps["prep"].named_steps["encode"]
    assert isinstance(encoder, RawEncoder)
    return encoder


def test_an_encoder_without_the_trend_never_reads_it():
    frame, y = raw_frame(200)
    with_trend = RawEncoder(kind="linear").fit(frame, y)
    without = RawEncoder(kind="linear", trend=False).fit(frame, y)
    assert "num:trend_days" in with_trend.get_feature_names_out()
    assert not {f"num:{c}" for c in TREND_COLUMNS} & set(without.get_feature_names_out())
    assert len(without.get_feature_names_out()) == len(with_trend.get_feature_names_out()) - len(TREND_COLUMNS)
    assert without.transform(frame).shape == (200, len(without.get_feature_names_out()))


def test_a_model_keeps_the_trend_when_it_forecasts_the_first_fold_better():
    frame, _ = raw_frame(600, seed=4)
    # One airing every 3 days for 5 years: the calendar features repeat, only the trend keeps rising.
    frame["start"] = pd.Series(pd.date_range("2019-01-01 20:00", periods=len(frame), freq="3D", tz="UTC"))
    rng = np.random.default_rng(4)
    t = np.arange(len(frame)) / len(frame)
    frame["engagement"] = 20.0 + 60.0 * t + rng.normal(0.0, 1.0, len(frame))  # a steady rise, no history
    spec = ModelSpec("elasticnet", "engagement", hyperparameters_for("elasticnet"), seed=1)
    trained = fit_and_evaluate(spec, time_split(frame), n_jobs=1, cv_splits=3)
    metrics = trained.metrics
    assert set(metrics["feature_set_mse"]) == set(FEATURE_SETS)
    assert metrics["feature_set_mse"]["all"] < metrics["feature_set_mse"]["no_trend"]
    assert metrics["feature_set"] == "all"
    assert _encoder(trained.model).trend is True  # the fitted model uses the set it chose


def test_a_model_without_the_trend_is_built_without_it():
    frame, y = raw_frame(200)
    spec = ModelSpec("random_forest", "audience", hyperparameters_for("random_forest"), seed=1)
    model = build_model(spec, n_jobs=1, trend=False).fit(frame, y)
    assert "num:trend_days" not in _encoder(model).get_feature_names_out()
    assert np.isfinite(model.predict(frame)).all()
