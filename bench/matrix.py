"""One table, one run: every task with its DEFAULT settings on every kind of image.

Columns: `fashion-mnist`, `mnist` (`idx:../shared/data/mnist`, 8,000 / 2,000 digits), `digits`
(scikit-learn 8x8), `photos32` / `photos64` (RGB patches of the photos bundled in the installed
packages, bench/photos.py names each photo; label = the photo), `textures` (32x32 grey patches
of scikit-image's brick / grass / gravel as in bench/textures.py; label = the texture).

Rows, each cell trained with the defaults a user gets (no per-dataset flag but the dataset name
and the task's own corruption):
- reconstruction: `aekit train --dataset D` vs PCA at the same code size (test PSNR)
- denoising: `aekit train --dataset D --corrupt gaussian:0.098` (sigma 25/255) vs the noisy
  input (whole test split), and on EVAL test images vs BM3D where the `bm3d` package is
  installed
- inpainting: `aekit train --dataset D --corrupt mask:blocks`, PSNR on the removed pixels of
  EVAL test images (evenly spaced over the split) vs biharmonic inpainting (scikit-image), same
  masks
- anomaly: `Detector()` mean AUROC vs the PCA-32 residual. Labelled columns: one-class, each
  class in turn normal, the other classes anomalies; photos: clean test patches vs the same
  patches with one synthetic defect of bench/textures.py (drawn alike on the 3 channels) and a
  pure-noise image; textures: bench.textures (image AUROC, mean of the three)
- linear probe: logistic regression on the reconstruction run's codes vs on PCA codes of the
  same size (test accuracy)

    python -m bench.matrix --threads 1                    # everything (hours on 2 CPU cores)
    python -m bench.matrix --columns digits textures      # some columns, merged into the JSON
    python -m bench.matrix --quick                        # tiny budgets and subsets (smoke)
    python -m bench.matrix --report                       # markdown table from the JSON
    python -m bench.matrix --name N [--reuse]             # bench/results/N.json, runs in runs/N

Writes bench/results/matrix.json and docs/img/matrix_<column>.png (test images, reconstruction,
noisy, denoised, masked, inpainted); --quick writes both under runs/matrix-quick/ instead.
One file for the whole matrix: its cells share the data builders, the targets and the table
(the reason for its length).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time

import numpy as np
import torch

from bench.common import IMG, RESULTS, ROOT, environment, image_rows_figure
from bench.textures import LOCAL_GATES

COLUMNS = ("fashion-mnist", "mnist", "digits", "photos32", "photos64", "textures")
SIGMA = 25 / 255
NOISE = f"gaussian:{SIGMA:.3f}"
MASK = "mask:blocks"
EVAL = 200  # test images for the inpainting and BM3D comparisons
# bm3d 4.0.3 (libbm4d) segfaults on an 8x8 image and runs on 12x12 and up (tried 8, 12, 16, 28).
BM3D_MIN_SIDE = 12
PROBE_TRAIN = 10_000
TARGETS = {"recon_over_pca_db": 0.0, "mnist_latent16_db": 17.9, "denoise_over_noisy_db": 6.0,
           "anomaly_over_pca": 0.0}
# Rows beyond reconstruction and the probe (--rows); cells not run keep their earlier results in
# the JSON. The column's picture needs both restorations.
ROWS = {"all": ("denoising", "inpainting", "anomaly"), "recon-anomaly": ("anomaly",),
        "recon-denoise": ("denoising",), "recon": (),
        "restoration": ("denoising", "inpainting")}  # with --reuse: redraws a column's picture
REUSE = False  # --reuse: a finished cell's run folder is read back, a stopped one resumed
RUNS = ROOT / "runs" / "matrix"  # the cells' run folders: runs/<--name>, so passes never mix
QUICK = {"steps": 20, "limit": 600, "test": 300, "classes": 2, "anomaly_train": 300}


def dataset(col: str) -> str:
    """The `--dataset` value of a column (building its npz once for photos and textures)."""
    if col == "mnist":
        return "idx:" + str(ROOT.parent / "shared" / "data" / "mnist")
    if col.startswith("photos"):
        return "npz:" + str(_photos(int(col[6:])))
    if col == "textures":
        return "npz:" + str(_textures())
    return col


def _photos(size: int):
    from bench.photos import write
    return write(size, ROOT / "runs" / "data" / f"photos{size}_labelled.npz")


def _textures():
    from bench.textures import GAP, N_TRAIN, PATCH, TEXTURES, TRAIN_ROWS, crops, texture
    out = ROOT / "runs" / "data" / "textures32.npz"
    if not out.exists():
        rng = np.random.default_rng(0)
        parts = {"x_train": [], "y_train": [], "x_test": [], "y_test": []}
        for i, name in enumerate(TEXTURES):
            img = texture(name)
            for split, rows, n in (("train", (0, TRAIN_ROWS), N_TRAIN),
                                   ("test", (TRAIN_ROWS + GAP, img.shape[0]), 200)):
                parts[f"x_{split}"].append((crops(img, rows, n, PATCH, rng) * 255).round())
                parts[f"y_{split}"].append(np.full(n, i))
        _save_npz(out, {k: np.concatenate(v).astype(np.uint8) for k, v in parts.items()})
    return out


def _write(path, results: dict) -> None:
    from aekit.io import atomic_write_text
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(results, indent=2) + "\n")


def _save_npz(path, arrays: dict) -> None:
    import io

    from aekit.io import atomic_write_bytes
    buf = io.BytesIO()
    np.savez(buf, **{k: v for k, v in arrays.items() if isinstance(v, np.ndarray)})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


# --- cells -------------------------------------------------------------------------------------

def train(col: str, task: str, corrupt: str, quick: bool, latent: int | None = None) -> tuple:
    """`aekit train --dataset D [--corrupt C] [--latent-dim L]` with no other flag (quick: a
    step budget and a training subset); returns (metrics, run folder)."""
    from aekit.cli import main as cli_main
    out = RUNS / f"{col}-{task}{'-quick' if quick else ''}"
    if REUSE and not quick and (out / "metrics.json").exists():  # a finished run of this cell
        return json.loads((out / "metrics.json").read_text()), out
    if REUSE and not quick and (out / "checkpoint").is_dir():
        # A cell stopped mid-training continues from its checkpoint (aekit resumes exactly), so
        # a long column can be run across several sittings.
        argv = ["train", "--resume", str(out), "-q", "--threads", str(torch.get_num_threads())]
        code = cli_main(argv)
        if code in (0, 1) and (out / "metrics.json").exists():
            return json.loads((out / "metrics.json").read_text()), out
        # Stopped again (a signal saves a checkpoint and returns) or failed: the checkpoint is
        # the work done so far, never deleted here.
        raise RuntimeError(f"aekit {' '.join(argv)} ended with exit {code} before finishing; "
                           f"its checkpoint is kept: run again with --reuse")
    shutil.rmtree(out, ignore_errors=True)
    argv = ["train", "--dataset", dataset(col), "--out", str(out), "-q",
            "--threads", str(torch.get_num_threads())]  # the run's --threads, not a setting
    argv += ["--corrupt", corrupt] if corrupt else []
    argv += ["--latent-dim", str(latent)] if latent else []
    if quick:
        argv += ["--steps", str(QUICK["steps"]), "--limit", str(QUICK["limit"])]
    if cli_main(argv) not in (0, 1):
        raise RuntimeError(f"aekit {' '.join(argv)} failed")
    return json.loads((out / "metrics.json").read_text()), out


def _outputs(run, x: torch.Tensor) -> torch.Tensor:
    from aekit.core.io import load_model
    model, _ = load_model(run)
    with torch.inference_mode():
        return torch.cat([model(b)["x_hat"].float() for b in x.split(256)])


def _test(col: str, quick: bool):
    from aekit.data import load_dataset
    ds = load_dataset(dataset(col))
    n = QUICK["test"] if quick else len(ds.test_x)
    return ds, ds.test_x[:n].float() / 255


def _spread(x: torch.Tensor, n: int) -> torch.Tensor:
    """n images evenly spaced over x (test splits are often sorted by class or source)."""
    return x[torch.linspace(0, len(x) - 1, min(n, len(x))).round().long()]


def _corrupted(spec: str, x: torch.Tensor):
    from aekit.data.corrupt import parse_corruption
    return parse_corruption(spec).apply(x, torch.Generator().manual_seed(2024))


def _psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    err = (a - b) ** 2
    mse = float(err[where.expand_as(err)].mean()) if where is not None else float(err.mean())
    return 10 * np.log10(1 / max(mse, 1e-12))


def reconstruction(col: str, quick: bool) -> dict:
    m, run = train(col, "recon", "", quick)
    cell = {"psnr": m["test"]["psnr"], "pca_psnr": m["baselines"]["pca"]["psnr"],
            "code_size": m["code_size"], "epochs": m["epochs"], "warnings": m["warnings"],
            "seconds": m["train_seconds"]}
    cell["over_pca_db"] = cell["psnr"] - cell["pca_psnr"]
    cell["probe"] = probe(col, run, m["code_size"], quick)
    if col == "mnist":  # the target "latent 16: >= PCA-16 + 2 dB"
        m16, _ = train(col, "recon16", "", quick, latent=16)
        cell["latent16"] = {"psnr": m16["test"]["psnr"],
                            "pca_psnr": m16["baselines"]["pca"]["psnr"],
                            "warnings": m16["warnings"]}
    return cell, run


def probe(col: str, run, k: int, quick: bool) -> dict:
    """Test accuracy (%) of a logistic regression on the run's codes vs on PCA-k codes."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from aekit.core.io import load_model
    from aekit.data import load_dataset
    ds = load_dataset(dataset(col))
    if ds.train_y is None:
        return {"skipped": "no labels"}
    n = QUICK["limit"] if quick else PROBE_TRAIN
    idx = torch.randperm(len(ds.train_x), generator=torch.Generator().manual_seed(0))[:n]
    xtr, ytr = ds.train_x[idx].float() / 255, ds.train_y[idx].numpy()
    xte, yte = ds.test_x.float() / 255, ds.test_y.numpy()
    model, _ = load_model(run)
    with torch.inference_mode():
        codes = [torch.cat([model.encode(b).flatten(1) for b in x.split(512)]).numpy()
                 for x in (xtr, xte)]
    flat = [x.flatten(1).numpy() for x in (xtr, xte)]
    pca = PCA(n_components=min(k, *flat[0].shape), random_state=0).fit(flat[0])
    pcs = [pca.transform(f) for f in flat]

    def acc(tr, te) -> float:
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        return 100 * float(clf.fit(tr, ytr).score(te, yte))
    return {"aekit": acc(*codes), "pca": acc(*pcs), "train_images": len(idx)}


