"""Subcommands for representations and generation: embed, finetune, classify, sample,
interpolate, traverse."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from aekit.errors import ConfigError, DataError


def add_parsers(sub) -> None:
    from aekit.args import add_config_flags, add_resize, add_seed, add_threads, add_verbosity
    from aekit.represent.config import RECIPE, FinetuneConfig

    p = sub.add_parser("embed", help="encode images or a dataset split to latent codes (.npy)")
    p.add_argument("run")
    p.add_argument("images", nargs="*", help="image files or folders (or use --dataset)")
    p.add_argument("--dataset", default=None, help="encode a dataset split instead of files")
    p.add_argument("--split", default="test", choices=["test", "train", "all"])
    p.add_argument("-o", "--out", required=True, help="codes as float32 (N, D) .npy")
    p.add_argument("--labels-out", default=None,
                   help="labels .npy when the dataset has them (default: <out stem>_labels.npy)")
    p.add_argument("--keep", type=int, default=None, help="keep only the first K latent units")
    p.add_argument("--plot", default=None, metavar="PNG",
                   help="also draw the 2-D latent picture coloured by label")
    add_resize(p)
    add_threads(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("finetune", help="encoder + classification head from N balanced labels")
    p.add_argument("run", help="a pretrained autoencoder run")
    p.add_argument("--dataset", default=None, help="labelled dataset (default: the run's)")
    p.add_argument("--labels", type=int, required=True, help="number of labels (balanced)")
    p.add_argument("--out", required=True, help="classifier folder to create")
    # Its defaults are the recorded few-label recipe (represent/config.py RECIPE).
    add_config_flags(p, FinetuneConfig, defaults=RECIPE)
    add_threads(p)
    add_verbosity(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("classify", help="predict classes with a fine-tuned classifier")
    p.add_argument("classifier")
    p.add_argument("images", nargs="*", help="image files or folders")
    p.add_argument("--dataset", default=None, help="report accuracy on this dataset's test split")
    p.add_argument("-o", "--out", default=None,
                   help="CSV file of the predictions (default: standard output)")
    p.add_argument("--csv", dest="csv", default=None, help=argparse.SUPPRESS)  # old name of -o
    add_resize(p)
    add_threads(p)
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("sample", help="draw new images from a variational run's prior")
    p.add_argument("run")
    p.add_argument("-n", type=int, default=64, help="number of images")
    p.add_argument("-o", "--out", required=True, help="grid PNG")
    add_seed(p)
    p.add_argument("--temperature", type=float, default=1.0, help="prior std multiplier")
    p.add_argument("--cols", type=int, default=None, help="images per row (default: square)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("interpolate", help="decode the latent line between two images")
    p.add_argument("run")
    p.add_argument("a", help="first image")
    p.add_argument("b", help="second image")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("-o", "--out", required=True, help="strip PNG")
    add_resize(p)
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("traverse", help="sweep single latent units of a variational run")
    p.add_argument("run")
    p.add_argument("-o", "--out", required=True, help="grid PNG, one row per unit")
    p.add_argument("--dims", default="auto",
                   help="comma-separated units, or 'auto': the 8 with the largest mean KL")
    p.add_argument("--image", default=None, help="start from this image's code (default: 0)")
    p.add_argument("--steps", type=int, default=9)
    p.add_argument("--span", type=float, default=3.0, help="sweep -SPAN..SPAN prior std devs")
    add_resize(p)
    p.set_defaults(func=cmd_traverse)


def _save_npy(path: Path, array) -> None:
    import numpy as np

    from aekit.io import atomic_write_bytes

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def _read_files(paths: list[str], cfg, resize: bool, partial: bool = False) -> tuple:
    """Images of `paths` (files/folders) for the run's model, under the one rule for files of
    another channel count or size (aekit.data.files.ModelInputs): (x, good paths, inputs);
    `inputs.finish(n)` then reports and gives the exit code.

    partial=True (embed, classify): every usable file is used and the others are listed
    (exit 1); nothing usable at all is an error (exit 2).
    partial=False (interpolate, traverse: each named image is needed): any bad file is an error.
    """
    from aekit.data.files import ModelInputs

    inputs = ModelInputs(paths, cfg.shape, resize)
    if not partial:
        _no_bad(inputs.bad)
    x, good = inputs.read_all()
    if not partial:
        _no_bad(inputs.bad)  # a header that was fine but pixels that were not
    return x, good, inputs


def _no_bad(bad: list) -> None:
    if bad:
        listed = "; ".join(f"{p}: {why}" for p, why in bad[:3])
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise DataError(f"{listed}{more}")


def _load_dataset_for(name: str, cfg, patch: int = 0):
    """A dataset at the model's size: resized, or, for the run's own dataset of a run trained on
    patches (`patch`), cut into the same patches."""
    from aekit.data import load_dataset

    ds = (load_dataset(name, patch=patch) if patch
          else load_dataset(name, image_size=(cfg.height, cfg.width)))
    if tuple(ds.shape) != cfg.shape:
        raise ConfigError(f"dataset {name} has images {tuple(ds.shape)} but the model expects "
                          f"{cfg.shape}")
    return ds


def cmd_embed(args: argparse.Namespace) -> int:
    import numpy as np

    from aekit.core.io import load_model
    from aekit.represent.embedding import dataset_split, embed

    if bool(args.images) == bool(args.dataset):
        raise ConfigError("embed needs either image files/folders or --dataset D (not both)")
    model, run = load_model(args.run)
    cfg = run.model_cfg
    dim = int(np.prod(model.latent_shape))
    if args.keep is not None and not 1 <= args.keep <= dim:
        raise ConfigError(f"--keep {args.keep}: the code has {dim} units; use 1..{dim}")
    out = Path(args.out)
    labels, names, inputs = None, None, None
    if args.dataset:
        ds = _load_dataset_for(args.dataset, cfg)
        x, labels = dataset_split(ds, args.split)
        names = ds.classes
        source = f"{ds.name} ({args.split}, {len(x)} images)"
    else:
        x, good, inputs = _read_files(args.images, cfg, args.resize, partial=True)
        source = f"{len(good)} image file(s)"
    z = embed(model, x, keep=args.keep)
    _save_npy(out, z)
    print(f"codes {z.shape} of {source} -> {out}")
    if labels is not None:
        lab_path = Path(args.labels_out or out.with_name(f"{out.stem}_labels.npy"))
        _save_npy(lab_path, labels.numpy().astype(np.int64))
        print(f"labels ({len(labels)},) -> {lab_path}")
    elif not args.dataset:
        paths_file = out.with_name(f"{out.stem}_paths.txt")
        from aekit.io import atomic_write_text

        atomic_write_text(paths_file, "\n".join(good) + "\n")
        print(f"row order -> {paths_file}")
    if args.plot:
        from aekit.eval.plots import plot_latent

        plot_latent(z, None if labels is None else labels.numpy(), args.plot,
                    f"{cfg.name} latent ({z.shape[1]}-d) of {source}", names)
        print(f"latent picture -> {args.plot}")
    return inputs.finish(len(z)) if inputs is not None else 0


def cmd_finetune(args: argparse.Namespace) -> int:
    import time

    import torch

    from aekit.args import config_from_args
    from aekit.console import phase
    from aekit.core.io import load_model
    from aekit.io import atomic_write_text
    from aekit.represent.config import FinetuneConfig
    from aekit.represent.fewlabel import (
        Classifier,
        accuracy,
        balanced_indices,
        finetune,
    )
    from aekit.represent.io import save_classifier

    ft = config_from_args(FinetuneConfig, args)
    out = Path(args.out)
    if (out / "classifier.json").exists():
        raise ConfigError(f"{out} already holds a classifier; choose another --out")
    model, run = load_model(args.run)
    name = args.dataset or run.train_cfg.dataset
    with phase(f"loading {name}", after=1.0):
        ds = _load_dataset_for(name, run.model_cfg, 0 if args.dataset else run.train_cfg.patch)
    if ds.train_y is None or ds.num_classes is None:
        raise DataError(f"dataset {ds.name} has no labels; finetune needs a labelled dataset "
                        "(an npz with y_train, a folder with one sub-folder per class, ...)")
    idx = balanced_indices(ds.train_y, args.labels, ds.num_classes, args.seed)
    torch.manual_seed(args.seed)
    clf = Classifier(model, ds.num_classes, ft.head, ft.hidden)
    t0 = time.perf_counter()
    # The unlabeled images: every training image for --semi (propagation needs them all) and
    # --consistency, else 10k of them, enough for the feature standardisation.
    unlabeled = ds.train_x if ft.semi or ft.consistency else ds.train_x[torch.randperm(
        len(ds.train_x), generator=torch.Generator().manual_seed(0))[:10_000]]
    with phase(f"fine-tuning on {args.labels} labels ({ft.steps} steps)"):
        history = finetune(clf, ds.train_x[idx], ds.train_y[idx], ft, unlabeled=unlabeled)
    seconds = time.perf_counter() - t0
    info = {"source_run": str(args.run), "dataset": ds.name, "labels": args.labels,
            "classes": ds.classes, "image_shape": list(run.model_cfg.shape),
            "finetune": ft.to_dict()}
    save_classifier(out, clf, info)
    metrics = {"labels": args.labels, "dataset": ds.name, "train_seconds": round(seconds, 2),
               "history": history}
    if ds.test_y is not None and len(ds.test_y):
        with phase(f"evaluating on {len(ds.test_y):,} test images"):
            metrics["test_accuracy"] = accuracy(clf, ds.test_x, ds.test_y)
        print(f"test accuracy {metrics['test_accuracy'] * 100:.2f}% on {len(ds.test_y)} "
              f"{ds.name} test images ({args.labels} labels)")
        _recipe_hint(run, ft)
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"classifier folder: {out}")
    return 0


def _recipe_hint(run, ft) -> None:
    """One line on how to reach the recorded few-label number when this encoder or these
    settings are not the recorded recipe's (its pretraining is too long to be a default)."""
    from aekit import console
    from aekit.represent.config import RECIPE, RECIPE_COMMAND, RECIPE_PRETRAIN

    pretrained = {"name": run.model_cfg.name, "latent_dim": run.model_cfg.latent_dim,
                  "corrupt": run.train_cfg.corrupt, "epochs": run.train_cfg.epochs,
                  "linear": run.model_cfg.options.get("linear")}
    if pretrained != RECIPE_PRETRAIN or any(getattr(ft, k) != v for k, v in RECIPE.items()):
        console.info(f"the recorded 80.0% at 100 Fashion-MNIST labels: {RECIPE_COMMAND}")


