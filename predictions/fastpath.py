"""A serving path for the registry's fitted pipelines: the same numbers, without pandas per call.

The registry's pipelines are ``RawEncoder [-> StandardScaler] -> estimator`` taking a raw pandas frame.
For one row, building that frame, deriving the calendar columns with pandas and scikit-learn's input
validation cost far more than the model. :func:`compile_model` feeds the fitted encoder from column
arrays (``RawRows``) and calls the estimator's fitted trees/weights directly (one thread). It is used
only after it reproduced ``LoadedModel.predict`` on sample rows (relative difference <= 1e-9);
anything it does not recognise stays on the registry's own path.

``RawRows`` is the column-wise form of the registry's raw frame (``registry.features.RAW_COLUMNS``).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings

logger = logging.getLogger(__name__)

Columns = dict[str, np.ndarray]


@dataclass
class RawRows:
    """Raw rows, column-wise (the registry's RAW_COLUMNS minus the external id)."""

    program_id: np.ndarray  # int64
    lead_in_program_id: np.ndarray  # int64, -1 = none
    channel: np.ndarray  # object (str)
    genre: np.ndarray  # object (str)
    content_rating: np.ndarray  # object (str)
    duration_minutes: np.ndarray  # float64
    is_live: np.ndarray  # bool
    is_premiere: np.ndarray  # bool
    is_finale: np.ndarray  # bool
    start: list[datetime]  # tz-aware
    # The history columns for the model's target (registry.features.HISTORY_COLUMNS), when it uses them.
    history: dict[str, np.ndarray] = field(default_factory=dict)
    # ``start`` as naive wall clock in each channel's zone (``registry.features.local_wall_clock``):
    # computed once per request, read by the history lookup and by every model's derived features.
    _local: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.start)

    @property
    def local(self) -> np.ndarray:
        """``registry.features.local_wall_clock`` of the rows (datetime64[m]), computed on first use."""
        if self._local is None:
            from registry.features import local_wall_clock

            self._local = local_wall_clock(self.start, self.channel)
        return self._local

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> RawRows:
        from registry.features import HISTORY_COLUMNS

        starts = pd.to_datetime(frame["start"], utc=True).dt.tz_convert(settings.TIME_ZONE)
        return cls(
            program_id=frame["program_id"].to_numpy(dtype="int64"),
            lead_in_program_id=frame["lead_in_program_id"].to_numpy(dtype="int64"),
            channel=frame["channel"].astype(str).to_numpy(dtype=object),
            genre=frame["genre"].astype(str).to_numpy(dtype=object),
            content_rating=frame["content_rating"].fillna("").astype(str).to_numpy(dtype=object),
            duration_minutes=pd.to_numeric(frame["duration_minutes"], errors="coerce").to_numpy(dtype="float64"),
            is_live=frame["is_live"].to_numpy(dtype=bool),
            is_premiere=frame["is_premiere"].to_numpy(dtype=bool),
            is_finale=frame["is_finale"].to_numpy(dtype=bool),
            start=list(starts.dt.to_pydatetime()),
            history={c: frame[c].to_numpy(dtype="float64") for c in HISTORY_COLUMNS if c in frame.columns},
        )

    def take(self, idx: Sequence[int]) -> RawRows:
        ix = np.asarray(idx, dtype=int)
        return RawRows(
            program_id=self.program_id[ix],
            lead_in_program_id=self.lead_in_program_id[ix],
            channel=self.channel[ix],
            genre=self.genre[ix],
            content_rating=self.content_rating[ix],
            duration_minutes=self.duration_minutes[ix],
            is_live=self.is_live[ix],
            is_premiere=self.is_premiere[ix],
            is_finale=self.is_finale[ix],
            start=[self.start[i] for i in ix],
            history={name: values[ix] for name, values in self.history.items()},
            _local=None if self._local is None else self._local[ix],
        )

    def to_frame(self) -> pd.DataFrame:
        """The registry's raw frame (same columns and dtypes as ``slot_frame``)."""
        from registry.features import RAW_COLUMNS

        tz = settings.TIME_ZONE
        frame = pd.DataFrame(
            {
                "program_id": self.program_id.astype("int64"),
                "external_id": np.array([""] * len(self), dtype=object),
                "channel": self.channel.astype(object),
                "genre": self.genre.astype(object),
                "content_rating": self.content_rating.astype(object),
                "duration_minutes": self.duration_minutes.astype("float64"),
                "is_live": self.is_live.astype(bool),
                "is_premiere": self.is_premiere.astype(bool),
                "is_finale": self.is_finale.astype(bool),
                "start": pd.to_datetime(pd.Series(self.start, dtype=object), utc=True).dt.tz_convert(tz),
                "lead_in_program_id": self.lead_in_program_id.astype("int64"),
            }
        )
        for name, values in self.history.items():
            frame[name] = values
        return frame[[*RAW_COLUMNS, *self.history]]

    def digests(self) -> list[str]:
        """A 64-bit hash per row of its raw values (the prediction log's inputs digest)."""
        blake = hashlib.blake2b
        return [
            blake(f"{p}|{li}|{c}|{g}|{r}|{d!r}|{lv:d}{pr:d}{fi:d}|{s.isoformat()}".encode(), digest_size=8).hexdigest()
            for p, li, c, g, r, d, lv, pr, fi, s in zip(
                self.program_id.tolist(),
                self.lead_in_program_id.tolist(),
                self.channel.tolist(),
                self.genre.tolist(),
                self.content_rating.tolist(),
                self.duration_minutes.tolist(),
                self.is_live.tolist(),
                self.is_premiere.tolist(),
                self.is_finale.tolist(),
                self.start,
                strict=True,
            )
        ]


