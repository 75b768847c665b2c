"""Domain translation benchmark: the `swap` model (shared encoder, one decoder per domain).

Fashion-MNIST domain pairs, each domain written as an `npz:` file and trained through the command
line (`aekit train --model swap --dataset A --dataset-b B`):
  shoes     class 7 sneaker (A) <-> class 5 sandal (B)              6,000 / 6,000 train images
  tops      class 0 T-shirt/top (A) <-> class 6 shirt (B)           (not in the default run)
  graded    a cold blue grading (A) <-> a warm sepia grading with lifted mid-tones (B)
  negative  grey garments (A) <-> soft negatives, 1 - GaussianBlur(x, sigma 1) (B)
The two styled pairs have a KNOWN correspondence: A is training images 0..5,999 in A's style, B
the images 6,000..11,999 in B's style (no garment in both domains, so nothing tells the model
which B belongs to which A); the test images are the first 2,000 of the test split in each
style, so the true counterpart of every swapped test image is known.

Targets and how each is measured:
  (1) swap success: a logistic regression on pixels, trained on real A vs real B training
      images, labels >= 90% of A->B swaps of test images as B (and B->A as A). The spread of the
      swaps across images (relative to the real domain's) shows whether they depend on the input.
  (2) content kept (known pairs): PSNR / SSIM of A->B swaps vs the true counterparts, against
      the baseline "a separately trained B autoencoder decodes the nearest B code" (the A image
      is encoded by B's autoencoder, the nearest of B's training codes is decoded) and, for
      reference, that B autoencoder applied to the A image directly.
  (3) reconstruction in each domain within 1 dB of a single-domain `conv` model of the same
      architecture and epochs, trained on that domain alone. Both train for the same number of
      optimizer steps (a pair is one A and one B image, so an epoch is max(len A, len B) / batch
      steps, and each decoder is updated at every step) on the same learning-rate schedule. The
      result gives the parameter counts of both sides: the swap model's total, the part one
      domain's images go through (shared encoder, own decoder, own input map) and the single
      model's.
The swap model runs with its defaults (`SwapOptions`); `--option` overrides them for ablations.

Run: python -m bench.swap --threads 1   (one run, ~7 minutes on one shared thread; writes
bench/results/swap.json and docs/img/swap_grid.png, prints tables).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAIRS = {"tops": (0, 6), "shoes": (7, 5), "graded": None, "negative": None}
NAMES = {0: "T-shirt/top", 6: "shirt", 7: "sneaker", 5: "sandal"}
NEG_TRAIN, NEG_TEST = 6000, 2000


def negative(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """1 - Gaussian blur of (N, 1, H, W) images in [0, 1]: a soft negative."""
    r = int(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t * t / (2 * sigma * sigma))
    k = k / k.sum()
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return 1 - y


def cool(x: torch.Tensor) -> torch.Tensor:
    """Grey (N, 1, H, W) -> a cold blue grading, RGB."""
    return x * torch.tensor([0.55, 0.8, 1.0]).view(1, 3, 1, 1)


def warm(x: torch.Tensor) -> torch.Tensor:
    """Grey (N, 1, H, W) -> a warm sepia grading with lifted mid-tones (gamma 0.6), RGB."""
    return x.pow(0.6) * torch.tensor([1.0, 0.78, 0.5]).view(1, 3, 1, 1)


# Known-correspondence pairs: (style of A, style of B) applied to disjoint garment images.
KNOWN = {"graded": (cool, warm), "negative": (lambda x: x, negative)}
STYLES = {"graded": "cool blue grading <-> warm sepia grading (gamma 0.6)",
          "negative": "grey <-> soft negative, 1 - GaussianBlur(x, sigma=1)"}


def to8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def domains(fm, pair: str) -> tuple[dict, dict]:
    """{train, test} uint8 arrays (N, 1, H, W) of domain A and of domain B."""
    if PAIRS[pair] is not None:
        out = []
        for cls in PAIRS[pair]:
            out.append({s: getattr(fm, f"{s}_x")[getattr(fm, f"{s}_y") == cls].numpy()
                        for s in ("train", "test")})
        return out[0], out[1]
    style_a, style_b = KNOWN[pair]
    x = fm.train_x[: 2 * NEG_TRAIN].float() / 255
    t = fm.test_x[:NEG_TEST].float() / 255
    a = {"train": to8(style_a(x[:NEG_TRAIN])), "test": to8(style_a(t))}
    b = {"train": to8(style_b(x[NEG_TRAIN:])), "test": to8(style_b(t))}
    return a, b


def train(argv: list[str], out: Path, reuse: bool) -> float:
    from aekit.cli import main

    if reuse and (out / "model.safetensors").is_file():
        return 0.0
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    if main(["train", *argv, "--out", str(out)]) != 0:
        raise SystemExit(f"training failed: aekit train {' '.join(argv)}")
    return time.perf_counter() - t0


@torch.inference_mode()
def autoencode(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes (N, D), reconstructions) of a single-domain model, in batches."""
    z = torch.cat([model.encode(b) for b in x.split(500)])
    return z.flatten(1), torch.cat([torch.sigmoid(model.decode(b)) for b in z.split(500)])


