"""anomaly.Detector on tiny synthetic data: separation, calibration, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_blobs
from sklearn.metrics import roc_auc_score

from aekit.anomaly.detector import Detector, load_detector, parse_score
from aekit.errors import AekitError, AekitTypeError, ConfigError, DataError, RunError

FAST = dict(latent_dim=8, widths=(8, 16), epochs=4, batch_size=32, lr=3e-3, random_state=0,
            precision="fp32")


def make_bars(n: int, size: int = 12, seed: int = 1) -> np.ndarray:
    """Anomalies: a bright bar (row or column) at a random place, uint8 (N, 1, H, W)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 1, size, size), np.uint8)
    for i in range(n):
        j = rng.integers(1, size - 2)
        if i % 2:
            img[i, 0, j : j + 2, :] = 255
        else:
            img[i, 0, :, j : j + 2] = 255
    return img


@pytest.fixture(scope="module")
def fitted() -> Detector:
    return Detector(**FAST, fpr=0.1).fit(make_blobs(300, seed=0))


def test_detector_separates_clear_anomalies(fitted):
    normal, anomalous = make_blobs(100, seed=5), make_bars(100)
    scores = fitted.score_samples(np.concatenate([normal, anomalous]))
    assert scores.shape == (200,) and np.isfinite(scores).all()
    auc = roc_auc_score(np.r_[np.zeros(100), np.ones(100)], scores)
    assert auc > 0.95
    assert fitted.predict(anomalous).mean() > 0.8


def test_threshold_respects_fpr_on_normal_data(fitted):
    assert fitted.detector_state()["heldout_fpr"] <= 0.1 + 1e-9
    fresh = make_blobs(400, seed=7)  # unseen normal images from the same distribution
    rate = fitted.predict(fresh).mean()
    assert 0.0 < rate < 0.25
    flags = (fitted.decision_function(fresh) > fitted.threshold_) * 1  # raw scores, as PyOD
    assert np.array_equal(fitted.predict(fresh), flags)


def test_contamination_sets_the_same_quantile_rule():
    x = make_blobs(120, seed=0)
    a = Detector(**{**FAST, "epochs": 1}, fpr=0.2).fit(x)
    b = Detector(**{**FAST, "epochs": 1}, contamination=0.2).fit(x)
    assert a.threshold_ == pytest.approx(b.threshold_)
    assert (b.heldout_scores_ > b.threshold_).mean() <= 0.2


def test_sklearn_conventions():
    det = Detector(epochs=2, scores="mse")
    assert det.get_params()["epochs"] == 2
    assert not [k for k in vars(det) if k.endswith("_")]  # __init__ only stores settings
    with pytest.raises(ConfigError, match="not fitted"):
        det.score_samples(make_blobs(2))
    small = Detector(**{**FAST, "epochs": 1}, scores="mse")
    assert small.fit(make_blobs(40)) is small
    learned = [k for k in vars(small) if k.endswith("_")]
    assert {"members_", "threshold_", "stats_", "heldout_scores_"} <= set(learned)
    # float input in [0, 1] and channels-last input give the same scores as uint8
    x = make_blobs(8, seed=3)
    s_uint8 = small.score_samples(x)
    assert np.allclose(small.score_samples(x.astype(np.float32) / 255), s_uint8, atol=1e-6)
    assert np.allclose(small.score_samples(torch.from_numpy(x).permute(0, 2, 3, 1)), s_uint8,
                       atol=1e-6)


@pytest.mark.parametrize("scores", ["mse", "ssim", "knn", "gauss", "pca", "pixknn", "local",
                                    "mse+ssim+knn+gauss+pca+pixknn+local"])
def test_every_score_kind_runs(scores):
    det = Detector(**{**FAST, "epochs": 1}, scores=scores).fit(make_blobs(60))
    s = det.score_samples(make_blobs(10, seed=2))
    assert s.shape == (10,) and np.isfinite(s).all()


def test_single_component_is_raw_mse():
    det = Detector(**{**FAST, "epochs": 1}, scores="mse", restore="none").fit(make_blobs(60))
    x = make_blobs(5, seed=4)
    rec = det.reconstruct(x)
    expected = ((rec - x / 255.0) ** 2).reshape(5, -1).mean(1)
    assert np.allclose(det.score_samples(x), expected, atol=1e-6)
    maps = det.error_maps(x)
    assert maps.shape == (5, 12, 12) and np.allclose(maps.mean((1, 2)), expected, atol=1e-6)


