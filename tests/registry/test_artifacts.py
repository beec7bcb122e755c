"""Artifacts: round trip for the six families, sha256 check, refusal of unknown or untrusted files."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from django.conf import settings
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from registry import artifacts
from registry.algorithms import ALGORITHMS
from registry.models import ModelVersion
from tests.registry.factories import fitted_model, raw_frame, version_factory

EXPECTED_FORMAT = {
    "random_forest": "skops",
    "xgboost": "xgboost-ubj",
    "catboost": "catboost-cbm",
    "gradient_boosting": "skops",
    "mlp": "skops",
    "elasticnet": "skops",
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.django_db
@pytest.mark.parametrize("target", ["audience", "engagement"])
def test_round_trip_gives_identical_predictions(algorithm, target):
    model = fitted_model(algorithm, target)
    saved = artifacts.save_model(algorithm=algorithm, target=target, version=1, model=model)
    path = Path(settings.ARTIFACT_ROOT) / saved.path
    assert saved.format == EXPECTED_FORMAT[algorithm]
    assert saved.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert saved.size == path.stat().st_size
    version = ModelVersion(
        target=target,
        algorithm=algorithm,
        version=1,
        artifact_path=saved.path,
        artifact_format=saved.format,
        artifact_sha256=saved.sha256,
    )
    loaded = artifacts.load_model(version)
    frame, _ = raw_frame(120, seed=5)
    assert np.array_equal(loaded.predict(frame), model.predict(frame))
    assert np.array_equal(loaded.predict(frame.iloc[[3]]), model.predict(frame.iloc[[3]]))


@pytest.mark.django_db
def test_a_tampered_artifact_is_refused():
    version = version_factory()
    path = Path(settings.ARTIFACT_ROOT) / version.artifact_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(artifacts.ArtifactError, match="sha256 does not match"):
        artifacts.load_model(version)


@pytest.mark.django_db
def test_a_missing_artifact_or_unknown_format_is_refused():
    version = version_factory()
    version.artifact_format = "pickle"
    with pytest.raises(artifacts.ArtifactError, match="Unknown artifact format 'pickle'"):
        artifacts.load_model(version)
    version.artifact_path = "audience/elasticnet/nope.skops"
    with pytest.raises(artifacts.ArtifactError, match="cannot be read"):
        artifacts.load_model(version)
    version.artifact_path = "../../etc/passwd"
    with pytest.raises(artifacts.ArtifactError):
        artifacts.load_model(version)


def _registered(tmp: Path, name: str, payload: bytes, fmt: str, algorithm: str = "elasticnet") -> ModelVersion:
    target = Path(settings.ARTIFACT_ROOT) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(payload)
    return ModelVersion(
        target="audience",
        algorithm=algorithm,
        version=1,
        artifact_path=name,
        artifact_format=fmt,
        artifact_sha256=hashlib.sha256(payload).hexdigest(),
    )


def test_a_file_with_an_untrusted_type_is_refused_even_with_the_right_sha(tmp_path):
    # A "model" that would call os.system: skops names the function, our list does not trust it.
    evil = Pipeline([("f", FunctionTransformer(func=__import__("os").system))])
    version = _registered(tmp_path, "audience/elasticnet/evil.skops", sio.dumps(evil), "skops")
    with pytest.raises(artifacts.ArtifactError, match="not trusted"):
        artifacts.load_model(version)


def test_a_booster_bundle_with_foreign_members_or_garbage_is_refused(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("prep.skops", b"x")
        bundle.writestr("model.pkl", b"x")
    version = _registered(tmp_path, "audience/xgboost/odd.xgb.zip", buffer.getvalue(), "xgboost-ubj", "xgboost")
    with pytest.raises(artifacts.ArtifactError, match="unexpected members"):
        artifacts.load_model(version)
    garbage = _registered(tmp_path, "audience/catboost/junk.cbm.zip", b"not a zip", "catboost-cbm", "catboost")
    with pytest.raises(artifacts.ArtifactError, match="cannot be parsed"):
        artifacts.load_model(garbage)


def test_trusted_types_are_written_in_code_not_read_from_files():
    source = Path(artifacts.__file__).read_text()
    assert "get_untrusted_types(data=data)" in source  # only to refuse saving unknown types
    assert source.count("get_untrusted_types") == 1
