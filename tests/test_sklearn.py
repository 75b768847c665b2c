"""aekit's estimators keep the Python ecosystem's contracts: scikit-learn's `check_estimator`,
Pipeline, GridSearchCV, cross_val_score, clone, pickle/joblib; PyOD's detector API.

`python -m tests.test_sklearn` prints the check_estimator counts quoted in docs/API.md.
Tiny data throughout (8x8 digits, the dense model, one epoch).
"""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError as SklearnNotFitted
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import check_estimator
from sklearn.utils.validation import check_is_fitted

import aekit
from aekit.anomaly import Detector
from aekit.errors import AekitError, AekitTypeError, ConfigError, DataError, NotFittedError
from aekit.represent import FewLabelClassifier

torch.set_num_threads(1)

AE = dict(model="dense", latent_dim=2, epochs=1)
DET = dict(model="dense", scores="mse+knn", latent_dim=2, widths=(), epochs=1, batch_size=16,
           precision="fp32")
# latent_dim=8: with 2 units the 1-epoch encoder of check_classifiers_train's 2-feature blobs
# collapses, and the accuracy the check asks for (> 0.83) is out of reach.
CLF = dict(steps=20, batch_size=16)

# scikit-learn's outlier checks assume its own conventions; the Detector follows PyOD's.
_PYOD = ("PyOD conventions, not scikit-learn's: predict returns 1 for an anomaly and 0 for "
         "normal (scikit-learn: -1 / 1), decision_function is the raw score, higher = more "
         "anomalous (scikit-learn: negative = outlier); the check also feeds negative values, "
         "which are not pixels")
# Checks that cannot apply, with the reason (scikit-learn's expected_failed_checks). Every
# listed check must really fail (test_check_estimator), so the list stays as short as it can.
EXPECTED_FAILED = {
    "Autoencoder": {},
    "Detector": {"check_outliers_train": _PYOD, "check_outliers_fit_predict": _PYOD},
    "FewLabelClassifier": {},
}


def estimators() -> list:
    return [aekit.Autoencoder(**AE), Detector(**DET),
            FewLabelClassifier(aekit.Autoencoder(**{**AE, "latent_dim": 8}), **CLF)]


def run_checks(est) -> list[dict]:
    return check_estimator(est, expected_failed_checks=EXPECTED_FAILED[type(est).__name__],
                           on_skip=None, on_fail=None)


def counts(results: list[dict]) -> dict[str, int]:
    out = {"checks": len(results)}
    for status in ("passed", "xfail", "skipped", "failed"):
        out[status] = sum(r["status"] == status for r in results)
    return out


@pytest.mark.parametrize("est", estimators(), ids=lambda e: type(e).__name__)
def test_check_estimator(est):
    results = run_checks(est)
    failed = [f"{r['check_name']}: {r['exception']!r}"[:300] for r in results
              if r["status"] == "failed"]
    assert not failed, failed
    listed = {r["check_name"] for r in results if r["expected_to_fail"]}
    assert listed == set(EXPECTED_FAILED[type(est).__name__])
    passing_anyway = {r["check_name"] for r in results
                      if r["expected_to_fail"] and r["status"] == "passed"}
    assert not passing_anyway, f"remove from EXPECTED_FAILED: {passing_anyway}"
    assert counts(results)["passed"] >= 40


# --- data ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.images[:120], d.target[:120]  # (120, 8, 8) floats in 0..16


# --- the transformer in scikit-learn's tools -----------------------------------------------------


