"""Ordered latents and the VAE.

nested: test PSNR vs k on Fashion-MNIST for one model trained with nested dropout (decoded from its
first k units), separately trained models of latent size k, PCA-k, and the plain largest model
truncated to k units (which shows why nested dropout is needed).
vae: negative log-likelihood (IWAE bound, k = 100, nats) and test ELBO of a dense-backbone VAE on
binarized Fashion-MNIST, digits and mnist (when installed). Binarization is static: every pixel
is sampled once ~ Bernoulli(intensity) from a fixed seed (train seed 1, test seed 0), and the
model is trained and scored on those binary images. Also a sample grid, an interpolation strip,
a traversal and the latent picture.

    python -m bench.latents --part all
"""

from __future__ import annotations

import argparse
import io
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from aekit.config import ModelConfig, TrainConfig
from aekit.core.training import train_run
from aekit.device import setup_threads
from aekit.errors import AekitError
from bench.common import IMG, ROOT, print_table, write_result

WORK = ROOT / "runs" / "bench"


def train(name: str, model_cfg: ModelConfig, train_cfg: TrainConfig,
          reuse: bool = False) -> tuple[Path, dict]:
    """Train a run folder under runs/bench/ (or, with reuse, keep one of the same config)."""
    from aekit.core.io import read_config, read_metrics
    from aekit.models import resolve_options

    out = WORK / name
    if reuse and (out / "metrics.json").exists():
        run = read_config(out)
        # Runs made since options are stored resolved hold the defaults; older ones do not.
        wants = (model_cfg, resolve_options(model_cfg))
        def same(want: ModelConfig) -> bool:
            # An option left at "auto" was decided from the data when the run was made.
            got = run.model_cfg.options
            return (all(getattr(run.model_cfg, f) == getattr(want, f)
                        for f in ("name", "latent_dim", "widths"))
                    and got.keys() == want.options.keys()
                    and all(v == "auto" or got[k] == v for k, v in want.options.items()))

        if run.train_cfg == train_cfg and any(same(want) for want in wants):
            print(f"{name}: reusing {out}", flush=True)
            return out, read_metrics(out)
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    m = train_run(out, model_cfg, train_cfg, progress=False, log=lambda s: print(s, flush=True))
    print(f"{name}: {time.perf_counter() - t0:.0f}s", flush=True)
    return out, m


@torch.inference_mode()
def psnr_at(model, x_uint8: torch.Tensor, keep: int | None) -> tuple[float, torch.Tensor]:
    from aekit.data.units import to_unit
    from aekit.eval.metrics import mse, psnr

    model.eval()
    x = to_unit(x_uint8, torch.device("cpu"))
    x_hat = torch.cat([model(b, keep=keep)["x_hat"] for b in x.split(1000)])
    return psnr(mse(x_hat, x)), x_hat


