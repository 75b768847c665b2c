"""Shared plumbing for the tutorials in this folder: arguments, data, the aekit CLI, figures.

The tutorials only use aekit's stable public surfaces:

- the command line, called in-process: ``from aekit.cli import main; main(["train", ...])``
  returns the exit code, exactly as ``aekit train ...`` in a shell would;
- the scikit-learn-style facade ``aekit.Autoencoder`` / ``aekit.load(run_folder)``;
- the files a run folder holds (``metrics.json``, ``history.csv``, PNGs).

Data: MNIST from an IDX folder next to the repository (``../shared/data/mnist``) when it is
there, else scikit-learn's bundled 8x8 ``digits`` enlarged to 28x28 (every seed architecture
expects 28x28 images). Fashion-MNIST comes from wherever aekit finds it (``$AEKIT_DATA`` or the
Debian package), with the same ``digits`` fallback.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed: every figure goes to a PNG file

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"  # the dataset name idx:../shared/data/mnist
MNIST_NAME = "idx:../shared/data/mnist"
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
BUDGETS = ("tiny", "medium", "full")


class TutorialError(SystemExit):
    """Stops a tutorial with a readable message (and exit code 1) instead of a traceback."""

    def __init__(self, message: str) -> None:
        print(f"tutorial stopped: {message}", file=sys.stderr)
        super().__init__(1)


# --- arguments -----------------------------------------------------------------------------------


def parse_args(name: str, doc: str | None, argv: list[str] | None,
               extra: dict[str, str] | None = None) -> argparse.Namespace:
    """--budget tiny|medium|full, --out DIR (default examples/output/NAME), --threads, --data."""
    p = argparse.ArgumentParser(prog=f"{name}.py", description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", choices=BUDGETS, default="tiny",
                   help="tiny: a few hundred images, 1 epoch, seconds (a smoke test); "
                        "full: the text's own epochs and settings; medium: in between "
                        + (extra or {}).get("medium", ""))
    p.add_argument("--out", type=Path, default=REPO / "examples" / "output" / name,
                   help="folder for the figures; its runs/, images/ and data/ sub-folders are "
                        "replaced on every run")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    p.add_argument("--data", choices=("auto", "digits"), default="auto",
                   help="auto: MNIST / Fashion-MNIST when present, else digits; "
                        "digits: force the scikit-learn fallback")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be at least 1")
    # aekit reads AEKIT_THREADS when a command has no --threads flag (e.g. `aekit sample`).
    os.environ["AEKIT_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    # aekit never overwrites a run folder, so a rerun starts from empty work folders
    for sub in ("runs", "images", "data"):
        shutil.rmtree(args.out / sub, ignore_errors=True)
    args.runs = args.out / "runs"
    args.images = args.out / "images"
    args.started = time.perf_counter()
    print(f"== {name}: budget {args.budget}, {args.threads} thread(s), output in {args.out}")
    return args


# --- data ----------------------------------------------------------------------------------------


@dataclass
class Data:
    """Train/test images as uint8 (N, 28, 28) arrays plus the name aekit knows them by."""

    name: str  # what `--dataset` gets: idx:DIR, fashion-mnist or npz:FILE
    source: str  # a sentence saying where the images came from
    label: str  # a word for titles: MNIST, Fashion-MNIST or digits
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (gzip or not): magic (0, 0, dtype, ndim), ndim big-endian sizes, then data."""
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def idx_file(folder: Path, base: str) -> Path | None:
    for name in (base, base + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx(folder: Path | None) -> bool:
    return folder is not None and all(idx_file(folder, b) for b in IDX_NAMES)


def read_idx_folder(folder: Path) -> tuple[np.ndarray, ...]:
    return tuple(read_idx(idx_file(folder, b)) for b in IDX_NAMES)


def fashion_dir() -> Path | None:
    """Where aekit's `fashion-mnist` dataset lives: $AEKIT_DATA/fashion-mnist, else Debian's."""
    roots = [Path(os.environ["AEKIT_DATA"]) / "fashion-mnist"] if os.environ.get("AEKIT_DATA") \
        else []
    for d in roots + [Path("/usr/share/datasets/fashion-mnist")]:
        if has_idx(d):
            return d
    return None


def digits_28() -> tuple[np.ndarray, ...]:
    """scikit-learn's 1,797 8x8 digits scaled to 0..255 and enlarged to 28x28 (bilinear),
    split 1,500 train / 297 test, stratified by class with a fixed seed."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    small = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # (N, 8, 8)
    x = np.stack([np.asarray(Image.fromarray(im).resize((28, 28), Image.BILINEAR))
                  for im in small])  # (N, 28, 28)
    y = bunch.target.astype(np.int64)
    tr, te = train_test_split(np.arange(len(y)), test_size=297, stratify=y, random_state=0)
    return x[np.sort(tr)], y[np.sort(tr)], x[np.sort(te)], y[np.sort(te)]


def load_data(kind: str, out: Path, force_digits: bool, n_train: int | None,
              n_test: int | None) -> Data:
    """kind 'mnist' or 'fashion'. n_train / n_test None keeps every image.

    The whole of an IDX dataset is passed to aekit by its own name; a subset (the tiny and medium
    budgets) or the digits fallback is written to OUT/data/KIND.npz and passed as npz:FILE.
    """
    folder = None if force_digits else (MNIST_DIR if kind == "mnist" else fashion_dir())
    if has_idx(folder):
        x_tr, y_tr, x_te, y_te = read_idx_folder(folder)
        if kind == "mnist":
            # the relative name works from the repository root; elsewhere use the full path
            name = MNIST_NAME if Path.cwd() == REPO else f"idx:{folder}"
            what, label = f"MNIST digits ({MNIST_NAME})", "MNIST"
            classes = [str(i) for i in range(10)]
        else:
            name, what, label, classes = "fashion-mnist", "Fashion-MNIST", "Fashion-MNIST", \
                FASHION_CLASSES
    else:
        x_tr, y_tr, x_te, y_te = digits_28()
        name, label, classes = "", "digits", [str(i) for i in range(10)]
        wanted = "MNIST (../shared/data/mnist)" if kind == "mnist" else "Fashion-MNIST"
        what = ("scikit-learn digits, 8x8 enlarged to 28x28 "
                + ("(forced by --data digits)" if force_digits else f"({wanted} not found)"))
    full = (n_train is None or n_train >= len(x_tr)) and (n_test is None or n_test >= len(x_te))
    x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    x_te, y_te = x_te[:n_test], y_te[:n_test]
    if not (full and name):
        path = out / "data" / f"{kind}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x_train=x_tr, y_train=y_tr.astype(np.int64), x_test=x_te,
                 y_test=y_te.astype(np.int64))
        name = f"npz:{path}"
    data = Data(name, what, label, np.array(x_tr), y_tr.astype(np.int64),  # writable copies
                np.array(x_te), y_te.astype(np.int64), classes)
    print(f"data: {what}: {len(x_tr)} train / {len(x_te)} test images "
          f"-> aekit --dataset {short(data.name)}")
    return data


# --- the command line ----------------------------------------------------------------------------


def short(text: str) -> str:
    """A path shown relative to the current folder when it lies below it (shorter output)."""
    return text.replace(str(Path.cwd()) + os.sep, "")


def aekit(*argv: object, capture: bool = False) -> str:
    """Run one aekit command in-process and stop the tutorial if it fails.

    `aekit(*args)` is exactly `aekit ARGS...` in a shell; with capture=True its standard output
    is returned (and still printed)."""
    from aekit.cli import main

    args = [str(a) for a in argv]
    print("$ aekit " + short(shlex.join(args)), flush=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf) if capture else contextlib.nullcontext():
        rc = main(args)
    if capture:
        print(buf.getvalue(), end="")
    if rc != 0:
        raise TutorialError(f"`aekit {args[0]}` exited with code {rc} (its message is above)")
    return buf.getvalue()


def metrics(run: Path) -> dict:
    return json.loads((Path(run) / "metrics.json").read_text())


def history(run: Path) -> dict[str, np.ndarray]:
    """history.csv as columns: epoch, train_loss, val_loss, seconds, lr."""
    with open(Path(run) / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) if r[k] not in ("", None) else np.nan for r in rows])
            for k in rows[0]}


def write_pngs(images: np.ndarray, folder: Path) -> list[Path]:
    """uint8 (N, H, W) -> folder/000.png, 001.png, ... (the order aekit's batch commands keep)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, im in enumerate(images):
        paths.append(folder / f"{i:03d}.png")
        Image.fromarray(im).save(paths[-1])
    return paths


def read_pngs(paths: list[Path]) -> np.ndarray:
    """PNG files -> float (N, H, W) in [0, 1]."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(p).convert("L"), np.float32) / 255.0 for p in paths])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """10 log10(1 / MSE), the MSE pooled over every pixel (aekit's definition)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def unit(x: np.ndarray) -> np.ndarray:
    """uint8 or float images, (N, H, W) or (N, 1, H, W) -> float (N, H, W) in [0, 1]."""
    x = np.asarray(x)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x.reshape(len(x), *x.shape[-2:])


# --- figures -------------------------------------------------------------------------------------


def image_rows(rows: list[tuple[str, np.ndarray]], path: Path, title: str = "") -> Path:
    """One row per (label, images): grey images (N, H, W) in [0, 1] or RGB (N, H, W, 3)."""
    n = max(len(imgs) for _, imgs in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.0 * n + 1.6, 1.05 * len(rows) + 0.5),
                             squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_visible(False)
            if c < len(imgs):
                ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save(fig, path)


def save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {short(str(path))}")
    return path


def done(args: argparse.Namespace, figures: list[Path]) -> int:
    seconds = time.perf_counter() - args.started
    print(f"== done in {seconds:.1f} s; figures: " + ", ".join(p.name for p in figures))
    return 0
