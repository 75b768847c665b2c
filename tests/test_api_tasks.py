"""One Python API per task: numpy in -> numpy out, torch in -> torch out, and every bad call an
aekit error that is also a ValueError / TypeError naming the argument (tiny 8x8 digits, 1-2
epochs)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator

import aekit
from aekit.codec import compress, compress_each, decompress, info
from aekit.errors import AekitError, AekitTypeError, ConfigError, DataError, NotFittedError
from aekit.represent import FewLabelClassifier, embed, interpolate, sample_images, traverse
from aekit.restore import Restorer
from aekit.swap import Translator

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return d.images[:300] / 16, d.target[:300]  # (300, 8, 8) float64 in [0, 1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, digits):
    """Run folders of tiny models, one per task."""
    X, _ = digits
    root = tmp_path_factory.mktemp("runs")
    rgb = X[..., None] * np.random.default_rng(0).uniform(0.3, 1, (len(X), 1, 1, 3))
    fits = {"denoise": (dict(model="conv", corrupt="gaussian:0.3"), X),
            "inpaint": (dict(model="conv", corrupt="mask:blocks:1:3"), X),
            "colorize": (dict(model="conv", corrupt="grayscale"), rgb),
            "swap": (dict(model="swap", latent_dim=8), np.stack([X, 1 - X], 1))}
    for name, (params, data) in fits.items():
        aekit.Autoencoder(epochs=1, **params).fit(data).save(root / name)
    return root


@pytest.fixture(scope="module")
def ae(digits):
    return aekit.Autoencoder(model="dense", latent_dim=6, epochs=2).fit(digits[0])


@pytest.fixture(scope="module")
def vae(digits):
    return aekit.Autoencoder(model="vae", latent_dim=3, epochs=1).fit(digits[0])


@pytest.fixture(scope="module")
def codec(digits):
    return aekit.Autoencoder(model="codec", latent_dim=32, epochs=1,
                             options={"lambda": 0.003, "clusters": 2}).fit(digits[0])


def raises(err, *names):
    """pytest.raises for an aekit error of the built-in type `err` implies, whose one-line
    message names every one of `names`."""
    class Check:
        def __enter__(self):
            self.ctx = pytest.raises(err)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            out = self.ctx.__exit__(*exc)
            e = self.info.value
            assert isinstance(e, AekitError), repr(e)
            builtin = TypeError if isinstance(e, AekitTypeError) else ValueError
            assert isinstance(e, builtin), repr(e)
            assert "\n" not in str(e), str(e)
            for name in names:
                assert name in str(e), (name, str(e))
            return out
    return Check()


# --- restore -------------------------------------------------------------------------------------


def test_restorer_numpy_and_torch(runs, digits):
    X, _ = digits
    r = Restorer.load(runs / "denoise", "denoise")
    assert repr(r) == "Restorer(corruption='gaussian:0.3', shape=(1, 8, 8), batch_size=256)"
    out = r.denoise(X[:3])
    assert isinstance(out, np.ndarray) and out.shape == (3, 8, 8) and out.dtype == np.float64
    t = r.denoise(torch.from_numpy(X[:3]).float()[:, None])
    assert isinstance(t, torch.Tensor) and t.shape == (3, 1, 8, 8) and t.dtype == torch.float32
    assert r.denoise((X[:2] * 255).astype(np.uint8)).dtype == np.float32  # uint8 in: float out
    mask = np.zeros((2, 8, 8), bool)
    mask[:, 3:5, 3:5] = True
    filled = Restorer.load(runs / "inpaint", "inpaint").inpaint(X[:2], mask.astype(np.uint8))
    assert filled.shape == (2, 8, 8) and np.allclose(filled[~mask], X[:2][~mask], atol=1e-6)
    colour = Restorer.load(runs / "colorize", "colorize").colorize(torch.from_numpy(X[:2]))
    assert isinstance(colour, torch.Tensor) and colour.shape == (2, 3, 8, 8)


def test_restorer_bad_calls(runs, digits):
    X, _ = digits
    r = Restorer.load(runs / "inpaint", "inpaint")
    with raises(AekitTypeError, "x"):
        r.inpaint("images", np.zeros((1, 8, 8), bool))
    with raises(DataError, "x", "[0, 1]"):
        r.inpaint(X[:1] * 2, np.zeros((1, 8, 8), bool))
    with raises(DataError, "mask"):
        r.inpaint(X[:2], np.zeros((1, 8, 8), bool))
    with raises(DataError, "mask"):
        r.inpaint(X[:1], np.full((1, 8, 8), 0.5))
    with raises(AekitTypeError, "mask"):
        r.inpaint(X[:1], "holes")
    with raises(ConfigError, "fit="):
        r.inpaint(X[:1], np.zeros((1, 8, 8), bool), fit="zoom")
    with raises(ConfigError, "task="):
        Restorer.load(runs / "inpaint", "sharpen")
    with raises(DataError, "x", "channel"):
        r.inpaint(np.zeros((1, 3, 8, 8)), np.zeros((1, 8, 8), bool))


# --- codec ---------------------------------------------------------------------------------------


def test_codec_arrays_in_bytes_out(codec, digits, tmp_path):
    X, _ = digits
    x8 = (X[:5] * 255).round().astype(np.uint8)  # (5, 8, 8) uint8
    data = compress(codec, x8)
    assert isinstance(data, bytes)
    assert compress(codec, torch.from_numpy(x8)[:, None]) == data  # torch (N, C, H, W)
    assert compress(codec, x8[..., None]) == data  # channels-last
    assert compress(codec, x8.astype(np.float64) / 255) == data  # float 0..1
    assert compress(codec, x8[0][None]) == compress(codec, x8[:1])  # one image (C, H, W)
    out = decompress(data, codec)
    assert isinstance(out, np.ndarray) and out.shape == (5, 1, 8, 8) and out.dtype == np.float32
    t = decompress(data, codec, like="torch")
    assert isinstance(t, torch.Tensor) and np.array_equal(t.numpy(), out)
    like = decompress(data, codec, like=X[:5])  # X's library, layout and dtype
    assert like.shape == (5, 8, 8) and like.dtype == np.float64
    assert decompress(data, codec, like=torch.zeros(5, 8, 8, 1)).shape == (5, 8, 8, 1)
    codec.save(tmp_path / "codec")
    (tmp_path / "x.aez").write_bytes(data)
    assert np.array_equal(decompress(tmp_path / "x.aez", str(tmp_path / "codec")), out)
    assert info(data)["images"] == 5 and len(compress_each(codec, x8)) == 5


def test_codec_bad_calls(codec, ae, digits):
    X, _ = digits
    with raises(AekitTypeError, "x"):
        compress(codec, "images")
    with raises(DataError, "x", "channel"):
        compress(codec, np.zeros((2, 3, 10, 10)))  # any size, but the codec's channel count
    with raises(DataError, "x", "NaN"):
        compress(codec, np.full((1, 8, 8), np.nan))
    with raises(ConfigError, "model", "not a codec"):
        compress(ae, X[:2])
    with raises(AekitTypeError, "model"):
        compress(42, X[:2])
    with raises(ConfigError, "batch_size"):
        compress(codec, X[:2], batch_size=0)
    data = compress(codec, X[:2])
    with raises(AekitTypeError, "data"):
        decompress(12, codec)
    with raises(ConfigError, "like"):
        decompress(data, codec, like="jax")
    with raises(DataError, "like"):
        decompress(data, codec, like=np.zeros((2, 5, 5)))
    with pytest.raises(ValueError):  # FormatError: a ValueError too
        decompress(data[:-3], codec)
    with raises(NotFittedError, "not fitted"):
        compress(aekit.Autoencoder(model="codec"), X[:2])


# --- represent -----------------------------------------------------------------------------------


def test_embed_follows_the_input(ae, digits, tmp_path):
    X, _ = digits
    z = embed(ae, X[:7])
    assert isinstance(z, np.ndarray) and z.shape == (7, 6) and z.dtype == np.float64
    assert embed(ae, (X[:7] * 16).round().astype(np.uint8)).dtype == np.float32
    zt = embed(ae, torch.from_numpy(X[:7]).float())
    assert isinstance(zt, torch.Tensor) and zt.shape == (7, 6)
    np.testing.assert_allclose(zt.numpy(), z, atol=1e-5)
    ae.save(tmp_path / "ae")
    np.testing.assert_allclose(embed(str(tmp_path / "ae"), X[:7]), z, atol=1e-6)
    np.testing.assert_allclose(embed(ae.module_, X[:7]), z, atol=1e-6)  # the network itself
    assert embed(ae, X[:7], keep=2).shape == (7, 2)


def test_embed_bad_calls(ae, digits):
    X, _ = digits
    with raises(AekitTypeError, "X"):
        embed(ae, "images")
    with raises(DataError, "X"):
        embed(ae, np.zeros((2, 9, 9)))
    with raises(NotFittedError, "model"):
        embed(aekit.Autoencoder(), X)
    with raises(AekitTypeError, "model"):
        embed(42, X)
    with raises(ConfigError, "keep=0"):
        embed(ae, X, keep=0)
    with raises(ConfigError, "keep=99"):
        embed(ae, X, keep=99)
    with raises(AekitTypeError, "keep"):
        embed(ae, X, keep="2")


def test_classifier_is_a_scikit_learn_classifier(ae, digits, tmp_path):
    X, y = digits
    clf = FewLabelClassifier(autoencoder=ae, steps=30).fit(X[:100], y[:100])
    assert list(clf.classes_) == list(range(10))
    pred = clf.predict(X[100:])
    assert isinstance(pred, np.ndarray) and pred.shape == (200,)
    proba = clf.predict_proba(X[100:])
    assert proba.shape == (200, 10) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    assert 0.2 < clf.score(X[100:], y[100:]) <= 1  # ten classes: chance is 0.1
    pt = clf.predict(torch.from_numpy(X[100:]).float())
    assert isinstance(pt, torch.Tensor) and np.array_equal(pt.numpy(), pred)
    assert isinstance(clf.predict_proba(torch.from_numpy(X[:3])), torch.Tensor)
    names = np.array(["even", "odd"])[y[:100] % 2]  # string labels
    two = FewLabelClassifier(autoencoder=ae, steps=10).fit(X[:100], names)
    assert set(two.predict(X[:10])) <= {"even", "odd"}
    two.save(tmp_path / "clf")
    again = FewLabelClassifier.load(tmp_path / "clf")
    assert list(again.classes_) == ["even", "odd"] and again.steps == 10
    np.testing.assert_array_equal(again.predict(X[:20]), two.predict(X[:20]))
    twin = clone(clf)
    assert "steps=30" in repr(twin) and not hasattr(twin, "classes_")
    assert not hasattr(twin.autoencoder, "module_")  # clone refits an Autoencoder given here
    frozen = clone(FewLabelClassifier(FrozenEstimator(ae), steps=30))  # ... unless frozen
    np.testing.assert_array_equal(frozen.fit(X[:100], y[:100]).predict(X[100:]), pred)


def test_classifier_pretrains_an_unfitted_autoencoder(digits):
    X, y = digits
    base = aekit.Autoencoder(model="dense", latent_dim=4, epochs=1)
    clf = FewLabelClassifier(autoencoder=base, steps=5).fit(X[:20], y[:20], X_unlabeled=X)
    assert clf.predict(X[:3]).shape == (3,) and not hasattr(base, "module_")


def test_classifier_bad_calls(ae, digits):
    X, y = digits
    with raises(DataError, "y"):
        FewLabelClassifier(ae, steps=1).fit(X[:10], None)
    with raises(DataError, "Unknown label type"):
        FewLabelClassifier(ae, steps=1).fit(X[:10], np.linspace(0, 1, 10))
    for bad in (np.nan, np.inf):  # named as such, and before any cast could warn about it
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            with raises(DataError, "y", "NaN or infinity"):
                FewLabelClassifier(ae, steps=1).fit(X[:10], np.r_[y[:9], bad])
    with raises(DataError, "X", "y"):
        FewLabelClassifier(ae, steps=1).fit(X[:10], y[:9])
    with raises(ConfigError, "head='cnn'"):
        FewLabelClassifier(ae, head="cnn").fit(X[:10], y[:10])
    with raises(AekitTypeError, "steps='5'"):
        FewLabelClassifier(ae, steps="5").fit(X[:10], y[:10])
    with raises(ConfigError, "lr=0"):
        FewLabelClassifier(ae, lr=0).fit(X[:10], y[:10])
    with raises(AekitTypeError, "autoencoder"):
        FewLabelClassifier(42).fit(X[:10], y[:10])
    with raises(NotFittedError, "not fitted"):
        FewLabelClassifier(ae).predict(X[:2])
    clf = FewLabelClassifier(ae, steps=1).fit(X[:10], y[:10])
    with raises(DataError, "X"):
        clf.predict(np.zeros((2, 7, 7)))


def test_sample_interpolate_traverse(vae, digits):
    X, _ = digits
    s = sample_images(vae, 4, random_state=1)
    assert isinstance(s, np.ndarray) and s.shape == (4, 8, 8) and s.dtype == np.float32
    np.testing.assert_array_equal(s, sample_images(vae, 4, random_state=1))  # reproducible
    st = sample_images(vae, 4, like="torch")
    assert isinstance(st, torch.Tensor) and st.shape == (4, 8, 8)
    f = interpolate(vae, X[0], X[1], steps=5)
    assert isinstance(f, np.ndarray) and f.shape == (5, 8, 8) and f.dtype == np.float64
    ft = interpolate(vae, torch.from_numpy(X[0])[None], torch.from_numpy(X[1])[None], steps=3)
    assert isinstance(ft, torch.Tensor) and ft.shape == (3, 1, 8, 8)  # (C, H, W) frames
    rows = traverse(vae, [0, 2], steps=4)
    assert isinstance(rows, np.ndarray) and rows.shape == (2, 4, 8, 8)
    rt = traverse(vae, [1], steps=3, base=torch.from_numpy(X[0]).float())
    assert isinstance(rt, torch.Tensor) and rt.shape == (1, 3, 8, 8)


def test_sample_interpolate_traverse_bad_calls(vae, ae, digits):
    X, _ = digits
    with raises(ConfigError, "n=0"):
        sample_images(vae, 0)
    with raises(AekitTypeError, "n='3'"):
        sample_images(vae, "3")
    with raises(ConfigError, "like"):
        sample_images(vae, 2, like="jax")
    with raises(AekitTypeError, "like"):
        sample_images(vae, 2, like=5)
    with raises(ConfigError, "model", "prior"):
        sample_images(ae, 2)
    with raises(ConfigError, "steps=1"):
        interpolate(vae, X[0], X[1], steps=1)
    with raises(DataError, "a", "one image"):
        interpolate(vae, X[:2][:, None], X[1])
    with raises(AekitTypeError, "b"):
        interpolate(vae, X[0], "an image")
    with raises(ConfigError, "dims"):
        traverse(vae, [7])
    with raises(AekitTypeError, "dims"):
        traverse(vae, "0")
    with raises(ConfigError, "model", "prior"):
        traverse(ae, [0])


# --- swap ----------------------------------------------------------------------------------------


def test_translator_numpy_and_torch(runs, digits):
    X, _ = digits
    t = Translator.load(runs / "swap")
    assert "domains=('a', 'b')" in repr(t)
    out = t.translate(X[:3], to="b")
    assert isinstance(out, np.ndarray) and out.shape == (3, 8, 8) and out.dtype == np.float64
    ot = t.translate(torch.from_numpy(X[:3]).float()[:, None], to="a")
    assert isinstance(ot, torch.Tensor) and ot.shape == (3, 1, 8, 8)
    assert t.translate(np.zeros((2, 12, 10), np.uint8), "a").shape == (2, 12, 10)  # any size
    with raises(ConfigError, "to='c'"):
        t.translate(X[:1], "c")
    with raises(DataError, "x", "channel"):
        t.translate(np.zeros((1, 3, 8, 8)), "a")
    with raises(AekitTypeError, "x"):
        t.translate("images", "a")