# --- derived features: registry.features.derive_arrays, checked against the registry path at load ---


def derive(rows: RawRows, *, log_levels: bool = True) -> Columns:
    """``registry.features.derive`` for raw rows: the same code (``derive_arrays``), without pandas."""
    from registry.features import derive_arrays

    return derive_arrays(
        local=rows.local,
        program_id=rows.program_id,
        lead_in_program_id=rows.lead_in_program_id,
        channel=rows.channel,
        genre=rows.genre,
        content_rating=rows.content_rating,
        duration_minutes=rows.duration_minutes,
        is_live=rows.is_live,
        is_premiere=rows.is_premiere,
        is_finale=rows.is_finale,
        history=rows.history,
        log_levels=log_levels,
    )


class _UnsupportedError(Exception):
    pass


def _preprocessor(prep: Any) -> Callable[[RawRows], np.ndarray]:
    """RawRows -> the model matrix, for ``Pipeline([("encode", RawEncoder)[, ("scale", StandardScaler)]])``."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    try:
        from registry.features import RawEncoder
    except ImportError as exc:  # the registry changed its feature code: stay on its own path
        raise _UnsupportedError(f"registry.features: {exc}") from exc
    while isinstance(prep, Pipeline) and len(prep.steps) == 1 and isinstance(prep.steps[0][1], Pipeline):
        prep = prep.steps[0][1]  # boosters: Pipeline([("prep", Pipeline([...]))])
    if not isinstance(prep, Pipeline) or not isinstance(prep.steps[0][1], RawEncoder):
        raise _UnsupportedError("preprocessor shape")
    encoder = prep.steps[0][1]
    if not callable(getattr(encoder, "_transform", None)):
        raise _UnsupportedError("encoder without _transform")
    scalers = []
    for _, step in prep.steps[1:]:
        if not isinstance(step, StandardScaler):
            raise _UnsupportedError(type(step).__name__)
        scalers.append((step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None))

    # The log1p history levels only for an encoder that reads them (the linear ones).
    log_levels = any(str(name).startswith("log_") for name in getattr(encoder, "numeric_", ("log_",)))

    def transform(rows: RawRows) -> np.ndarray:
        x = np.asarray(encoder._transform(derive(rows, log_levels=log_levels)), dtype="float64")
        for mean, scale in scalers:
            if mean is not None:
                x = x - mean
            if scale is not None:
                x = x / scale
        return x

    return transform


def _estimator(est: Any) -> Callable[[np.ndarray], np.ndarray]:
    from catboost import CatBoostRegressor
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import ElasticNet
    from sklearn.neural_network import MLPRegressor
    from xgboost import XGBRegressor

    if isinstance(est, RandomForestRegressor):
        if est.n_outputs_ != 1:
            raise _UnsupportedError("multi-output forest")
        return _random_forest(est)
    if isinstance(est, XGBRegressor):
        return _xgboost(est)
    if isinstance(est, CatBoostRegressor):
        return lambda x: np.asarray(est.predict(x, thread_count=1), dtype="float64")
    if isinstance(est, HistGradientBoostingRegressor):
        return _hist_forest(est)
    if isinstance(est, ElasticNet):
        coef = np.asarray(est.coef_, dtype="float64")
        intercept = float(est.intercept_)
        return lambda x: x @ coef + intercept
    if isinstance(est, MLPRegressor):
        # MLPRegressor.predict is this call after scikit-learn's input validation (a third of the cost of
        # one row); the rows come from the fitted encoder, float64 and of the fitted width (checked at load).
        return lambda x: np.asarray(
            est._predict(np.ascontiguousarray(x, dtype="float64"), check_input=False), dtype="float64"
        ).reshape(-1)
    raise _UnsupportedError(type(est).__name__)


def _xgboost(est: Any) -> Callable[[np.ndarray], np.ndarray]:
    """XGBoost's own dense prediction, called through its C API with the call's arguments built once.

    ``Booster.inplace_predict`` spends about as long in Python (argument JSON, input type checks, the
    feature-count check) as its C predictor on one row. This is that same C call (``XGBoosterPredictFromDense``,
    value output, all trees) with the JSON made at load; the output is copied out of XGBoost's per-thread
    buffer at once. If this xgboost lays out its internals differently, ``inplace_predict`` it is.
    """
    booster = est.get_booster()
    missing = est.missing

    def inplace(x: np.ndarray) -> np.ndarray:
        return np.asarray(booster.inplace_predict(x, missing=missing), dtype="float64")

    try:
        walk = _xgboost_walk(booster)
    except _UnsupportedError as exc:
        logger.info("xgboost: no tree walk (%s)", exc)
        walk = None
    try:
        import ctypes

        from xgboost._data_utils import array_interface
        from xgboost._typing import c_bst_ulong
        from xgboost.core import _LIB, _check_call, make_jcargs

        args = make_jcargs(
            type=0, training=False, iteration_begin=0, iteration_end=0, missing=missing, strict_shape=False, cache_id=0
        )
        predict_dense = _LIB.XGBoosterPredictFromDense
    except (ImportError, AttributeError, TypeError) as exc:
        logger.info("xgboost: no direct prediction call (%s); using inplace_predict", exc)
        return inplace

    def direct(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype="float64")
        preds = ctypes.POINTER(ctypes.c_float)()
        shape = ctypes.POINTER(c_bst_ulong)()
        dims = c_bst_ulong()
        _check_call(
            predict_dense(
                booster.handle,
                array_interface(x),
                args,
                ctypes.c_void_p(),  # no base margin
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(preds),
            )
        )
        size = math.prod(int(shape[i]) for i in range(dims.value))
        return np.ctypeslib.as_array(preds, shape=(size,)).astype("float64")

    if walk is None:
        return direct

    def predict(x: np.ndarray) -> np.ndarray:
        return walk(x) if x.shape[0] < _XGB_WALK_ROWS else direct(x)

    return predict


_XGB_WALK_ROWS = 8


def _xgboost_walk(booster: Any) -> Callable[[np.ndarray], np.ndarray]:
    """All trees of a numerical-split, single-output ``gbtree`` walked together, as XGBoost's CPU predictor
    does: the row as float32, missing (NaN) to the default child, else ``x < split_condition`` goes left;
    the leaves added in float32, tree by tree, onto the base score. For a few rows this beats even the
    direct C call (whose fixed cost is ~130 us for 400 trees); it is used only when the whole model
    reproduces the registry's predictions at load (``compile_model``)."""
    import json

    model = json.loads(booster.save_raw("json"))
    learner = model["learner"]
    if learner["objective"]["name"] != "reg:squarederror":  # identity link only
        raise _UnsupportedError(f"objective {learner['objective']['name']}")
    if learner["gradient_booster"]["name"] != "gbtree":
        raise _UnsupportedError(learner["gradient_booster"]["name"])
    params = learner["learner_model_param"]
    if int(params.get("num_target", 1)) != 1 or int(params.get("num_class", 0)) != 0:
        raise _UnsupportedError("multi-output")
    trees = learner["gradient_booster"]["model"]["trees"]
    if not trees or any(any(t.get("split_type") or []) or t.get("categories") for t in trees):
        raise _UnsupportedError("categorical splits")
    base = np.float32(float(str(params["base_score"]).strip("[]")))
    sizes = [len(t["left_children"]) for t in trees]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    owner = np.repeat(offsets, sizes)
    left = np.concatenate([np.asarray(t["left_children"], dtype=np.intp) for t in trees])
    right = np.concatenate([np.asarray(t["right_children"], dtype=np.intp) for t in trees])
    feature = np.concatenate([np.asarray(t["split_indices"], dtype=np.intp) for t in trees])
    condition = np.concatenate([np.asarray(t["split_conditions"], dtype=np.float32) for t in trees])
    default_left = np.concatenate([np.asarray(t["default_left"], dtype=bool) for t in trees])
    leaf = left < 0
    here = np.arange(len(left), dtype=np.intp)
    nxt_left = np.where(leaf, here, left + owner)
    nxt_right = np.where(leaf, here, right + owner)
    nxt = np.empty(2 * len(left), dtype=np.intp)
    nxt[0::2], nxt[1::2] = nxt_left, nxt_right
    feature = np.where(leaf, 0, feature)
    value = np.where(leaf, condition, np.float32(0))  # a leaf's split condition is its value
    depth = np.zeros(len(left), dtype=np.intp)
    for i in range(len(left)):  # children come after their parent in each tree's node list
        if not leaf[i]:
            depth[nxt_left[i]] = depth[nxt_right[i]] = depth[i] + 1
    levels = int(depth.max())

    def predict(x: np.ndarray) -> np.ndarray:
        x32 = np.asarray(x, dtype=np.float32)
        rows = np.arange(x32.shape[0])[:, None]
        idx = np.broadcast_to(offsets, (x32.shape[0], len(offsets))).copy()
        if np.isnan(x32).any():
            for _ in range(levels):
                data = x32[rows, feature[idx]]
                right_ = np.where(np.isnan(data), ~default_left[idx], ~(data < condition[idx]))
                idx = nxt[2 * idx + right_]
        else:
            for _ in range(levels):
                idx = nxt[2 * idx + ~(x32[rows, feature[idx]] < condition[idx])]
        leaves = np.concatenate([np.full((x32.shape[0], 1), base, dtype=np.float32), value[idx]], axis=1)
        # Added one tree at a time in float32 (a sequential running sum), as the predictor does.
        return np.cumsum(leaves, axis=1, dtype=np.float32)[:, -1].astype("float64")

    return predict


