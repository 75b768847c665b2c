"""Reconstruction (docs/DESIGN.md): Fashion-MNIST train 60k / test 10k; `conv` at several latent
sizes vs PCA at the same size; test MSE, PSNR, SSIM. Each model is a real run folder under
runs/bench/ (so `aekit eval` / `aekit report` work on it afterwards).

    python -m bench.reconstruction --latents 2 8 16 32 64 --epochs 12 --long-latent 32 \
        --long-epochs 30

`make bench` runs the recorded recipes: the sweep at 6 epochs and the convergence run
(`--long-epochs 100 --long-hidden 512 --long-augment hflip`, ~55 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import shutil

from aekit.config import ModelConfig, TrainConfig
from aekit.core.training import train_run
from aekit.device import setup_threads
from aekit.eval.plots import plot_curves
from bench.common import IMG, ROOT, print_table, write_result


def train(name: str, latent: int, epochs: int, dataset: str, model: str = "conv",
          hidden: int = 0, augment: str = "") -> dict:
    out = ROOT / "runs" / "bench" / name
    if out.exists():
        shutil.rmtree(out)
    options = {"hidden": hidden} if hidden else {}
    return train_run(out, ModelConfig(name=model, latent_dim=latent, options=options),
                     TrainConfig(dataset=dataset, epochs=epochs, augment=augment),
                     progress=False, log=lambda s: print(s, flush=True))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--latents", type=int, nargs="+", default=[2, 8, 16, 32, 64])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--long-latent", type=int, default=32, help="latent trained to convergence")
    ap.add_argument("--long-epochs", type=int, default=30)
    ap.add_argument("--long-hidden", type=int, default=0,
                    help="the long run's MLP bottleneck width (conv option hidden; 0: none)")
    ap.add_argument("--long-augment", default="", help="the long run's augmentation (hflip)")
    ap.add_argument("--demo-epochs", type=int, default=6, help="the `make demo` budget")
    args = ap.parse_args()
    setup_threads()
    rows, sweep = [], {}
    for latent in args.latents:
        m = train(f"recon-conv-{latent}", latent, args.epochs, args.dataset)
        sweep[latent] = m
        rows.append([latent, args.epochs, m["test"]["psnr"], m["test"]["ssim"],
                     m["baselines"]["pca"]["psnr"], m["baselines"]["pca"]["ssim"],
                     m["test"]["psnr"] > m["baselines"]["pca"]["psnr"],
                     round(m["train_images_per_second"])])
    extra = {}
    for tag, epochs in (("demo", args.demo_epochs), ("long", args.long_epochs)):
        if epochs:
            recipe = ({"hidden": args.long_hidden, "augment": args.long_augment}
                      if tag == "long" else {})
            m = train(f"recon-conv-{args.long_latent}-{tag}", args.long_latent, epochs,
                      args.dataset, **recipe)
            extra[tag] = m
            rows.append([args.long_latent, epochs, m["test"]["psnr"], m["test"]["ssim"],
                         m["baselines"]["pca"]["psnr"], m["baselines"]["pca"]["ssim"],
                         m["test"]["psnr"] > m["baselines"]["pca"]["psnr"],
                         round(m["train_images_per_second"])])
    print_table(["latent", "epochs", "conv PSNR", "conv SSIM", "PCA PSNR", "PCA SSIM",
                 "beats PCA", "train img/s"], rows)
    lat = list(sweep)
    plot_curves({"aekit conv": (lat, [sweep[k]["test"]["psnr"] for k in lat]),
                 "PCA": (lat, [sweep[k]["baselines"]["pca"]["psnr"] for k in lat])},
                IMG / "reconstruction_psnr.png", "latent size", "test PSNR (dB)",
                f"{args.dataset}: conv vs PCA ({args.epochs} epochs)", logx=True)
    slim = {k: {f: v[f] for f in ("test", "baselines", "epochs", "train_seconds",
                                  "train_images_per_second", "parameters")}
            for k, v in {**{str(k): v for k, v in sweep.items()}, **extra}.items()}
    write_result("reconstruction", {"dataset": args.dataset, "epochs": args.epochs,
                                    "long": {"epochs": args.long_epochs,
                                             "hidden": args.long_hidden,
                                             "augment": args.long_augment},
                                    "results": slim})


if __name__ == "__main__":
    main()