def denoising(col: str, quick: bool) -> tuple[dict, dict]:
    m, run = train(col, "denoise", NOISE, quick)
    cell = {"psnr": m["test"]["psnr"], "noisy_psnr": m["corrupted_input"]["psnr"],
            "model": m["model"], "epochs": m["epochs"], "warnings": m["warnings"],
            "seconds": m["train_seconds"]}
    cell["over_noisy_db"] = cell["psnr"] - cell["noisy_psnr"]
    _, x = _test(col, quick)
    x = _spread(x, EVAL)
    noisy = _corrupted(NOISE, x).x
    out = _outputs(run, noisy)
    cell["psnr_eval"] = _psnr(out, x)
    try:
        import bm3d
    except ImportError:
        cell["bm3d"] = "the bm3d package is not installed"
    else:
        if min(x.shape[2:]) < BM3D_MIN_SIDE:
            cell["bm3d"] = (f"not run: bm3d's library crashes on images under {BM3D_MIN_SIDE} "
                            f"pixels a side ({x.shape[2]}x{x.shape[3]} here)")
            return cell, {"noisy": noisy, "denoised": out}
        den = np.stack([bm3d.bm3d(im.permute(1, 2, 0).numpy(), SIGMA) for im in noisy])
        den = torch.from_numpy(den.reshape(len(x), *x.shape[2:], -1)).permute(0, 3, 1, 2)
        cell["bm3d"] = _psnr(den.float().clamp(0, 1), x)
    return cell, {"noisy": noisy, "denoised": out}


