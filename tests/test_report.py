"""`aekit report`: one self-contained HTML page, checked as text and in a real headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aekit.cli import main
from aekit.report.html import rd_series, render_json

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """Two tiny runs (plain and denoising) plus extra files other features leave in a run."""
    from tests.conftest import make_blobs

    root = tmp_path_factory.mktemp("report")
    x = make_blobs(128)
    data = root / "tiny.npz"
    np.savez(data, x_train=x[:96], y_train=np.arange(96) % 4, x_test=x[96:],
             y_test=np.arange(32) % 4)
    out = []
    for name, extra in (("plain", []), ("denoise", ["--corrupt", "gaussian:0.3"])):
        run = root / name
        assert main(["train", "--model", "conv", "--dataset", f"npz:{data}", "--latent-dim", "4",
                     "--epochs", "2", "--batch-size", "32", "--out", str(run), "--quiet",
                     *extra]) == 0
        out.append(run)
    detector = {"score": "mse", "threshold": 0.012,
                "per_class": {f"class {k}": {"auroc": 0.9 + k / 100, "ap": 0.8} for k in range(3)}}
    (out[0] / "detector.json").write_text(json.dumps(detector))
    rd = {"points": [{"method": m, "bpp": b, "psnr": 20 + 4 * b + (m == "aekit")}
                     for m in ("aekit", "webp") for b in (0.5, 1.0, 2.0)]}
    (out[0] / "codec_rd.json").write_text(json.dumps(rd))
    (out[0] / "broken.json").write_text("{not json")
    Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (32, 1))).save(
        out[0] / "extra_figure.png")
    return out


def test_report_is_one_self_contained_file(runs, tmp_path, capsys):
    page = tmp_path / "report.html"
    assert main(["report", *map(str, runs), "-o", str(page)]) == 0
    text = page.read_text()
    assert "broken.json" in capsys.readouterr().err  # unreadable extras are noted, not fatal
    # No external reference of any kind: every src/href is inline data.
    for attr in re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", text):
        assert attr.startswith("data:"), attr
    assert "http://" not in text.replace("http-equiv", "") and "https://" not in text
    for needle in ("overview", "loss curves", "metrics vs baselines", "reconstructions",
                   "latent space", "restoration", "corrupted input", "detector.json",
                   "class 2", "codec_rd.json", "rate–distortion", "extra_figure.png", "PCA-4"):
        assert needle in text, needle
    # Every embedded image is a real image.
    for _mime, b64 in re.findall(r'src="data:(image/[a-z]+);base64,([^"]+)"', text):
        Image.open(io.BytesIO(base64.b64decode(b64))).verify()


def test_a_run_that_did_not_train_says_so_in_the_report(runs, tmp_path):
    """A collapsed run's warning (metrics.json "warnings") is shown on its card, never hidden."""
    import shutil

    run = tmp_path / "collapsed"
    shutil.copytree(runs[0], run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["warnings"] = ["the output collapsed to a near-constant image"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    page = tmp_path / "report.html"
    assert main(["report", str(runs[1]), str(run), "-o", str(page)]) == 0
    text = page.read_text()
    assert text.count("training problem:") == 1 and "near-constant image" in text


def test_generic_renderers():
    html = render_json({"a": 1.23456, "nested": {"x": {"auroc": 0.9}, "y": {"auroc": 0.8}},
                        "rows": [{"k": 1, "v": None}], "tags": ["p", "q"]})
    assert "1.235" in html and "auroc" in html and "–" in html and "p, q" in html
    series = rd_series({"a": [{"bpp": 1, "psnr": 30}], "b": {"c": [{"bpp": 2, "psnr": 31,
                                                                     "codec": "jpeg"}]}})
    assert series == {"a": [(1.0, 30.0)], "jpeg": [(2.0, 31.0)]}


def test_report_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notarun").mkdir()
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "notarun"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert main(["report", str(tmp_path / "missing"), "-o", str(out)]) == 2
    (tmp_path / "notarun" / "config.json").write_text("[1, 2]")
    assert main(["report", str(tmp_path / "notarun"), "-o", str(out)]) == 2
    assert not out.exists()


def _chrome():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("headless Chromium not installed (root: apt-get install chromium "
                    "chromium-driver; `make setup` does this)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="aekit-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1400,900",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts), profile


def test_report_in_headless_chromium(runs, tmp_path):
    page = tmp_path / "report.html"
    assert main(["report", *map(str, runs), "-o", str(page)]) == 0
    driver, profile = _chrome()
    try:
        driver.get(page.as_uri())
        assert driver.execute_script("return document.readyState") == "complete"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        assert len(images) >= 7
        assert all(done and width > 0 for _, done, width in images), images
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert errors == [], errors
        w, h = driver.execute_script("return [document.documentElement.scrollWidth, "
                                     "document.documentElement.scrollHeight]")
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    png = base64.b64decode(shot["data"])
    artifact = tmp_path / "report_screenshot.png"  # the test artifact
    artifact.write_bytes(png)
    if os.environ.get("AEKIT_ARTIFACTS"):
        Path(os.environ["AEKIT_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(artifact, Path(os.environ["AEKIT_ARTIFACTS"]) / artifact.name)
    with Image.open(artifact) as im:
        assert im.width >= 1000 and im.height > 1000
        # Not a blank page: the screenshot has real content.
        assert np.asarray(im.convert("L")).std() > 10


def test_plot_curves_with_given_ticks(tmp_path):
    from aekit.eval.plots import plot_curves

    out = tmp_path / "acc.png"
    plot_curves({"a": ([10, 100, 1000], [50.0, 70.0, 80.0])}, out, "labels", "accuracy (%)",
                logx=True, xticks=[10, 100, 1000])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