def nested_part(args) -> dict:
    from aekit.core.io import load_model
    from aekit.data import load_dataset
    from aekit.data.images import save_grid
    from aekit.eval.baselines import pca_reconstruct
    from aekit.eval.metrics import mse, psnr
    from aekit.eval.pca import fit_pca
    from aekit.eval.plots import plot_curves

    ks, top = sorted(args.ks), max(args.ks)
    widths = tuple(args.widths)
    tcfg = TrainConfig(dataset="fashion-mnist", epochs=args.epochs, lr=args.lr,
                       limit=args.limit, seed=0)
    ds = load_dataset("fashion-mnist")
    runs = {}
    for k in ks:
        runs[k] = train(f"latents-separate-{k}-e{args.epochs}",
                        ModelConfig(args.model, latent_dim=k, widths=widths), tcfg, args.reuse)[0]
    options = {"nested": True, "nested_p": args.nested_p}
    if args.nested_draws > 1:
        options["nested_draws"] = args.nested_draws
    nested_cfg = ModelConfig(args.model, latent_dim=top, widths=widths, options=options)
    nested_tcfg = TrainConfig(**{**tcfg.to_dict(), "epochs": args.nested_epochs or args.epochs,
                                 "loss": args.nested_loss})
    variant = (f"-{args.nested_loss}" if args.nested_loss else "") + (
        f"-d{args.nested_draws}" if args.nested_draws > 1 else "")
    nested_run, nested_m = train(
        f"latents-nested-p{args.nested_p:g}{variant}-e{nested_tcfg.epochs}",
        nested_cfg, nested_tcfg, args.reuse)
    nested, _ = load_model(nested_run)
    plain, _ = load_model(runs[top])
    pca = fit_pca(ds.train_x, top, seed=0)
    clean = ds.test_x.float() / 255.0
    rows, table, recon = [], {}, []
    for k in ks:
        sep, _ = load_model(runs[k])
        p_sep, _ = psnr_at(sep, ds.test_x, None)
        p_nest, x_nest = psnr_at(nested, ds.test_x, k)
        p_trunc, _ = psnr_at(plain, ds.test_x, k)
        p_pca = psnr(mse(pca_reconstruct(pca, ds.test_x, keep=k), clean))
        table[k] = {"nested": p_nest, "separate": p_sep, "pca": p_pca,
                    f"plain-{top}-truncated": p_trunc}
        recon.append(x_nest[:10])
        rows.append([k, p_nest, p_sep, p_nest - p_sep, p_pca, p_trunc,
                     "yes" if p_nest > p_pca else "no"])
    print_table(["k", "nested dB", "separate dB", "nested-sep", "PCA dB",
                 f"plain-{top} trunc. dB", "nested>PCA"], rows)
    series = {name: (ks, [table[k][key] for k in ks]) for name, key in
              (("nested dropout (one model)", "nested"), ("separate model per k", "separate"),
               ("PCA", "pca"), (f"plain {top}-d model, truncated", f"plain-{top}-truncated"))}
    epochs = f"{args.epochs} epochs" + (f", nested {nested_tcfg.epochs}"
                                        if nested_tcfg.epochs != args.epochs else "")
    plot_curves(series, IMG / f"nested_psnr{args.tag}.png", "latent units kept (k)",
                "test PSNR (dB)",
                f"Fashion-MNIST: ordered latents ({args.model}, {epochs})", logx=True)
    save_grid(IMG / f"nested_reconstructions{args.tag}.png", [clean[:10], *recon])
    return {"model": args.model, "widths": list(widths), "epochs": args.epochs,
            "nested_epochs": nested_tcfg.epochs, "nested_p": args.nested_p,
            "nested_draws": args.nested_draws, "nested_loss": args.nested_loss or "mse",
            "limit": args.limit,
            "ks": ks,
            "psnr": {str(k): v for k, v in table.items()},
            "nested_train_seconds": nested_m["train_seconds"]}