def test_pipeline_of_flat_rows(digits):
    X, _ = digits
    flat = X.reshape(len(X), -1)  # (N, 64), as tabular tools hand it on
    pipe = Pipeline([("to_images", FunctionTransformer(lambda a: a.reshape(-1, 8, 8))),
                     ("ae", aekit.Autoencoder(**AE))]).fit(flat)
    assert pipe.transform(flat).shape == (120, 2)
    assert np.isfinite(pipe.score(flat))
    # the same with image_shape instead of a reshaping step; outputs keep the rows' layout
    ae = aekit.Autoencoder(**AE, image_shape=(8, 8)).fit(flat)
    assert ae.model_config_.shape == (1, 8, 8) and ae.n_features_in_ == 64
    assert ae.inverse_transform(ae.transform(flat)).shape == (120, 64)
    assert ae.reconstruct(flat[:3]).shape == (3, 64)
    with pytest.raises(DataError, match="X has 10 features, but Autoencoder is expecting 64"):
        ae.transform(flat[:, :10])


def test_pipeline_into_a_classifier(digits):
    X, y = digits
    pipe = make_pipeline(aekit.Autoencoder(**{**AE, "latent_dim": 8, "epochs": 3},
                                           image_shape=(8, 8)),
                         LogisticRegression(max_iter=200))
    pipe.fit(X.reshape(len(X), -1), y)
    assert pipe.score(X.reshape(len(X), -1), y) > 0.3  # ten classes: chance is 0.1


