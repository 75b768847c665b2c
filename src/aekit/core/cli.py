"""Core subcommands: train, eval, reconstruct, models, datasets, summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aekit.errors import ConfigError, RunError, check_range

# Training settings a seed preset brings with it (the seed's own recipe) unless given.
PRESET_FIELDS = ("epochs", "batch_size", "lr")


def add_parsers(sub) -> None:
    from aekit.args import (
        add_config_flags,
        add_resize,
        add_threads,
        add_verbosity,
        parse_option,
        parse_widths,
    )
    from aekit.config import TrainConfig

    p = sub.add_parser("train", help="train an autoencoder and write a run folder")
    p.add_argument("--model", default=None,
                   help="model name (see `aekit models`; default: conv, or with --corrupt a "
                        "U-Net: docs/RESTORE.md)")
    p.add_argument("--latent-dim", type=int, default=None, help="size of the code (default 32)")
    p.add_argument("--widths", type=parse_widths, default=(),
                   help="comma-separated channel/unit widths, e.g. 32,64")
    p.add_argument("--option", type=parse_option, action="append", default=[],
                   metavar="KEY=VALUE", help="model-specific option (repeatable)")
    p.add_argument("--nested", action="store_true",
                   help="nested dropout: ordered latents (= --option nested=true)")
    p.add_argument("--nested-p", type=float, default=None, metavar="P",
                   help="nested dropout's geometric p (= --option nested_p=P)")
    p.add_argument("--beta", type=float, default=None,
                   help="VAE KL weight (= --option beta=B; vae models only)")
    add_config_flags(p, TrainConfig, deferred=PRESET_FIELDS)
    add_threads(p)
    p.add_argument("--out", default=None, help="run folder to create")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue an interrupted run")
    add_verbosity(p)
    p.add_argument("--log", action="append", default=[], choices=["csv", "tensorboard"],
                   help="training log: RUN/log.csv always; tensorboard adds RUN/tensorboard/ "
                        "event files when the package is installed")
    p.add_argument("--stream", default="auto", choices=["auto", "always", "never"],
                   help="folder: datasets: decode training images from disk in worker processes "
                        "(auto: when they exceed the memory budget)")
    p.add_argument("--baseline", default="pca", choices=["pca", "none"],
                   help="pca: measure PCA at the same code size next to the model (default); "
                        "none: skip it")
    p.add_argument("--memory-budget", default=None, metavar="SIZE",
                   help="e.g. 2G (default: $AEKIT_MEMORY_BUDGET or half the available memory)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate a run on a dataset's test split")
    p.add_argument("run")
    p.add_argument("--dataset", default=None, help="default: the dataset it was trained on")
    p.add_argument("--json", dest="json_out", default=None, help="also write the result here")
    p.add_argument("--keep", type=int, default=None, metavar="K",
                   help="decode from the first K latent units only (models trained --option "
                        "nested=true)")
    add_threads(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("reconstruct", help="encode and decode image files with a run (larger "
                       "images in overlapping tiles, at their own size)")
    p.add_argument("run")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("-o", "--out", required=True, help="output folder for PNGs")
    add_resize(p)
    add_threads(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("models", help="list the available models")
    p.set_defaults(func=cmd_models, uses_torch=False)
    p = sub.add_parser("datasets", help="list the dataset names and whether they are available")
    p.set_defaults(func=cmd_datasets, uses_torch=False)

    p = sub.add_parser("summary", help="layer table of a model name or a run")
    p.add_argument("target", help="model name or run folder")
    p.add_argument("--shape", default="1x28x28", help="CxHxW for a model name")
    p.add_argument("--latent-dim", type=int, default=32)
    p.set_defaults(func=cmd_summary)


def train_configs_from_args(args: argparse.Namespace, log=lambda s: None):
    """(ModelConfig, TrainConfig) from `aekit train` flags; seed presets bring their defaults.
    Without --model the task picks the recorded recipe's model (aekit.core.recipes) and `log`
    says which."""
    from aekit.args import config_from_args
    from aekit.config import ModelConfig, TrainConfig
    from aekit.core.recipes import for_task
    from aekit.registry import get_model_class

    widths, options, schedule = args.widths, dict(args.option), {}
    if args.model is None:
        recipe = for_task(args.corrupt or "")
        schedule = {"auto_epochs": recipe.auto_epochs}
        args.model = recipe.model
        if recipe.note:
            log(recipe.note)
        # The recipe's architecture, where the command line does not choose it.
        widths = widths or recipe.widths
        options = {**recipe.options, **options}
    preset = preset_defaults(get_model_class(args.model))
    latent = args.latent_dim if args.latent_dim is not None else \
        preset.get("latent_dim", ModelConfig.latent_dim)
    for flag, key, value in (("--nested", "nested", True if args.nested else None),
                             ("--nested-p", "nested_p", args.nested_p),
                             ("--beta", "beta", args.beta)):
        if value is not None:
            if key in options and options[key] != value:
                raise ConfigError(f"{flag} and --option {key}={options[key]} disagree; give one")
            options[key] = value
    model_cfg = ModelConfig(name=args.model, latent_dim=latent, widths=widths,
                            options=options)
    if args.epochs is not None and args.steps:
        raise ConfigError(f"--epochs {args.epochs} and --steps {args.steps} both set the training "
                          "budget; give one")
    # A seed preset's own epochs are its recipe; --steps replaces them like --epochs would.
    from_preset = {k: preset[k] for k in PRESET_FIELDS if getattr(args, k) is None and k in preset
                   and not (k == "epochs" and args.steps)}
    return model_cfg, config_from_args(TrainConfig, args, **schedule, **from_preset)


def preset_defaults(cls) -> dict:
    """A seed preset's own recipe (latent size, epochs, batch size, lr) as flag defaults."""
    found = {"latent_dim": cls.fixed_latent_dim, "epochs": cls.seed_epochs,
             "batch_size": cls.seed_batch_size, "lr": cls.seed_lr}
    return {k: v for k, v in found.items() if v}