def test_pixel_parts_match_their_definitions():
    from sklearn.decomposition import PCA

    x = make_blobs(80, seed=0)
    det = Detector(**{**FAST, "epochs": 1}, scores="pca+pixknn", k=1, pca_k=6).fit(x)
    train_idx = np.setdiff1d(np.arange(len(x)), det.heldout_indices_)
    probe = make_blobs(7, seed=11)
    _, parts = det.score_parts(probe)
    flat_train = x[train_idx].reshape(len(train_idx), -1) / 255.0
    flat = probe.reshape(7, -1) / 255.0
    pca = PCA(n_components=6).fit(flat_train)
    residual = ((pca.inverse_transform(pca.transform(flat)) - flat) ** 2).mean(1)
    assert np.allclose(parts["pca"], residual, rtol=1e-3, atol=1e-6)
    nearest = np.sqrt(((flat[:, None] - flat_train[None]) ** 2).sum(-1)).min(1)
    assert np.allclose(parts["pixknn"], nearest, rtol=1e-4, atol=1e-5)
    # a training image is its own nearest neighbour (up to cdist's float32 cancellation)
    assert np.allclose(det.score_parts(x[train_idx[:3]])[1]["pixknn"], 0.0, atol=1e-2)
    # the combined score is the sum of the parts' held-out z-scores
    z = sum((parts[p] - det.stats_[p][0]) / det.stats_[p][1] for p in ("pca", "pixknn"))
    assert np.allclose(det.score_samples(probe), z)


def test_save_and_load_round_trip_with_pixel_parts(tmp_path):
    det = Detector(**{**FAST, "epochs": 1}, scores="mse+pca+pixknn", pca_k=4).fit(make_blobs(60))
    again = load_detector(det.save(tmp_path / "det"))
    x = make_blobs(10, seed=9)
    assert np.allclose(again.score_samples(x), det.score_samples(x), atol=1e-5)
    assert again.get_params()["pca_k"] == 4


def test_latent_parts_get_their_own_plain_networks(tmp_path):
    x = make_blobs(60)
    det = Detector(**{**FAST, "epochs": 1}, scores="mse+knn").fit(x)  # restore rot, latent none
    assert det.latent_members_ is not det.members_ and len(det.history_) == 2
    again = load_detector(det.save(tmp_path / "det"))
    assert (tmp_path / "det" / "latent-0.safetensors").is_file()
    probe = make_blobs(6, seed=3)
    assert np.allclose(again.score_samples(probe), det.score_samples(probe), atol=1e-5)
    shared = Detector(**{**FAST, "epochs": 1}, scores="mse+knn", latent_restore="rot").fit(x)
    assert shared.latent_members_ is shared.members_ and len(shared.history_) == 1
    latent_only = Detector(**{**FAST, "epochs": 1}, scores="knn").fit(x)
    assert latent_only.members_ is latent_only.latent_members_ and len(latent_only.history_) == 1


def test_save_and_load_round_trip_with_an_ensemble(tmp_path):
    det = Detector(**{**FAST, "epochs": 1}, n_models=2, scores="mse+knn").fit(make_blobs(60))
    det.save(tmp_path / "det")
    names = {p.name for p in (tmp_path / "det").iterdir()}
    assert {"config.json", "model.safetensors", "model-1.safetensors", "detector.json",
            "detector.safetensors", "metrics.json"} <= names
    again = load_detector(tmp_path / "det")
    x = make_blobs(10, seed=9)
    assert np.allclose(again.score_samples(x), det.score_samples(x), atol=1e-5)
    assert again.threshold_ == det.threshold_


def test_load_rejects_a_run_that_is_not_a_detector(tmp_path):
    from aekit.api import Autoencoder

    Autoencoder(latent_dim=4, epochs=1, batch_size=16).fit(make_blobs(32)).save(tmp_path / "ae")
    with pytest.raises(RunError, match="not an anomaly detector"):
        load_detector(tmp_path / "ae")
    with pytest.raises(RunError, match="not a run folder"):
        load_detector(tmp_path / "nothing")


