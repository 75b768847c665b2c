"""Wall time of `aekit train` with default settings on a small folder: 60 photo patches.

A user's first run is often a folder of a few dozen images. Those are one optimizer step an
epoch, so the automatic budget (at least 3,000 steps) is 3,000 epochs, and anything a run does
per epoch (checkpoint, log, epoch line) is paid 3,000 times. This builds the folder (60 RGB
patches of 48x48 cut at seeded places from scikit-image's `coffee`; 50 train / 4 validation / 6
test), runs `aekit train --dataset folder:DIR` in a subprocess and reports its wall time next to
the training time the run itself recorded (metrics.json `train_seconds`), and the test PSNR.

    python -m bench.small_folder --threads 2
    PYTHONPATH=.:OTHER/src python -m bench.small_folder --name small_folder_before  # another tree

Writes bench/results/small_folder.json (or NAME.json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import write_result

N, SIZE = 60, 48


def make_folder(out: Path) -> Path:
    import skimage.data
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    img = skimage.data.coffee()  # (400, 600, 3)
    rng = np.random.default_rng(0)
    for i in range(N):
        y, x = rng.integers(0, img.shape[0] - SIZE), rng.integers(0, img.shape[1] - SIZE)
        Image.fromarray(img[y : y + SIZE, x : x + SIZE]).save(out / f"p{i:02d}.png")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="small_folder", help="result file name (without .json)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_folder(Path(tmp) / "small")
        run = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "aekit", "train", "--dataset", f"folder:{folder}",
               "--out", str(run), "--threads", str(args.threads), "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
        metrics = json.loads((run / "metrics.json").read_text())
        config = json.loads((run / "config.json").read_text())
    row = {"images": N, "size": SIZE, "epochs": config["train"]["epochs"],
           "wall_seconds": round(wall, 1), "train_seconds": metrics["train_seconds"],
           "best_epoch": metrics["best_epoch"], "test_psnr": metrics["test"]["psnr"],
           "pca_psnr": metrics["baselines"]["pca"]["psnr"]}
    print(json.dumps(row))
    write_result(args.name, {"threads": args.threads, **row})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