def inpainting(col: str, quick: bool) -> tuple[dict, dict]:
    from skimage.restoration import inpaint_biharmonic
    m, run = train(col, "inpaint", MASK, quick)
    _, x = _test(col, quick)
    x = _spread(x, EVAL)
    c = _corrupted(MASK, x)
    out = torch.where(c.mask, _outputs(run, c.x), x)  # known pixels kept, as `aekit inpaint`
    whole = c.mask.flatten(1).all(1)  # the default 8x8 blocks remove all of an 8x8 image

    def biharmonic(im: torch.Tensor, mk: torch.Tensor, gone: bool) -> np.ndarray:
        if gone:  # nothing known to extend: mid grey
            return np.full(im.permute(1, 2, 0).shape, 0.5, np.float32)
        return inpaint_biharmonic(im.permute(1, 2, 0).numpy(), mk[0].numpy(), channel_axis=-1)
    bih = np.stack([biharmonic(*a) for a in zip(c.x, c.mask, whole, strict=True)])
    bih = torch.from_numpy(bih).permute(0, 3, 1, 2).float()
    cell = {"psnr_masked": _psnr(out, x, c.mask), "biharmonic_psnr_masked": _psnr(bih, x, c.mask),
            "images_fully_masked": int(whole.sum()), "masked_share": float(c.mask.float().mean()),
            "model": m["model"], "epochs": m["epochs"], "warnings": m["warnings"],
            "seconds": m["train_seconds"]}
    return cell, {"masked": c.x, "inpainted": out}


