"""Texture anomaly detection and localisation benchmark on scikit-image's textures.

For each of `brick`, `grass` and `gravel` (skimage.data, 512x512 grey): normal training patches
(PATCH x PATCH, grey) are cut at random places from the top TRAIN_ROWS rows; test patches come
from the bottom rows (a GAP-row band apart, never seen in training). Half of the test patches get
one synthetic defect each, drawn with its pixel mask: a scratch, a blob, a stain, a noise patch
or a tone shift (the textures are grey, so the "colour shift" moves the grey levels of a region).
One pure-noise image joins the test set as an anomaly.

The detector is `Detector()` with default settings, fitted on the normal patches only. Reported
per texture: image AUROC (defective or noise vs clean patches), pixel AUROC (the heat map,
`Detector.anomaly_maps`, as a per-pixel score against the defect masks, over every pixel of the
clean and defective test patches; the noise image is left out of it), both per defect type,
the same two for the PCA-residual baseline (PCA_K components fitted on the same patches) and
for the reconstruction-error map (`Detector.error_maps`), the image AUROC of each score part,
whether the pure-noise image was flagged (score above the calibrated threshold), and the flag
rates. Then the detector
scores CROPS held-out crops of CROP x CROP pixels with DEFECTS_PER_CROP defects each through
the tiling path (images larger than the training size: overlapping tiles, heat maps stitched
at full size): pixel AUROC there, and whether each crop was flagged.

    python -m bench.textures                       # all three, default settings
    python -m bench.textures --textures brick --threads 1
    python -m bench.textures --params '{"scores": "mse"}' --name textures_mse

Writes bench/results/textures.json (or NAME.json), docs/img/textures_heatmaps.png (test patches,
defect masks, heat maps) and docs/img/textures_tiled.png (full-size crops through tiles).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from bench.common import IMG, print_table, write_result

TEXTURES = ("brick", "grass", "gravel")
DEFECTS = ("scratch", "blob", "stain", "noise", "tone")
PATCH = 32
TRAIN_ROWS, GAP = 320, 32  # training patches from rows [0, 320); test from rows [352, 512)
N_TRAIN, N_CLEAN, N_PER_DEFECT = 1500, 100, 20
CROP, CROPS, DEFECTS_PER_CROP = 128, 4, 6
PCA_K = 32
TARGET = {"image_auroc": 95.0, "pixel_auroc": 90.0}
# The image AUROC is also reported with `local` gated at these held-out quantiles (the
# detector's `local_gate`; the default is anomaly.defaults.LOCAL_GATE), from the same fitted
# detector.
LOCAL_GATES = (1.0, 0.99, 0.95, 0.9)


def texture(name: str) -> np.ndarray:
    """The texture as float32 (H, W) in [0, 1]."""
    import skimage.data

    return getattr(skimage.data, name)().astype(np.float32) / 255.0


def crops(img: np.ndarray, rows: tuple[int, int], n: int, size: int,
          rng: np.random.Generator) -> np.ndarray:
    """n random size x size crops whose rows lie in [rows[0], rows[1]): (n, size, size)."""
    ys = rng.integers(rows[0], rows[1] - size + 1, n)
    xs = rng.integers(0, img.shape[1] - size + 1, n)
    return np.stack([img[y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)])


# --- synthetic defects: (image (H, W) in [0, 1], rng, where (cy, cx) or None) -> (image, mask)


def _centre(shape, rng, where, margin: float = 0.3):
    if where is not None:
        return where
    h, w = shape
    return rng.uniform(h * margin, h * (1 - margin)), rng.uniform(w * margin, w * (1 - margin))


def _contrast_value(img: np.ndarray, alpha: np.ndarray, rng: np.random.Generator) -> float:
    """A bright or a dark value, whichever stands out from the pixels under the defect."""
    local = float((img * alpha).sum() / max(alpha.sum(), 1e-6))
    bright = rng.uniform(0.85, 1.0)
    dark = rng.uniform(0.0, 0.12)
    if abs(bright - local) < 0.3:
        return dark
    if abs(dark - local) < 0.3:
        return bright
    return bright if rng.random() < 0.5 else dark


def scratch(img, rng, where=None):
    """A thin straight line (1-2 px), bright or dark, 8-20 px long."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = _centre(img.shape, rng, where)
    a = rng.uniform(0, np.pi)
    dy, dx = np.sin(a), np.cos(a)
    length, width = rng.uniform(8, 20), rng.uniform(1.0, 2.0)
    along = (yy - cy) * dy + (xx - cx) * dx
    across = np.abs((yy - cy) * dx - (xx - cx) * dy)
    alpha = np.clip(width / 2 + 0.5 - across, 0, 1) * np.clip(length / 2 + 0.5 - np.abs(along),
                                                                0, 1)
    v = _contrast_value(img, alpha, rng)
    return img * (1 - alpha) + v * alpha, alpha > 0.3


