"""RGB photo patches from the photos bundled inside the installed packages (no download).

Photos (name: package, size):
  china, flower                     scikit-learn `load_sample_images` (427x640)
  astronaut (512x512), coffee (400x600), chelsea (300x451), rocket (427x640),
  hubble_deep_field (872x1000), immunohistochemistry (512x512)   scikit-image `skimage.data`
  grace_hopper                      matplotlib sample data (600x512)

Each photo is cut into a grid of non-overlapping SIZE x SIZE patches; a seeded draw puts one
patch in TEST_EVERY into the test split (the others train). Patches never overlap, so no test
pixel is seen in training, though a test patch's neighbours may be.

    python -m bench.photos --size 64 --out runs/data/photos64.npz
    aekit train --dataset npz:runs/data/photos64.npz --out runs/photos64

Writes an .npz with x_train / x_test (N, SIZE, SIZE, 3) uint8 and y_train / y_test (the photo's
index in PHOTOS): aekit's `npz:FILE` dataset.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

PHOTOS = ("china", "flower", "astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field",
          "immunohistochemistry", "grace_hopper")
TEST_EVERY = 8  # one patch in 8 is a test patch
SEED = 0


def photo(name: str) -> np.ndarray:
    """One bundled photo as (H, W, 3) uint8."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_images

        bunch = load_sample_images()
        return next(img for f, img in zip(bunch.filenames, bunch.images, strict=True)
                    if Path(f).stem == name)
    if name == "grace_hopper":
        import matplotlib.cbook
        from PIL import Image

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg",
                                                         asfileobj=False)) as im:
            return np.asarray(im.convert("RGB"))
    import skimage.data

    return np.asarray(getattr(skimage.data, name)())[..., :3]


def patches(size: int, seed: int = SEED) -> dict[str, np.ndarray]:
    """{"x_train", "x_test"}: (N, size, size, 3) uint8, "y_train", "y_test": the photo's index
    in PHOTOS, and "counts": (train, test) patches per photo."""
    rng = np.random.default_rng(seed)
    train, test, counts, y_train, y_test = [], [], {}, [], []
    for label, name in enumerate(PHOTOS):
        img = photo(name)
        h, w = img.shape[0] // size, img.shape[1] // size
        grid = [img[i * size:(i + 1) * size, j * size:(j + 1) * size]
                for i in range(h) for j in range(w)]
        is_test = rng.permutation(len(grid)) % TEST_EVERY == 0
        train += [p for p, t in zip(grid, is_test, strict=True) if not t]
        test += [p for p, t in zip(grid, is_test, strict=True) if t]
        counts[name] = [int((~is_test).sum()), int(is_test.sum())]
        y_train += [label] * counts[name][0]
        y_test += [label] * counts[name][1]
    return {"x_train": np.stack(train), "x_test": np.stack(test), "counts": counts,
            "y_train": np.array(y_train, np.uint8), "y_test": np.array(y_test, np.uint8)}


def write(size: int, out: Path) -> Path:
    """The patches as an npz at `out` (rebuilt only when missing; the build is deterministic)."""
    if out.exists():
        return out
    data = patches(size)
    buf = io.BytesIO()
    np.savez(buf, **{k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")})
    out.parent.mkdir(parents=True, exist_ok=True)
    from aekit.io import atomic_write_bytes

    atomic_write_bytes(out, buf.getvalue())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    data = patches(args.size)
    write(args.size, args.out)
    for name, (n_train, n_test) in data["counts"].items():
        print(f"{name:<22} {n_train:>5} train {n_test:>4} test")
    print(f"{len(data['x_train'])} train / {len(data['x_test'])} test -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