def cmd_classify(args: argparse.Namespace) -> int:
    import csv

    from aekit.represent.fewlabel import accuracy, predict_proba
    from aekit.represent.io import load_classifier

    if bool(args.images) == bool(args.dataset):
        raise ConfigError("classify needs either image files/folders or --dataset D (not both)")
    if args.csv is not None:  # deprecated: the CSV on stdout and in this file, as it used to
        print("aekit: note: --csv is deprecated; use -o/--out FILE", file=sys.stderr)
        if args.out is not None:
            raise ConfigError("give -o/--out only (--csv is deprecated)")
    if args.dataset and (args.out or args.csv):
        raise ConfigError("-o writes the predictions of image files; with --dataset, classify "
                          "prints the test accuracy")
    clf, info = load_classifier(args.classifier)
    cfg = clf.autoencoder.cfg
    if args.dataset:
        ds = _load_dataset_for(args.dataset, cfg)
        if ds.test_y is None:
            raise DataError(f"dataset {ds.name} has no test labels to score against")
        acc = accuracy(clf, ds.test_x, ds.test_y)
        print(f"test accuracy {acc * 100:.2f}% on {len(ds.test_y)} {ds.name} test images")
        return 0
    x, good, inputs = _read_files(args.images, cfg, args.resize, partial=True)
    probs = predict_proba(clf, x)
    names = info.get("classes") or [str(i) for i in range(probs.shape[1])]
    rows = [(path, int(p.argmax()), names[int(p.argmax())], float(p.max()))
            for path, p in zip(good, probs, strict=True)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["path", "label", "class", "probability"])
    writer.writerows((p, lab, name, f"{prob:.4f}") for p, lab, name, prob in rows)
    from aekit.io import atomic_write_text

    if args.out:
        atomic_write_text(args.out, buf.getvalue())
    else:
        sys.stdout.write(buf.getvalue())
        if args.csv:
            atomic_write_text(args.csv, buf.getvalue())
    code = inputs.finish(len(good))
    if args.out:
        print(f"{len(good)} image(s) classified -> {args.out}")
    return code


