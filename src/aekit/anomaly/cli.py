"""`aekit anomaly fit | score`: train a detector on normal images, then score images.

    aekit anomaly fit --dataset fashion-mnist --normal-class 0 --out runs/tshirt
    aekit anomaly fit --normal-dir photos/good --out runs/good
    aekit anomaly score runs/tshirt IMAGES... -o scores.csv [--heatmaps DIR]
    aekit anomaly score runs/tshirt --dataset fashion-mnist -o scores.csv

Bad input (empty normal set, unknown class, a run that is not a detector) ends with one line and
exit 2; unreadable image files, and files of another channel count or a smaller size than the
detector's (unless --resize), are skipped and listed, the rest scored or fitted on (exit 1).
Images larger than the detector's size are scored in overlapping tiles (score: the highest
tile's; heat map: at the image's own size), or resized with --resize.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aekit.errors import ConfigError, DataError, RunError

if TYPE_CHECKING:  # annotations only: the command line must start without importing torch
    import torch


def add_parsers(sub) -> None:
    from types import SimpleNamespace

    from aekit.anomaly.defaults import COMPONENTS, DEFAULT_SCORE, DEFAULTS
    from aekit.args import add_device, add_resize, add_seed, add_threads, add_verbosity, parse_size

    d = SimpleNamespace(**DEFAULTS)  # Detector()'s settings, without importing torch
    top = sub.add_parser("anomaly", help="one-class anomaly detection (fit / score)")
    verbs = top.add_subparsers(dest="anomaly_command", metavar="fit|score", required=True)

    p = verbs.add_parser("fit", help="train a detector on normal images and calibrate it")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, help="dataset name (see `aekit datasets`)")
    src.add_argument("--normal-dir", default=None, metavar="DIR",
                     help="a folder of normal images (all of them are normal)")
    p.add_argument("--normal-class", default=None, metavar="K",
                   help="the normal class of --dataset (index or name); default: all images")
    p.add_argument("--image-size", type=parse_size, default=None, metavar="HxW")
    p.add_argument("--patch", type=int, default=0, metavar="P",
                   help="fit on the grid of PxP patches cut from every normal image at its own "
                        "size (images may differ in size; larger images are scored in tiles)")
    p.add_argument("--score", default=DEFAULT_SCORE,
                   help=f"{', '.join(COMPONENTS)} joined by '+' (default {DEFAULT_SCORE})")
    p.add_argument("--model", default=d.model)
    p.add_argument("--latent-dim", type=int, default=d.latent_dim)
    p.add_argument("--widths", default=",".join(map(str, d.widths)))
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--restore", default=d.restore,
                   help="training input corruption: rot (default), none, or rot+<--corrupt spec>")
    p.add_argument("--latent-epochs", type=int, default=d.latent_epochs,
                   help="epochs of the knn/gauss networks (default: --epochs, else automatic)")
    p.add_argument("--latent-restore", default=d.latent_restore,
                   help="training input corruption of the networks whose codes feed knn/gauss "
                        f"(default {d.latent_restore}; 'same' shares the --restore networks)")
    p.add_argument("--models", type=int, default=d.n_models, help="ensemble size (seeds)")
    p.add_argument("--k", type=int, default=d.k, help="neighbours for the knn/pixknn scores")
    p.add_argument("--pca-k", type=int, default=d.pca_k, help="components for the pca score")
    p.add_argument("--local-gate", type=float, default=d.local_gate, metavar="Q",
                   help="local counts beyond this quantile of held-out normal images' local "
                        "scores (default %(default)s; 1: their highest, for whole-image "
                        "anomalies only)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--fpr", type=float, default=None,
                      help=f"target false-positive rate on normal images (default {d.fpr})")
    rate.add_argument("--contamination", type=float, default=None,
                      help="expected fraction of anomalies; flags that share of held-out images")
    p.add_argument("--holdout", type=float, default=d.holdout,
                   help="share of normal images held out to calibrate the threshold")
    add_seed(p)
    add_device(p)
    p.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16"])
    add_threads(p)
    p.add_argument("--out", required=True, help="run folder to create")
    add_verbosity(p)
    p.set_defaults(func=cmd_fit)

    p = verbs.add_parser("score", help="score images with a detector; CSV of score and flag")
    p.add_argument("run", help="run folder made by `aekit anomaly fit`")
    p.add_argument("images", nargs="*", help="image files or folders")
    p.add_argument("--dataset", default=None, help="score a dataset split instead of files")
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("-o", "--out", default=None, help="CSV file (default: standard output)")
    p.add_argument("--heatmaps", default=None, metavar="DIR",
                   help="write a per-pixel error heat map PNG per image into DIR")
    thr = p.add_mutually_exclusive_group()
    thr.add_argument("--threshold", type=float, default=None, help="override the threshold")
    thr.add_argument("--fpr", type=float, default=None,
                     help="re-calibrate the threshold to this false-positive rate")
    add_resize(p)
    p.add_argument("--batch-size", type=int, default=256)
    add_threads(p)
    p.set_defaults(func=cmd_score)


# --- fit -----------------------------------------------------------------------------------------


def cmd_fit(args: argparse.Namespace) -> int:
    from aekit import console
    from aekit.anomaly.defaults import DEFAULTS, FEW_HELDOUT
    from aekit.anomaly.detector import Detector
    from aekit.anomaly.evaluate import fit_metrics, normal_set, write_pictures
    from aekit.data.files import report_bad

    out = Path(args.out)
    if (out / "config.json").exists():
        raise RunError(f"{out} already holds a run; choose another --out")
    with console.phase(f"loading {args.normal_dir or args.dataset or 'fashion-mnist'}",
                       after=1.0):
        x, ds, k, what, skipped = normal_set(args.dataset, args.normal_class, args.normal_dir,
                                             args.image_size, args.patch)
    widths = tuple(int(w) for w in str(args.widths).split(",") if w.strip())
    det = Detector(scores=args.score, model=args.model, latent_dim=args.latent_dim, widths=widths,
                   epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                   restore=args.restore, n_models=args.models, k=args.k,
                   pca_k=args.pca_k, local_gate=args.local_gate,
                   latent_epochs=args.latent_epochs,
                   latent_restore=None if args.latent_restore == "same" else args.latent_restore,
                   fpr=args.fpr if args.fpr is not None else DEFAULTS["fpr"],
                   contamination=args.contamination, holdout=args.holdout, random_state=args.seed,
                   device=args.device, precision=args.precision, verbose=not args.quiet)
    with console.phase(f"fitting an anomaly detector on {what}: {len(x):,} normal images"):
        det.fit(x)
    name = ds.name if ds is not None else f"folder:{args.normal_dir}"
    det.train_config_ = dataclasses.replace(det.train_config_, dataset=name,
                                            image_size=args.image_size, patch=args.patch)
    with console.phase("evaluating the detector"):
        metrics = fit_metrics(det, x, ds, k)
    det.save(out, metrics, {"normal_class": k, "normal_class_name":
                            ds.classes[k] if ds is not None and k is not None else None})
    write_pictures(out, det, x, metrics)
    a = metrics["anomaly"]
    print(f"threshold {det.threshold_:.6g} (held-out normal FPR {a['heldout_fpr']:.3f})")
    if a["heldout_images"] < FEW_HELDOUT:
        console.warn(f"the threshold comes from only {a['heldout_images']} held-out normal "
                     f"images, so the share of new normal images it flags can be far from "
                     f"{a['fpr_target']:g}; fit on more normal images (or a larger --holdout), or "
                     "pass `aekit anomaly score --threshold T` with T chosen on images known to "
                     "be normal")
    if "test_auroc" in a:
        print(f"test AUROC {a['test_auroc']:.4f}; flagged {a['test_normal_flagged']:.3f} of "
              f"normal and {a['test_anomalies_flagged']:.3f} of anomalous test images")
    print(f"run folder: {out}")
    return report_bad(skipped, len(x))  # unreadable files left out of a folder: exit 1


# --- score ---------------------------------------------------------------------------------------


def cmd_score(args: argparse.Namespace) -> int:
    from aekit.anomaly.calibrate import calibrate_threshold
    from aekit.anomaly.detector import load_detector
    from aekit.core.io import read_config

    if args.batch_size < 1:
        raise ConfigError(f"--batch-size {args.batch_size}: must be at least 1")
    if bool(args.images) == bool(args.dataset):
        raise ConfigError("give image files/folders or --dataset D (one of them)")
    det = load_detector(args.run)
    threshold = det.threshold_
    if args.threshold is not None:
        threshold = args.threshold
    elif args.fpr is not None:
        if not 0.0 <= args.fpr <= 1.0:
            raise ConfigError(f"--fpr {args.fpr}: must lie in [0, 1]")
        threshold, _ = calibrate_threshold(det.heldout_scores_, args.fpr)
    heat_dir = Path(args.heatmaps) if args.heatmaps else None
    if heat_dir is not None:
        heat_dir.mkdir(parents=True, exist_ok=True)
    run_info = read_config(args.run).extra.get("anomaly") or {}
    inputs = None
    if args.dataset:
        rows, header, summary = _score_dataset(det, args, threshold, heat_dir, run_info)
    else:
        rows, header, inputs = _score_files(det, args, threshold, heat_dir)
        summary = ""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if args.out:
        from aekit.io import atomic_write_text

        atomic_write_text(args.out, buf.getvalue())
    else:
        sys.stdout.write(buf.getvalue())
    flagged = sum(int(r[2]) for r in rows)
    where = f" -> {args.out}" if args.out else ""
    print(f"{len(rows)} image(s) scored, {flagged} flagged (threshold {threshold:.6g}){where}"
          f"{summary}", file=sys.stderr if not args.out else sys.stdout)
    return inputs.finish(len(rows)) if inputs is not None else 0


def _score_dataset(det, args, threshold: float, heat_dir, run_info: dict):
    import numpy as np

    from aekit.data import load_dataset
    from aekit.eval.metrics import auroc

    c, h, w = det.model_config_.shape
    ds = load_dataset(args.dataset, image_size=(h, w) if args.resize else None)
    x = ds.test_x if args.split == "test" else ds.train_x
    y = ds.test_y if args.split == "test" else ds.train_y
    if tuple(ds.shape) != (c, h, w):
        raise DataError(f"dataset {ds.name} has images {tuple(ds.shape)} (C, H, W) but the "
                        f"detector in {args.run} expects {(c, h, w)}; pass --resize to resize")
    scores = np.concatenate([det.score_samples(b) for b in x.split(args.batch_size * 4)])
    if heat_dir is not None:
        for start in range(0, len(x), args.batch_size):
            b = x[start : start + args.batch_size]
            _save_heatmaps(det, b, [heat_dir / f"{start + i}.png" for i in range(len(b))])
    header = ["index", "score", "flagged"] + (["label"] if y is not None else [])
    rows = [[i, f"{s:.6g}", int(s > threshold)] + ([int(y[i])] if y is not None else [])
            for i, s in enumerate(scores)]
    summary = ""
    k = run_info.get("normal_class")
    if y is not None and k is not None:
        is_anomaly = (y != int(k)).numpy()
        if 0 < is_anomaly.sum() < len(is_anomaly):
            summary = f"; AUROC {auroc(scores, is_anomaly):.4f} with class {k} as normal"
    return rows, header, summary


def _score_files(det, args, threshold: float, heat_dir):
    """(CSV rows, header, the ModelInputs whose `finish` reports skipped files)."""
    from aekit.data.files import ModelInputs, output_path

    inputs = ModelInputs(args.images, det.model_config_.shape, args.resize,
                         model=f"the detector in {args.run}", tiles=True)
    inputs.require_some()
    rows, used = [], set()
    for x, ok in inputs.float_batches(args.batch_size):
        scores = det.score_samples(x)
        rows += [[p, f"{s:.6g}", int(s > threshold)] for p, s in zip(ok, scores, strict=True)]
        if heat_dir is not None:
            _save_heatmaps(det, x, [output_path(heat_dir, Path(p), used) for p in ok])
    if not rows:
        inputs.finish(0)  # raises: nothing could be scored
    return rows, ["path", "score", "flagged"], inputs


def _save_heatmaps(det, x: torch.Tensor, targets: list[Path]) -> None:
    """Per-pixel squared error as a colour map at the image's own resolution (Detector.heatmaps:
    one fixed scale, so colours compare across images; larger images through blended tiles)."""
    from aekit.data.images import save_png

    for target, img in zip(targets, det.heatmaps(x), strict=True):
        save_png(target, img)