def test_grid_search_and_cross_val_score(digits):
    X, _ = digits
    grid = GridSearchCV(aekit.Autoencoder(**AE), {"latent_dim": [2, 4]}, cv=2).fit(X)
    assert grid.best_params_["latent_dim"] in (2, 4)
    assert grid.best_estimator_.latent_dim == grid.best_params_["latent_dim"]
    scores = cross_val_score(aekit.Autoencoder(**AE), X, cv=2, n_jobs=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()  # PSNR per fold


def test_clone_set_params_repr_and_fit_transform(digits):
    X, _ = digits
    ae = aekit.Autoencoder(**AE, random_state=3)
    twin = clone(ae).set_params(latent_dim=4)
    assert twin.get_params()["latent_dim"] == 4 and ae.latent_dim == 2
    assert "latent_dim=2" in repr(ae) and "random_state=3" in repr(ae)
    Z = ae.fit_transform(X)
    np.testing.assert_allclose(Z, ae.transform(X), atol=1e-6)
    check_is_fitted(ae)
    again = clone(ae)  # unfitted copy with the same parameters
    with pytest.raises(SklearnNotFitted):
        check_is_fitted(again)
    with pytest.raises(NotFittedError, match="not fitted") as info:  # aekit's, one line
        again.transform(X)
    assert isinstance(info.value, SklearnNotFitted)
    np.testing.assert_allclose(again.fit(X).transform(X), Z, atol=1e-6)  # same seed, same fit


def test_pickle_and_joblib_round_trip(digits, tmp_path):
    X, _ = digits
    ae = aekit.Autoencoder(**AE).fit(X)
    same = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(same.transform(X), ae.transform(X))
    joblib.dump(ae, tmp_path / "ae.joblib")
    loaded = joblib.load(tmp_path / "ae.joblib")
    np.testing.assert_array_equal(loaded.inverse_transform(loaded.transform(X[:4])),
                                  ae.inverse_transform(ae.transform(X[:4])))
    det = Detector(**DET).fit(X)
    det2 = pickle.loads(pickle.dumps(det))
    np.testing.assert_array_equal(det2.decision_function(X[:5]), det.decision_function(X[:5]))


# --- input conventions ---------------------------------------------------------------------------


def test_units_layouts_and_array_likes(digits):
    X, _ = digits  # float 0..16
    ae = aekit.Autoencoder(**AE).fit(X)
    assert ae.pixel_max_ == 16.0  # floats above 1: their maximum is white
    rec = ae.inverse_transform(ae.transform(X))
    assert rec.shape == X.shape and rec.dtype == np.float64  # (N, H, W) float64, as X
    assert 0 <= rec.min() and rec.max() <= 16
    with pytest.raises(DataError, match=r"\[0, 16\]"):
        ae.transform(X * 2)  # brighter than anything fitted: an error, not a clip
    lst = aekit.Autoencoder(**AE).fit(X[:10].tolist())  # nested lists
    np.testing.assert_allclose(lst.transform(X[:10].tolist()), lst.transform(X[:10]))
    ints = (X / 16 * 255).round().astype(np.int64)  # int64 images in 0..255
    a = aekit.Autoencoder(**AE).fit(ints)
    b = aekit.Autoencoder(**AE).fit(ints.astype(np.uint8))
    np.testing.assert_allclose(a.transform(ints), b.transform(ints.astype(np.uint8)))
    assert a.pixel_max_ == 1.0  # integer images: outputs in [0, 1]
    explicit = aekit.Autoencoder(**AE, pixel_max=16).fit(X.astype(np.int64))  # ints in 0..16
    assert explicit.reconstruct(X[:2].astype(np.int64)).max() <= 16
    chw = aekit.Autoencoder(**AE).fit(np.repeat(X[:, None], 3, 1))  # (N, 3, H, W)
    hwc = np.repeat(X[:4, :, :, None], 3, 3)  # channels-last in, channels-last out
    assert chw.reconstruct(hwc).shape == (4, 8, 8, 3)


@pytest.mark.parametrize("make, err", [
    (lambda: aekit.Autoencoder(latent_dim="2"), AekitTypeError),
    (lambda: aekit.Autoencoder(epochs=1.5), AekitTypeError),
    (lambda: aekit.Autoencoder(lr=0), ConfigError),
    (lambda: aekit.Autoencoder(random_state=-1), ConfigError),
    (lambda: aekit.Autoencoder(random_state="x"), AekitTypeError),
    (lambda: aekit.Autoencoder(image_shape=(8,)), ConfigError),
    (lambda: Detector(k="5"), AekitTypeError),
    (lambda: Detector(contamination=0.0), ConfigError),
    (lambda: Detector(precision="fp16"), ConfigError),
])
def test_parameters_are_checked_with_builtin_error_types(make, err):
    with pytest.raises(err) as info:
        make().fit(np.zeros((4, 8, 8), np.uint8))
    assert isinstance(info.value, AekitError)
    assert isinstance(info.value, TypeError if err is AekitTypeError else ValueError)
    assert "=" in str(info.value) and "expected" in str(info.value)  # names value and range


def test_bad_data_raises_value_or_type_errors():
    ae = aekit.Autoencoder(**AE)
    bad = np.zeros((4, 8, 8), object)
    bad[0, 0, 0] = {"a": 1}
    with pytest.raises(TypeError, match="not a number"):
        ae.fit(bad)
    ae.fit(np.zeros((4, 8, 8), object))  # an object array of numbers is fine
    with pytest.raises(ValueError, match="NaN"):
        ae.fit(np.full((4, 8, 8), np.nan))
    with pytest.raises(ValueError, match="Negative"):
        ae.fit(-np.ones((4, 8, 8)))
    with pytest.raises(TypeError):
        ae.fit("images")
    ae2 = aekit.Autoencoder(**AE, random_state=None).fit(np.zeros((4, 8, 8), np.uint8))
    assert isinstance(ae2.train_config_.seed, int)
    with pytest.raises(AttributeError) as info:  # NotFittedError is also an AttributeError
        aekit.Autoencoder().transform(np.zeros((1, 8, 8)))
    again = pickle.loads(pickle.dumps(info.value))  # crosses joblib's process boundary
    assert type(again) is NotFittedError and str(again) == str(info.value)


# --- PyOD ----------------------------------------------------------------------------------------
# The probes of PyOD's own tests (pyod/test/test_auto_encoder.py): fit, decision_function,
# predict, predict_proba, predict_confidence, fit_predict, labels_ and threshold_.


@pytest.fixture(scope="module")
def pyod_case(digits):
    d = load_digits()
    normal, other = d.images[d.target == 0], d.images[d.target == 1][:40]
    det = Detector(**{**DET, "epochs": 3, "latent_dim": 4}, pixel_max=16,
                   contamination=0.1).fit(normal[:150])
    X_test = np.concatenate([normal[150:], other])
    y_test = np.r_[np.zeros(len(normal) - 150), np.ones(len(other))]
    return det, normal[:150], X_test, y_test


def test_pyod_probes(pyod_case):
    from sklearn.metrics import roc_auc_score

    det, X_train, X_test, y_test = pyod_case
    for name in ("decision_scores_", "labels_", "threshold_"):
        assert getattr(det, name) is not None
    assert det.decision_scores_.shape == (len(X_train),)
    assert set(np.unique(det.labels_)) <= {0, 1}
    np.testing.assert_array_equal(det.labels_, det.decision_scores_ > det.threshold_)
    scores = det.decision_function(X_test)
    assert scores.shape == y_test.shape and roc_auc_score(y_test, scores) > 0.8
    labels = det.predict(X_test)
    assert labels.shape == y_test.shape and set(np.unique(labels)) <= {0, 1}
    np.testing.assert_array_equal(labels, scores > det.threshold_)
    for method in ("linear", "unify"):
        p = det.predict_proba(X_test, method=method)
        assert p.shape == (len(y_test), 2) and p.min() >= 0 and p.max() <= 1
        np.testing.assert_allclose(p.sum(1), 1.0)
    with pytest.raises(ValueError):
        det.predict_proba(X_test, method="something")
    conf = det.predict_confidence(X_test)
    assert conf.shape == y_test.shape and conf.min() >= 0 and conf.max() <= 1
    labels2, conf2 = det.predict(X_test, return_confidence=True)
    np.testing.assert_array_equal(labels2, labels)
    np.testing.assert_allclose(conf2, conf)
    _, conf3 = det.predict_proba(X_test, return_confidence=True)
    np.testing.assert_allclose(conf3, conf)
    again = clone(det)
    assert again.get_params() == det.get_params() and not hasattr(again, "threshold_")
    fitted_labels = again.fit_predict(X_train)
    assert fitted_labels.shape == (len(X_train),)
    np.testing.assert_array_equal(fitted_labels, again.labels_)


def test_probabilities_and_confidence_match_pyod(pyod_case):
    """The same decision scores through PyOD's own BaseDetector give the same answers."""
    base = pytest.importorskip("pyod.models.base")
    det, _, X_test, _ = pyod_case

    class Scores(base.BaseDetector):
        def __init__(self, contamination=0.1):
            super().__init__(contamination=contamination)

        def fit(self, X, y=None):
            return self

        def decision_function(self, X):
            return det.decision_function(X)

    ref = Scores(contamination=det.contamination)
    ref._set_n_classes(None)  # what PyOD detectors do in fit
    ref.decision_scores_ = det.decision_scores_
    ref._process_decision_scores()
    ref.threshold_, ref.labels_ = det.threshold_, det.labels_  # the held-out calibration
    for method in ("linear", "unify"):
        np.testing.assert_allclose(det.predict_proba(X_test, method=method),
                                   ref.predict_proba(X_test, method=method), atol=1e-12)
    np.testing.assert_allclose(det.predict_confidence(X_test), ref.predict_confidence(X_test),
                               atol=1e-12)
    np.testing.assert_array_equal(det.predict(X_test), ref.predict(X_test))


# --- docs/API.md ---------------------------------------------------------------------------------


def test_api_doc_examples(tmp_path, monkeypatch):
    """Every code block in docs/API.md runs as written, in order (one example per capability)."""
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "API.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 12  # the estimators, one per task, reports
    monkeypatch.chdir(tmp_path)  # the examples write runs/...
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/API.md, code block {i + 1}", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    for est in estimators():
        c = counts(run_checks(est))
        print(f"{type(est).__name__}: {c['checks']} checks: {c['passed']} passed, "
              f"{c['xfail']} expected failures, {c['skipped']} skipped, {c['failed']} failed")
