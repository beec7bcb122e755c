"""Model files without pickle: skops (scikit-learn), XGBoost UBJ, CatBoost cbm. The storage seam.

* ``skops``: the whole fitted scikit-learn object in one ``.skops`` file.
* ``xgboost-ubj`` / ``catboost-cbm``: a zip bundle holding ``prep.skops`` (the fitted feature pipeline),
  ``model.ubj`` / ``model.cbm`` (the booster in its native format) and, for anchored models
  (``registry.anchor``), ``anchor.skops`` (the fitted anchor without its regressor).

Loading checks the file's sha256 against the registry before parsing anything, and skops loads only the
types listed in ``TRUSTED_TYPES`` below (written here, never read from the file).
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import skops.io as sio
from catboost import CatBoostRegressor
from django.conf import settings
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from skops.io.exceptions import UntrustedTypesFoundException
from threadpoolctl import ThreadpoolController
from xgboost import XGBRegressor

from bms.errors import ApplicationError
from registry.anchor import AnchoredRegressor, history_of

if TYPE_CHECKING:
    from registry.models import ModelVersion

# The types our pipelines contain beyond skops's built-in safe set (scikit-learn estimators, numpy
# arrays and dtypes, builtins). skops refuses a file holding any type outside both lists.
TRUSTED_TYPES: list[str] = [
    "registry.anchor.AnchoredRegressor",
    "registry.features.RawEncoder",
    "registry.algorithms.log_target",  # models trained before the anchor (registry.anchor) wrapped them
    "registry.algorithms.exp_target",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
]

FORMAT_SKOPS = "skops"
FORMAT_XGBOOST = "xgboost-ubj"
FORMAT_CATBOOST = "catboost-cbm"
_EXTENSIONS = {FORMAT_SKOPS: ".skops", FORMAT_XGBOOST: ".xgb.zip", FORMAT_CATBOOST: ".cbm.zip"}
_BUNDLE_MEMBERS = {FORMAT_XGBOOST: "model.ubj", FORMAT_CATBOOST: "model.cbm"}

# HistGradientBoosting predicts with OpenMP threads; serving one row must not start a pool.
_THREADPOOLS = ThreadpoolController()
_THREAD_LOCK = threading.Lock()


class ArtifactError(ApplicationError):
    code = "artifact_invalid"
    status_code = 500


@dataclass(frozen=True)
class SavedArtifact:
    path: str  # relative to ARTIFACT_ROOT
    format: str
    size: int
    sha256: str


@dataclass
class LoadedModel:
    """A production-ready predictor: ``.predict(raw_frame)`` -> one value per row."""

    algorithm: str
    target: str
    format: str
    model: Any  # the sklearn object (skops) or the booster
    prep: Pipeline | None = None  # the feature pipeline for boosters stored natively
    anchor: AnchoredRegressor | None = None  # for boosters stored natively: the anchor their output corrects

    def predict(self, raw: pd.DataFrame) -> np.ndarray:
        if self.prep is not None:
            features = self.prep.transform(raw)
            if isinstance(self.model, CatBoostRegressor):
                out = np.asarray(self.model.predict(features, thread_count=1), dtype="float64")
            else:
                out = np.asarray(self.model.predict(features), dtype="float64")
            if self.anchor is None:
                return out
            return self.anchor.combine(self.anchor.anchor(history_of(raw), raw["program_id"].to_numpy()), out)
        if _uses_openmp(self.model):
            with _THREAD_LOCK, _THREADPOOLS.limit(limits=1, user_api="openmp"):
                return np.asarray(self.model.predict(raw), dtype="float64")
        return np.asarray(self.model.predict(raw), dtype="float64")


def _uses_openmp(model: Any) -> bool:
    model = model.regressor_ if isinstance(model, AnchoredRegressor) else model
    return isinstance(model, Pipeline) and isinstance(model.steps[-1][1], HistGradientBoostingRegressor)


def artifact_root() -> Path:
    return Path(settings.ARTIFACT_ROOT)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def serialize(*, algorithm: str, model: Any) -> tuple[str, bytes]:
    """The artifact bytes of a fitted model (format, payload)."""
    if algorithm in ("xgboost", "catboost"):
        anchor = None
        if isinstance(model, AnchoredRegressor):
            # The anchor without its regressor (the booster goes native, its features in prep.skops).
            anchor = copy.copy(model)
            anchor.regressor = None
            anchor.regressor_ = None
            model = model.regressor_
        assert isinstance(model, Pipeline)
        prep = Pipeline(model.steps[:-1])
        booster = model.steps[-1][1]
        fmt = FORMAT_XGBOOST if algorithm == "xgboost" else FORMAT_CATBOOST
        if isinstance(booster, XGBRegressor):
            native = bytes(booster.get_booster().save_raw(raw_format="ubj"))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "model.cbm"
                booster.save_model(str(path), format="cbm")
                native = path.read_bytes()
        prep_bytes = _skops_dumps(prep)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as bundle:
            bundle.writestr("prep.skops", prep_bytes)
            bundle.writestr(_BUNDLE_MEMBERS[fmt], native)
            if anchor is not None:
                bundle.writestr("anchor.skops", _skops_dumps(anchor))
        return fmt, buffer.getvalue()
    return FORMAT_SKOPS, _skops_dumps(model)


def _skops_dumps(obj: Any) -> bytes:
    data: bytes = sio.dumps(obj)
    # Refuse to write what we could not load back: every type must be in our trusted list.
    unknown = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if unknown:
        raise ArtifactError("Model holds types that are not in the trusted list.", details={"types": unknown})
    return data


def save_model(*, algorithm: str, target: str, version: int, model: Any) -> SavedArtifact:
    """Write the artifact atomically (temp file + rename) as ARTIFACT_ROOT/<target>/<algorithm>/v<N>-<sha>.<ext>."""
    fmt, payload = serialize(algorithm=algorithm, model=model)
    digest = _sha256(payload)
    # Content-addressed name: a file is never overwritten by a different model (e.g. after a database
    # reset the version numbers restart while ARTIFACT_ROOT keeps the old files).
    relative = Path(target) / algorithm / f"v{version}-{digest[:16]}{_EXTENSIONS[fmt]}"
    path = artifact_root() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=_EXTENSIONS[fmt])
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return SavedArtifact(path=str(relative), format=fmt, size=len(payload), sha256=digest)


def delete_artifact(relative: str) -> None:
    (artifact_root() / relative).unlink(missing_ok=True)


def read_verified(*, relative: str, sha256: str) -> bytes:
    path = artifact_root() / relative
    try:
        resolved = path.resolve()
        if artifact_root().resolve() not in resolved.parents:
            raise ArtifactError("Artifact path escapes ARTIFACT_ROOT.", details={"path": relative})
        data = resolved.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"Artifact file cannot be read: {exc.strerror}.", details={"path": relative}) from exc
    actual = _sha256(data)
    if actual != sha256:
        raise ArtifactError(
            "Artifact sha256 does not match the registry; refusing to load.",
            details={"path": relative, "expected": sha256, "actual": actual},
        )
    return data


def deserialize(*, algorithm: str, target: str, fmt: str, data: bytes) -> LoadedModel:
    try:
        if fmt == FORMAT_SKOPS:
            return LoadedModel(algorithm=algorithm, target=target, format=fmt, model=_skops_loads(data))
        if fmt in _BUNDLE_MEMBERS:
            with zipfile.ZipFile(io.BytesIO(data)) as bundle:
                names = set(bundle.namelist())
                if names - {"anchor.skops"} != {"prep.skops", _BUNDLE_MEMBERS[fmt]}:
                    raise ArtifactError("Artifact bundle has unexpected members.", details={"members": sorted(names)})
                prep = _skops_loads(bundle.read("prep.skops"))
                native = bundle.read(_BUNDLE_MEMBERS[fmt])
                anchor = _skops_loads(bundle.read("anchor.skops")) if "anchor.skops" in names else None
            booster: Any
            if fmt == FORMAT_XGBOOST:
                booster = XGBRegressor(n_jobs=1)
                booster.load_model(bytearray(native))
            else:
                booster = CatBoostRegressor(thread_count=1)
                booster.load_model(blob=native)
            if not isinstance(prep, Pipeline):
                raise ArtifactError("Artifact preprocessing is not a pipeline.")
            if anchor is not None and not isinstance(anchor, AnchoredRegressor):
                raise ArtifactError("Artifact anchor is not an anchor.")
            return LoadedModel(algorithm=algorithm, target=target, format=fmt, model=booster, prep=prep, anchor=anchor)
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"Artifact cannot be parsed as {fmt}: {type(exc).__name__}: {exc}") from exc
    raise ArtifactError(f"Unknown artifact format {fmt!r}.")


def _skops_loads(data: bytes) -> Any:
    try:
        return sio.loads(data, trusted=TRUSTED_TYPES)
    except UntrustedTypesFoundException as exc:
        raise ArtifactError(f"Artifact holds types that are not trusted: {exc}") from exc


def load_model(version: ModelVersion) -> LoadedModel:
    """Load a registered ``ModelVersion``'s artifact after checking its sha256."""
    data = read_verified(relative=version.artifact_path, sha256=version.artifact_sha256)
    return deserialize(algorithm=version.algorithm, target=version.target, fmt=version.artifact_format, data=data)
