"""Learned compression on photos: aekit's `.aez` codec vs JPEG, WebP and AVIF at full size.

Protocol. The photos bundled with scikit-learn, scikit-image and matplotlib (no download):
TRAIN photos are only cut into random 32x32 patches (2 x 2 blocks) for training; the held-out
TEST photos (`flower` from scikit-learn, `chelsea` and `rocket` from scikit-image,
`grace_hopper` from matplotlib) are coded whole, at full size, one file each. Rates are real
file bytes (`.aez` header and CRC included; Pillow's files for the others) over all test
pixels; PSNR over the whole set (10 log10(1 / MSE) of every RGB value, decoded images in 8
bits), SSIM (7x7 box window) and MS-SSIM (5 scales, 11x11 Gaussian, per channel). BD-rate vs
JPEG (Pillow, 4:2:0 subsampling, optimize=True) over 28-38 dB with PCHIP-interpolated
log-rate curves.

The codec: one run per lambda (`codec` model on 3x16x16 blocks, started from the closed-form
mixture of PCAs of the patches' blocks, trained with aekit's loop and "rd" loss, frozen, its
deblocking filter and intra predictor fitted on the patches' blocks); each run gives
several points with its rate-control steps (`--quality`). Speed: encode and decode of the test
photos at the run's own step, median of 3, in megapixels per second on --threads threads;
decoding is checked bit-exact between 1 and --threads threads.

    python -m bench.codec --protocol photos [--lambdas 0.0015,0.0005,0.00015] [--epochs 18]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from aekit.codec import api
from aekit.codec import baselines as bl
from aekit.codec.blocks import to_blocks
from aekit.codec.model import FITTED
from bench.common import IMG, RESULTS, ROOT, print_table, write_result

RANGE = (28.0, 38.0)
TEST = ("sklearn:flower", "skimage:chelsea", "skimage:rocket", "matplotlib:grace_hopper")
TRAIN = ("sklearn:china", "skimage:astronaut", "skimage:coffee", "skimage:motorcycle_left",
         "skimage:motorcycle_right", "skimage:hubble_deep_field", "skimage:ihc",
         "skimage:retina")
JPEG_Q = (5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_Q = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
AVIF_Q = (10, 20, 30, 40, 50, 60, 70, 80, 90)
TRAIN_INFO = "bench_train.json"  # a trained run's training figures, next to its weights


def photo(name: str) -> np.ndarray:
    """uint8 (3, H, W) of a bundled photo, read from the package's own file."""
    from PIL import Image

    pkg, stem = name.split(":")
    if pkg == "sklearn":
        import sklearn.datasets

        root = Path(sklearn.datasets.__file__).parent / "images"
        path = root / f"{stem}.jpg"
    elif pkg == "skimage":
        import skimage

        root = Path(skimage.__file__).parent / "data"
        path = next(p for p in sorted(root.iterdir()) if p.stem == stem
                    or (stem == "ihc" and p.stem == "ihc"))
    else:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / f"{stem}.jpg"
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()


def patches(images: list[np.ndarray], n: int, size: int, seed: int = 0) -> torch.Tensor:
    """n random size x size patches (uint8 (n, 3, size, size)), the same number from each
    photo."""
    rng = np.random.default_rng(seed)
    out = []
    for i, img in enumerate(images):
        k = n // len(images) + (i < n % len(images))
        _, h, w = img.shape
        ys, xs = rng.integers(0, h - size + 1, k), rng.integers(0, w - size + 1, k)
        out += [img[:, y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)]
    return torch.from_numpy(np.stack(out))


