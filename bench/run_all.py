"""`make bench`: every benchmark in sequence (long: tens of minutes on 2 CPU cores).

Each script writes bench/results/<name>.json and its plots; docs/BENCHMARKS.md records them.
Exploratory pilots whose numbers the docs cite live in bench/pilots/ and are not run here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["train_speed", "inference", "reconstruction", "seeds", "denoise", "inpaint", "colorize",
           "codec", "codec_photos", "anomaly", "textures", "fewlabel", "latents", "swap", "budget",
           "recipe_defaults", "denoise_ceiling", "photos_full", "matrix"]
# The recipes docs/BENCHMARKS.md records, where they differ from a script's defaults (the
# defaults stay small so that pilots spell out what they change).
ARGS = {
    "reconstruction": ["--latents", "2", "8", "16", "32", "64", "--epochs", "6",
                       "--demo-epochs", "0", "--long-epochs", "100", "--long-hidden", "512",
                       "--long-augment", "hflip"],
    "fewlabel": ["--pretrain-epochs", "120", "--corrupt", "affine", "--semi", "--lp-cmn",
                 "--lp-k", "20", "--lp-iters", "200", "--consistency", "--strength", "0.5",
                 "--threshold", "0.8", "--steps", "2000", "--lr", "1e-3",
                 "--encoder-lr-scale", "0.3", "--scratch-lr", "1e-3", "--resume",
                 "--name", "fewlabel_e120_it200"],
    "budget": ["--steps", "0", "1000", "3000"],
    "denoise_ceiling": ["--datasets", "digits", "fashion-mnist", "idx:../shared/data/mnist"],
    "latents": ["--epochs", "10", "--nested-epochs", "10", "--nested-p", "0.03",
                "--nested-draws", "4", "--nested-loss", "logmse", "--digits-epochs", "100",
                "--reuse"],
    "matrix": ["--threads", "2", "--name", "matrix_one"],
}


def main() -> int:
    failed = []
    for name in SCRIPTS:
        print(f"== {name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *ARGS.get(name, [])],
                               cwd=ROOT)
        if code:
            failed.append(name)
    print("all benchmarks done" if not failed else f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