def _stops_on_signal(command):
    """`aekit train` stopped by SIGTERM/SIGINT (aekit.train.preempt) after writing a checkpoint:
    one line on stderr saying how to resume (rank 0 only under torchrun), exit 75."""
    import functools

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from aekit.train.preempt import EXIT_PREEMPTED, Preempted

        try:
            return command(args)
        except Preempted as e:
            if e.report:
                print(f"aekit: {e}", file=sys.stderr, flush=True)
            return EXIT_PREEMPTED

    return run


@_stops_on_signal
def cmd_train(args: argparse.Namespace) -> int:
    from aekit import console
    from aekit.core.training import train_run

    log = console.info  # phases and epochs; --quiet silences them, never the warnings
    extra = {"log_to": ("csv", *args.log), "stream": args.stream,
             "memory_budget": args.memory_budget, "baseline": args.baseline,
             "stop_on_signal": True}
    if args.resume:
        metrics = train_run(args.resume, resume=True, progress=not args.quiet, log=log, **extra)
        out = args.resume
    else:
        if not args.out:
            raise ConfigError("train needs --out RUN (a new folder) or --resume RUN")
        model_cfg, train_cfg = train_configs_from_args(args, log)
        metrics = train_run(args.out, model_cfg, train_cfg, progress=not args.quiet, log=log,
                            **extra)
        out = args.out
    if not metrics:  # a torchrun rank other than 0: rank 0 reports
        return 0
    _print_quality_table(metrics)
    print(f"run folder: {out}")
    from aekit.data.files import report_bad

    skipped = [(f["path"], f["reason"]) for f in metrics.get("skipped_files", [])]
    return report_bad(skipped, metrics.get("images_read", 0))


def _print_quality_table(metrics: dict) -> None:
    rows = [(f"aekit {metrics['model']}", metrics["test"])]
    pca = metrics["baselines"].get("pca")
    if pca is not None:
        rows.append((f"PCA-{pca['k']}", pca))
    if "corrupted_input" in metrics:
        rows.append(("corrupted input", metrics["corrupted_input"]))
    print(f"{'':<22}{'MSE':>10}{'PSNR dB':>10}{'SSIM':>8}")
    for name, m in rows:
        print(f"{name:<22}{m['mse']:>10.5f}{m['psnr']:>10.2f}{m['ssim']:>8.4f}")