@pytest.mark.parametrize("bad, message", [
    (np.zeros((0, 1, 12, 12), np.uint8), "empty"),
    (np.zeros((1, 1, 12, 12), np.uint8), "at least 2"),
    (np.full((4, 1, 12, 12), np.nan, np.float32), "NaN"),
])
def test_bad_normal_sets(bad, message):
    with pytest.raises(DataError, match=message):
        Detector(**FAST).fit(bad)


def test_a_wrong_type_is_a_type_error():
    with pytest.raises(AekitTypeError, match="numpy array"):
        Detector(**FAST).fit("not images")


def test_wrong_size_or_channels_at_scoring(fitted):
    with pytest.raises(DataError, match="expects"):
        fitted.score_samples(np.zeros((2, 1, 8, 8), np.uint8))  # smaller: larger ones are tiled
    assert fitted.score_samples(np.zeros((2, 1, 16, 16), np.uint8)).shape == (2,)
    with pytest.raises(DataError, match="expects"):
        fitted.score_samples(np.zeros((2, 3, 12, 12), np.uint8))


@pytest.mark.parametrize("kwargs", [{"scores": "psnr"}, {"scores": "mse+mse"}, {"fpr": 1.5},
                                    {"contamination": 0.9}, {"n_models": 0}, {"pca_k": 0},
                                    {"restore": "rot+bogus:1"}])
def test_bad_settings_are_clear_errors(kwargs):
    with pytest.raises(AekitError):
        Detector(**{**FAST, **kwargs}).fit(make_blobs(20))


def test_parse_score():
    assert parse_score("mse + ssim") == ("mse", "ssim")


def test_threshold_rule_small_and_large_holdouts():
    from statistics import NormalDist

    from aekit.anomaly.calibrate import calibrate_threshold

    rng = np.random.default_rng(0)
    small = rng.normal(size=12)  # 12 < 1 + 1/0.05: the quantile would be the maximum
    thr, method = calibrate_threshold(small, 0.05)
    assert method == "gaussian" and thr < small.max()
    assert thr == pytest.approx(small.mean() + small.std(ddof=1) * NormalDist().inv_cdf(0.95))
    big = rng.normal(size=21)  # just enough: the second-highest score, one image above it
    thr, method = calibrate_threshold(big, 0.05)
    assert method == "quantile" and (big > thr).sum() == 1
    assert calibrate_threshold(rng.normal(size=20), 0.05)[1] == "gaussian"


def test_detector_with_a_small_holdout_records_the_gaussian_rule(tmp_path):
    det = Detector(**{**FAST, "epochs": 1}, scores="mse").fit(make_blobs(120))  # 12 held out
    assert len(det.heldout_scores_) == 12 and det.threshold_method_ == "gaussian"
    assert det.threshold_ < det.heldout_scores_.max()
    again = load_detector(det.save(tmp_path / "det"))
    assert again.threshold_method_ == "gaussian" and again.threshold_ == det.threshold_
    np.testing.assert_array_equal(again.decision_scores_, det.decision_scores_)
    np.testing.assert_array_equal(again.labels_, det.labels_)


def test_pyod_attributes_cover_the_fit_images():
    x = make_blobs(60)
    det = Detector(**{**FAST, "epochs": 1}, scores="mse", contamination=0.2).fit(x)
    assert det.decision_scores_.shape == (60,)
    held = det.heldout_indices_
    np.testing.assert_allclose(det.decision_scores_[held], det.heldout_scores_)
    np.testing.assert_allclose(det.decision_scores_, det.decision_function(x), atol=1e-6)
    np.testing.assert_array_equal(det.labels_, det.decision_scores_ > det.threshold_)
    np.testing.assert_array_equal(det.predict(x), det.decision_function(x) > det.threshold_)


def test_files_written_with_the_old_parameter_names_still_load(tmp_path):
    import json

    det = Detector(**{**FAST, "epochs": 1}, scores="mse+knn").fit(make_blobs(40))
    path = det.save(tmp_path / "det") / "detector.json"
    state = json.loads(path.read_text())
    params = state["params"]
    params["score"], params["seed"] = params.pop("scores"), params.pop("random_state")
    path.write_text(json.dumps(state))
    again = load_detector(tmp_path / "det")
    assert again.scores == "mse+knn" and again.random_state == 0


def test_cli_defaults_are_the_detector_defaults():
    from aekit.anomaly.defaults import DEFAULTS

    params = Detector().get_params()
    assert {k: params[k] for k in DEFAULTS} == DEFAULTS
