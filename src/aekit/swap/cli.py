"""`aekit swap RUN IMAGES... --to a|b -o DIR`: translate images with a two-domain run.

The images are taken as the other domain's (`--from` says otherwise; `--from D --to D`
reconstructs). A run that is not a two-domain model or a `--to` / `--from` domain the run does
not have ends with one line and exit 2, before anything is written. Unreadable image files, and
images of another channel count than the model's (unless --resize converts them), are skipped
and listed (exit 1), like every batch command. Each output PNG has its input's size.
"""

from __future__ import annotations

import argparse
import sys


def add_parsers(sub) -> None:
    from aekit.args import add_device, add_resize, add_threads
    text = "draw images of one domain in the other's look with a --model swap run"
    p = sub.add_parser("swap", help=text, description=text)
    p.add_argument("run", help="run folder of a swap model")
    p.add_argument("images", nargs="+", help="image files or folders of the other domain")
    p.add_argument("--to", required=True, metavar="DOMAIN",
                   help="the domain to draw them in: a (the run's --dataset) or b (--dataset-b)")
    p.add_argument("--from", dest="source", metavar="DOMAIN", default=None,
                   help="the domain the images come from (default: the one that is not --to; "
                        "--from D --to D reconstructs D's images)")
    p.add_argument("-o", "--out", required=True, help="output folder for PNGs")
    add_resize(p, keeps_size=True)
    p.add_argument("--batch-size", type=int, default=256)
    add_device(p, default="cpu")
    add_threads(p)
    p.set_defaults(func=cmd_swap)


def cmd_swap(args: argparse.Namespace) -> int:
    from aekit.data.files import ModelInputs
    from aekit.swap.translate import Translator, translate_files

    translator = Translator.load(args.run, args.device, args.batch_size)
    translator.check_domain(args.to)
    source = translator.source_of(args.to, args.source, "--from")
    # Each output keeps its input's size; the channel count must be the model's (--resize).
    inputs = ModelInputs(args.images, (translator.channels, *translator.size), args.resize,
                         keeps_size=True, model=f"the model in {args.run}", keep_alpha=True)
    inputs.require_some()
    done, other_size = translate_files(translator, inputs, args.to, args.out, source)
    if other_size:
        h, w = translator.size
        print(f"aekit: {other_size} image(s) are not {h}x{w} (the model's size): resized to it "
              "and back", file=sys.stderr)
    code = inputs.finish(done)
    what = "reconstructed" if source == args.to else f"drawn as domain {args.to}"
    print(f"{done} image(s) of domain {source} {what} into {args.out}")
    return code