def binarized_npz(name: str, image_size=None) -> str:
    """The dataset binarized once by fixed seeds, as an npz the CLI can train on."""
    from aekit.data import load_dataset
    from aekit.models.variational import binarize

    ds = load_dataset(name, image_size=image_size)
    path = WORK / "data" / f"{name}-binarized.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    def as_u8(t: torch.Tensor) -> np.ndarray:
        return (t * 255).to(torch.uint8).numpy()

    buf = io.BytesIO()
    arrays = {"x_train": as_u8(binarize(ds.train_x, seed=1)), "x_test": as_u8(binarize(ds.test_x))}
    if ds.train_y is not None and ds.test_y is not None:
        arrays |= {"y_train": ds.train_y.numpy(), "y_test": ds.test_y.numpy()}
    np.savez_compressed(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return f"npz:{path}"


def vae_part(args) -> dict:
    from aekit.core.io import load_model
    from aekit.data import load_dataset
    from aekit.data.images import save_grid
    from aekit.eval.plots import plot_latent
    from aekit.models.variational import log_likelihood_bounds
    from aekit.represent.embedding import embed
    from aekit.represent.generate import (
        grid_rows,
        interpolate,
        kl_per_unit,
        sample_images,
        traverse,
    )

    results, rows = {}, []
    for name, latent, epochs in (("fashion-mnist", args.vae_latent, args.vae_epochs),
                                 ("mnist", args.vae_latent, args.vae_epochs),
                                 ("digits", args.digits_latent, args.digits_epochs)):
        try:
            dataset = binarized_npz(name)
        except AekitError as e:
            print(f"{name}: not available here ({e})")
            results[name] = {"available": False, "reason": str(e)}
            continue
        cfg = ModelConfig("vae", latent_dim=latent, widths=tuple(args.vae_widths),
                          options={"backbone": "dense"})
        run, m = train(f"latents-vae-{name}", cfg,
                       TrainConfig(dataset=dataset, epochs=epochs, lr=args.lr, seed=0,
                                   val_fraction=0.0), args.reuse)
        model, _ = load_model(run)
        test_x = load_dataset(dataset).test_x
        t0 = time.perf_counter()
        b = log_likelihood_bounds(model, test_x, k=100)
        b["seconds"] = round(time.perf_counter() - t0, 1)
        b.update(epochs=epochs, latent_dim=latent, widths=list(args.vae_widths),
                 train_seconds=m["train_seconds"])
        results[name] = b
        rows.append([name, len(test_x), epochs, latent, -b["test_elbo_nats"],
                     b["test_nll_iwae_nats"], b["test_nll_bits_per_pixel"]])
        tag = name.replace("-", "")
        save_grid(IMG / f"vae_samples_{tag}.png", grid_rows(sample_images(model, 64, seed=0)))
        if name == "fashion-mnist":
            gray = load_dataset(name)
            z = embed(model, gray.test_x)
            plot_latent(z, gray.test_y.numpy(), IMG / "latent_vae_fashion.png",
                        f"VAE posterior means ({latent}-d, PCA), Fashion-MNIST test",
                        gray.classes)
            pairs = [(0, 1), (2, 3), (4, 5)]  # test images of different classes
            x = test_x.float() / 255.0
            save_grid(IMG / "vae_interpolate.png",
                      [interpolate(model, x[a], x[b], 10) for a, b in pairs])
            dims = kl_per_unit(model, x[:2000]).argsort(descending=True)[:8].tolist()
            save_grid(IMG / "vae_traverse.png", traverse(model, dims, 9, 3.0))
    print_table(["dataset", "test images", "epochs", "latent", "-ELBO nats", "IWAE NLL nats",
                 "bits/pixel"], rows)
    return results


def latent2d_part(args) -> dict:
    """A 2-d latent drawn directly: a dense VAE with latent_dim 2 on (grey) Fashion-MNIST."""
    from aekit.core.io import load_model
    from aekit.data import load_dataset
    from aekit.eval.plots import plot_latent
    from aekit.represent.embedding import embed

    cfg = ModelConfig("vae", latent_dim=2, widths=tuple(args.vae_widths),
                      options={"backbone": "dense"})
    run, m = train("latents-vae-2d", cfg, TrainConfig(dataset="fashion-mnist",
                                                      epochs=args.vae_epochs, lr=args.lr),
                   args.reuse)
    model, _ = load_model(run)
    ds = load_dataset("fashion-mnist")
    plot_latent(embed(model, ds.test_x), ds.test_y.numpy(), IMG / "latent_2d_fashion.png",
                "2-d VAE latent (posterior means), Fashion-MNIST test", ds.classes)
    return {"epochs": args.vae_epochs, "test_psnr": m["test"]["psnr"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", nargs="+", default=["nested", "vae", "latent2d"],
                    choices=["nested", "vae", "latent2d"])
    ap.add_argument("--model", default="deep")
    ap.add_argument("--widths", type=int, nargs="+", default=[512, 256])
    ap.add_argument("--ks", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--nested-p", type=float, default=0.05)
    ap.add_argument("--nested-epochs", type=int, default=0, help="default: --epochs")
    ap.add_argument("--nested-draws", type=int, default=1,
                    help="prefix draws per example (model option nested_draws)")
    ap.add_argument("--nested-loss", default="", help="the nested model's loss (e.g. logmse); "
                    "the separate models keep the default")
    ap.add_argument("--reuse", action="store_true", help="keep runs of the same configuration")
    ap.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    ap.add_argument("--vae-latent", type=int, default=32)
    ap.add_argument("--vae-widths", type=int, nargs="+", default=[512, 256])
    ap.add_argument("--vae-epochs", type=int, default=10)
    ap.add_argument("--digits-latent", type=int, default=8)
    ap.add_argument("--digits-epochs", type=int, default=200)
    ap.add_argument("--tag", default="", help="suffix of the result JSON and plot names")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    setup_threads(args.threads)
    IMG.mkdir(parents=True, exist_ok=True)
    parts = {"nested": nested_part, "vae": vae_part, "latent2d": latent2d_part}
    for part in args.part:
        write_result(f"latents_{part}{args.tag}",
                     {"args": vars(args), "results": parts[part](args)})


if __name__ == "__main__":
    main()