def anomaly(col: str, quick: bool) -> dict:
    from aekit.anomaly.detector import Detector
    from aekit.eval.metrics import auroc
    from bench.anomaly import pca_scores
    params = {"epochs": 1} if quick else {}
    if col == "textures":
        from bench.textures import TEXTURES, run_texture
        rows = [run_texture(t, params, 0)[0] for t in (TEXTURES[:1] if quick else TEXTURES)]
        return {"aekit": float(np.mean([r["image_auroc"] for r in rows])),
                "pca": float(np.mean([r["pca_image_auroc"] for r in rows])),
                "pixel_auroc": float(np.mean([r["pixel_auroc"] for r in rows])),
                "per_texture": {r["texture"]: r["image_auroc"] for r in rows},
                "local_gate": {str(q): float(np.mean([r["image_auroc_by_local_gate"][str(q)]
                                                      for r in rows])) for q in LOCAL_GATES}}
    from aekit.data import load_dataset
    ds = load_dataset(dataset(col))
    if col.startswith("photos"):
        sets = [(ds.train_x, *_defective(ds.test_x))]
    else:
        classes = range(QUICK["classes"] if quick else len(ds.classes))
        sets = [(ds.train_x[ds.train_y == k], ds.test_x, (ds.test_y != k).numpy())
                for k in classes]
    rows = []
    for normal, test, is_anom in sets:
        if quick:  # evenly spaced: the photo test sets list clean, then defective images
            pick = torch.linspace(0, len(test) - 1, QUICK["test"]).round().long().unique()
            normal, test, is_anom = normal[:QUICK["anomaly_train"]], test[pick], \
                is_anom[pick.numpy()]
        det = Detector(**params).fit(normal)
        scores, parts = det.score_parts(test)
        rows.append({"aekit": 100 * auroc(scores, is_anom),
                     "pca": 100 * auroc(pca_scores(normal, test), is_anom),
                     "local_gate": {str(q): 100 * auroc(det.combine_parts(
                         parts, gate_quantile=q), is_anom) for q in LOCAL_GATES}})
    return {key: float(np.mean([r[key] for r in rows])) for key in ("aekit", "pca")} | {
        "local_gate": {str(q): float(np.mean([r["local_gate"][str(q)] for r in rows]))
                       for q in LOCAL_GATES}, "per_set": rows}


