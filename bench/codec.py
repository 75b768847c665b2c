"""Learned compression: aekit's `.aez` codec vs WebP, JPEG, PNG and PCA+quantization.

Protocol: Fashion-MNIST, the first 1,000 test images. One `codec` model per rate point (lambda),
each started from the closed-form mixture of PCAs (computed once, it does not depend on lambda)
and trained with aekit's own loop and "rd" loss on the 60,000 training images, then frozen
(`finalize`). Rates are real file bytes: one `.aez` file per image (header and CRC included),
and also the many-image container. PSNR over the whole set (10 log10(1/MSE)) and SSIM, on the
decoded images rounded to 8 bits as a PNG would store them. BD-rate vs WebP over 24-32 dB with
PCHIP-interpolated log-rate curves, on whole files and payload-only (aekit's payloads without
the `.aez` header and CRC vs WebP's VP8 data without its RIFF, chunk and frame headers).
Encode/decode speed: batch mode (the 1,000 images in one
call), median of 3 rounds, on --threads threads. One run; the trained runs are kept under
runs/bench-codec/ so `aekit compress/decompress` can be tried on them.

    python -m bench.codec [--lambdas 0.012,0.006,0.003,0.0015,0.00075] [--epochs 1]
    python -m bench.codec --protocol photos    # the photo protocol: bench/codec_photos.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from aekit.codec import api
from aekit.codec import baselines as bl
from aekit.codec.io import unpack
from aekit.codec.mixture import fit_mixture
from aekit.config import ModelConfig, TrainConfig
from aekit.eval.metrics import quality
from bench.common import IMG, ROOT, print_table, write_result

PCA_STEPS = (0.6, 0.4, 0.28, 0.2, 0.14, 0.1, 0.07)
RANGE = (24.0, 32.0)


def train_point(lam: float, train_x: torch.Tensor, mixture, args) -> tuple:
    from aekit.core.io import save_weights, write_config
    from aekit.models import build_model
    from aekit.train.loop import fit

    cfg = ModelConfig(name="codec", latent_dim=args.latent_dim,
                      options={"lambda": lam, "clusters": args.clusters})
    model = build_model(cfg)
    model.init_from_data(train_x, mixture=mixture)
    tcfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       val_fraction=0.0, seed=0, limit=args.limit)
    x = train_x[: args.limit] if args.limit else train_x
    result = fit(model, x, tcfg, progress=False)
    run_dir = ROOT / args.runs / f"lambda-{lam:g}"
    write_config(run_dir, cfg, tcfg)
    save_weights(run_dir, model)
    return model, result, run_dir


def timed(fn, rounds: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def measure(model, x: torch.Tensor, lam: float) -> dict:
    n, _, h, w = x.shape
    pixels = n * h * w
    files = api.compress_each(model, x)
    enc_s, container = timed(lambda: api.compress(model, x))
    dec_s, decoded = timed(lambda: api.decompress(container, model, like="torch"))
    rec = (decoded * 255).round() / 255  # what the PNG written by `aekit decompress` holds
    q = quality(rec, x.float() / 255)
    with torch.inference_mode():
        out = model(x.float() / 255)
    estimated = float(-torch.log2(out["likelihoods"].double()).sum())
    payload = sum(len(p) for p in unpack(container).payloads)
    file_bytes = sum(len(f) for f in files)
    one = torch.cat([api.decompress(f, model, like="torch") for f in files[:50]])
    k, s, _ = model.symbols(x.float() / 255)
    return {
        "codec": "aekit", "setting": {"lambda": lam}, "bytes": file_bytes,
        "bpp": file_bytes * 8 / pixels, "container_bytes": len(container),
        "container_bpp": len(container) * 8 / pixels, "payload_bpp": payload * 8 / pixels,
        "estimated_bpp": estimated / pixels,
        "header_bytes_per_file": (file_bytes - payload) / n,
        "estimate_vs_payload_pct": 100 * (payload * 8 - estimated) / estimated,
        "estimate_vs_file_pct": 100 * (file_bytes * 8 - estimated) / estimated,
        "psnr": q["psnr"], "ssim": q["ssim"],
        "exact_vs_model": bool(torch.equal(decoded, out["x_hat"])),
        "single_file_max_abs_diff": float((one - decoded[:50]).abs().max()),
        "encode_img_s": n / enc_s, "decode_img_s": n / dec_s,
        "clusters_used": int(len(torch.unique(k))),
        "shift_histogram": {int(v): int(c) for v, c in zip(*torch.unique(s, return_counts=True),
                                                            strict=True)},
    }


def plot(points: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"aekit (one file per image)": ("C3", "o-"), "aekit (container)": ("C3", "o--"),
              "WebP": ("C0", "s-"), "JPEG": ("C1", "^-"), "PCA+quant": ("C2", "d-")}
    for ax, metric in zip(axes, ("psnr", "ssim"), strict=True):
        for name, pts in points.items():
            color, style = styles[name]
            pts = sorted(pts, key=lambda p: p[0])
            ax.plot([p[0] for p in pts], [p[1 if metric == "psnr" else 2] for p in pts], style,
                    color=color, label=name, markersize=4)
        ax.set_xlabel("bits per pixel (real file bytes)")
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
        ax.set_xlim(0, 6)
        ax.grid(alpha=0.3)
        if metric == "psnr":
            ax.axhspan(*RANGE, color="0.9", zorder=0, label="BD-rate range 24-32 dB")
            ax.set_ylim(14, 44)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Fashion-MNIST test (first 1,000 images): rate-distortion")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    import sys

    if "--protocol" in sys.argv and "photos" in sys.argv:
        from bench.codec_photos import main as photos

        photos(sys.argv[1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocol", default="fashion-mnist", choices=["fashion-mnist", "photos"])
    ap.add_argument("--lambdas", default="0.012,0.006,0.003,0.0015,0.00075")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--clusters", type=int, default=16)
    ap.add_argument("--latent-dim", type=int, default=784)
    ap.add_argument("--n", type=int, default=1000, help="test images")
    ap.add_argument("--limit", type=int, default=0, help="training images (0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reuse", action="store_true",
                    help="measure the runs already under --runs instead of training (a missing "
                         "one is trained)")
    ap.add_argument("--runs", default="runs/bench-codec", help="folder of the per-lambda runs")
    ap.add_argument("--name", default="codec", help="result/plot name (quick runs: codec-quick)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from aekit.data import load_dataset

    ds = load_dataset("fashion-mnist")
    train_x, x = ds.train_x, ds.test_x[: args.n]
    xn = x.numpy()
    t0 = time.perf_counter()
    mixture = None if args.reuse else fit_mixture(train_x, args.clusters, args.latent_dim)
    mixture_s = time.perf_counter() - t0
    aekit, train_info = [], []
    for lam in [float(v) for v in args.lambdas.split(",")]:
        run_dir = ROOT / args.runs / f"lambda-{lam:g}"
        if args.reuse and (run_dir / "model.safetensors").exists():
            from aekit.core.io import load_model
            from aekit.io import read_json

            model, _ = load_model(run_dir)
            info = (read_json(run_dir / "train.json") if (run_dir / "train.json").exists()
                    else {"lambda": lam, "seconds": float("nan")})
        else:
            model, result, run_dir = train_point(lam, train_x, mixture, args)
            info = {"lambda": lam, "seconds": result.train_seconds,
                    "images_per_second": result.images_per_second,
                    "final_train_loss": result.history[-1]["train_loss"],
                    "epochs": args.epochs, "train_images": args.limit or len(train_x),
                    "batch_size": args.batch_size, "lr": args.lr}
            from aekit.config import save_json

            save_json(run_dir / "train.json", info)
        point = measure(model, x, lam)
        point["run"] = str(run_dir.relative_to(ROOT))
        aekit.append(point)
        train_info.append(info)
        print(f"lambda={lam:g}: {point['bpp']:.3f} bpp, {point['psnr']:.2f} dB, "
              f"train {info['seconds']:.0f} s", flush=True)

    pca = bl.fit_basis(train_x.numpy())
    base = {"webp": bl.pillow_sweep(xn, "WEBP"), "jpeg": bl.pillow_sweep(xn, "JPEG"),
            "png": bl.pillow_sweep(xn, "PNG"),
            "pca_quant": [bl.pca_quant_point(train_x.numpy(), xn, s, pca=pca) for s in PCA_STEPS],
            "pca32_float": bl.pca_float_point(train_x.numpy(), xn, 32, pca=pca)}

    def curve(pts, key="bpp"):
        return [(p[key], p["psnr"]) for p in pts]

    webp = curve(base["webp"])
    bd = {}
    for name, pts in (("aekit_files", curve(aekit)), ("aekit_container", curve(aekit,
                      "container_bpp")), ("pca_quant", curve(base["pca_quant"])),
                      ("jpeg", curve(base["jpeg"]))):
        pct, used = bl.bd_rate(webp, pts, *RANGE)
        bd[name] = {"pct": pct, "range_db": used}
    pct, used = bl.bd_rate(curve(base["webp"], "payload_bpp"), curve(aekit, "payload_bpp"),
                           *RANGE)
    bd["aekit_payload_vs_webp_payload"] = {"pct": pct, "range_db": used}
    covered = {"aekit": [min(p["psnr"] for p in aekit), max(p["psnr"] for p in aekit)],
               "webp": [min(p[1] for p in webp), max(p[1] for p in webp)]}

    plot({"aekit (one file per image)": [(p["bpp"], p["psnr"], p["ssim"]) for p in aekit],
          "aekit (container)": [(p["container_bpp"], p["psnr"], p["ssim"]) for p in aekit],
          "WebP": [(p["bpp"], p["psnr"], p["ssim"]) for p in base["webp"]],
          "JPEG": [(p["bpp"], p["psnr"], p["ssim"]) for p in base["jpeg"]],
          "PCA+quant": [(p["bpp"], p["psnr"], p["ssim"]) for p in base["pca_quant"]]},
         IMG / f"{args.name}_rd.png")
    write_result(args.name, {
        "protocol": {"dataset": "fashion-mnist", "test_images": args.n,
                     "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                     "clusters": args.clusters, "latent_dim": args.latent_dim,
                     "train_images": args.limit or len(train_x), "mixture_images": 20000,
                     "bd_range_db": RANGE,
                     "mixture_seconds": mixture_s},
        "aekit": aekit, "train": train_info, "baselines": base, "bd_rate_vs_webp_pct": bd,
        "psnr_covered": covered, "plot": f"docs/img/{args.name}_rd.png"})

    rows = [["aekit", f"lambda={p['setting']['lambda']:g}", p["bpp"], p["container_bpp"],
             p["psnr"], p["ssim"], p["estimate_vs_payload_pct"], p["encode_img_s"],
             p["decode_img_s"]] for p in aekit]
    print_table(["codec", "setting", "bpp/file", "bpp/cont", "PSNR", "SSIM", "est->real %",
                 "enc img/s", "dec img/s"], rows)
    rows = [[p["codec"], str(p["setting"]), p["bpp"], p["psnr"], p["ssim"]]
            for k in ("webp", "jpeg", "png", "pca_quant") for p in base[k]]
    print_table(["baseline", "setting", "bpp", "PSNR", "SSIM"], rows)
    print(f"PCA-32 (float, unquantized): {base['pca32_float']['psnr']:.2f} dB")
    print("BD-rate vs WebP (target range 24-32 dB): " + ", ".join(
        f"{k} {v['pct']:+.1f}% over {v['range_db'][0]:.1f}-{v['range_db'][1]:.1f} dB"
        for k, v in bd.items()))


if __name__ == "__main__":
    main()