def _load_variational(run_dir: str, what: str):
    from aekit.core.io import load_model
    from aekit.represent.generate import require_variational

    model, run = load_model(run_dir)
    require_variational(model, run_dir, what)
    return model, run


def cmd_sample(args: argparse.Namespace) -> int:
    from aekit.data.images import save_grid
    from aekit.represent.generate import grid_rows, sample_images

    model, _ = _load_variational(args.run, "sample")
    images = sample_images(model, args.n, args.seed, args.temperature)
    save_grid(args.out, grid_rows(images, args.cols))
    print(f"{args.n} samples -> {args.out}")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from aekit.core.io import load_model
    from aekit.data.images import save_grid
    from aekit.represent.generate import interpolate

    model, run = load_model(args.run)
    x, _, inputs = _read_files([args.a, args.b], run.model_cfg, args.resize)
    if len(x) != 2:
        raise DataError("interpolate needs two image files, A and B")
    frames = interpolate(model, x[0], x[1], args.steps)
    save_grid(args.out, [frames])
    inputs.finish(len(x))
    print(f"{args.steps} frames from {args.a} to {args.b} -> {args.out}")
    return 0


def cmd_traverse(args: argparse.Namespace) -> int:
    from aekit.data.images import save_grid
    from aekit.represent.generate import kl_per_unit, traverse

    model, run = _load_variational(args.run, "traverse")
    base = None
    if args.image:
        x, _, inputs = _read_files([args.image], run.model_cfg, args.resize)
        base = x[0]
        inputs.finish(len(x))
    if args.dims == "auto":
        dims = _top_units(model, run, kl_per_unit)
    else:
        try:
            dims = [int(d) for d in args.dims.split(",") if d.strip()]
        except ValueError:
            raise ConfigError(f"--dims {args.dims!r}: expected e.g. 0,1,2 or auto") from None
    rows = traverse(model, dims, args.steps, args.span, base)
    save_grid(args.out, rows)
    print(f"units {dims} swept over +-{args.span:g} -> {args.out}")
    return 0


def _top_units(model, run, kl_per_unit, n: int = 8) -> list[int]:
    """The n units with the largest mean KL on (up to 2000) test images of the run's dataset;
    the first n units when that dataset cannot be loaded here."""
    from aekit.data.units import to_unit
    from aekit.errors import AekitError

    try:
        ds = _load_dataset_for(run.train_cfg.dataset, run.model_cfg, run.train_cfg.patch)
    except AekitError as e:
        print(f"aekit: note: ranking units needs the run's dataset ({e}); showing the first "
              f"{n}", file=sys.stderr)
        return list(range(min(n, model.cfg.latent_dim)))
    import torch

    kl = kl_per_unit(model, to_unit(ds.test_x[:2000], torch.device("cpu")))
    return [int(i) for i in kl.argsort(descending=True)[: min(n, len(kl))]]