def blocks_of(x: torch.Tensor, block: int) -> torch.Tensor:
    """The block x block blocks of patches x (uint8 (n, C, s, s)) as images (uint8
    (blocks, C, block, block)), cut as the codec cuts them: the mixture start's data."""
    return to_blocks(x, block, block).reshape(-1, x.shape[1], block, block)


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-(torch.arange(size, dtype=torch.float64) - size // 2) ** 2 / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (Wang et al. 2003: 5 scales, the published weights, 11x11 Gaussian sigma 1.5)
    of two uint8 (C, H, W) images, averaged over channels."""
    weights = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    x = torch.from_numpy(a).double()[:, None] / 255
    y = torch.from_numpy(b).double()[:, None] / 255
    win, c1, c2 = _gauss(), 0.01**2, 0.03**2
    out = torch.ones(x.shape[0], dtype=torch.float64)
    for i, wt in enumerate(weights):
        if min(x.shape[-2:]) < 11:
            break
        mx, my = F.conv2d(x, win), F.conv2d(y, win)
        sxx = F.conv2d(x * x, win) - mx**2
        syy = F.conv2d(y * y, win) - my**2
        sxy = F.conv2d(x * y, win) - mx * my
        cs = ((2 * sxy + c2) / (sxx + syy + c2)).mean((1, 2, 3))
        if i == len(weights) - 1:
            lum = ((2 * mx * my + c1) / (mx**2 + my**2 + c1)).mean((1, 2, 3))
            out = out * (lum.clamp_min(0) * cs.clamp_min(0)) ** wt
        else:
            out = out * cs.clamp_min(0) ** wt
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return float(out.mean())


def scores(decoded: list[np.ndarray], originals: list[np.ndarray], n_bytes: int) -> dict:
    """bpp, PSNR over the set, mean SSIM and MS-SSIM of decoded uint8 (C, H, W) images."""
    from aekit.eval.metrics import ssim

    sq = sum(float(((d.astype(np.float64) - o) ** 2).sum()) for d, o in
             zip(decoded, originals, strict=True))
    values = sum(o.size for o in originals)
    pixels = sum(o.shape[1] * o.shape[2] for o in originals)
    mse = sq / values / 255**2
    return {"bytes": int(n_bytes), "bpp": n_bytes * 8 / pixels,
            "psnr": 10 * np.log10(1 / mse),
            "ssim": float(np.mean([ssim(torch.from_numpy(d)[None].float() / 255,
                                        torch.from_numpy(o)[None].float() / 255)
                                   for d, o in zip(decoded, originals, strict=True)])),
            "ms_ssim": float(np.mean([ms_ssim(d, o) for d, o in
                                      zip(decoded, originals, strict=True)]))}


def pillow(originals: list[np.ndarray], fmt: str, q: int) -> dict:
    from PIL import Image

    total, decoded = 0, []
    for img in originals:
        buf = io.BytesIO()
        kw = {"quality": q}
        if fmt == "JPEG":
            kw.update(subsampling=2, optimize=True)  # 4:2:0, optimized Huffman tables
        if fmt == "WEBP":
            kw.update(method=6)
        Image.fromarray(img.transpose(1, 2, 0)).save(buf, format=fmt, **kw)
        total += len(buf.getvalue())
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            decoded.append(np.asarray(im.convert("RGB")).transpose(2, 0, 1).copy())
    return {"codec": fmt.lower(), "quality": q, **scores(decoded, originals, total)}


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """A decoded float image (C, H, W) as the PNG `aekit decompress` writes."""
    return (x * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def aekit_point(model, originals: list[np.ndarray], quality: int) -> dict:
    files = [api.compress(model, img, quality=quality) for img in originals]
    decoded = [to_uint8(api.decompress(f, model, like="torch")[0]) for f in files]
    return {"codec": "aekit", "quality": quality,
            **scores(decoded, originals, sum(len(f) for f in files))}


def speed(model, originals: list[np.ndarray], threads: int) -> dict:
    """Encode / decode megapixels per second (median of 3) and the thread-count check."""
    pixels = sum(o.shape[1] * o.shape[2] for o in originals)

    def timed(fn):
        times, out = [], None
        for _ in range(3):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times), out

    enc_s, files = timed(lambda: [api.compress(model, img) for img in originals])
    dec_s, dec = timed(lambda: [api.decompress(f, model, like="torch") for f in files])
    torch.set_num_threads(1)
    one = [api.decompress(f, model, like="torch") for f in files]
    torch.set_num_threads(threads)
    again = [api.compress(model, img) for img in originals]
    return {"encode_mp_s": pixels / enc_s / 1e6, "decode_mp_s": pixels / dec_s / 1e6,
            "threads": threads,
            "decode_bit_exact_1_vs_n_threads": all(torch.equal(a, b) for a, b in
                                                   zip(one, dec, strict=True)),
            "encode_deterministic": again == files}


def train_run(lam: float, train_x: torch.Tensor, mixture, args):
    from aekit.config import ModelConfig, TrainConfig
    from aekit.core.io import save_weights, write_config
    from aekit.models import build_model
    from aekit.train.loop import fit

    cfg = ModelConfig(name="codec", in_channels=3, height=args.patch, width=args.patch,
                      latent_dim=3 * args.block**2,
                      options={"lambda": lam, "clusters": args.clusters, "block": args.block})
    model = build_model(cfg)
    t0 = time.perf_counter()
    model.init_from_data(train_x, mixture=mixture)
    tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       val_fraction=0.0, seed=0)
    result = fit(model, train_x, tcfg, progress=False)
    seconds = time.perf_counter() - t0
    for note in result.notes:
        print(note, flush=True)
    run_dir = ROOT / args.runs / f"lambda-{lam:g}"
    write_config(run_dir, cfg, tcfg)
    save_weights(run_dir, model)
    model.eval()
    info = {"lambda": lam, "seconds": seconds, "epochs": args.epochs,
            "final_train_loss": result.history[-1]["train_loss"],
            "run": str(run_dir.relative_to(ROOT))}
    # The training figures stay with the weights: a later --reuse reports what made them.
    (run_dir / TRAIN_INFO).write_text(json.dumps(info, indent=1) + "\n")
    return model, info


def reused_run(lam: float, args):
    """The trained run of `lam` in --runs, and its training figures (saved with the run;
    from the earlier result for runs trained before they were)."""
    from aekit.core.io import load_model

    run_dir = ROOT / args.runs / f"lambda-{lam:g}"
    model, _ = load_model(run_dir)
    model.eval()
    if (run_dir / TRAIN_INFO).exists():
        info = json.loads((run_dir / TRAIN_INFO).read_text())
    else:
        earlier = RESULTS / f"{args.name}.json"
        runs = json.loads(earlier.read_text()).get("train", []) if earlier.exists() else []
        info = next((r for r in runs if r.get("lambda") == lam), {"lambda": lam})
    return model, {**info, "reused": True}


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    colours = {"aekit": "C3", "jpeg": "C1", "webp": "C0", "avif": "C2"}
    for ax, metric, label in zip(axes, ("psnr", "ssim", "ms_ssim"),
                                 ("PSNR (dB)", "SSIM", "MS-SSIM"), strict=True):
        for name, pts in curves.items():
            pts = sorted(pts, key=lambda p: p["bpp"])
            ax.plot([p["bpp"] for p in pts], [p[metric] for p in pts], "o-", markersize=3,
                    color=colours.get(name.split()[0], "C4"), label=name,
                    alpha=1.0 if name.startswith("aekit") or name in colours else 0.5)
        ax.set_xlabel("bits per pixel (real file bytes)")
        ax.set_ylabel(label)
        ax.set_xlim(0, 3)
        ax.grid(alpha=0.3)
        if metric == "psnr":
            ax.axhspan(*RANGE, color="0.92", zorder=0, label="BD-rate range 28-38 dB")
            ax.set_ylim(22, 44)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Held-out photos at full size (flower, chelsea, rocket, grace_hopper): "
                 "rate-distortion")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def envelope(points: list[dict]) -> list[dict]:
    """The points no other point beats in both rate and PSNR (the curve of the best setting
    at each rate)."""
    pts = sorted(points, key=lambda p: p["bpp"])
    out: list[dict] = []
    for p in pts:
        if not out or p["psnr"] > out[-1]["psnr"]:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="photos")
    ap.add_argument("--lambdas", default="0.0015,0.0005,0.00015")
    ap.add_argument("--qualities", default="-8,-6,-4,-2,0,2,4,6,8")
    ap.add_argument("--epochs", type=int, default=18)
    ap.add_argument("--patches", type=int, default=10000)
    ap.add_argument("--patch", type=int, default=32,
                    help="side of the training patches (a grid of blocks: the deblocking "
                         "filter is fitted on their interior boundaries)")
    ap.add_argument("--block", type=int, default=16)
    ap.add_argument("--clusters", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64, help="patches per step (64 of 32x32: "
                    "1,024 blocks)")
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed-threads", type=int, default=2)
    ap.add_argument("--runs", default="runs/bench-codec-photos")
    ap.add_argument("--name", default="codec_photos")
    ap.add_argument("--write-patches", metavar="NPZ", default=None,
                    help="only write the training patches as an .npz dataset (x_train, and "
                         "x_test cut from the test photos) for `aekit train --dataset npz:NPZ`")
    ap.add_argument("--reuse", action="store_true",
                    help="code with the runs already in --runs (no training; each run's tables "
                         "deblocking filter and intra predictor finalized again on the patches by "
                         "this code): "
                         "re-measures the encoder and the speed; training figures come from the "
                         "earlier result")
    ap.add_argument("--without-deblock", action="store_true",
                    help="with --reuse: decode without the runs' deblocking filters (the "
                         "ablation; use another --name)")
    ap.add_argument("--without-intra", action="store_true",
                    help="with --reuse: code without the intra predictor and context tables "
                         "(version-3 files; the ablation; use another --name)")
    args = ap.parse_args(argv)
    if (args.without_deblock or args.without_intra) and not args.reuse:
        ap.error("--without-deblock and --without-intra need --reuse")
    torch.set_num_threads(args.threads)
    from aekit.codec.mixture import fit_mixture

    t0 = time.perf_counter()
    train_imgs = [photo(n) for n in TRAIN]
    test_imgs = [photo(n) for n in TEST]
    train_x = patches(train_imgs, args.patches, args.patch)
    if args.write_patches:
        test_x = patches(test_imgs, args.patches // 20, args.patch)
        np.savez(args.write_patches, x_train=train_x.permute(0, 2, 3, 1).numpy(),
                 x_test=test_x.permute(0, 2, 3, 1).numpy())  # (N, H, W, C) uint8
        print(f"wrote {args.write_patches}: {len(train_x):,} train / {len(test_x):,} test "
              f"patches", flush=True)
        return
    mixture = None if args.reuse else fit_mixture(blocks_of(train_x, args.block), args.clusters,
                                                  3 * args.block**2)
    mixture_s = time.perf_counter() - t0
    print(f"patches {tuple(train_x.shape)}, closed-form start {mixture_s:.1f}s", flush=True)
    qualities = [int(v) for v in args.qualities.split(",")]
    aekit_pts, runs, models = [], [], []
    for lam in [float(v) for v in args.lambdas.split(",")]:
        if args.reuse:
            model, info = reused_run(lam, args)
            if args.without_deblock:  # the ablation: the same runs decoded without the filter
                model.deblock = model.deblock.new_empty(0)
            else:  # the same weights finalized by this code: tables unchanged, filter refit
                print(model.finalize(train_x), flush=True)
                model.eval()
            if args.without_intra:  # the ablation: the same runs, version-3 coding
                for name in FITTED:
                    setattr(model, name, getattr(model, name).new_empty(0))
                model._cache = {}
        else:
            model, info = train_run(lam, train_x, mixture, args)
            info["seconds"] += mixture_s / len(args.lambdas.split(","))
        runs.append(info)
        models.append(model)
        for q in qualities:
            p = {**aekit_point(model, test_imgs, q), "lambda": lam}
            aekit_pts.append(p)
            print(f"lambda={lam:g} quality={q:+d}: {p['bpp']:.3f} bpp {p['psnr']:.2f} dB "
                  f"ms-ssim {p['ms_ssim']:.4f}", flush=True)
    base = {"jpeg": [pillow(test_imgs, "JPEG", q) for q in JPEG_Q],
            "webp": [pillow(test_imgs, "WEBP", q) for q in WEBP_Q]}
    try:
        base["avif"] = [pillow(test_imgs, "AVIF", q) for q in AVIF_Q]
    except (KeyError, OSError, ValueError) as e:  # a Pillow without an AVIF encoder
        print(f"AVIF skipped: {e}")
    best = envelope(aekit_pts)

    def curve(pts):
        return [(p["bpp"], p["psnr"]) for p in pts]

    bd = {}
    for ref in base:
        for name, pts in (("aekit", best),) + tuple(
                (f"aekit lambda={r['lambda']:g}", [p for p in aekit_pts
                                                  if p["lambda"] == r["lambda"]]) for r in runs):
            try:
                pct, used = bl.bd_rate(curve(base[ref]), curve(pts), *RANGE)
            except ValueError as e:
                pct, used = float("nan"), (str(e), "")
            bd[f"{name} vs {ref}"] = {"pct": pct, "range_db": used}
    torch.set_num_threads(args.speed_threads)
    sp = speed(models[len(models) // 2], test_imgs, args.speed_threads)  # the middle rate
    torch.set_num_threads(args.threads)
    curves = {"aekit": best, **{k: v for k, v in base.items()}}
    plot(curves, IMG / f"{args.name}_rd.png")
    write_result(args.name, {
        "protocol": {"train_photos": TRAIN, "test_photos": TEST,
                     "test_sizes": [list(t.shape) for t in test_imgs],
                     "patches": args.patches, "patch": args.patch, "block": args.block,
                     "clusters": args.clusters,
                     "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "qualities": qualities, "bd_range_db": RANGE,
                     "closed_form_start_seconds": mixture_s},
        "train": runs, "aekit": aekit_pts, "aekit_envelope": best, "baselines": base,
        "bd_rate_pct": bd, "speed": sp, "plot": f"docs/img/{args.name}_rd.png"})
    print_table(["codec", "setting", "bpp", "PSNR", "SSIM", "MS-SSIM"],
                [[p["codec"], f"l={p.get('lambda', '')} q={p['quality']}", p["bpp"], p["psnr"],
                  p["ssim"], p["ms_ssim"]] for p in best + [p for v in base.values() for p in v]])
    for k, v in bd.items():
        print(f"BD-rate {k}: {v['pct']:+.1f}% over {v['range_db']}")
    print(f"speed ({args.speed_threads} threads): {sp}")


if __name__ == "__main__":
    main()