@torch.inference_mode()
def swap_all(model, x: torch.Tensor, to: str, source: str) -> torch.Tensor:
    return torch.cat([model.swap(b, to, source) for b in x.split(500)])


def quality(x_hat: torch.Tensor, x: torch.Tensor) -> dict:
    from aekit.eval.evaluate import measure

    q = measure(x_hat, x)
    return {"psnr": round(q["psnr"], 3), "ssim": round(q["ssim"], 4)}


def classify(a_train: np.ndarray, b_train: np.ndarray, seed: int):
    """Logistic regression on pixels: real A (label 0) vs real B (label 1)."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([a_train, b_train]).reshape(len(a_train) + len(b_train), -1) / 255.0
    y = np.r_[np.zeros(len(a_train)), np.ones(len(b_train))]
    return LogisticRegression(max_iter=500, C=0.1, random_state=seed).fit(x, y)


def spread(x: torch.Tensor) -> float:
    """Mean over pixels of the per-pixel std across images."""
    return float(x.std(0).mean())


def share_as(clf, imgs: torch.Tensor, label: int) -> float:
    return float((clf.predict(imgs.flatten(1).numpy()) == label).mean())


def parameters(swap, single) -> dict:
    """"Of the same size", in numbers: the swap model's total, the part one domain's images go
    through (the shared encoder, that domain's decoder and its half of the per-domain maps) and
    the single-domain model."""
    def count(m) -> int:
        return sum(p.numel() for p in m.parameters())

    maps = sum(count(m) for m in (swap.domain_in, swap.domain_layers) if m is not None)
    return {"swap_total": count(swap), "swap_per_domain": count(swap.encoder)
            + count(swap.decoder_a) + maps // 2, "single": count(single)}


def evaluate_pair(pair: str, a: dict, b: dict, runs: Path, seed: int,
                  name: str = "swap") -> tuple[dict, list]:
    from aekit.core import load_model

    swap, _ = load_model(runs / name)
    single_a, _ = load_model(runs / "single-a")
    single_b, _ = load_model(runs / "single-b")
    ta = torch.from_numpy(a["test"]).float() / 255
    tb = torch.from_numpy(b["test"]).float() / 255
    a2b, b2a = swap_all(swap, ta, "b", "a"), swap_all(swap, tb, "a", "b")
    res: dict = {"images": {"train": [len(a["train"]), len(b["train"])],
                            "test": [len(ta), len(tb)]},
                 "parameters": parameters(swap, single_a)}
    # (3) reconstruction per domain: the swap model's own decoder vs a single-domain model.
    res["reconstruction"] = {}
    for d, x, single in (("a", ta, single_a), ("b", tb, single_b)):
        mine, theirs = quality(swap_all(swap, x, d, d), x), quality(autoencode(single, x)[1], x)
        res["reconstruction"][d] = {"swap": mine, "single": theirs,
                                    "gap_db": round(mine["psnr"] - theirs["psnr"], 3)}
    # (1) swap success by a real-A-vs-real-B classifier.
    clf = classify(a["train"], b["train"], seed)
    res["classifier"] = {
        "test_accuracy": round((share_as(clf, ta, 0) * len(ta) + share_as(clf, tb, 1) * len(tb))
                               / (len(ta) + len(tb)), 4),
        "a_to_b_as_b": round(share_as(clf, a2b, 1), 4),
        "b_to_a_as_a": round(share_as(clf, b2a, 0), 4),
        "a_inputs_as_b": round(share_as(clf, ta, 1), 4)}
    # A swap that ignores its input (one mean image) would pass the classifier: the spread of
    # the swaps across images, relative to the real target domain's, shows that it does not.
    res["spread"] = {"a_to_b": round(spread(a2b) / spread(tb), 3),
                     "b_to_a": round(spread(b2a) / spread(ta), 3)}
    rows = [(f"{pair}: A", ta[:10]), ("A→B", a2b[:10]), ("B", tb[:10]), ("B→A", b2a[:10])]
    if PAIRS[pair] is None:  # (2) content kept: the true counterpart of every swap is known
        za_b, _ = autoencode(single_b, ta)  # A images coded by B's autoencoder
        zb, _ = autoencode(single_b, torch.from_numpy(b["train"]).float() / 255)
        near = torch.cdist(za_b, zb).argmin(1)
        with torch.inference_mode():
            nearest = torch.cat([torch.sigmoid(single_b.decode(c)) for c in zb[near].split(500)])
        res["content"] = {
            "a_to_b": {"swap": quality(a2b, tb), "B autoencoder, nearest B code":
                       quality(nearest, tb),
                       "B autoencoder on the A image": quality(autoencode(single_b, ta)[1], tb),
                       "A input itself": quality(ta, tb)},
            "b_to_a": {"swap": quality(b2a, ta),
                       "A autoencoder on the B image": quality(autoencode(single_a, tb)[1], ta)},
        }
        rows.insert(2, ("true B", tb[:10]))
        rows.insert(3, ("nearest B", nearest[:10]))
    return res, rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", nargs="+", default=["shoes", "graded", "negative"],
                   choices=list(PAIRS))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--latent-dim", type=int, default=32)
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="swap model option (e.g. confusion=1)")
    p.add_argument("--corrupt", default="", help="swap model --corrupt (e.g. affine:0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", default=str(ROOT / "runs/bench-swap"))
    p.add_argument("--reuse", action="store_true",
                   help="keep finished runs under --runs (single-domain runs are shared by every "
                        "--name; the swap run is RUNS/PAIR/NAME)")
    p.add_argument("--name", default="swap", help="result, figure and swap run name")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from aekit.data import load_dataset
    from bench.common import IMG, image_rows_figure, print_table, write_result

    t_start = time.perf_counter()
    fm = load_dataset("fashion-mnist")
    common = ["--epochs", str(args.epochs), "--latent-dim", str(args.latent_dim), "--seed",
              str(args.seed), "--threads", str(args.threads), "--baseline", "none", "--quiet"]
    swap_extra = [a for o in args.option for a in ("--option", o)]
    swap_extra += ["--corrupt", args.corrupt] if args.corrupt else []
    results, figure_rows, commands = {}, [], {}
    with tempfile.TemporaryDirectory(prefix="aekit-swap-") as tmp:
        for pair in args.pairs:
            a, b = domains(fm, pair)
            files = {}
            for d, dom in (("a", a), ("b", b)):
                files[d] = Path(tmp) / f"{pair}-{d}.npz"
                np.savez(files[d], x_train=dom["train"], x_test=dom["test"])
            runs = Path(args.runs) / pair
            da, db = f"npz:{files['a']}", f"npz:{files['b']}"
            swap_cmd = ["--model", "swap", "--dataset", da, "--dataset-b", db, *common,
                        *swap_extra]
            commands[pair] = ("aekit train " + " ".join(swap_cmd)).replace(tmp, "DIR")
            seconds = {"swap": train(swap_cmd, runs / args.name, args.reuse)}
            for d, data in (("a", da), ("b", db)):
                seconds[f"single-{d}"] = train(["--model", "conv", "--dataset", data, *common],
                                               runs / f"single-{d}", args.reuse)
            res, rows = evaluate_pair(pair, a, b, runs, args.seed, args.name)
            res["train_seconds"] = {k: round(v, 1) for k, v in seconds.items()}
            if PAIRS[pair] is not None:
                res["domains"] = {"a": NAMES[PAIRS[pair][0]], "b": NAMES[PAIRS[pair][1]]}
            else:
                res["domains"] = STYLES[pair]
            results[pair] = res
            figure_rows += rows
    wall = time.perf_counter() - t_start
    fig = IMG / f"{args.name}_grid.png"
    image_rows_figure(fig, figure_rows)

    print_table(["pair", "A->B as B", "B->A as A", "clf acc", "spread A->B", "spread B->A",
                 "A rec", "single A", "B rec", "single B"],
                [[k, r["classifier"]["a_to_b_as_b"], r["classifier"]["b_to_a_as_a"],
                  r["classifier"]["test_accuracy"], r["spread"]["a_to_b"], r["spread"]["b_to_a"],
                  r["reconstruction"]["a"]["swap"]["psnr"],
                  r["reconstruction"]["a"]["single"]["psnr"],
                  r["reconstruction"]["b"]["swap"]["psnr"],
                  r["reconstruction"]["b"]["single"]["psnr"]] for k, r in results.items()])
    for pair, r in results.items():
        if "content" in r:
            print(f"\ncontent kept, {pair}: vs the true counterpart")
            print_table(["direction", "method", "PSNR", "SSIM"],
                        [[d, m, q["psnr"], q["ssim"]] for d in r["content"]
                         for m, q in r["content"][d].items()])
    settings = {k: v for k, v in vars(args).items() if k not in ("runs", "reuse")}
    path = write_result(args.name, {"settings": settings, "commands": commands,
                                    "wall_seconds": round(wall, 1), "pairs": results,
                                    "figure": str(fig.relative_to(ROOT))})
    print(f"\n{path} and {fig} written in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