def blob(img, rng, where=None):
    """A filled ellipse (radii 2.5-5 px) of one bright or dark value, soft edge."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = _centre(img.shape, rng, where)
    ry, rx = rng.uniform(2.5, 5, 2)
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    alpha = np.clip((1.25 - r) / 0.5, 0, 1)
    v = _contrast_value(img, alpha, rng)
    return img * (1 - alpha) + v * alpha, alpha > 0.5


def stain(img, rng, where=None):
    """An irregular blotch (about 8-14 px across) that darkens or lightens the texture by
    25-45% while the texture stays visible under it."""
    from scipy.ndimage import gaussian_filter

    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = _centre(img.shape, rng, where)
    rad = rng.uniform(4, 7)
    field = gaussian_filter(rng.standard_normal((h, w)), 2.0)
    field /= field.std() + 1e-6
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / rad
    region = (1.0 - d + 0.25 * field) > 0
    alpha = np.clip(gaussian_filter(region.astype(np.float32), 0.8), 0, 1)
    k = rng.uniform(0.25, 0.45)
    changed = img * (1 - k) if rng.random() < 0.5 else 1 - (1 - img) * (1 - k)
    return img * (1 - alpha) + changed * alpha, alpha > 0.5


def noise(img, rng, where=None):
    """A rectangle (5-10 px sides) of uniform random noise."""
    h, w = img.shape
    cy, cx = _centre(img.shape, rng, where)
    sy, sx = rng.integers(5, 11, 2)
    y0, x0 = int(np.clip(cy - sy / 2, 0, h - sy)), int(np.clip(cx - sx / 2, 0, w - sx))
    out, mask = img.copy(), np.zeros((h, w), bool)
    out[y0 : y0 + sy, x0 : x0 + sx] = rng.uniform(0, 1, (sy, sx))
    mask[y0 : y0 + sy, x0 : x0 + sx] = True
    return out, mask


def tone(img, rng, where=None):
    """A region (8-16 px sides, soft edge) whose grey levels shift by 0.15-0.25 (lighter or
    darker): the grey counterpart of a colour shift."""
    from scipy.ndimage import gaussian_filter

    h, w = img.shape
    cy, cx = _centre(img.shape, rng, where)
    sy, sx = rng.integers(8, 17, 2)
    y0, x0 = int(np.clip(cy - sy / 2, 0, h - sy)), int(np.clip(cx - sx / 2, 0, w - sx))
    box = np.zeros((h, w), np.float32)
    box[y0 : y0 + sy, x0 : x0 + sx] = 1
    alpha = np.clip(gaussian_filter(box, 0.7), 0, 1)
    delta = rng.uniform(0.15, 0.25) * (1 if rng.random() < 0.5 else -1)
    return np.clip(img + delta * alpha, 0, 1), alpha > 0.5


DEFECT_FNS = {"scratch": scratch, "blob": blob, "stain": stain, "noise": noise, "tone": tone}


def test_set(img: np.ndarray, rng: np.random.Generator):
    """(images (N, P, P), masks (N, P, P) bool, kind per image: 'clean', a defect or 'pure
    noise'); the last image is pure noise."""
    rows = (TRAIN_ROWS + GAP, img.shape[0])
    clean = crops(img, rows, N_CLEAN + N_PER_DEFECT * len(DEFECTS), PATCH, rng)
    images, masks, kinds = [], [], []
    for i, patch in enumerate(clean):
        kind = "clean" if i < N_CLEAN else DEFECTS[(i - N_CLEAN) // N_PER_DEFECT]
        if kind == "clean":
            out, mask = patch, np.zeros(patch.shape, bool)
        else:
            out, mask = DEFECT_FNS[kind](patch, rng)
        images.append(np.clip(out, 0, 1))
        masks.append(mask)
        kinds.append(kind)
    images.append(rng.uniform(0, 1, (PATCH, PATCH)).astype(np.float32))
    masks.append(np.ones((PATCH, PATCH), bool))
    kinds.append("pure noise")
    return np.stack(images).astype(np.float32), np.stack(masks), np.array(kinds)


def crop_set(img: np.ndarray, rng: np.random.Generator):
    """CROPS held-out CROP x CROP crops with DEFECTS_PER_CROP defects each (spread over a
    grid so they do not overlap): (images, masks)."""
    rows = (TRAIN_ROWS + GAP, img.shape[0])
    base = crops(img, rows, CROPS, CROP, rng)
    cells = int(np.ceil(np.sqrt(DEFECTS_PER_CROP)))
    step = CROP / cells
    images, masks = [], []
    for c in base:
        out, mask = c.copy(), np.zeros(c.shape, bool)
        spots = rng.permutation(cells * cells)[:DEFECTS_PER_CROP]
        for j, s in enumerate(spots):
            where = ((s // cells + rng.uniform(0.35, 0.65)) * step,
                     (s % cells + rng.uniform(0.35, 0.65)) * step)
            out, m = DEFECT_FNS[DEFECTS[j % len(DEFECTS)]](out, rng, where)
            mask |= m
        images.append(np.clip(out, 0, 1))
        masks.append(mask)
    return np.stack(images).astype(np.float32), np.stack(masks)


def pca_maps(train: np.ndarray, test: np.ndarray, k: int = PCA_K) -> np.ndarray:
    """Per-pixel squared PCA-k residual (N, H, W) of test images, PCA fitted on train."""
    from sklearn.decomposition import PCA

    n, h, w = test.shape
    pca = PCA(n_components=k, random_state=0).fit(train.reshape(len(train), -1))
    flat = test.reshape(n, -1)
    return ((pca.inverse_transform(pca.transform(flat)) - flat) ** 2).reshape(n, h, w)


def run_texture(name: str, params: dict, seed: int) -> tuple[dict, dict]:
    from aekit.anomaly.detector import Detector
    from aekit.eval.metrics import auroc

    img = texture(name)
    rng = np.random.default_rng(seed + TEXTURES.index(name) if name in TEXTURES else seed)
    train = crops(img, (0, TRAIN_ROWS), N_TRAIN, PATCH, rng)
    test, masks, kinds = test_set(img, rng)
    big, big_masks = crop_set(img, rng)
    t0 = time.perf_counter()
    det = Detector(**params).fit(train[:, None])
    fit_s = time.perf_counter() - t0
    scores, parts = det.score_parts(test[:, None])
    maps = det.anomaly_maps(test[:, None])
    errors = det.error_maps(test[:, None])
    flags = scores > det.threshold_
    is_anom = kinds != "clean"
    local = kinds != "pure noise"  # pixel AUROC: clean and defective patches
    pmaps = pca_maps(train, test)
    t1 = time.perf_counter()
    big_scores = det.score_samples(big[:, None])
    big_maps = det.anomaly_maps(big[:, None])
    tiled_s = time.perf_counter() - t1
    big_pca = np.stack([_tiled_pca(train, b) for b in big])
    clean = kinds == "clean"

    def per_defect(values: np.ndarray, pixel: bool) -> dict[str, float]:
        out = {}
        for d in DEFECTS:
            sel = clean | (kinds == d)
            out[d] = 100 * (auroc(values[sel].ravel(), masks[sel].ravel()) if pixel
                            else auroc(values[sel], kinds[sel] != "clean"))
        return out
    row = {
        "texture": name, "n_train": len(train), "n_test": len(test),
        "image_auroc": 100 * auroc(scores, is_anom),
        "pixel_auroc": 100 * auroc(maps[local].ravel(), masks[local].ravel()),
        "pca_image_auroc": 100 * auroc(pmaps.reshape(len(test), -1).mean(1), is_anom),
        "pca_pixel_auroc": 100 * auroc(pmaps[local].ravel(), masks[local].ravel()),
        "image_auroc_per_defect": per_defect(scores, False),
        "pixel_auroc_per_defect": per_defect(maps, True),
        "parts_image_auroc": {k: 100 * auroc(v, is_anom) for k, v in parts.items()},
        # The same detector's image score with `local` gated at other held-out quantiles.
        "image_auroc_by_local_gate": {str(q): 100 * auroc(det.combine_parts(
            parts, gate_quantile=q), is_anom) for q in LOCAL_GATES},
        "reconstruction_error_pixel_auroc": 100 * auroc(errors[local].ravel(),
                                                        masks[local].ravel()),
        "reconstruction_error_pixel_auroc_per_defect": per_defect(errors, True),
        "pure_noise_flagged": bool(flags[kinds == "pure noise"].all()),
        "pure_noise_score": float(scores[kinds == "pure noise"][0]),
        "threshold": float(det.threshold_),
        "clean_flagged": float(flags[kinds == "clean"].mean()),
        "defective_flagged": float(flags[is_anom & local].mean()),
        "tiled_crops": {"size": CROP, "n": CROPS, "defects_each": DEFECTS_PER_CROP,
                        "pixel_auroc": 100 * auroc(big_maps.ravel(), big_masks.ravel()),
                        "pca_pixel_auroc": 100 * auroc(big_pca.ravel(), big_masks.ravel()),
                        "flagged": int((big_scores > det.threshold_).sum()),
                        "seconds": round(tiled_s, 2)},
        "fit_seconds": round(fit_s, 1),
    }
    pics = {"det": det, "test": test, "masks": masks, "kinds": kinds, "maps": maps,
            "big": big, "big_masks": big_masks}
    return row, pics


def _tiled_pca(train: np.ndarray, img: np.ndarray) -> np.ndarray:
    """The PCA baseline's map of a larger image through the same tiles as the detector."""
    from aekit.data.tiles import map_tiles

    def fn(t: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(pca_maps(train, t[:, 0].numpy()))[:, None]

    return map_tiles(fn, torch.from_numpy(img)[None, None], (PATCH, PATCH), 4096)[0, 0].numpy()


def picture(all_pics: dict[str, dict], path) -> None:
    """Per texture: two test patches of each defect and a clean one (row 1), their defect masks
    (row 2) and heat maps (row 3)."""
    from aekit.data.images import save_grid

    rows = []
    for pics in all_pics.values():
        kinds = pics["kinds"]
        idx = [int(np.flatnonzero(kinds == "clean")[0])]
        for d in DEFECTS:
            idx += [int(i) for i in np.flatnonzero(kinds == d)[:2]]
        idx.append(int(np.flatnonzero(kinds == "pure noise")[0]))
        sel = torch.as_tensor(idx)
        x = torch.from_numpy(pics["test"])[sel][:, None]
        rows += [x, torch.from_numpy(pics["masks"])[sel][:, None].float(),
                 pics["det"].heatmaps(x)]
    save_grid(path, rows, scale=3)


def tiled_picture(all_pics: dict[str, dict], path) -> None:
    """Per texture: one full-size crop, its defect mask and its stitched heat map."""
    from aekit.data.images import save_grid

    row = []
    for pics in all_pics.values():
        x = torch.from_numpy(pics["big"][:1])[:, None]
        row += [x.expand(-1, 3, -1, -1), torch.from_numpy(pics["big_masks"][:1])[:, None]
                .float().expand(-1, 3, -1, -1), pics["det"].heatmaps(x)]
    save_grid(path, [torch.cat(row)], scale=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--textures", default=",".join(TEXTURES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--params", default="{}", help="JSON of Detector settings (default: none)")
    p.add_argument("--name", default="textures", help="result file name")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = json.loads(args.params)
    rows, pics = [], {}
    for name in [t.strip() for t in args.textures.split(",") if t.strip()]:
        row, pics[name] = run_texture(name, params, args.seed)
        rows.append(row)
        print(f"  {name}: image AUROC {row['image_auroc']:.2f}  pixel AUROC "
              f"{row['pixel_auroc']:.2f}  (PCA {row['pca_image_auroc']:.2f} / "
              f"{row['pca_pixel_auroc']:.2f})  noise flagged {row['pure_noise_flagged']}  "
              f"tiled pixel AUROC {row['tiled_crops']['pixel_auroc']:.2f}  "
              f"({row['fit_seconds']:.0f}s)", flush=True)
    mean = {k: float(np.mean([r[k] for r in rows]))
            for k in ("image_auroc", "pixel_auroc", "pca_image_auroc", "pca_pixel_auroc")}
    mean["tiled_pixel_auroc"] = float(np.mean([r["tiled_crops"]["pixel_auroc"] for r in rows]))
    print_table(["texture", "image AUROC", "pixel AUROC", "PCA image", "PCA pixel", "noise",
                 "tiled pixel", "fit s"],
                [[r["texture"], r["image_auroc"], r["pixel_auroc"], r["pca_image_auroc"],
                  r["pca_pixel_auroc"], "flagged" if r["pure_noise_flagged"] else "MISSED",
                  r["tiled_crops"]["pixel_auroc"], r["fit_seconds"]] for r in rows]
                + [["mean", mean["image_auroc"], mean["pixel_auroc"], mean["pca_image_auroc"],
                    mean["pca_pixel_auroc"], "", mean["tiled_pixel_auroc"], ""]])
    print("per defect: image / pixel AUROC (%)")
    print_table(["texture", *DEFECTS],
                [[r["texture"], *[f"{r['image_auroc_per_defect'][d]:.1f} / "
                                  f"{r['pixel_auroc_per_defect'][d]:.1f}" for d in DEFECTS]]
                 for r in rows])
    setup = {"patch": PATCH, "channels": 1, "train_rows": [0, TRAIN_ROWS],
             "test_rows": [TRAIN_ROWS + GAP, 512], "n_train": N_TRAIN, "n_clean": N_CLEAN,
             "n_per_defect": N_PER_DEFECT, "defects": list(DEFECTS), "pca_k": PCA_K,
             "seed": args.seed}
    out = write_result(args.name, {"params": params, "setup": setup, "target": TARGET,
                                   "rows": rows, "mean": mean})
    if args.name == "textures":
        IMG.mkdir(parents=True, exist_ok=True)
        picture(pics, IMG / "textures_heatmaps.png")
        tiled_picture(pics, IMG / "textures_tiled.png")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