def _defective(test_x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Clean test patches, the same patches with one defect each (bench.textures' kinds, the
    same draw on every channel) and one pure-noise image: (uint8 images, is_anomaly)."""
    from bench.textures import DEFECT_FNS, DEFECTS
    rng = np.random.default_rng(0)
    clean = test_x.numpy().astype(np.float32) / 255
    bad = []
    for i, img in enumerate(clean):
        fn, state = DEFECT_FNS[DEFECTS[i % len(DEFECTS)]], rng.bit_generator.state
        chans = []
        for ch in img:
            rng.bit_generator.state = state  # the same defect on every channel
            chans.append(fn(ch, rng)[0])
        bad.append(np.stack(chans))
    noise = rng.uniform(0, 1, (1, *clean.shape[1:]))
    x = np.concatenate([clean, np.clip(np.stack(bad), 0, 1), noise])
    is_anom = np.r_[np.zeros(len(clean)), np.ones(len(clean) + 1)].astype(bool)
    return torch.from_numpy((x * 255).round().astype(np.uint8)), is_anom


def run_column(col: str, quick: bool, img_dir, rows=ROWS["all"]) -> dict:
    t0 = time.perf_counter()
    recon, run = reconstruction(col, quick)
    cell = {"reconstruction": recon}
    if "denoising" in rows:
        cell["denoising"], den = denoising(col, quick)
    if "inpainting" in rows:
        cell["inpainting"], inp = inpainting(col, quick)
    if "anomaly" in rows:
        cell["anomaly"] = anomaly(col, quick)
    if not {"denoising", "inpainting"} <= set(rows):  # a partial column: no picture
        return cell
    cell["seconds"] = round(time.perf_counter() - t0, 1)
    _, x = _test(col, quick)
    x = _spread(x, EVAL)  # the images the denoising and inpainting comparisons used

    def pick(t: torch.Tensor) -> torch.Tensor:
        return _spread(t, 8)
    image_rows_figure(img_dir / f"matrix_{col}.png", [
        ("test", pick(x)), ("reconstructed", _outputs(run, pick(x))),
        ("noisy 25/255", pick(den["noisy"])), ("denoised", pick(den["denoised"])),
        ("masked", pick(inp["masked"])), ("inpainted", pick(inp["inpainted"]))])
    return cell


# --- table -------------------------------------------------------------------------------------

def verdicts(col: str, c: dict) -> list[tuple[str, str, str, bool]]:
    """(row, measured, target, met) for one column's cells."""
    r, d, a = c["reconstruction"], c.get("denoising"), c.get("anomaly")
    warned = [w for cell in (r, d, c.get("inpainting")) if cell for w in cell.get("warnings", [])]
    out = [("no collapse", f"{len(warned)} warnings", "0", not warned),
           ("reconstruction vs PCA", f"{r['psnr']:.2f} vs {r['pca_psnr']:.2f} dB", "above",
            r["over_pca_db"] > TARGETS["recon_over_pca_db"])]
    if a is not None:
        out.append(("anomaly vs PCA", f"{a['aekit']:.2f} vs {a['pca']:.2f}", "above",
                    a["aekit"] > a["pca"]))
    if d is not None:
        out.insert(2, ("denoising over noisy", f"{d['over_noisy_db']:+.2f} dB", "+6 dB",
                       d["over_noisy_db"] >= TARGETS["denoise_over_noisy_db"]))
    if "latent16" in r:
        m16 = r["latent16"]
        out.append(("latent 16", f"{m16['psnr']:.2f} dB (PCA-16 {m16['pca_psnr']:.2f})",
                    "17.9 dB", m16["psnr"] >= TARGETS["mnist_latent16_db"]))
    if col.startswith("photos") and d is not None:
        b = d["bm3d"]
        out.append(("denoising vs BM3D", f"{d['psnr_eval']:.2f} vs " + (
            f"{b:.2f}" if isinstance(b, float) else "not installed"), "reach",
            isinstance(b, float) and d["psnr_eval"] >= b))
    return out


def report(results: dict) -> str:
    cols = [c for c in COLUMNS if c in results["columns"]]
    cells = {c: results["columns"][c] for c in cols}

    def row(name: str, fn) -> str:
        def shown(c: dict) -> str:
            try:
                return fn(c)
            except KeyError:  # a row this column has not run (--rows)
                return "—"
        return f"| {name} | " + " | ".join(shown(cells[c]) for c in cols) + " |"
    lines = ["| task | " + " | ".join(f"`{c}`" for c in cols) + " |",
             "|---|" + "---:|" * len(cols),
             row("reconstruction PSNR (dB), aekit / PCA", lambda c: "{:.2f} / {:.2f}".format(
                 c["reconstruction"]["psnr"], c["reconstruction"]["pca_psnr"])),
             row("denoising σ=25/255 (dB), aekit / noisy", lambda c: "{:.2f} / {:.2f}".format(
                 c["denoising"]["psnr"], c["denoising"]["noisy_psnr"])),
             row(f"denoising, {EVAL} test images (dB), aekit / BM3D",
                 lambda c: "{:.2f} / {}".format(c["denoising"]["psnr_eval"], f"{b:.2f}" if (
                     isinstance(b := c["denoising"]["bm3d"], float)) else "n/a")),
             row("inpainting, removed pixels (dB), aekit / biharmonic",
                 lambda c: "{:.2f} / {:.2f}".format(c["inpainting"]["psnr_masked"],
                                                    c["inpainting"]["biharmonic_psnr_masked"])),
             row("anomaly mean AUROC, aekit / PCA", lambda c: "{:.2f} / {:.2f}".format(
                 c["anomaly"]["aekit"], c["anomaly"]["pca"])),
             row("linear probe accuracy (%), aekit / PCA", lambda c: "{:.1f} / {:.1f}".format(
                 c["reconstruction"]["probe"]["aekit"], c["reconstruction"]["probe"]["pca"])
                 if "aekit" in c["reconstruction"]["probe"] else "n/a")]
    lines += ["", "| column | check | measured | target | met |", "|---|---|---|---|---|"]
    for c in cols:
        lines += [f"| `{c}` | {name} | {got} | {want} | {'yes' if ok else '**no**'} |"
                  for name, got, want, ok in verdicts(c, cells[c])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--columns", nargs="+", default=list(COLUMNS), choices=COLUMNS)
    ap.add_argument("--quick", action="store_true", help="tiny budgets and subsets (smoke test)")
    ap.add_argument("--report", action="store_true", help="print the table from the JSON only")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", choices=tuple(ROWS), default="all",
                    help="all but 'all' leave rows out (their cells keep earlier results): "
                         "recon = reconstruction and probe; recon-anomaly, recon-denoise add "
                         "that row")
    ap.add_argument("--reuse", action="store_true",
                    help="read finished cells' run folders back, resume stopped ones")
    ap.add_argument("--name", default=None,
                    help="result name, also the cells' run folder runs/NAME (default: matrix)")
    args = ap.parse_args(argv)
    # --quick (a smoke test, not a result) writes under runs/, never into bench/results or docs.
    where = ROOT / "runs" / "matrix-quick" if args.quick else None
    name = args.name or "matrix"
    path = (where or RESULTS) / f"{name}.json"
    if args.report:
        print(report(json.loads(path.read_text())))
        return 0
    torch.set_num_threads(args.threads)
    global REUSE, RUNS
    REUSE, RUNS = args.reuse, ROOT / "runs" / name
    results = json.loads(path.read_text()) if path.exists() else {"columns": {}}
    for col in args.columns:
        if col == "mnist" and not (ROOT.parent / "shared" / "data" / "mnist").is_dir():
            print("mnist: ../shared/data/mnist is absent; column skipped", flush=True)
            continue
        print(f"== {col}", flush=True)
        cells = run_column(col, args.quick, where or IMG, ROWS[args.rows])
        if args.rows == "all":
            cells["environment"] = environment()
        else:  # a partial column: merged over the earlier cells, each run saying when it ran
            for cell in cells.values():
                if isinstance(cell, dict):  # (a picture adds the column's "seconds")
                    cell["environment"] = environment()
            cells = {**results["columns"].get(col, {}), **cells}
        results["columns"][col] = cells
        _write(path, results)
    print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