_HIST_NATIVE_ROWS = 32
_FOREST_NATIVE_ROWS = 64


def _flatten(trees: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every tree's node records in one array: (each tree's root index, the nodes, each node's tree offset).

    A node's child indices are relative to its tree; adding ``owner`` makes them indices into ``nodes``.
    """
    sizes = np.array([len(nodes) for nodes in trees], dtype=np.intp)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    return offsets, np.concatenate(trees), np.repeat(offsets, sizes)


def _random_forest(est: Any) -> Callable[[np.ndarray], np.ndarray]:
    """All trees of a RandomForestRegressor walked together, one numpy step per tree level.

    sklearn calls each tree once (60 Python calls, ~0.4 ms for one row); here a level of every tree
    is one gather/compare over a (rows x trees) index matrix. Same rule as sklearn's tree ``apply``:
    the row as float32, NaN follows ``missing_go_to_left``, else ``x <= threshold`` goes left; the
    trees' values are added in tree order, then divided by their count, as ``predict`` does.
    """
    trees = list(est.estimators_)
    offsets, nodes, owner = _flatten([tree.tree_.__getstate__()["nodes"] for tree in trees])
    leaf = nodes["left_child"] < 0
    here = np.arange(len(nodes), dtype=np.intp)
    # A leaf points to itself, so walking ``depth`` levels leaves every row on its leaf.
    nxt_left = np.where(leaf, here, nodes["left_child"].astype(np.intp) + owner)
    nxt_right = np.where(leaf, here, nodes["right_child"].astype(np.intp) + owner)
    feature = np.where(leaf, 0, nodes["feature"]).astype(np.intp)
    threshold = nodes["threshold"].astype("float64")
    missing_left = nodes["missing_go_to_left"].astype(bool)
    value = np.concatenate([tree.tree_.value[:, 0, 0] for tree in trees]).astype("float64")
    depth = max(int(tree.tree_.max_depth) for tree in trees)

    def per_tree(x32: np.ndarray) -> np.ndarray:
        out = np.zeros(x32.shape[0], dtype=np.float64)
        for tree in trees:
            out += tree.predict(x32, check_input=False)
        return out

    def forest(x: np.ndarray) -> np.ndarray:
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        if x32.shape[0] >= _FOREST_NATIVE_ROWS:  # many rows: sklearn's compiled walk amortises its call
            out = per_tree(x32)
        else:
            rows = np.arange(x32.shape[0])[:, None]
            idx = np.broadcast_to(offsets, (x32.shape[0], len(offsets))).copy()
            for _ in range(depth):
                data = x32[rows, feature[idx]].astype("float64")
                go_left = np.where(np.isnan(data), missing_left[idx], data <= threshold[idx])
                idx = np.where(go_left, nxt_left[idx], nxt_right[idx])
            # Added tree by tree, in order, whatever the row count (a reduce would sum pairwise).
            out = np.cumsum(value[idx], axis=1)[:, -1]
        out /= len(trees)
        return out

    return forest


def _hist_forest(est: Any) -> Callable[[np.ndarray], np.ndarray]:
    """All trees of a HistGradientBoostingRegressor walked together, one numpy step per tree level.

    sklearn walks its 400 trees one Python call each (~6 ms for one row); here every level of every tree
    is one gather/compare over a (rows x trees) index matrix. Same rule as sklearn's
    ``_predict_one_from_raw_data`` for numerical splits: NaN follows ``missing_go_to_left``, else
    ``x <= num_threshold`` goes left.
    """
    if est.n_trees_per_iteration_ != 1:
        raise _UnsupportedError("multi-output boosting")
    if getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_):
        raise _UnsupportedError("categorical splits")
    offsets, nodes, owner = _flatten([predictors[0].nodes for predictors in est._predictors])
    feature = nodes["feature_idx"].astype(np.intp)
    threshold = nodes["num_threshold"].astype("float64")
    left = nodes["left"].astype(np.intp) + owner
    right = nodes["right"].astype(np.intp) + owner
    leaf = nodes["is_leaf"].astype(bool)
    missing_left = nodes["missing_go_to_left"].astype(bool)
    value = nodes["value"].astype("float64")
    depth = int(nodes["depth"].max()) if len(nodes) else 0
    baseline = float(np.asarray(est._baseline_prediction).ravel()[0])
    link = est._loss.link
    # A leaf points to itself, so walking ``depth`` levels leaves every row on its leaf.
    nxt_left = np.where(leaf, np.arange(len(nodes)), left)
    nxt_right = np.where(leaf, np.arange(len(nodes)), right)
    # Both children of node i at 2i (left) and 2i + 1 (right): a row without NaN takes one gather per level.
    nxt = np.empty(2 * len(nodes), dtype=np.intp)
    nxt[0::2], nxt[1::2] = nxt_left, nxt_right

    def predict(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype="float64")
        if x.shape[0] >= _HIST_NATIVE_ROWS:  # many rows: sklearn's compiled loop amortises its per-tree call
            return np.asarray(link.inverse(est._raw_predict(x, n_threads=1).ravel()), dtype="float64")
        rows = np.arange(x.shape[0])[:, None]
        idx = np.broadcast_to(offsets, (x.shape[0], len(offsets))).copy()
        if np.isnan(x).any():
            for _ in range(depth):
                data = x[rows, feature[idx]]
                go_left = np.where(np.isnan(data), missing_left[idx], data <= threshold[idx])
                idx = np.where(go_left, nxt_left[idx], nxt_right[idx])
        elif x.shape[0] == 1:  # one row without NaN: "not x <= threshold" is "x > threshold", the right child
            row, at = x[0], idx[0]
            for _ in range(depth):
                at = nxt[2 * at + (row[feature[at]] > threshold[at])]
            idx = at[None, :]
        else:
            for _ in range(depth):
                idx = nxt[2 * idx + (x[rows, feature[idx]] > threshold[idx])]
        raw = baseline + value[idx].sum(axis=1)
        return np.asarray(link.inverse(raw), dtype="float64")

    return predict


def _inverse_target(transformer: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The fitted target transformer's ``inverse_transform``; a StandardScaler's written out (its own
    validates the (n, 1) column first, several times the arithmetic): ``y * scale_ + mean_``, the same two
    in-place steps in the same order."""
    from sklearn.preprocessing import StandardScaler

    if not isinstance(transformer, StandardScaler):
        return transformer.inverse_transform  # type: ignore[no-any-return]
    scale = transformer.scale_ if transformer.with_std else None
    mean = transformer.mean_ if transformer.with_mean else None

    def inverse(y: np.ndarray) -> np.ndarray:
        out = np.array(y, dtype="float64")  # a copy, as StandardScaler(copy=True) makes
        if scale is not None:
            out *= scale
        if mean is not None:
            out += mean
        return out

    return inverse


def _structure(loaded: Any) -> tuple[Any, Any, Callable[[np.ndarray], np.ndarray] | None, Any]:
    """(preprocessor pipeline, estimator, inverse target transform or None, anchor or None) of a LoadedModel.

    The anchor (``registry.anchor.AnchoredRegressor``) turns the estimator's correction into the
    prediction with the row's history columns."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline

    from registry.anchor import AnchoredRegressor

    if loaded.prep is not None:
        return loaded.prep, loaded.model, None, getattr(loaded, "anchor", None)
    model = loaded.model
    anchor = None
    if isinstance(model, AnchoredRegressor):
        anchor, model = model, model.regressor_
    inverse = None
    if isinstance(model, TransformedTargetRegressor):
        # What TransformedTargetRegressor.predict does after its regressor (func/inverse_func live in
        # a fitted FunctionTransformer there too).
        inverse = _inverse_target(model.transformer_)
        model = model.regressor_
    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        raise _UnsupportedError("model shape")
    return model.steps[0][1], model.steps[1][1], inverse, anchor


def compile_model(loaded: Any, sample: pd.DataFrame | None) -> Callable[[RawRows], np.ndarray] | None:
    """A fast ``RawRows -> predictions`` function equal to ``loaded.predict``, or None (use sklearn)."""
    try:
        prep, est, inverse, anchor = _structure(loaded)
        transform = _preprocessor(prep)
        predict_x = _estimator(est)
    except _UnsupportedError as exc:
        logger.info("no fast path for %s/%s: %s", loaded.target, loaded.algorithm, exc)
        return None

    def predict(rows: RawRows) -> np.ndarray:
        y = predict_x(transform(rows))
        if inverse is not None:
            y = np.asarray(inverse(y.reshape(-1, 1)), dtype="float64").reshape(-1)
        y = np.asarray(y, dtype="float64").reshape(-1)
        if anchor is not None:
            y = anchor.combine(anchor.anchor(rows.history, rows.program_id), y)
        return y

    if sample is None or not len(sample):
        logger.info("no sample rows to verify the fast path for %s/%s", loaded.target, loaded.algorithm)
        return None
    # Checked on the whole sample and on a few rows (some estimators switch method with the row count).
    for part in (sample, sample.iloc[:4]):
        try:
            expected = np.asarray(loaded.predict(part), dtype="float64")
            got = predict(RawRows.from_frame(part))
        except Exception:
            logger.exception("fast path check failed for %s/%s", loaded.target, loaded.algorithm)
            return None
        scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-9, atol=1e-9 * scale):
            worst = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else math.inf
            logger.warning("fast path differs for %s/%s (max %.3g): not used", loaded.target, loaded.algorithm, worst)
            return None
    return predict