def cmd_eval(args: argparse.Namespace) -> int:
    from aekit.core.io import load_model
    from aekit.core.training import build_corruption, run_dataset
    from aekit.data import load_dataset
    from aekit.eval.evaluate import evaluate_set
    from aekit.io import atomic_write_text

    model, run = load_model(args.run)
    name = args.dataset or run.train_cfg.dataset
    size = (run.model_cfg.height, run.model_cfg.width)
    # A two-domain run's own data is its (A, B) pairs.
    ds = load_dataset(name, image_size=size) if args.dataset else run_dataset(run.train_cfg, size)
    if tuple(ds.shape) != run.model_cfg.shape:
        raise ConfigError(f"dataset {name} has images {tuple(ds.shape)} but the model in "
                          f"{args.run} expects {run.model_cfg.shape}")
    corrupt = build_corruption(run.train_cfg.corrupt)
    if args.keep is not None:
        check_range("--keep", args.keep, 1, None)
    ev = evaluate_set(model, ds.test_x, corrupt=corrupt, seed=run.train_cfg.seed, keep=args.keep)
    result = {"run": str(args.run), "dataset": ds.name, "test": ev.test}
    if args.keep is not None:
        result["keep"] = args.keep
    print(json.dumps(result, indent=2))
    if args.json_out:
        atomic_write_text(args.json_out, json.dumps(result, indent=2) + "\n")
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from aekit import infer
    from aekit.core.io import load_model
    from aekit.data.files import ModelInputs, output_path
    from aekit.data.images import save_png
    from aekit.data.tiles import map_tiles

    model, run = load_model(args.run)
    cfg = run.model_cfg
    if model.domains:
        raise ConfigError(f"{args.run} is a two-domain model; reconstruct domain D's images "
                          "with `aekit swap RUN IMAGES --to D -o DIR`")
    # Images larger than the model's size go through it in overlapping tiles, stitched back at
    # their own size (aekit.data.tiles); --resize resizes them instead.
    inputs = ModelInputs(args.images, cfg.shape, args.resize, tiles=True, keep_alpha=True)
    inputs.require_some()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    used, done = set(), 0

    def reconstruct(x):
        return infer.run(model, "reconstruct", x, total=len(inputs.files))

    for x, good in inputs.float_batches():
        x_hat = map_tiles(reconstruct, x, (cfg.height, cfg.width))
        for path, img in zip(good, x_hat, strict=True):
            save_png(output_path(out_dir, Path(path), used), img, inputs.take_alpha(path))
        done += len(good)
    code = inputs.finish(done)
    print(f"{done} reconstruction(s) written to {out_dir}")
    return code


def cmd_models(args: argparse.Namespace) -> int:
    """Every model's card: summary, default loss, fixed shape and options (no torch import)."""
    import textwrap

    from aekit.models.cards import NestedOptions
    from aekit.registry import model_cards

    def block(lines: list[str], first: str) -> None:
        pad = " " * 19
        for i, line in enumerate(lines):
            print(textwrap.fill(line, 100, initial_indent=pad + (first if i == 0 else " " * 9),
                                subsequent_indent=pad + " " * 11))

    for name, card in sorted(model_cards().items()):
        print(textwrap.fill(card.summary, 100, initial_indent=f"{name:<18} ",
                            subsequent_indent=" " * 19))
        facts = [f"loss {card.loss}"]
        if card.fixed_shape is not None:
            facts.append("input {}x{}x{} (fixed)".format(*card.fixed_shape))
        if card.fixed_latent_dim:
            facts.append(f"latent {card.fixed_latent_dim} (fixed)")
        print(" " * 19 + "; ".join(facts))
        block(card.options.describe(), "options: ")
    print("\nevery model also takes (--option KEY=VALUE):")
    block(NestedOptions.describe(), "         ")
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from aekit.data import list_datasets

    for name, description, available in list_datasets():
        print(f"{name:<16} {'yes' if available else 'no ':<4} {description}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from aekit.config import ModelConfig
    from aekit.core.io import read_config
    from aekit.models import build_model
    from aekit.models.summary import summary

    target = Path(args.target)
    if target.is_dir():
        cfg = read_config(target).model_cfg
    elif "/" in args.target or args.target.startswith("."):
        raise RunError(f"{args.target}: no such run folder")
    else:
        try:
            c, h, w = (int(v) for v in args.shape.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--shape {args.shape!r}: expected CxHxW, e.g. 1x28x28") from None
        from aekit.models import default_config
        from aekit.registry import get_model_class

        fixed = get_model_class(args.target).fixed_shape
        cfg = default_config(args.target) if fixed else ModelConfig(
            name=args.target, in_channels=c, height=h, width=w, latent_dim=args.latent_dim)
    print(summary(build_model(cfg)))
    return 0
